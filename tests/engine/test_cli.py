"""The ``opsflow`` command through click's CliRunner (and the real console script in a subprocess):
init, validate, deploy, start/tasks/claim/complete/instance, one-line errors, worker, audit verify.

The CLI runs on real time, so the claim dates are computed from today."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select, table

from engine import audit, runtime
from engine.config import PROJECT_ROOT
from engine.people import identity
from engine.storage.db import Database
from tests import expense_claims
from tests.conftest import DEMO, open_task, work

PROCESSES = PROJECT_ROOT / "processes"
EXPENSE_BPMN = PROCESSES / "expense_reimbursement.bpmn"
OPSFLOW = Path(sys.executable).parent / "opsflow"
DEMO_USERS = json.loads(DEMO.read_text(encoding="utf-8"))["users"]


def claim_data(**changes: object) -> dict[str, Any]:
    """A valid expense claim for the real today (the CLI runs on the real clock)."""
    day = (dt.date.today() - dt.timedelta(days=10)).isoformat()  # noqa: DTZ011 - the CLI's real today
    return expense_claims.claim_data(day=day, **changes)


def ok(result: Result) -> list[str]:
    """The stdout lines of a command that must have succeeded."""
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert result.stderr == ""
    return result.stdout.splitlines()


def one_error_line(result: Result) -> str:
    """A handled failure: non-zero exit, exactly one ``error:`` line on stderr, nothing else."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # handled by the CLI, not a crash
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def count(db: Database, name: str) -> int:
    with db.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table(name))).scalar_one()


# --- init ---


def test_init_creates_a_fresh_database_and_running_it_again_changes_nothing(
    tmp_path: Path, opsflow
) -> None:
    url = f"sqlite:///{tmp_path / 'instance' / 'opsflow.sqlite'}"
    first = ok(opsflow("--database", url, "init"))
    assert "deployed: expense_reimbursement v1 (费用报销)" in first
    assert "demo user: ddm1 / ddm1-demo-2026  (DDM)" in first
    demo_lines = [line for line in first if line.startswith("demo user: ")]
    assert len(demo_lines) == len(DEMO_USERS)
    assert first[-1] == f"database ready: {url}"

    db = Database(url)
    try:
        users, definitions, events = count(db, "user"), count(db, "process_definition"), 0
        assert users == len(DEMO_USERS)
        assert definitions == len(list(PROCESSES.glob("*.bpmn")))
        assert count(db, "role") == len(identity.ROLES)
        with db.read() as session:
            report = audit.verify(session)
            events = report.checked
        assert report.ok
        assert events == len(list(PROCESSES.glob("*.bpmn")))  # one per deploy
        # the printed demo password logs in
        assert identity.authenticate(db, "ddm1", "ddm1-demo-2026").actor.roles == {"DDM"}

        second = ok(opsflow("--database", url, "init"))
        assert "unchanged: expense_reimbursement v1 (费用报销)" in second
        assert not [line for line in second if line.startswith(("demo user:", "deployed:"))]
        assert count(db, "user") == users
        assert count(db, "process_definition") == definitions
        assert count(db, "audit_event") == events + 1  # only the login above
    finally:
        db.dispose()


def test_init_on_a_database_that_already_has_the_department_only_deploys(db, opsflow) -> None:
    users = count(db, "user")
    lines = ok(opsflow("--database", db.url, "init"))
    assert "deployed: expense_reimbursement v1 (费用报销)" in lines
    assert not [line for line in lines if line.startswith("demo user:")]
    assert count(db, "user") == users
    again = ok(opsflow("--database", db.url, "init"))
    assert "unchanged: expense_reimbursement v1 (费用报销)" in again
    assert count(db, "process_definition") == len(list(PROCESSES.glob("*.bpmn")))


# --- validate ---


def test_validate_the_shipped_processes_finds_no_problem(opsflow) -> None:
    lines = ok(opsflow("validate", PROCESSES))
    assert lines == ["0 problem(s)"]


_BAD_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Definitions_{key}"
    targetNamespace="https://opsflow.example/bpmn">
  <bpmn:process id="{key}" name="有问题的流程" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_1" name="{lane}"><bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef><bpmn:flowNodeRef>gw</bpmn:flowNodeRef><bpmn:flowNodeRef>end_big</bpmn:flowNodeRef><bpmn:flowNodeRef>end_small</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="审核"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:exclusiveGateway id="gw"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f_big</bpmn:outgoing><bpmn:outgoing>f_small</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:endEvent id="end_big"><bpmn:incoming>f_big</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_small"><bpmn:incoming>f_small</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="gw"/>
    <bpmn:sequenceFlow id="f_big" sourceRef="gw" targetRef="end_big"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{big}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_small" sourceRef="gw" targetRef="end_small"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">amount &lt;= 100</bpmn:conditionExpression></bpmn:sequenceFlow>
  </bpmn:process>
