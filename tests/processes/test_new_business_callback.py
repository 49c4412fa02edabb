"""P5(a) new-business callback, driven through the engine as the demo department.

Customer service calls the policyholder from day 2 after the receipt was signed, on up to 3
different days, and finishes before the cooling-off period ends minus 2 days (R4 第15条; [I]).
The policy's seller never makes the call nor resolves what it finds. Any "no" (or an issue the
caller flags) opens a rectification due in 15 working days (R4 第18条), followed up by a deputy
manager other than the seller's lead when it runs late; long-term health customers are told they
may cancel (R5 第44条). Unreachable or out of time: SMS/letter and "回访失败".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import audit, runtime
from engine.errors import InvalidInputError, PermissionDeniedError
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.timekeeping import workdays
from engine.timekeeping.clock import FrozenClock
from engine.timekeeping.workdays import CHINA_TZ
from tests.conftest import ActorOf, open_task, work

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

KEY = "new_business_callback"
END_OF = "T23:59:59.999999+08:00"  # day deadlines end with their last day, China time
# Acceptance scenario 1: 王秀英, 62, a 20-year critical-illness product, recorded on site, paid yearly.
SCENARIO_1: dict[str, Any] = {
    "policy_no": "P2026000101",
    "customer_name": "王秀英",
    "mobile": "13800138000",
    "seller": "sales2",
    "receipt_signed_date": "2026-03-02",
    "hesitation_days": 15,
    "callback_due": "2026-03-15",  # receipt + 15 days of cooling-off - 2
    "recorded": True,
    "installments": True,
    "category": "长期健康",
    "term_years": 20,
}
PLAIN_POLICY = SCENARIO_1 | {"recorded": False, "installments": False, "category": "普通寿险"}
ANSWERS: dict[str, Any] = {
    "call_result": "接通",
    "call_recording_ref": "HF-20260304-001",
    "identity_confirmed": True,
    "bought_and_signed_personally": True,
    "read_product_docs": True,
    "knows_coverage_exclusions_term": True,
    "knows_surrender_loss": True,
    "knows_cooling_off": True,
    "knows_pay_period_frequency": True,
    "recording_accepted_and_true": True,
    "satisfaction": 5,
}
NO_ANSWER = {"call_result": "无人接听"}
RECTIFICATION = {
    "issue_verified": "属实",
    "rectification_measures": "重新逐条说明退保损失与现金价值表，客户表示理解。",
    "customer_contacted_on": "2026-03-06",
    "cancel_right_informed": True,
    "customer_decision": "继续履行合同",
    "seller_measures": "销售人员参加退保损失说明专项培训。",
}
NOTICE = {"notice_method": "短信", "notice_sent_on": "2026-03-06", "notice_proof": ["cd" * 32]}


def cn(month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    """A moment of 2026 in China time (as the UTC instant the clock holds)."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=CHINA_TZ).astimezone(UTC)


def start(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock, data: dict[str, Any] | None = None
) -> int:
    """The sales process hands the delivered policy over on the day the receipt was signed."""
    frozen_clock.set(cn(3, 2))
    return runtime.start_instance(db, actor("sales2"), KEY, data or SCENARIO_1).id


def at_call_time(frozen_clock: FrozenClock, db: Database, day: int) -> None:
    """Move to 09:00:01 on ``day`` of March and let the worker fire what is due."""
    frozen_clock.set(cn(3, day, 9, 0, 1))
    timers.run_once(db)


def data(db: Database, case_id: int) -> dict[str, Any]:
    return dict(runtime.get_instance(db, case_id).data)


def events(
    db: Database, case_id: int, kind: str, task: str | None = None
) -> list[Mapping[str, Any]]:
    return [
        e
        for e in runtime.get_instance(db, case_id).history
        if e["type"] == kind and (task is None or e["task_id"] == task)
    ]


