"""Who may act on a task and read a case: one rule for assignment, claim, completion, delegation,
drafts, attachments, comments and every view (the defects the copies of that rule had)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from engine import runtime
from engine.errors import PermissionDeniedError
from engine.people.identity import Actor
from engine.runtime.services import attachments, comments, drafts, inbox, instance_view, task_view
from engine.storage.db import Database
from engine.storage.models import HumanTask, User
from engine.timekeeping.clock import FrozenClock
from tests.conftest import open_task, work
from tests.expense_claims import claim_data
from tests.processes.test_complaint import register

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

ActorOf = Callable[[str], Actor]
PDF = b"%PDF-1.4 a scanned invoice"


def deactivate(db: Database, username: str) -> None:
    with db.unit_of_work() as session:
        session.execute(update(User).where(User.username == username).values(active=False))


def user_id(actor: ActorOf, username: str) -> int:
    return actor(username).id


# --- assignment resolves to an active person ---


def test_an_approval_that_moves_up_past_an_inactive_manager_goes_to_the_next_active_one(
    db: Database, actor: ActorOf
) -> None:
    deactivate(db, "dm")  # ddm1's manager
    case = runtime.start_instance(db, actor("ddm1"), "expense_reimbursement")
    work(db, actor("ddm1"), case.id, "submit_claim", claim_data("12000.00", "差旅"))
    approval = inbox.get_task(db, open_task(db, case.id, "approve_ddm"))
    assert approval is not None
    # the deputy manager may not approve their own level: it moves up past the inactive dm to gm
    assert approval.assignee_id == user_id(actor, "gm")


# --- segregation of duties cannot be bypassed by delegating ---


def test_a_personal_task_without_a_role_cannot_be_delegated_to_anyone(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales2"), "expense_reimbursement")
    claim_form = open_task(db, case.id, "submit_claim")
    with pytest.raises(PermissionDeniedError, match="本人"):
        runtime.delegate_task(db, actor("sales2"), claim_form, "ddm2")
    assert inbox.get_task(db, claim_form).assignee_id == user_id(actor, "sales2")  # type: ignore[union-attr]


def test_whoever_submitted_the_request_may_never_approve_it(db: Database, actor: ActorOf) -> None:
    # sales2's claim form was handed to ddm2 (as delegation allowed before), who filled it in
    case = runtime.start_instance(db, actor("sales2"), "expense_reimbursement")
    claim_form = open_task(db, case.id, "submit_claim")
    with db.unit_of_work() as session:
        session.execute(
            update(HumanTask).where(HumanTask.id == claim_form).values(assignee_id=actor("ddm2").id)
        )
    runtime.complete_task(db, actor("ddm2"), claim_form, claim_data("800.00"))
    approval = open_task(db, case.id, "approve_ddm")
    # ddm2 submitted the request: no door lets them approve it
    for attempt in (
        lambda: runtime.claim_task(db, actor("ddm2"), approval),
        lambda: runtime.complete_task(db, actor("ddm2"), approval, {"decision": "同意"}),
        lambda: runtime.delegate_task(db, actor("ddm1"), approval, "ddm2"),
    ):
        with pytest.raises(PermissionDeniedError, match="申请人"):
            attempt()
    work(db, actor("ddm1"), case.id, "approve_ddm", {"decision": "同意"})


def test_a_role_task_cannot_be_delegated_to_its_submitter(db: Database, actor: ActorOf) -> None:
    case = runtime.start_instance(db, actor("sales2"), "expense_reimbursement")
    work(db, actor("sales2"), case.id, "submit_claim", claim_data("800.00"))
    approval = open_task(db, case.id, "approve_ddm")
    runtime.claim_task(db, actor("ddm1"), approval)
    with pytest.raises(PermissionDeniedError):
        runtime.delegate_task(
            db, actor("ddm1"), approval, "sales2"
        )  # lacks the role, and submitted
    runtime.delegate_task(db, actor("ddm1"), approval, "ddm2")
    assert inbox.get_task(db, approval).assignee_id == user_id(actor, "ddm2")  # type: ignore[union-attr]


# --- recusal closes every door, whatever the role ---


def test_a_recused_manager_sees_nothing_of_the_case_whatever_their_role(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    # a complaint about dm: dm and their manager gm must recuse themselves
    case_id = register(
        db, actor, frozen_clock, respondent_staff="dm", handler=None, category="服务态度"
    )
    for username in ("dm", "gm"):
        who = actor(username)
        with pytest.raises(PermissionDeniedError, match="回避"):
            instance_view.open_case(db, who, case_id)
        with pytest.raises(PermissionDeniedError, match="回避"):
            instance_view.diagram_of(db, who, case_id)
        with pytest.raises(PermissionDeniedError, match="回避"):
            comments.add(db, who, case_id, "我来看看")
    assert instance_view.open_case(db, actor("cmp1"), case_id).summary.id == case_id


def test_a_recused_person_cannot_open_draft_or_attach_to_the_task(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock, handler=None, respondent_staff="cs2")
    investigation = open_task(db, case_id, "investigate")
    who = actor("cs2")
    for attempt in (
        lambda: task_view.open_task(db, who, investigation),
        lambda: drafts.save(db, who, investigation, {"findings": "x"}),
        lambda: attachments.store_file(db, who, investigation, "a.pdf", PDF),
    ):
        with pytest.raises(PermissionDeniedError, match="回避"):
            attempt()
