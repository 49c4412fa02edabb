"""Outside answers (message events) delivered through the API and the CLI, and failed cases helped.

Every message every diagram in ``processes/`` declares is reached by walking its process to
the wait (with the process tests' own helpers) and delivered by its liaising role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from engine import bpmn, runtime
from engine.config import PROJECT_ROOT
from engine.errors import ConflictError, InvalidInputError, PermissionDeniedError
from engine.people import api_tokens
from engine.runtime.services import failures
from engine.storage.db import Database
from engine.storage.models import AuditEvent, ProcessInstance
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, Opsflow, history_types, work
from tests.engine.test_runtime import DIVIDE, deploy
from tests.processes import test_claims_assistance as claims
from tests.processes import test_complaint as complaint
from tests.processes import test_sales as sales

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")


@dataclass(frozen=True)
class Wait:
    """A case waiting for a message, who liaises, and a valid answer."""

    case_id: int
    message: str
    role: str
    liaison: str
    payload: dict[str, Any]


def _insurer_feedback(db: Database, actor: ActorOf, clock: FrozenClock) -> Wait:
    case_id = claims.submitted_case(db, actor)
    answer = {"feedback_status": "受理", "feedback_at": "2026-03-04T10:00:00+08:00"}
    return Wait(case_id, claims.MESSAGE, "OPS", "ops1", answer)


def _withdrawal(db: Database, actor: ActorOf, clock: FrozenClock) -> Wait:
    case_id = complaint.register(db, actor, clock)
    clock.set(complaint.cn(4, 6))
    answer = {"withdrawn_at": "2026-04-06", "withdrawal_channel": "电话"}
    return Wait(case_id, "complaint_withdrawal", "CS", "cs1", answer)


def _repeat(db: Database, actor: ActorOf, clock: FrozenClock) -> Wait:
    case_id = complaint.register(db, actor, clock)
    clock.set(complaint.cn(4, 5))
    answer = {"repeat_received_at": "2026-04-05", "has_new_facts": False}
    return Wait(case_id, "complaint_repeat", "CS", "cs1", answer)


def _review_request(db: Database, actor: ActorOf, clock: FrozenClock) -> Wait:
    case_id = complaint.register(db, actor, clock)
    work(db, actor("cs2"), case_id, "investigate", complaint.INVESTIGATION)
    clock.set(complaint.cn(4, 10))
    work(db, actor("cs2"), case_id, "decide", complaint.DECISION)
    clock.set(complaint.cn(4, 20))
    answer = {"review_requested_at": "2026-04-20", "review_request": "对补偿比例有异议。"}
    return Wait(case_id, "complaint_review_request", "CS", "cs1", answer)


def _underwriting(db: Database, actor: ActorOf, clock: FrozenClock) -> Wait:
    case_id = sales.start(db, actor)
    sales.drive(db, actor, case_id)
    return Wait(case_id, "sales_underwriting_result", "OPS", "ops1", dict(sales.ACCEPTED))


REACH: dict[str, Callable[[Database, ActorOf, FrozenClock], Wait]] = {
    "claim_insurer_feedback": _insurer_feedback,
    "complaint_withdrawal": _withdrawal,
    "complaint_repeat": _repeat,
    "complaint_review_request": _review_request,
    "sales_underwriting_result": _underwriting,
}


def test_the_walks_cover_every_message_of_every_diagram() -> None:
    declared = {
        name
        for path in (PROJECT_ROOT / "processes").glob("*.bpmn")
        for name in bpmn.message_names(path.read_text(encoding="utf-8"), path.name)
    }
    assert declared == set(REACH)


def reach(db: Database, actor: ActorOf, clock: FrozenClock, message: str) -> Wait:
    wait = REACH[message](db, actor, clock)
    awaited = {a.message: a for a in runtime.get_instance(db, wait.case_id).awaiting}
    assert awaited[message].role == wait.role
    assert awaited[message].form_key == message  # forms/<message>.json
    return wait


def _client(
    app: Flask, db: Database, actor: ActorOf, username: str
) -> tuple[FlaskClient, dict[str, str]]:
    token = api_tokens.create(db, actor(username), "integration")
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def delivered(db: Database, case_id: int, message: str) -> bool:
    received = [
        e for e in runtime.get_instance(db, case_id).history if e["type"] == "message_received"
    ]
    return any(e["payload"]["message"] == message for e in received)


@pytest.mark.parametrize("message", sorted(REACH))
def test_every_message_is_delivered_through_the_api_by_case_id(
    app: Flask, db: Database, actor: ActorOf, frozen_clock: FrozenClock, message: str
) -> None:
    wait = reach(db, actor, frozen_clock, message)
    before = runtime.get_instance(db, wait.case_id).summary.version
    client, headers = _client(app, db, actor, wait.liaison)
    answer = client.post(
        f"/api/v1/cases/{wait.case_id}/messages/{message}",
        json={"data": wait.payload},
        headers=headers,
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["id"] == wait.case_id
    assert delivered(db, wait.case_id, message)
    assert answer.get_json()["version"] > before


@pytest.mark.parametrize("message", sorted(REACH))
def test_every_message_is_delivered_through_the_cli(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock, opsflow: Opsflow, message: str
) -> None:
    wait = reach(db, actor, frozen_clock, message)
    done = opsflow(
        "--database", db.url, "message", message, "--instance", wait.case_id,
        "--as", wait.liaison, "--data", json.dumps(wait.payload, ensure_ascii=False),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"message {message} delivered; instance {wait.case_id}" in done.stdout
    assert delivered(db, wait.case_id, message)


def test_an_integration_delivers_by_business_key_as_an_admin(
    app: Flask, db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = runtime.start_instance(
        db, actor("ops1"), "claims_assistance", business_key="CLM-77"
    ).id
    runtime.cancel_instance(db, actor("ops1"), case_id, "重复登记")  # a cancelled one is not found
    wait = reach(db, actor, frozen_clock, "claim_insurer_feedback")
    with db.unit_of_work() as session:
        session.execute(
            update(ProcessInstance)
            .where(ProcessInstance.id == wait.case_id)
            .values(business_key="CLM-77")
        )
    client, headers = _client(app, db, actor, "admin")
    body = {"business_key": "CLM-77", "data": wait.payload}
    answer = client.post(f"/api/v1/messages/{wait.message}", json=body, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["id"] == wait.case_id
    missing = client.post(
        f"/api/v1/messages/{wait.message}", json={**body, "business_key": "NONE"}, headers=headers
    )
    assert missing.status_code == 404


def test_a_message_nobody_waits_for_changes_nothing(
    app: Flask, db: Database, actor: ActorOf, frozen_clock: FrozenClock, opsflow: Opsflow
) -> None:
    wait = reach(db, actor, frozen_clock, "claim_insurer_feedback")
    before = runtime.get_instance(db, wait.case_id)
    client, headers = _client(app, db, actor, "ops1")
    answer = client.post(
        f"/api/v1/cases/{wait.case_id}/messages/complaint_withdrawal",
        json={"data": {"withdrawn_at": "2026-03-04"}},
        headers=headers,
    )
    assert answer.status_code == 409
    assert answer.get_json()["message"] == "流程实例未在等待消息 complaint_withdrawal"
    refused = opsflow(
        "--database", db.url, "message", "no_such_message", "--instance", wait.case_id,
        "--as", "ops1", "--data", "{}",
    )  # fmt: skip
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1
    assert "/ the case is not waiting for" in refused.stderr
    after = runtime.get_instance(db, wait.case_id)
    assert (after.summary.version, after.history) == (before.summary.version, before.history)


def test_only_the_liaising_role_enters_an_answer_and_a_refusal_is_audited(
    app: Flask, db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    wait = reach(db, actor, frozen_clock, "claim_insurer_feedback")
    with pytest.raises(PermissionDeniedError, match="OPS"):
        runtime.correlate_message(
            db, actor("sales1"), wait.message, wait.payload, instance_id=wait.case_id
        )
    refusal = runtime.get_instance(db, wait.case_id).history[-1]
    assert (refusal["type"], refusal["actor"]) == ("permission_denied", "sales1")
    client, headers = _client(app, db, actor, "cs1")
    answer = client.post(
        f"/api/v1/cases/{wait.case_id}/messages/{wait.message}",
        json={"data": wait.payload},
        headers=headers,
    )
    assert answer.status_code == 403
    assert not delivered(db, wait.case_id, wait.message)


def test_a_wrong_answer_lists_its_field_errors_and_changes_nothing(
    app: Flask, db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    wait = reach(db, actor, frozen_clock, "claim_insurer_feedback")
    version = runtime.get_instance(db, wait.case_id).summary.version
    with pytest.raises(InvalidInputError) as error:
        runtime.correlate_message(
            db, actor("ops1"), wait.message, {"feedback_status": "补充材料"},
            instance_id=wait.case_id,
        )  # fmt: skip
    assert {"feedback_at", "missing_documents"} <= set(error.value.field_errors)
    assert runtime.get_instance(db, wait.case_id).summary.version == version


# --- failed cases ---


def failed_case(db: Database, actor: ActorOf) -> int:
    deploy(db, "divide.bpmn", DIVIDE)
    case = runtime.start_instance(db, actor("ops1"), "divide", {"total": 100, "parts": 0})
    assert case.status == runtime.ERROR
    return case.id


def test_admin_and_ops_see_the_failed_cases_with_element_message_and_time(
    app: Flask, db: Database, actor: ActorOf, frozen_clock: FrozenClock, opsflow: Opsflow
) -> None:
    frozen_clock.set(datetime(2026, 5, 6, 1, 0, tzinfo=UTC))
    case_id = failed_case(db, actor)
    [row] = failures.failed_cases(db, actor("ops2"))
    assert (row.id, row.process_key, row.element) == (case_id, "divide", "compute")
    assert "ZeroDivisionError" in (row.message or "")
    assert row.since == datetime(2026, 5, 6, 1, 0, tzinfo=UTC)
    with pytest.raises(PermissionDeniedError):
        failures.failed_cases(db, actor("sales1"))
    with db.read() as session:
        refused = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.type == "permission_denied")
        ).all()
    assert refused == ["sales1"]
    client, headers = _client(app, db, actor, "admin")
    listed = client.get("/api/v1/failed-cases", headers=headers)
    assert [c["id"] for c in listed.get_json()] == [case_id]
    client, headers = _client(app, db, actor, "cs1")
    assert client.get("/api/v1/failed-cases", headers=headers).status_code == 403
    shown = opsflow("--database", db.url, "failed", "--as", "ops1")
    assert re.search(rf"instance {case_id}: divide .*\[compute\].*ZeroDivisionError", shown.stdout)


def test_a_failed_case_is_retried_by_operations_once_the_cause_is_fixed_and_audited(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    case_id = failed_case(db, actor)
    client, headers = _client(app, db, actor, "ops2")
    retried = client.post(
        f"/api/v1/cases/{case_id}/retry", json={"data": {"parts": 4}}, headers=headers
    )
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["status"] == runtime.RUNNING
    assert runtime.get_instance(db, case_id).data["share"] == 25
    event = [
        e for e in runtime.get_instance(db, case_id).history if e["type"] == "instance_retried"
    ]
    assert (event[0]["actor"], event[0]["payload"]["data"]) == ("ops2", {"parts": 4})
    assert failures.failed_cases(db, actor("ops2")) == []


def test_retry_through_the_cli_and_a_wrong_person_refused(
    db: Database, actor: ActorOf, opsflow: Opsflow
) -> None:
    case_id = failed_case(db, actor)
    refused = opsflow("--database", db.url, "retry", case_id, "--as", "sales1")
    assert refused.exit_code == 1
    assert "may retry" in refused.stderr
    again = opsflow("--database", db.url, "retry", case_id, "--as", "po1")
    assert again.exit_code == 0, again.output  # the cause is not fixed: the case fails again
    assert runtime.get_instance(db, case_id).summary.status == runtime.ERROR
    assert history_types(db, case_id).count("instance_failed") == 2


def test_a_failed_case_is_cancelled_with_a_reason_by_operations_and_audited(
    app: Flask, db: Database, actor: ActorOf, opsflow: Opsflow
) -> None:
    case_id = failed_case(db, actor)
    with pytest.raises(InvalidInputError) as error:
        runtime.cancel_instance(db, actor("ops2"), case_id, "   ")
    assert set(error.value.field_errors) == {"reason"}
    client, headers = _client(app, db, actor, "ops2")
    blank = client.post(f"/api/v1/cases/{case_id}/cancel", json={"reason": ""}, headers=headers)
    assert blank.status_code == 422
    assert runtime.get_instance(db, case_id).summary.status == runtime.ERROR
    done = client.post(
        f"/api/v1/cases/{case_id}/cancel", json={"reason": "重复的测试案件"}, headers=headers
    )
    assert done.status_code == 200
    assert done.get_json()["status"] == runtime.CANCELLED
    event = runtime.get_instance(db, case_id).history[-1]
    assert (event["type"], event["actor"], event["payload"]) == (
        "instance_cancelled", "ops2", {"reason": "重复的测试案件"},
    )  # fmt: skip
    again = opsflow("--database", db.url, "cancel", case_id, "--reason", "x", "--as", "ops1")
    assert again.exit_code == 1
    assert "the case is cancelled" in again.stderr


def test_operations_may_not_cancel_a_running_case_they_did_not_start(
    db: Database, actor: ActorOf
) -> None:
    case_id = runtime.start_instance(db, actor("ops1"), "claims_assistance").id
    with pytest.raises(PermissionDeniedError):
        runtime.cancel_instance(db, actor("ops2"), case_id, "不是我的")
    with pytest.raises(ConflictError):
        runtime.retry_instance(db, actor("ops2"), case_id)
