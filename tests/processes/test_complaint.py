"""P2 customer enquiry and complaint, driven through the engine as the demo department.

Every complaint is decided within its legal deadline (R6 第18条): 15 days, extended to 30 by the
deputy manager and by a further 30 with the general manager's approval and notice to the
complainant; appraisal and mediation pause the clock. The person complained about, the policy's
seller and their direct leads never work the case (回避, R6 第17条); the policy's archives are
held while the complaint is open and kept two more years after it ends (R3 第13条).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine import audit, runtime
from engine.errors import InvalidInputError, PermissionDeniedError
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.storage.models import ArchiveHold, ArchiveItem
from engine.timekeeping.clock import FrozenClock
from engine.timekeeping.workdays import CHINA_TZ
from tests.conftest import ActorOf, inbox_row, open_task, work

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

KEY = "complaint"
POLICY = "P2026000001"  # 李建国's long-term life policy, sold by sales1 (lead: ddm1)
PROOF = ["ab" * 32]
REGISTER: dict[str, Any] = {
    "request_type": "投诉",
    "channel": "电话",
    "received_at": "2026-04-01",
    "complainant_name": "李建国",
    "phone": "13800138000",
    "id_no": "110105198001011238",
    "relation": "本人",
    "policy_no": POLICY,
    "respondent_staff": "sales1",
    "handler": "cs2",
    "category": "销售误导",
    "request": "退还已交保费",
    "facts": "销售人员称随时退保不损失本金。",
    "complainant_count": 1,
    "privacy_notice": "已告知",
}
INVESTIGATION = {
    "no_conflict": "本人与该投诉无直接利害关系",
    "findings": "调阅双录，销售人员确有夸大收益的表述。",
    "liability": "我方",
    "proposed_resolution": "协助退保并补偿差额。",
    "complexity": "简单",
}
DECISION = {
    "decision_outcome": "部分支持",
    "verified_facts": "销售过程中存在夸大收益的表述。",
    "decision": "协助办理退保并补偿现金价值与已交保费差额的 50%。",
    "basis": "《保险销售行为管理办法》第二十一条。",
    "notice_method": "短信",
    "notified_at": "2026-04-10",
    "notice_proof": PROOF,
}
ROOT_CAUSE = {
    "root_cause_category": "销售行为",
    "root_cause_analysis": "销售话术未经合规审核。",
    "rectification_needed": False,
}
END_OF = "T23:59:59.999999+08:00"  # day deadlines end with their last day, China time


def cn(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment of 2026 in China time (as the UTC instant the clock holds)."""
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ).astimezone(UTC)


def extension(level: str, decision: str = "同意", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "extension_level": level,
        "extension_reason": "需保险公司提供核保资料。",
        "extension_decision": decision,
    }
    if decision == "同意":
        data |= {"complainant_informed_at": "2026-04-14", "extension_inform_method": "短信"}
        data |= {"extension_inform_proof": PROOF}
    else:
        data["extension_comment"] = "材料已齐备，无需延期。"
    return data | changes


def register(db: Database, actor: ActorOf, frozen_clock: FrozenClock, **changes: Any) -> int:
    """cs1 receives and registers a complaint on 1 April 2026."""
    frozen_clock.set(cn(4, 1, 9))
    case = runtime.start_instance(db, actor("cs1"), KEY)
    work(db, actor("cs1"), case.id, "register", REGISTER | changes)
    return case.id


def data(db: Database, case_id: int) -> dict[str, Any]:
    return dict(runtime.get_instance(db, case_id).data)


def events(db: Database, case_id: int, kind: str) -> list[Mapping[str, Any]]:
    return [e for e in runtime.get_instance(db, case_id).history if e["type"] == kind]


def timer_dates(db: Database, case_id: int) -> dict[str, str]:
    """Waiting timers by element, as China-time ISO strings."""
    return {
        bpmn_id: at.astimezone(CHINA_TZ).isoformat()
        for bpmn_id, at in runtime.get_instance(db, case_id).waiting_timers
    }


def task_row(db: Database, case_id: int, bpmn_id: str) -> inbox.TaskRow:
    return inbox_row(db, open_task(db, case_id, bpmn_id))


def task_due(db: Database, case_id: int, bpmn_id: str) -> str:
    due = task_row(db, case_id, bpmn_id).due_at
    assert due is not None
    return due.astimezone(CHINA_TZ).isoformat()


