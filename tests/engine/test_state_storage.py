"""State storage: after every step the stored document restores to the very workflow the engine
holds; incremental dumps (only changed tasks re-serialized) equal SpiffWorkflow's full dumps,
on real processes, parallel branches with timers and messages, and the conformance corpus."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from engine import bpmn, conformance, runtime
from engine.definitions import registry
from engine.people import identity
from engine.runtime.base import caches
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.storage.models import ProcessInstance
from engine.timekeeping.clock import FrozenClock
from tests.conftest import SHARED, ActorOf, work
from tests.diagrams import files, flow, process, sequence, user_task
from tests.expense_claims import claim_data

OPS = "运营管理组"


def stored(db: Database, instance_id: int) -> tuple[str, int, bpmn.CompiledProcess]:
    with db.read() as session:
        row = session.get(ProcessInstance, instance_id)
        assert row is not None
        definition = caches.of(db).load_definition(session, row.definition_id)
        return row.state, row.version, definition.compiled


def assert_restores_identically(db: Database, instance_id: int) -> None:
    """The stored state restores to a workflow that dumps to it, and it is the hot workflow's."""
    state, version, compiled = stored(db, instance_id)
    restored = bpmn.load_state(compiled, state)
    assert json.loads(bpmn.dump_state(restored)) == json.loads(state)
    hot = caches.of(db).workflows.get(instance_id)
    if hot is not None:
        assert hot.version == version
        assert json.loads(bpmn.dump_state(hot.workflow)) == json.loads(state)
        # the human_task mirror is the hot workflow's ready user tasks
        ready = {task.task_id for task in bpmn.ready_user_tasks(hot.workflow)}
        mirrored = {row_id for row_id, _bpmn_id in hot.open_tasks.values()}
        assert set(hot.open_tasks) == ready
        assert mirrored == {row.id for row in inbox.open_tasks_of(db, instance_id)}


@pytest.mark.usefixtures("deployed", "frozen_clock")
def test_every_step_of_an_expense_claim_restores_to_an_identical_workflow(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    assert_restores_identically(db, case.id)
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("sales1", "submit_claim", claim_data("12000.00", "差旅")),
        ("ddm1", "approve_ddm", {"decision": "同意"}),
        ("dm", "approve_dm", {"decision": "驳回", "comment": "缺少会议议程"}),
        ("sales1", "revise_claim", claim_data("12000.00", "差旅")),
        ("ddm1", "approve_ddm", {"decision": "同意"}),
        ("dm", "approve_dm", {"decision": "同意"}),
    ]
    for username, bpmn_id, data in steps:
        summary = work(db, actor(username), case.id, bpmn_id, data)
        assert_restores_identically(db, case.id)
        assert summary.version == stored(db, case.id)[1]


BRANCHES = process(
    "branches",
    '<bpmn:startEvent id="start"/>'
    '<bpmn:parallelGateway id="split"/>'
    + user_task("answer", "答复客户")
    + '<bpmn:boundaryEvent id="remind" attachedToRef="answer" cancelActivity="false">'
    '<bpmn:timerEventDefinition id="td"><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">'
    '"P1D"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
    '<bpmn:scriptTask id="note" name="记录"><bpmn:script>reminded = True</bpmn:script></bpmn:scriptTask>'
    '<bpmn:endEvent id="reminded_end"/>'
    '<bpmn:intermediateCatchEvent id="wait_insurer" name="等待保险公司">'
    '<bpmn:messageEventDefinition id="md" messageRef="msg"/></bpmn:intermediateCatchEvent>'
    + user_task("check", "核对")
    + '<bpmn:parallelGateway id="join"/>'
    + user_task("close", "结案")
    + '<bpmn:endEvent id="end"/>'
    + flow("start", "split")
    + flow("split", "answer")
    + flow("split", "wait_insurer")
    + sequence("remind", "note", "reminded_end")
    + flow("answer", "join")
    + sequence("wait_insurer", "check", "join")
    + sequence("join", "close", "end"),
    lanes={
        OPS: [
            "start",
            "split",
            "answer",
            "remind",
            "note",
            "reminded_end",
            "wait_insurer",
            "check",
            "join",
            "close",
            "end",
        ]
    },
    before='<bpmn:message id="msg" name="insurer_reply"/>',
)