def task_due(db: Database, case_id: int, bpmn_id: str) -> str:
    task = inbox.get_task(db, open_task(db, case_id, bpmn_id))
    assert task is not None
    assert task.due_at is not None
    return task.due_at.astimezone(CHINA_TZ).isoformat()


def open_ids(db: Database, case_id: int) -> list[str]:
    return [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)]


def status(db: Database, case_id: int) -> str:
    return runtime.get_instance(db, case_id).summary.status


# --------------------------------------------------------------------------- scenario 1


def test_scenario_1_surrender_loss_not_understood_opens_a_15_working_day_rectification(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock)
    view = runtime.get_instance(db, case_id)
    assert open_ids(db, case_id) == []  # nothing to do before day 2 after the receipt
    assert [(b, at.isoformat()) for b, at in view.waiting_timers] == [
        ("wait_first", "2026-03-04T09:00:00+08:00")
    ]
    assert view.data["callback_due_at"] == "2026-03-15" + END_OF
    at_call_time(frozen_clock, db, 4)
    assert task_due(db, case_id, "callback") == "2026-03-15" + END_OF  # before 17 March
    work(db, actor("cs1"), case_id, "callback", ANSWERS | {"knows_surrender_loss": False})

    view = runtime.get_instance(db, case_id)
    assert (view.data["callback_outcome"], view.data["callback_issues"]) == (
        "发现问题",
        ["不了解退保损失"],
    )
    rectify = inbox.get_task(db, open_task(db, case_id, "rectify"))
    assert rectify is not None
    assert (rectify.candidate_role, rectify.assignee_id) == ("CS", None)
    created = events(db, case_id, "task_created", "rectify")[0]["payload"]
    assert created["excluded"] == [actor("sales2").id]  # never the seller
    due = workdays.add_workdays(datetime(2026, 3, 4, tzinfo=CHINA_TZ), 15)
    assert due.date().isoformat() == "2026-03-25"
    assert task_due(db, case_id, "rectify") == "2026-03-25" + END_OF
    assert view.data["callback_rectify_due_at"] == "2026-03-25" + END_OF
    with pytest.raises(PermissionDeniedError):
        runtime.claim_task(db, actor("sales2"), open_task(db, case_id, "rectify"))

    # long-term health: the customer must be told they may cancel (R5 第44条)
    frozen_clock.set(cn(3, 6))
    without = RECTIFICATION | {"cancel_right_informed": None}
    work(db, actor("cs2"), case_id, "rectify", without)
    assert data(db, case_id)["rectification_problem"].startswith("长期健康保险须告知")
    assert task_due(db, case_id, "rectify") == "2026-03-25" + END_OF  # the clock does not restart
    summary = work(db, actor("cs2"), case_id, "rectify", RECTIFICATION)
    assert summary.status == runtime.COMPLETED

    final = runtime.get_instance(db, case_id)
    record = final.data["callback_rectification"]
    assert (record["due_at"], record["in_time"]) == ("2026-03-25" + END_OF, True)
    assert record["closed_at"].startswith("2026-03-06T10:00")
    # Audit: the attempt (time, caller, number), the answers, the issue, closure vs deadline
    call = events(db, case_id, "task_completed", "callback")[0]
    assert (call["actor"], call["payload"]["data"]["knows_surrender_loss"]) == ("cs1", False)
    assert final.data["callback_attempts"] == [
        {
            "attempt": 1,
            "at": "2026-03-04T09:00:01+08:00",
            "on": "2026-03-04",
            "number": "13800138000",
            "result": "接通",
            "recording_ref": "HF-20260304-001",
            "note": None,
        }
    ]
    assert final.data["callback_answers"]["knows_surrender_loss"] is False
    assert [e["actor"] for e in events(db, case_id, "task_completed", "rectify")] == ["cs2", "cs2"]
    assert events(db, case_id, "permission_denied", "rectify")[0]["actor"] == "sales2"
    with db.read() as session:
        assert audit.verify(session).ok