def holds(db: Database) -> list[tuple[str, bool]]:
    with db.read() as session:
        rows = session.scalars(select(ArchiveHold).order_by(ArchiveHold.id)).all()
        return [(row.related_ref, row.released_at is not None) for row in rows]


def close(db: Database, actor: ActorOf, frozen_clock: FrozenClock, case_id: int) -> None:
    """After the decision: the root-cause record, then the 30-day review window runs out."""
    work(db, actor("cmp1"), case_id, "root_cause", ROOT_CAUSE)
    frozen_clock.set(datetime.fromisoformat(data(db, case_id)["review_window_ends"]))
    frozen_clock.advance(timedelta(seconds=1))
    timers.run_once(db)


# --------------------------------------------------------------------------- scenario 3


def test_3a_simple_complaint_decided_by_sms_on_day_9_then_closed(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    with db.unit_of_work() as session:  # a dated recording of the policy, kept 2 years after
        session.add(
            ArchiveItem(
                archive_no="SL-2025-0001", category="业务档案", title="李建国 双录", permanent=False,
                related_ref=POLICY, retention_until="2027-01-01", registered_at=cn(4, 1),
            )
        )  # fmt: skip
    case_id = register(db, actor, frozen_clock)
    view = data(db, case_id)
    assert view["due_at"] == "2026-04-16" + END_OF
    assert timer_dates(db, case_id) == {
        "remind": "2026-04-13" + END_OF,
        "overdue": "2026-04-16" + END_OF,
    }
    assert task_due(db, case_id, "investigate") == "2026-04-16" + END_OF
    assert task_row(db, case_id, "investigate").assignee_id == actor("cs2").id
    assert holds(db) == [(POLICY, False)]  # the policy's archives are held while it is open
    assert view["archive_hold_result"]["held"] == ["SL-2025-0001", "YW-2025-0012"]

    frozen_clock.set(cn(4, 8))
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION)
    assert task_due(db, case_id, "decide") == "2026-04-16" + END_OF
    frozen_clock.set(cn(4, 10))
    work(db, actor("cs2"), case_id, "decide", DECISION)
    view = data(db, case_id)
    assert (view["stage"], view["notice_in_time"]) == ("decided", True)
    assert view["review_window_ends"] == "2026-05-10" + END_OF
    assert "remind" not in timer_dates(db, case_id)  # decided: no reminder any more
    assert holds(db) == [(POLICY, False)]  # still open: the review window and root cause

    close(db, actor, frozen_clock, case_id)
    final = runtime.get_instance(db, case_id)
    assert final.summary.status == runtime.COMPLETED
    assert final.data["case_outcome"] == "办结"
    assert holds(db) == [(POLICY, True)]
    with db.read() as session:
        kept = session.get(ArchiveItem, "SL-2025-0001")
        assert kept is not None
        assert kept.retention_until == "2028-05-11"
        filed = session.get(ArchiveItem, view["complaint_ref"])
        assert filed is not None
        assert filed.related_ref == POLICY
    # Audit (P2): received time and channel; computed deadlines; notice method and proof
    registered = next(
        e for e in final.history if e["task_id"] == "register" and e["type"] == "task_completed"
    )
    assert registered["payload"]["data"]["received_at"] == "2026-04-01"
    assert registered["payload"]["data"]["channel"] == "电话"
    created = next(
        e for e in final.history if e["task_id"] == "decide" and e["type"] == "task_created"
    )
    assert created["payload"]["due_at"] == "2026-04-16" + END_OF
    notice = next(
        e for e in final.history if e["task_id"] == "decide" and e["type"] == "task_completed"
    )
    assert (notice["actor"], notice["payload"]["data"]["notice_method"]) == ("cs2", "短信")
    assert notice["payload"]["data"]["notice_proof"] == PROOF
    decided = [e["payload"]["decision"] for e in final.history if e["type"] == "decision_made"]
    assert decided == ["complaint_deadline", "major_complaint", "complaint_deadline"]
    calls = [
        (e["payload"]["operator"], e["payload"]["params"])
        for e in events(db, case_id, "operator_called")
    ]
    assert (
        "archive_release",
        {"related_ref": POLICY, "case_ref": view["complaint_ref"], "keep_years": 2},
    ) in calls
    with db.read() as session:
        assert audit.verify(session).ok