</bpmn:definitions>
"""


def test_validate_prints_one_line_per_problem_with_file_element_and_message(
    tmp_path: Path, opsflow
) -> None:
    (tmp_path / "juel.bpmn").write_text(
        _BAD_BPMN.format(key="juel_process", lane="副经理", big="${amount &gt; 100}"),
        encoding="utf-8",
    )
    (tmp_path / "lane.bpmn").write_text(
        _BAD_BPMN.format(key="lane_process", lane="路人甲", big="amount &gt; 100"),
        encoding="utf-8",
    )
    result = opsflow("validate", tmp_path / "juel.bpmn", tmp_path / "lane.bpmn")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "2 problem(s)"
    problems = sorted(lines[:-1])
    assert len(problems) == 2
    assert problems[0].startswith("juel.bpmn: f_big: ")
    assert "'${amount > 100}' is a JUEL/EL expression" in problems[0]
    assert problems[1].startswith("lane.bpmn: review: ")
    assert "lane '路人甲' maps to no known role" in problems[1]


# --- a case worked end to end through the command ---


def test_deploy_start_tasks_claim_complete_and_instance(db, opsflow) -> None:
    def run(*args: object) -> list[str]:
        return ok(opsflow("--database", db.url, *args))

    assert run("deploy", EXPENSE_BPMN) == ["deployed: expense_reimbursement v1"]
    assert "unchanged: expense_reimbursement v1" in run("deploy", PROCESSES)

    (started,) = run(
        "start",
        "expense_reimbursement",
        "--as",
        "sales1",
        "--data",
        json.dumps({"channel": "电话"}),
        "--business-key",
        "EXP-CLI-1",
    )
    found = re.fullmatch(r"instance (\d+): running; open tasks: \[(\d+)\]", started)
    assert found, started
    case_id, claim_task = int(found[1]), int(found[2])
    assert claim_task == open_task(db, case_id, "submit_claim")

    mine = run("tasks", "--as", "sales1")
    assert len(mine) == 1
    assert mine[0].startswith(
        f"[mine] task {claim_task}: 填写报销单 (expense_reimbursement #{case_id}, role "
    )
    assert run("tasks", "--as", "ddm1") == []

    (completed,) = run("complete", claim_task, "--as", "sales1", "--data", json.dumps(claim_data()))
    found = re.fullmatch(
        rf"task {claim_task} completed; instance {case_id}: running; open tasks: \[(\d+)\]",
        completed,
    )
    assert found, completed
    approval = int(found[1])
    assert approval == open_task(db, case_id, "approve_ddm")

    for deputy in ("ddm1", "ddm2"):
        (queued,) = run("tasks", "--as", deputy)
        assert queued.startswith(
            f"[claimable] task {approval}: 副经理审批 (expense_reimbursement #{case_id}, role DDM) due "
        )
    assert run("claim", approval, "--as", "ddm1") == [f"task {approval} claimed by ddm1"]
    (claimed,) = run("tasks", "--as", "ddm1")
    assert claimed.startswith(f"[mine] task {approval}: 副经理审批")
    assert run("tasks", "--as", "ddm2") == []

    (approved,) = run(
        "complete", approval, "--as", "ddm1", "--data", json.dumps({"decision": "同意"})
    )
    found = re.fullmatch(
        rf"task {approval} completed; instance {case_id}: running; open tasks: \[(\d+)\]",
        approved,
    )
    assert found, approved
    review = int(found[1])
    (done,) = run("tasks", "--as", "ddm1", "--tab", "done")
    assert done.startswith(f"[done] task {approval}: 副经理审批")

    shown = run("instance", case_id)
    assert (
        shown[0] == f"instance {case_id}: expense_reimbursement v1 [running] 费用报销 · 办公 800.00"
    )
    assert shown[1] == f"  open task {review}: 财务审核 (role FIN_ACC, assignee None)"
    history = [re.sub(r"^  #\d+ \S+ ", "", line).rstrip() for line in shown[2:]]
    assert history[0] == "sales1 instance_started"
    assert "sales1 task_completed submit_claim" in history
    assert "ddm1 task_claimed approve_ddm" in history
    assert "ddm1 task_completed approve_ddm" in history
    assert len(history) == len(runtime.get_instance(db, case_id).history)

    view = runtime.get_instance(db, case_id)
    assert view.summary.business_key == "EXP-CLI-1"
    assert view.data["channel"] == "电话"
    assert view.data["amount"] == "800.00"

    (intact,) = run("audit", "verify")
    assert intact == f"audit chain intact: {count(db, 'audit_event')} events"


# --- errors: one line, no traceback ---


@pytest.fixture
def case(db: Database, deployed, actor) -> dict[str, int]:
    """An expense case whose claim is submitted and whose deputy approval ddm1 completed."""
    summary = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    claim = open_task(db, summary.id, "submit_claim")
    work(db, actor("sales1"), summary.id, "submit_claim", claim_data())
    approval = open_task(db, summary.id, "approve_ddm")
    work(db, actor("ddm1"), summary.id, "approve_ddm", {"decision": "同意"})
    return {"instance": summary.id, "claim": claim, "approval": approval}


ERRORS: list[tuple[str, Callable[[dict[str, int]], list[object]], list[str]]] = [
    ("unknown user", lambda c: ["tasks", "--as", "nobody"], ["no such user: nobody"]),
    (
        "unknown user completing",
        lambda c: ["complete", c["approval"], "--as", "nobody"],
        ["no such user: nobody"],
    ),
    ("unknown task", lambda c: ["complete", 9999, "--as", "ddm1"], ["no task #9999"]),
    ("unknown task claimed", lambda c: ["claim", 9999, "--as", "ddm1"], ["no task #9999"]),
    ("unknown instance", lambda c: ["instance", 9999], ["no case #9999"]),
    (
        "unknown process",
        lambda c: ["start", "no_such_process", "--as", "sales1"],
        ["no process 'no_such_process'"],
    ),
    (
        "invalid JSON",
        lambda c: ["start", "expense_reimbursement", "--as", "sales1", "--data", "{bad"],
        ["--data is not valid JSON"],
    ),
    (
        "JSON that is not an object",
        lambda c: ["start", "expense_reimbursement", "--as", "sales1", "--data", "[1, 2]"],
        ["--data must be a JSON object"],
    ),
    (
        "already completed by someone else",
        lambda c: ["complete", c["approval"], "--as", "ddm2", "--data", '{"decision": "同意"}'],
        ["already completed by ddm1"],
    ),
]


@pytest.mark.parametrize(
    ("args", "fragments"), [(a, f) for _, a, f in ERRORS], ids=[n for n, _, _ in ERRORS]
)
def test_errors_print_exactly_one_line(db, case, opsflow, args, fragments) -> None:
    before = count(db, "audit_event")
    line = one_error_line(opsflow("--database", db.url, *args(case)))
    for fragment in fragments:
        assert fragment in line
    assert count(db, "audit_event") == before  # a refused command changes nothing


def test_invalid_form_data_lists_the_field_errors_in_the_one_line(db, deployed, actor, opsflow):
    summary = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    claim = open_task(db, summary.id, "submit_claim")
    bad = claim_data(amount="12.345", purpose="太短")
    line = one_error_line(
        opsflow(
            "--database", db.url, "complete", claim, "--as", "sales1", "--data", json.dumps(bad)
        )
    )
    fields = dict(part.split(": ", 1) for part in re.search(r"\((.*)\)$", line)[1].split("; "))
    assert {"amount", "purpose"} <= set(fields)
    assert all(messages for messages in fields.values())
    assert open_task(db, summary.id, "submit_claim") == claim  # nothing was saved


def _console(db: Database, *args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPSFLOW_DATABASE_URL": db.url}
    return subprocess.run(
        [str(OPSFLOW), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["complete", 9999, "--as", "ddm1"], "no task #9999"),
        (["tasks", "--as", "nobody"], "no such user: nobody"),
        (["start", "expense_reimbursement", "--as", "sales1", "--data", "{bad"], "not valid JSON"),
    ],
    ids=["unknown task", "unknown user", "invalid JSON"],
)
def test_the_console_script_prints_one_error_line_and_no_traceback(
    db, deployed, args, fragment
) -> None:
    assert OPSFLOW.exists()
    done = _console(db, *args)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_the_console_script_reads_the_database_from_the_environment(db, deployed) -> None:
    done = _console(db, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"audit chain intact: {count(db, 'audit_event')} events\n"


# --- worker and audit ---


def test_worker_once_on_a_fresh_database_fires_nothing(db, opsflow) -> None:
    assert ok(opsflow("--database", db.url, "worker", "--once")) == ["fired: 0"]


def test_worker_once_with_a_waiting_case_fires_nothing_yet(db, case, opsflow) -> None:
    assert ok(opsflow("--database", db.url, "worker", "--once")) == ["fired: 0"]
    assert open_task(db, case["instance"], "finance_review")


def test_audit_verify_reports_an_intact_chain(db, case, opsflow) -> None:
    lines = ok(opsflow("--database", db.url, "audit", "verify"))
    assert lines == [f"audit chain intact: {count(db, 'audit_event')} events"]