# --------------------------------------------------------------------------- the seller never calls


def test_the_seller_may_never_make_the_callback_even_from_customer_service(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock, SCENARIO_1 | {"seller": "cs2"})  # a CS cross-sale
    at_call_time(frozen_clock, db, 4)
    callback = open_task(db, case_id, "callback")
    with pytest.raises(PermissionDeniedError, match="recuse"):
        runtime.claim_task(db, actor("cs2"), callback)
    with pytest.raises(PermissionDeniedError, match="recuse"):
        runtime.delegate_task(db, actor("cs1"), callback, "cs2")
    with pytest.raises(PermissionDeniedError):  # nor a seller without the CS role
        runtime.claim_task(db, actor("sales1"), callback)
    refusals = [(e["actor"], e["task_id"]) for e in events(db, case_id, "permission_denied")]
    assert refusals == [("cs2", "callback"), ("cs1", "callback"), ("sales1", "callback")]
    work(db, actor("cs1"), case_id, "callback", ANSWERS | {"bought_and_signed_personally": False})
    with pytest.raises(PermissionDeniedError, match="recuse"):
        runtime.claim_task(db, actor("cs2"), open_task(db, case_id, "rectify"))
    assert data(db, case_id)["callback_issues"] == ["非本人购买或签名"]


# --------------------------------------------------------------------------- all confirmed


def test_all_confirmed_closes_the_callback(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock, PLAIN_POLICY)
    at_call_time(frozen_clock, db, 4)
    answers = {k: v for k, v in ANSWERS.items() if k not in ("knows_pay_period_frequency",)}
    summary = work(db, actor("cs1"), case_id, "callback", answers | {"satisfaction": 4})
    assert summary.status == runtime.COMPLETED
    view = data(db, case_id)
    assert (view["callback_outcome"], view["callback_issues"]) == ("已确认", [])
    assert view["callback_answers"]["satisfaction"] == 4
    assert view["callback_closed_at"].startswith("2026-03-04T09:00:01")
    assert "rectify" not in {e["task_id"] for e in events(db, case_id, "task_created")}