def test_3b_complex_complaint_extended_by_the_deputy_manager_to_1_may(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock)
    frozen_clock.set(cn(4, 13, 9))
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION | {"complexity": "复杂"})
    approval = open_task(db, case_id, "approve_extension")
    assert task_row(db, case_id, "approve_extension").candidate_role == "DDM"
    # ddm1 leads sales1, the person complained about: 回避
    with pytest.raises(PermissionDeniedError, match="recuse"):
        runtime.claim_task(db, actor("ddm1"), approval)
    frozen_clock.set(cn(4, 14))
    work(db, actor("ddm2"), case_id, "approve_extension", extension("30日"))
    view = data(db, case_id)
    assert view["due_at"] == "2026-05-01" + END_OF
    assert view["extensions"][0]["complainant_informed_at"] == "2026-04-14"
    assert timer_dates(db, case_id) == {
        "remind": "2026-04-28" + END_OF,
        "overdue": "2026-05-01" + END_OF,
    }
    assert task_due(db, case_id, "decide") == "2026-05-01" + END_OF
    refusals = events(db, case_id, "permission_denied")
    assert [(e["actor"], e["task_id"]) for e in refusals] == [("ddm1", "approve_extension")]
    approved = events(db, case_id, "task_completed")[-1]
    assert (approved["actor"], approved["payload"]["data"]["extension_decision"]) == (
        "ddm2",
        "同意",
    )


def test_an_extension_of_the_wrong_level_goes_back_and_a_refusal_keeps_15_days(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock)
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION | {"complexity": "复杂"})
    frozen_clock.set(cn(4, 14))
    work(db, actor("ddm2"), case_id, "approve_extension", extension("再延30日"))
    assert data(db, case_id)["extension_problem"] == "本级审批的延期类型应为“30日”"
    work(db, actor("ddm2"), case_id, "approve_extension", extension("30日", "不同意"))
    assert data(db, case_id)["due_at"] == "2026-04-16" + END_OF
    assert task_due(db, case_id, "decide") == "2026-04-16" + END_OF


def test_3c_especially_complex_needs_gm_approval_and_notice_for_day_60(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock)
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION | {"complexity": "特别复杂"})
    frozen_clock.set(cn(4, 14))
    work(db, actor("ddm2"), case_id, "approve_extension", extension("30日"))
    assert data(db, case_id)["due_at"] == "2026-05-01" + END_OF
    further = open_task(db, case_id, "approve_further_extension")
    assert task_row(db, case_id, "approve_further_extension").candidate_role == "GM"
    with pytest.raises(PermissionDeniedError):  # a deputy manager cannot give the further 30 days
        runtime.claim_task(db, actor("ddm2"), further)
    no_notice = extension("再延30日")
    del no_notice["complainant_informed_at"], no_notice["extension_inform_method"]
    with pytest.raises(InvalidInputError) as refused:
        work(db, actor("gm"), case_id, "approve_further_extension", no_notice)
    assert {"complainant_informed_at", "extension_inform_method"} <= set(refused.value.field_errors)
    assert data(db, case_id)["due_at"] == "2026-05-01" + END_OF
    work(db, actor("gm"), case_id, "approve_further_extension", extension("再延30日"))
    view = data(db, case_id)
    assert view["due_at"] == "2026-05-31" + END_OF  # day 60 from 1 April
    assert [(e["level"], e["due_at"]) for e in view["extensions"]] == [
        ("DDM", "2026-05-01" + END_OF),
        ("GM", "2026-05-31" + END_OF),
    ]
    assert task_due(db, case_id, "decide") == "2026-05-31" + END_OF


