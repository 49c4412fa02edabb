"""runtime: claims, conflicts, crash safety, failing scripts, messages, cancelling — through its services."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.orm import Session

from engine import audit, runtime
from engine.definitions import registry
from engine.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime.services import inbox
from engine.storage.db import Database
from engine.storage.models import AuditEvent
from engine.storage.txn import Txn
from tests.conftest import ActorOf, history_types, open_task
from tests.diagrams import files, flow, process, sequence, user_task

pytestmark = pytest.mark.usefixtures("frozen_clock")

REVIEW = process(
    "review",
    '<bpmn:startEvent id="start"/>'
    + user_task("review", "审核", formKey="note")
    + user_task("confirm", "确认")
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "review", "confirm", "end"),
    lanes={"运营管理组": ["start", "review", "confirm", "end"]},
)
NOTE_FORM = '{"key": "note", "title": {"zh": "备注"}, "fields": [{"name": "note", "type": "string", "required": true, "label": {"zh": "备注"}}]}'

DIVIDE = process(
    "divide",
    '<bpmn:startEvent id="start"/>'
    '<bpmn:scriptTask id="compute" name="计算"><bpmn:script>share = total / parts</bpmn:script></bpmn:scriptTask>'
    + user_task("check", "核对")
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "compute", "check", "end"),
    lanes={"运营管理组": ["start", "compute", "check", "end"]},
)

INSURER = process(
    "insurer_answer",
    '<bpmn:startEvent id="start"/>'
    + user_task("send", "提交保险公司")
    + '<bpmn:intermediateCatchEvent id="wait_answer" name="等待保险公司答复">'
    '<bpmn:messageEventDefinition id="md" messageRef="msg_decision"/></bpmn:intermediateCatchEvent>'
    '<bpmn:exclusiveGateway id="gw" name="是否同意"/>'
    '<bpmn:endEvent id="accepted"/><bpmn:endEvent id="declined"/>'
    + sequence("start", "send", "wait_answer", "gw")
    + flow("gw", "accepted", "approved == True")
    + flow("gw", "declined", "approved == False"),
    lanes={"运营管理组": ["start", "send", "wait_answer", "gw", "accepted", "declined"]},
    before='<bpmn:message id="msg_decision" name="insurer_decision"/>',
)
DECISION_FORM = '{"key": "insurer_decision", "title": {"zh": "保险公司决定"}, "fields": [{"name": "approved", "type": "boolean", "required": true, "label": {"zh": "是否同意"}}, {"name": "reference", "type": "string", "required": true, "label": {"zh": "答复编号"}}]}'


def deploy(
    db: Database, source: str, xml: str, form_documents: dict[str, str] | None = None
) -> None:
    with db.unit_of_work() as session:
        registry.deploy(session, identity.SYSTEM, files(source, xml, form_documents))


@pytest.fixture
def review(db: Database) -> None:
    deploy(db, "review.bpmn", REVIEW, {"note": NOTE_FORM})


# --- claiming and delegating ---


@pytest.mark.usefixtures("review")
def test_claim_unclaim_and_delegate_follow_roles(db: Database, actor: ActorOf) -> None:
    case = runtime.start_instance(db, actor("ops1"), "review")
    task_id = open_task(db, case.id, "review")
    assert [r.id for r in inbox.list_tasks(db, actor("ops2"), inbox.CLAIMABLE)] == [task_id]
    with pytest.raises(PermissionDeniedError, match="OPS"):
        runtime.claim_task(db, actor("cs1"), task_id)
    runtime.claim_task(db, actor("ops1"), task_id)
    with pytest.raises(ConflictError, match="认领"):
        runtime.claim_task(db, actor("ops2"), task_id)
    assert inbox.list_tasks(db, actor("ops2"), inbox.CLAIMABLE) == []
    with pytest.raises(PermissionDeniedError):
        runtime.unclaim_task(db, actor("ops2"), task_id)
    with pytest.raises(PermissionDeniedError, match="OPS"):
        runtime.delegate_task(db, actor("ops1"), task_id, "sales1")
    runtime.delegate_task(db, actor("ops1"), task_id, "ops2")
    assert [r.id for r in inbox.list_tasks(db, actor("ops2"), inbox.MINE)] == [task_id]
    runtime.unclaim_task(db, actor("ops2"), task_id)
    assert [r.id for r in inbox.list_tasks(db, actor("ops1"), inbox.CLAIMABLE)] == [task_id]
    types = history_types(db, case.id)
    assert types.count("permission_denied") == 3
    assert {"task_claimed", "task_delegated", "task_unclaimed"} <= set(types)


@pytest.mark.usefixtures("review")
def test_someone_without_the_role_cannot_complete_and_is_audited(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("ops1"), "review")
    task_id = open_task(db, case.id, "review")
    with pytest.raises(PermissionDeniedError):
        runtime.complete_task(db, actor("cash1"), task_id, {"note": "x"})
    denied = [
        e for e in runtime.get_instance(db, case.id).history if e["type"] == "permission_denied"
    ]
    assert denied[0]["actor"] == "cash1"
    assert denied[0]["task_id"] == "review"


# --- concurrency and crash safety ---


@pytest.mark.usefixtures("review")
def test_two_people_completing_the_same_task_at_once_one_wins(db: Database, actor: ActorOf) -> None:
    case = runtime.start_instance(db, actor("ops1"), "review")
    task_id = open_task(db, case.id, "review")
    people = [actor("ops1"), actor("ops2")]
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def complete(who: Actor) -> None:
        handle = Database(db.url)  # each person has their own connection and hot cache
        barrier.wait()
        try:
            outcomes[who.username] = runtime.complete_task(
                handle, who, task_id, {"note": who.username}
            )
        except ConflictError as exc:
            outcomes[who.username] = exc
        finally:
            handle.dispose()

    threads = [threading.Thread(target=complete, args=(who,)) for who in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conflicts = [o for o in outcomes.values() if isinstance(o, ConflictError)]
    winners = [name for name, o in outcomes.items() if isinstance(o, runtime.InstanceSummary)]
    assert len(conflicts) == 1
    assert len(winners) == 1
    assert winners[0] in str(conflicts[0])  # the loser is told who completed it
    completed = [
        e for e in runtime.get_instance(db, case.id).history if e["type"] == "task_completed"
    ]
    assert [e["actor"] for e in completed] == winners
    assert runtime.get_instance(db, case.id).data["note"] == winners[0]


@pytest.mark.usefixtures("review")
def test_a_crash_mid_transaction_leaves_the_instance_exactly_as_before(
    db: Database, actor: ActorOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = runtime.start_instance(db, actor("ops1"), "review")
    task_id = open_task(db, case.id, "review")
    runtime.claim_task(db, actor("ops1"), task_id)
    before = runtime.get_instance(db, case.id)
    real_record = audit.record

    def crash_on_completion(session: Session | Txn, type: str, **kwargs: Any) -> AuditEvent:
        event = real_record(session, type, **kwargs)
        if type == "task_created":  # after the workflow stepped and the old task was marked done
            raise RuntimeError("power cut")
        return event

    monkeypatch.setattr(audit, "record", crash_on_completion)
    with pytest.raises(RuntimeError, match="power cut"):
        runtime.complete_task(db, actor("ops1"), task_id, {"note": "first try"})
    monkeypatch.setattr(audit, "record", real_record)

    after = runtime.get_instance(db, case.id)
    assert after == before
    assert open_task(db, case.id, "review") == task_id
    with db.read() as session:
        assert audit.verify(session).ok
    # the same handle (and its hot cache) carries on as if the crash never happened
    summary = runtime.complete_task(db, actor("ops1"), task_id, {"note": "second try"})
    assert runtime.get_instance(db, case.id).data["note"] == "second try"
    assert [open_task(db, case.id, "confirm")] == list(summary.open_task_ids)


@pytest.mark.usefixtures("review")
def test_invalid_form_data_is_refused_field_by_field_and_nothing_changes(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("ops1"), "review")
    task_id = open_task(db, case.id, "review")
    before = runtime.get_instance(db, case.id)
    with pytest.raises(InvalidInputError) as error:
        runtime.complete_task(db, actor("ops1"), task_id, {"note": "", "extra": 1})
    assert set(error.value.field_errors) == {"note", "extra"}
    assert runtime.get_instance(db, case.id) == before


@pytest.mark.usefixtures("review")
def test_completing_with_a_stale_version_is_a_conflict(db: Database, actor: ActorOf) -> None:
    case = runtime.start_instance(db, actor("ops1"), "review")
    task_id = open_task(db, case.id, "review")
    with pytest.raises(ConflictError, match="reload"):
        runtime.complete_task(
            db, actor("ops1"), task_id, {"note": "x"}, expected_version=case.version - 1
        )
    runtime.complete_task(db, actor("ops1"), task_id, {"note": "x"}, expected_version=case.version)


def test_unknown_things_are_not_found(db: Database, actor: ActorOf) -> None:
    with pytest.raises(NotFoundError):
        runtime.start_instance(db, actor("ops1"), "no_such_process")
    with pytest.raises(NotFoundError):
        runtime.complete_task(db, actor("ops1"), 999_999, {})
    with pytest.raises(NotFoundError):
        runtime.get_instance(db, 999_999)


# --- failing scripts: error state, retry ---


def test_a_failing_script_puts_the_instance_in_error_and_retry_resumes_it(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, "divide.bpmn", DIVIDE)
    case = runtime.start_instance(db, actor("ops1"), "divide", {"total": 100, "parts": 0})
    assert case.status == runtime.ERROR
    assert case.error_element == "compute"
    assert "ZeroDivisionError" in (case.error or "")
    assert "instance_failed" in history_types(db, case.id)
    with pytest.raises(PermissionDeniedError):  # neither PO, ADMIN nor OPS
        runtime.retry_instance(db, actor("sales1"), case.id, {"parts": 4})
    retried = runtime.retry_instance(db, actor("po1"), case.id, {"parts": 4})
    assert retried.status == runtime.RUNNING
    assert runtime.get_instance(db, case.id).data["share"] == 25


# --- messages from outside ---


@pytest.fixture
def insurer(db: Database) -> None:
    deploy(db, "insurer_answer.bpmn", INSURER, {"insurer_decision": DECISION_FORM})


@pytest.mark.usefixtures("insurer")
def test_an_insurer_answer_reaches_the_waiting_case_by_business_key(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("ops1"), "insurer_answer", business_key="CLM-2026-0007")
    with pytest.raises(ConflictError, match="insurer_decision"):
        runtime.correlate_message(
            db,
            identity.SYSTEM,
            "insurer_decision",
            {"approved": True, "reference": "R1"},
            business_key="CLM-2026-0007",
        )
    runtime.claim_task(db, actor("ops1"), open_task(db, case.id, "send"))
    runtime.complete_task(db, actor("ops1"), open_task(db, case.id, "send"), {})
    assert runtime.get_instance(db, case.id).waiting_messages == ("insurer_decision",)
    with pytest.raises(InvalidInputError) as error:
        runtime.correlate_message(
            db,
            identity.SYSTEM,
            "insurer_decision",
            {"approved": "maybe"},
            business_key="CLM-2026-0007",
        )
    assert set(error.value.field_errors) == {"approved", "reference"}
    with pytest.raises(NotFoundError):
        runtime.correlate_message(
            db,
            identity.SYSTEM,
            "insurer_decision",
            {"approved": True, "reference": "R1"},
            business_key="CLM-0000",
        )
    done = runtime.correlate_message(
        db,
        identity.SYSTEM,
        "insurer_decision",
        {"approved": True, "reference": "R-88"},
        business_key="CLM-2026-0007",
    )
    assert done.status == runtime.COMPLETED, (done.error_element, done.error)
    received = [
        e for e in runtime.get_instance(db, case.id).history if e["type"] == "message_received"
    ]
    assert received[0]["payload"]["data"] == {"approved": True, "reference": "R-88"}


# --- cancelling ---


@pytest.mark.usefixtures("review")
def test_the_starter_can_cancel_a_case_and_its_tasks_leave_the_inbox(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("ops1"), "review")
    with pytest.raises(PermissionDeniedError):
        runtime.cancel_instance(db, actor("ops2"), case.id, "not mine")
    cancelled = runtime.cancel_instance(db, actor("ops1"), case.id, "客户撤回")
    assert cancelled.status == runtime.CANCELLED
    assert cancelled.open_task_ids == ()
    assert inbox.list_tasks(db, actor("ops2"), inbox.CLAIMABLE) == []
    with pytest.raises(ConflictError):
        runtime.cancel_instance(db, actor("ops1"), case.id, "again")
