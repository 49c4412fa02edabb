"""Engine benchmark: a persisted task completion against SpiffWorkflow's own in-memory step.

A generated process of 10 sequential user tasks, each with a small form. Prints medians and
ratios; with ``--json`` the last line is one JSON object. Not a timed test: run it on an
otherwise idle machine (``make bench``) and compare the figures with the issue's targets.
Exits non-zero when a step fails or a figure is missing; ``--smoke`` runs the same code on a few
instances, in a second or two (CI runs it: ``make bench-smoke``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from bench import figures
from engine import bpmn, forms, runtime
from engine.definitions import registry
from engine.people import identity
from engine.people.identity import Actor
from engine.storage.db import Database
from engine.storage.models import ProcessInstance

TASKS = 10
FORM = {
    "key": "bench_step",
    "title": {"zh": "步骤"},
    "fields": [
        {"name": "note", "type": "string", "required": True, "label": {"zh": "备注"}},
        {"name": "amount", "type": "decimal", "places": 2, "min": "0", "label": {"zh": "金额"}},
    ],
}
DATA = {"note": "已核对", "amount": "120.50"}
SMOKE_RUNS = 3


def sequential_process(n: int = TASKS) -> str:
    ns = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'
    props = '<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="formKey" value="bench_step"/></spiffworkflow:properties></bpmn:extensionElements>'
    ids = ["start", *[f"t{i}" for i in range(n)], "end"]
    nodes = (
        '<bpmn:startEvent id="start"/>'
        + "".join(
            f'<bpmn:userTask id="t{i}" name="步骤 {i}">{props}</bpmn:userTask>' for i in range(n)
        )
        + '<bpmn:endEvent id="end"/>'
    )
    flows = "".join(
        f'<bpmn:sequenceFlow id="f{k}" sourceRef="{a}" targetRef="{b}"/>'
        for k, (a, b) in enumerate(itertools.pairwise(ids))
    )
    lane = "".join(f"<bpmn:flowNodeRef>{i}</bpmn:flowNodeRef>" for i in ids)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {ns} id="d" targetNamespace="bench">'
        f'<bpmn:process id="bench_seq" isExecutable="true"><bpmn:laneSet id="ls"><bpmn:lane id="l" name="OPS">{lane}</bpmn:lane></bpmn:laneSet>'
        f"{nodes}{flows}</bpmn:process></bpmn:definitions>"
    )


def memory_steps(compiled: bpmn.CompiledProcess, runs: int) -> list[float]:
    """SpiffWorkflow alone: find the ready task, set its data, run it, do_engine_steps."""
    samples = []
    for _ in range(runs):
        workflow = BpmnWorkflow(compiled.spec, dict(compiled.subprocess_specs))
        workflow.do_engine_steps()
        while True:
            started = time.perf_counter()
            task = workflow.get_next_task(state=TaskState.READY, manual=True)
            if task is None:
                break
            task.data.update(DATA)
            task.run()
            workflow.do_engine_steps()
            samples.append(time.perf_counter() - started)
    return samples


def setup(folder: Path) -> tuple[Database, Actor]:
    db = Database(f"sqlite:///{folder / 'bench.sqlite'}")
    db.upgrade()
    with db.unit_of_work() as session:
        identity.ensure_roles(session)
        actor = identity.create_user(session, "bench", "bench", password_hash="!", roles=["OPS"])  # noqa: S106 - no login
        form = forms.load_form(json.dumps(FORM, ensure_ascii=False), "bench_step.json")
        registry.deploy(
            session,
            identity.SYSTEM,
            registry.ProcessFiles("bench_seq.bpmn", sequential_process(), {}, {"bench_step": form}),
        )
    return db, actor


def persisted_run(db: Database, actor: Actor, step_samples: list[float]) -> int:
    """One instance through all its tasks with runtime.complete_task; returns its id."""
    case = runtime.start_instance(db, actor, "bench_seq")
    while case.open_task_ids:
        started = time.perf_counter()
        case = runtime.complete_task(db, actor, case.open_task_ids[0], DATA)
        step_samples.append(time.perf_counter() - started)
    if case.status != runtime.COMPLETED:
        raise RuntimeError(f"case #{case.id} ended {case.status}: {case.error}")
    return case.id


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def state_sizes(db: Database, actor: Actor) -> list[int]:
    """The stored state after start and after each completion of one instance."""
    sizes = []
    case = runtime.start_instance(db, actor, "bench_seq")
    open_ids = case.open_task_ids
    while True:
        with db.read() as session:
            state = session.scalar(
                select(ProcessInstance.state).where(ProcessInstance.id == case.id)
            )
            sizes.append(len((state or "").encode()))
        if not open_ids:
            return sizes
        open_ids = runtime.complete_task(db, actor, open_ids[0], DATA).open_task_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60, help="instances per measurement")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_RUNS} runs, for CI")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    if args.smoke:
        args.runs = SMOKE_RUNS
    compiled = bpmn.compile_process(sequential_process(), "bench_seq.bpmn")
    memory = memory_steps(compiled, args.runs)
    with tempfile.TemporaryDirectory() as folder:
        db, actor = setup(Path(folder))
        persisted_run(db, actor, [])  # warm-up: compile caches, SQLite pages
        steps: list[float] = []
        elapsed = timed(lambda: [persisted_run(db, actor, steps) for _ in range(args.runs)])
        sizes = state_sizes(db, actor)
        db.dispose()
    result = {
        "memory_step_us": round(statistics.median(memory) * 1e6, 1),
        "persisted_step_us": round(statistics.median(steps) * 1e6, 1),
        "completions_per_s": round(len(steps) / sum(steps)),
        "instances_per_s": round(args.runs / elapsed, 1),
        "state_bytes_per_instance": round(statistics.mean(sizes)),
        "state_bytes_max": max(sizes),
        "tasks_per_instance": TASKS,
    }
    result["persisted_over_memory"] = round(
        result["persisted_step_us"] / result["memory_step_us"], 2
    )
    figures.report(result, as_json=args.json)


if __name__ == "__main__":
    main()