def test_3c_a_10_day_mediation_pause_moves_every_deadline_by_exactly_10_days(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock)
    frozen_clock.set(cn(4, 5))
    pause = {"external_pause": True, "pause_kind": "调解", "pause_reason": "提交调解委员会调解。"}
    work(
        db,
        actor("cs2"),
        case_id,
        "investigate",
        INVESTIGATION | pause | {"paused_at": "2026-04-05"},
    )
    paused = events(db, case_id, "clock_paused")
    assert paused[0]["payload"]["reason"] == "调解：提交调解委员会调解。"
    assert all(at.startswith("9999-") for at in timer_dates(db, case_id).values())  # held
    frozen_clock.set(cn(4, 14, 1))  # the reminder would have fired on the 13th: it is held
    assert timers.run_once(db) == 0
    frozen_clock.set(cn(4, 15))
    work(db, actor("cs2"), case_id, "resume_handling", {"resumed_at": "2026-04-15"})
    view = data(db, case_id)
    assert datetime.fromisoformat(view["due_at"]) - datetime.fromisoformat(
        "2026-04-16" + END_OF
    ) == timedelta(days=10)
    assert view["due_at"] == "2026-04-26" + END_OF
    assert view["clock_resume_result"]["paused_seconds"] == 10 * 86400
    resumed = events(db, case_id, "clock_resumed")[0]["payload"]
    assert resumed["deadlines"]["due_at"] == ["2026-04-16" + END_OF, "2026-04-26" + END_OF]
    assert timer_dates(db, case_id) == {
        "remind": "2026-04-23" + END_OF,
        "overdue": "2026-04-26" + END_OF,
    }
    # the pause also counts for a later extension: 30 days + the 10 paused
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION | {"complexity": "复杂"})
    work(db, actor("ddm2"), case_id, "approve_extension", extension("30日"))
    assert data(db, case_id)["due_at"] == "2026-05-11" + END_OF


# --------------------------------------------------------------------------- 回避 (d)


def test_3d_the_register_form_offers_only_customer_service_as_handler(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    frozen_clock.set(cn(4, 1, 9))
    case = runtime.start_instance(db, actor("cs1"), KEY)
    for outsider in ("sales1", "ddm1"):  # the respondent salesperson, and their direct lead
        with pytest.raises(InvalidInputError) as refused:
            work(db, actor("cs1"), case.id, "register", REGISTER | {"handler": outsider})
        assert refused.value.field_errors["handler"] == ["所选人员不是在职的 CS 角色成员"]
    work(db, actor("cs1"), case.id, "register", REGISTER | {"handler": None})
    investigation = open_task(db, case.id, "investigate")
    task = task_row(db, case.id, "investigate")
    assert (task.assignee_id, task.candidate_role) == (None, "CS")
    assert data(db, case.id)["recusal_check"]["excluded_users"] == ["sales1"]
    with pytest.raises(PermissionDeniedError):
        runtime.claim_task(db, actor("sales1"), investigation)
    with pytest.raises(PermissionDeniedError):
        runtime.delegate_task(db, actor("cs1"), investigation, "sales1")
    refusals = events(db, case.id, "permission_denied")
    assert [(e["actor"], e["task_id"]) for e in refusals] == [
        ("sales1", "investigate"),
        ("cs1", "investigate"),
    ]
    work(db, actor("cs1"), case.id, "investigate", INVESTIGATION)
    open_task(db, case.id, "decide")


def test_the_respondents_direct_lead_may_not_handle_the_case_either(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock, handler=None)
    investigation = open_task(db, case_id, "investigate")
    with pytest.raises(PermissionDeniedError):
        runtime.claim_task(db, actor("ddm1"), investigation)
    work(db, actor("cs1"), case_id, "investigate", INVESTIGATION)
    refusal = events(db, case_id, "permission_denied")[0]
    assert (refusal["actor"], refusal["task_id"]) == ("ddm1", "investigate")
    created = next(e for e in events(db, case_id, "task_created") if e["task_id"] == "investigate")
    assert actor("ddm1").id in created["payload"]["excluded"]  # recused all the same


def test_a_complaint_about_a_customer_service_colleague_goes_to_another(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(
        db, actor, frozen_clock, respondent_staff="cs2", handler=None, category="服务态度",
        policy_no="P2026000002",
    )  # fmt: skip
    assert data(db, case_id)["recusal_users"] == ["cs2", "sales2"]  # respondent and the seller
    investigation = open_task(db, case_id, "investigate")
    with pytest.raises(PermissionDeniedError, match="回避"):
        runtime.claim_task(db, actor("cs2"), investigation)
    work(db, actor("cs1"), case_id, "investigate", INVESTIGATION)
    with pytest.raises(PermissionDeniedError, match="回避"):
        runtime.claim_task(db, actor("cs2"), open_task(db, case_id, "decide"))
    refused = [(e["actor"], e["task_id"]) for e in events(db, case_id, "permission_denied")]
    assert refused == [("cs2", "investigate"), ("cs2", "decide")]


# --------------------------------------------------------------------------- enquiries


def test_an_enquiry_is_answered_within_one_working_day(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock, request_type="咨询", id_no=None, policy_no=None)
    assert task_due(db, case_id, "answer_enquiry") == "2026-04-02" + END_OF
    answer = {
        "enquiry_answer": "已说明退保方式。",
        "answer_method": "电话",
        "answered_at": "2026-04-01",
    }
    summary = work(db, actor("cs1"), case_id, "answer_enquiry", answer | {"enquiry_resolved": True})
    assert summary.status == runtime.COMPLETED
    assert holds(db) == []  # an enquiry holds no archives


def test_an_unresolved_enquiry_becomes_a_complaint_in_the_same_case(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock, request_type="咨询", id_no=None)
    answer = {
        "enquiry_answer": "已解释条款。",
        "answer_method": "电话",
        "answered_at": "2026-04-01",
    }
    work(db, actor("cs1"), case_id, "answer_enquiry", answer | {"enquiry_resolved": False})
    assert data(db, case_id)["request_type"] == "投诉"
    with pytest.raises(InvalidInputError) as refused:  # a complaint needs the identity check
        work(db, actor("cs1"), case_id, "register_complaint", REGISTER | {"id_no": None})
    assert "id_no" in refused.value.field_errors
    work(db, actor("cs1"), case_id, "register_complaint", REGISTER)
    view = data(db, case_id)
    assert (view["converted_from_enquiry"], view["due_at"]) == (True, "2026-04-16" + END_OF)
    open_task(db, case_id, "investigate")
    assert holds(db) == [(POLICY, False)]


# --------------------------------------------------------------------------- major, timers


def test_a_major_complaint_starts_the_dm_emergency_plan_alongside(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock, channel="来访", complainant_count=20)
    view = data(db, case_id)
    assert (view["major_complaint"], view["notify_role"]) == (True, "DM")
    assert task_row(db, case_id, "emergency_plan").candidate_role == "DM"
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION)
    work(db, actor("cs2"), case_id, "decide", DECISION | {"notified_at": "2026-04-01"})
    # closing (root cause, review window) waits for the emergency plan
    assert [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)] == ["emergency_plan"]
    plan_data = {"emergency_lead": "部门经理", "emergency_started_at": "2026-04-01"}
    work(
        db, actor("dm"), case_id, "emergency_plan", plan_data | {"emergency_measures": "专人接待。"}
    )
    close(db, actor, frozen_clock, case_id)
    assert runtime.get_instance(db, case_id).summary.status == runtime.COMPLETED