def test_started_after_day_2_the_call_is_due_at_once(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    frozen_clock.set(cn(3, 9))
    case_id = runtime.start_instance(db, actor("sales2"), KEY, SCENARIO_1).id
    assert open_ids(db, case_id) == ["callback"]
    assert [b for b, _at in runtime.get_instance(db, case_id).waiting_timers] == [
        "callback_overdue"
    ]


def test_an_issue_the_caller_flags_is_rectified_even_when_every_answer_is_yes(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock, PLAIN_POLICY)
    at_call_time(frozen_clock, db, 4)
    flagged = ANSWERS | {"issue_found": True, "issue_type": ["夸大收益或承诺"]}
    with pytest.raises(InvalidInputError) as refused:
        work(db, actor("cs1"), case_id, "callback", flagged)
    assert "issue_detail" in refused.value.field_errors
    work(db, actor("cs1"), case_id, "callback", flagged | {"issue_detail": "称保证年收益 6%。"})
    assert data(db, case_id)["callback_issues"] == ["夸大收益或承诺"]
    open_task(db, case_id, "rectify")


# --------------------------------------------------------------------------- conditional questions


def test_instalment_and_recorded_policies_must_answer_their_extra_questions(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock)
    at_call_time(frozen_clock, db, 4)
    partial = {
        k: v
        for k, v in ANSWERS.items()
        if k not in ("knows_pay_period_frequency", "recording_accepted_and_true")
    }
    work(db, actor("cs1"), case_id, "callback", partial)
    view = data(db, case_id)
    assert view["callback_problem"] == (
        "分期缴费保单须确认客户了解缴费期间和频率；有双录/录音的保单须确认录音录像系自愿且真实"
    )
    assert view["callback_attempts"] == []  # not counted as an attempt
    work(db, actor("cs1"), case_id, "callback", ANSWERS | {"recording_accepted_and_true": False})
    view = data(db, case_id)
    assert (view["callback_problem"], view["callback_issues"]) == ("", ["双录非自愿或不真实"])
    assert len(view["callback_attempts"]) == 1


# --------------------------------------------------------------------------- unreachable, out of time


def test_unreachable_on_three_different_days_sends_a_notice_and_fails(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock)
    at_call_time(frozen_clock, db, 4)
    work(db, actor("cs1"), case_id, "callback", NO_ANSWER)
    assert open_ids(db, case_id) == []  # never twice on one day
    assert [(b, at.isoformat()) for b, at in runtime.get_instance(db, case_id).waiting_timers] == [
        ("wait_retry", "2026-03-05T09:00:00+08:00")
    ]
    at_call_time(frozen_clock, db, 5)
    work(db, actor("cs2"), case_id, "callback", {"call_result": "关机或停机"})
    at_call_time(frozen_clock, db, 6)
    not_her = {"call_result": "接通", "call_recording_ref": "HF-3", "identity_confirmed": False}
    work(db, actor("cs1"), case_id, "callback", not_her | {"called_number": "139 0000 0000"})
    view = data(db, case_id)
    assert view["callback_outcome"] == "回访失败"
    assert view["callback_failure_reason"] == "已在 3 个不同日期回访，均未能联系到投保人本人"
    assert [(a["on"], a["result"], a["number"]) for a in view["callback_attempts"]] == [
        ("2026-03-04", "无人接听", "13800138000"),
        ("2026-03-05", "关机或停机", "13800138000"),
        ("2026-03-06", "未能核实身份", "13900000000"),
    ]
    callers = [e["actor"] for e in events(db, case_id, "task_completed", "callback")]
    assert callers == ["cs1", "cs2", "cs1"]
    with pytest.raises(PermissionDeniedError):
        runtime.claim_task(db, actor("sales2"), open_task(db, case_id, "send_notice"))
    summary = work(db, actor("cs1"), case_id, "send_notice", NOTICE)
    assert summary.status == runtime.COMPLETED
    final = data(db, case_id)
    assert final["callback_notice"] == {
        "method": "短信",
        "sent_on": "2026-03-06",
        "proof": ["cd" * 32],
    }
    assert final["callback_closed_at"].startswith("2026-03-06")


def test_a_failed_call_on_the_last_day_leaves_no_retry(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock, SCENARIO_1 | {"callback_due": "2026-03-05"})
    at_call_time(frozen_clock, db, 4)
    work(db, actor("cs1"), case_id, "callback", NO_ANSWER)
    at_call_time(frozen_clock, db, 5)
    work(db, actor("cs1"), case_id, "callback", NO_ANSWER)
    assert (data(db, case_id)["callback_status"], open_ids(db, case_id)) == (
        "unreachable",
        ["send_notice"],
    )


def test_the_callback_deadline_passing_ends_it_as_failed(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock)
    at_call_time(frozen_clock, db, 4)
    work(db, actor("cs1"), case_id, "callback", NO_ANSWER)
    at_call_time(frozen_clock, db, 5)  # the second call is never made
    frozen_clock.set(cn(3, 15, 23, 59))
    timers.run_once(db)
    assert open_ids(db, case_id) == ["callback"]
    frozen_clock.set(cn(3, 16, 0, 0, 1))
    timers.run_once(db)
    assert open_ids(db, case_id) == ["send_notice"]
    view = data(db, case_id)
    assert (view["callback_status"], view["callback_outcome"]) == ("overdue", "回访失败")
    assert view["callback_failure_reason"] == "回访期限（2026-03-15）届满，回访未完成"
    fired = [(e["task_id"], e["payload"]["due"]) for e in events(db, case_id, "timer_fired")]
    assert fired[-1] == ("callback_overdue", "2026-03-15" + END_OF)
    frozen_clock.set(cn(3, 16))
    work(db, actor("cs2"), case_id, "send_notice", NOTICE | {"notice_sent_on": "2026-03-16"})
    assert status(db, case_id) == runtime.COMPLETED


# --------------------------------------------------------------------------- complaint, late rectification


def test_a_complaint_in_the_callback_is_referred_to_p2(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock, PLAIN_POLICY)
    at_call_time(frozen_clock, db, 4)
    complains = ANSWERS | {"customer_complains": True}
    with pytest.raises(InvalidInputError) as refused:
        work(db, actor("cs1"), case_id, "callback", complains)
    assert set(refused.value.field_errors) == {"complaint_summary"}
    work(db, actor("cs1"), case_id, "callback", complains | {"complaint_summary": "服务态度差"})
    assert open_ids(db, case_id) == ["refer_complaint"]
    referral = {"complaint_case_ref": "TS20260304-090001-cs1", "referred_on": "2026-03-04"}
    summary = work(db, actor("cs1"), case_id, "refer_complaint", referral)
    assert summary.status == runtime.COMPLETED
    assert data(db, case_id)["callback_outcome"] == "已确认"
    referred = events(db, case_id, "task_completed", "refer_complaint")[0]
    assert referred["payload"]["data"]["complaint_case_ref"] == "TS20260304-090001-cs1"


def test_a_late_rectification_is_followed_up_by_a_deputy_other_than_the_sellers_lead(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock)
    at_call_time(frozen_clock, db, 4)
    work(db, actor("cs1"), case_id, "callback", ANSWERS | {"knows_cooling_off": False})
    frozen_clock.set(cn(3, 25, 23, 59))
    timers.run_once(db)
    assert open_ids(db, case_id) == ["rectify"]
    frozen_clock.set(cn(3, 26, 0, 0, 1))
    timers.run_once(db)
    assert open_ids(db, case_id) == ["rectify", "escalate"]  # non-interrupting
    assert "rectify" in {e["task_id"] for e in events(db, case_id, "task_overdue")}
    escalation = open_task(db, case_id, "escalate")
    with pytest.raises(PermissionDeniedError, match="recuse"):  # ddm1 leads sales2
        runtime.claim_task(db, actor("ddm1"), escalation)
    work(db, actor("ddm2"), case_id, "escalate", {"supervision_note": "请于 3 月 27 日前办结。"})
    frozen_clock.set(cn(3, 27))
    summary = work(db, actor("cs2"), case_id, "rectify", RECTIFICATION)
    assert summary.status == runtime.COMPLETED
    record = data(db, case_id)["callback_rectification"]
    assert (record["in_time"], record["issues"]) == (False, ["不了解犹豫期"])
    assert record["closed_at"] > record["due_at"]
    assert record["found_at"] == "2026-03-04T09:00:01+08:00"


def test_every_attempt_is_a_separate_audited_step(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor, frozen_clock)
    at_call_time(frozen_clock, db, 4)
    work(db, actor("cs1"), case_id, "callback", NO_ANSWER)
    frozen_clock.set(cn(3, 5, 14))
    timers.run_once(db)
    work(db, actor("cs2"), case_id, "callback", ANSWERS)
    calls = events(db, case_id, "task_completed", "callback")
    stamped = [(e["actor"], e["payload"]["data"]["call_result"]) for e in calls]
    assert stamped == [("cs1", "无人接听"), ("cs2", "接通")]
    attempts = data(db, case_id)["callback_attempts"]
    assert [a["at"] for a in attempts] == ["2026-03-04T09:00:01+08:00", "2026-03-05T14:00:00+08:00"]
    assert data(db, case_id)["callback_outcome"] == "已确认"
    assert datetime.fromisoformat(attempts[1]["at"]) - datetime.fromisoformat(
        attempts[0]["at"]
    ) > timedelta(hours=24)