@pytest.mark.usefixtures("frozen_clock")
def test_parallel_branches_timers_and_messages_restore_identically(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    with db.unit_of_work() as session:
        registry.deploy(session, identity.SYSTEM, files("branches.bpmn", BRANCHES))
    ops1 = actor("ops1")
    case = runtime.start_instance(db, ops1, "branches", business_key="BR-1")
    assert_restores_identically(db, case.id)
    assert len(runtime.get_instance(db, case.id).waiting_timers) == 1
    frozen_clock.advance(timedelta(days=1, seconds=1))
    assert timers.run_once(db) == 1
    assert_restores_identically(db, case.id)
    assert runtime.get_instance(db, case.id).waiting_timers == ()
    runtime.correlate_message(
        db, identity.SYSTEM, "insurer_reply", {"ok": True}, business_key="BR-1"
    )
    assert_restores_identically(db, case.id)
    work(db, ops1, case.id, "check")
    assert_restores_identically(db, case.id)
    work(db, ops1, case.id, "answer")
    assert_restores_identically(db, case.id)
    done = work(db, ops1, case.id, "close")
    assert done.status == runtime.COMPLETED
    state, _version, compiled = stored(db, case.id)
    assert bpmn.is_completed(bpmn.load_state(compiled, state))
    assert runtime.get_instance(db, case.id).data["reminded"] is True


# --- the incremental writer against SpiffWorkflow's serializer ---


SEQUENCE = process(
    "seq",
    '<bpmn:startEvent id="start"/>'
    + "".join(user_task(f"t{i}", f"步骤 {i}") for i in range(4))
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "t0", "t1", "t2", "t3", "end"),
    lanes={OPS: ["start", "t0", "t1", "t2", "t3", "end"]},
)


def full(workflow: Any) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(bpmn.dump_state(workflow))
    return state


def test_the_writer_notices_data_changed_in_place_without_a_state_change() -> None:
    compiled = bpmn.compile_process(SEQUENCE, "seq.bpmn")
    workflow = bpmn.new_workflow(compiled, {"items": [{"n": 1}], "starter": "ops1"})
    bpmn.run_steps(workflow)
    writer = bpmn.StateWriter()
    assert json.loads(writer.dump(workflow)) == full(workflow)
    task = workflow.get_task_from_id(UUID(bpmn.ready_user_tasks(workflow)[0].task_id))
    task.data["items"][0]["n"] = 2  # nested, in place: no state change, no new object
    assert json.loads(writer.dump(workflow)) == full(workflow)
    task.internal_data["seen"] = True
    assert json.loads(writer.dump(workflow)) == full(workflow)
    workflow.task_tree.data["root_only"] = "x"  # a parent's data: every child's delta changes
    assert json.loads(writer.dump(workflow)) == full(workflow)
    for _ in range(4):
        bpmn.complete_user_task(workflow, bpmn.ready_user_tasks(workflow)[0].task_id, {"k": 1})
        assert json.loads(writer.dump(workflow)) == full(workflow)
    assert bpmn.is_completed(workflow)


def test_each_task_piece_is_what_the_spiffworkflow_converter_makes_of_it() -> None:
    compiled = bpmn.compile_process(SEQUENCE, "seq.bpmn")
    workflow = bpmn.new_workflow(compiled, {"starter": "ops1"})
    bpmn.run_steps(workflow)
    bpmn.complete_user_task(workflow, bpmn.ready_user_tasks(workflow)[0].task_id, {"a": [1, 2]})
    converted = full(workflow)["tasks"]
    assert json.loads(bpmn.StateWriter().dump(workflow))["tasks"] == converted
    assert len(converted) == len(workflow.tasks)


CORPUS = SHARED / "conformance"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="no ../shared/conformance corpus")
def test_incremental_dumps_equal_full_dumps_across_the_conformance_corpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[int] = []
    different: list[str] = []
    real_dump = bpmn.StateWriter.dump

    def compared(self: bpmn.StateWriter, workflow: Any) -> str:
        text = real_dump(self, workflow)
        checked.append(1)
        if json.loads(text) != full(workflow):
            different.append(workflow.spec.name)
        return text

    monkeypatch.setattr(bpmn.StateWriter, "dump", compared)
    results = conformance.walk(CORPUS)
    assert not [r.line() for r in results if r.outcome == conformance.CRASHED]
    assert different == []
    assert len(checked) > 40  # every persisted step of every file that runs