def test_reminder_three_days_before_and_escalation_to_the_deputy_at_the_deadline(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock)
    frozen_clock.set(cn(4, 13, 23, 59))
    assert timers.run_once(db) == 0
    frozen_clock.set(cn(4, 14, 0, 1))
    assert timers.run_once(db) == 1
    assert task_row(db, case_id, "remind_handler").assignee_id == actor("cs2").id
    frozen_clock.set(cn(4, 17, 0, 1))
    timers.run_once(db)  # also marks the overdue tasks (task_overdue)
    overdue_tasks = {e["task_id"] for e in events(db, case_id, "task_overdue")}
    assert {"investigate", "remind_handler"} <= overdue_tasks
    escalation = open_task(db, case_id, "escalate_overdue")
    assert task_row(db, case_id, "escalate_overdue").candidate_role == "DDM"
    with pytest.raises(PermissionDeniedError, match="回避"):
        runtime.claim_task(db, actor("ddm1"), escalation)
    work(db, actor("ddm2"), case_id, "escalate_overdue")
    open_task(db, case_id, "investigate")  # the handler still has to finish
    fired = [(e["task_id"], e["payload"]["due"]) for e in events(db, case_id, "timer_fired")]
    assert fired == [("remind", "2026-04-13" + END_OF), ("overdue", "2026-04-16" + END_OF)]
    # decided late: recorded, and no reminder or escalation fires twice
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION)
    assert set(timer_dates(db, case_id).values()) == {"9999-12-31T23:59:59+08:00"}
    work(db, actor("cs2"), case_id, "decide", DECISION | {"notified_at": "2026-04-17"})
    assert data(db, case_id)["notice_in_time"] is False


# --------------------------------------------------------------------------- messages


def test_withdrawal_ends_the_case_as_withdrawn_and_releases_the_hold(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock, channel="来访", complainant_count=25)
    open_task(db, case_id, "emergency_plan")
    frozen_clock.set(cn(4, 6))
    summary = runtime.correlate_message(
        db, actor("cs1"), "complaint_withdrawal",
        {"withdrawn_at": "2026-04-06", "withdrawal_channel": "电话"}, instance_id=case_id,
    )  # fmt: skip
    assert summary.status == runtime.COMPLETED
    assert inbox.open_tasks_of(db, case_id) == []
    view = data(db, case_id)
    assert (view["case_outcome"], view["clock_stopped_on"]) == ("撤回", "2026-04-06")
    assert holds(db) == [(POLICY, True)]
    received = events(db, case_id, "message_received")[0]["payload"]
    assert received["message"] == "complaint_withdrawal"


def test_a_repeat_is_merged_and_new_facts_restart_the_deadline(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock)
    frozen_clock.set(cn(4, 5))
    repeat = {"repeat_received_at": "2026-04-05", "has_new_facts": False}
    runtime.correlate_message(db, actor("cs1"), "complaint_repeat", repeat, instance_id=case_id)
    view = data(db, case_id)
    assert (len(view["repeats"]), view["due_at"]) == (1, "2026-04-16" + END_OF)
    open_task(db, case_id, "investigate")
    frozen_clock.set(cn(4, 10))
    new_facts = {"repeat_received_at": "2026-04-10", "has_new_facts": True, "new_facts": "新录音"}
    runtime.correlate_message(db, actor("cs1"), "complaint_repeat", new_facts, instance_id=case_id)
    view = data(db, case_id)
    # a life product: the stricter 10 working days from 10 April end on the 24th (R4 第29条)
    assert (len(view["repeats"]), view["due_at"]) == (2, "2026-04-24" + END_OF)
    assert timer_dates(db, case_id)["overdue"] == "2026-04-24" + END_OF
    assert task_due(db, case_id, "investigate") == "2026-04-24" + END_OF


def test_review_within_30_days_by_someone_other_than_the_handler(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock)
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION)
    frozen_clock.set(cn(4, 10))
    work(db, actor("cs2"), case_id, "decide", DECISION)
    frozen_clock.set(cn(4, 20))
    request = {"review_requested_at": "2026-04-20", "review_request": "对补偿比例有异议。"}
    runtime.correlate_message(
        db, actor("cs1"), "complaint_review_request", request, instance_id=case_id
    )
    review = open_task(db, case_id, "review")
    assert task_due(db, case_id, "review") == "2026-05-20" + END_OF
    with pytest.raises(PermissionDeniedError):  # the original handler does not review
        runtime.claim_task(db, actor("cs2"), review)
    refusal = events(db, case_id, "permission_denied")[0]
    assert (refusal["actor"], refusal["task_id"]) == ("cs2", "review")
    result = {
        "review_result": "维持原处理决定",
        "review_findings": "认定事实清楚。",
        "review_notice_method": "邮寄",
        "review_notified_at": "2026-04-20",
        "review_notice_proof": PROOF,
    }
    work(db, actor("cs1"), case_id, "review", result)
    work(db, actor("cmp1"), case_id, "root_cause", ROOT_CAUSE)
    final = runtime.get_instance(db, case_id)
    assert final.summary.status == runtime.COMPLETED
    reviewed = next(
        e for e in final.history if e["task_id"] == "review" and e["type"] == "task_completed"
    )
    assert (reviewed["actor"], reviewed["payload"]["data"]["review_result"]) == (
        "cs1",
        "维持原处理决定",
    )


def test_a_decision_must_name_all_four_remedies(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, frozen_clock)
    work(db, actor("cs2"), case_id, "investigate", INVESTIGATION)
    frozen_clock.set(cn(4, 10))
    work(db, actor("cs2"), case_id, "decide", DECISION | {"remedies_text": "可申请核查或调解。"})
    assert (
        data(db, case_id)["decision_problem"] == "处理决定须写明救济途径：仲裁、诉讼（R6 第19条）"
    )
    work(db, actor("cs2"), case_id, "decide", DECISION)
    open_task(db, case_id, "root_cause")
