"""P3 claims assistance, driven through the engine's public services as the demo department.

Customer service registers the loss on a policy of the agency's own files (``policy_lookup``),
the insurer is told the same working day, the limitation period is checked, the documents the
``claim_documents`` table lists are collected (the customer is reminded every 7 days) and
operations submit them. The insurer answers by the ``claim_insurer_feedback`` message; until it
does, its legal deadlines (``insurer_sla``) drive the chase, the escalation to the deputy manager
and the advance-payment request. Payment is confirmed to the insured or a beneficiary only; a
rejection is explained with the complaint route; the case closes with a follow-up call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import audit, runtime
from engine.errors import ConflictError, InvalidInputError, PermissionDeniedError
from engine.runtime.services import inbox, timers
from engine.sandbox import script_helpers
from engine.storage.db import Database
from engine.timekeeping import workdays
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, history_types, open_task, work

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

KEY = "claims_assistance"
LIFE = "P2026000001"  # 李建国, 普通寿险, 平安人寿, seller sales1
MOTOR = "P2026000002"  # 王秀英, 车险, 人保财险, seller sales2
FILE_A, FILE_B = "a" * 64, "b" * 64
MESSAGE = "claim_insurer_feedback"


def report(policy_no: str = LIFE, **changes: Any) -> dict[str, Any]:
    """A claim_report for 李建国's critical illness, known a week before the case starts."""
    data: dict[str, Any] = {
        "policy_no": policy_no,
        "insured_name": "李建国",
        "reporter_name": "李建国",
        "reporter_mobile": "13800138001",
        "reporter_relation": "被保险人本人",
        "loss_date": "2026-02-20",
        "known_date": "2026-02-21",
        "claim_type": "重疾",
        "description": "2 月 20 日体检发现肿块，21 日病理确诊恶性肿瘤。",
        "estimated_amount": "300000.00",
    }
    if policy_no == MOTOR:
        data.update(
            insured_name="王秀英",
            reporter_name="王秀英",
            reporter_mobile="13900139002",
            claim_type="车险",
            description="2 月 20 日在漕溪北路追尾，车辆前部受损。",
            estimated_amount="18000.00",
        )
    data.update(changes)
    return data


def chase(**changes: Any) -> dict[str, Any]:
    return {
        "chased_at": "2026-03-02T09:30:00+08:00",
        "chase_method": "电话",
        "insurer_contact": "理赔部刘女士",
        "insurer_response": "已进入复核，预计三个工作日内核定",
        **changes,
    }


def register(db: Database, actor: ActorOf, policy_no: str = LIFE, **changes: Any) -> int:
    """cs1 starts the case on a policy and registers the report."""
    case = runtime.start_instance(db, actor("cs1"), KEY, {"policy_no": policy_no})
    work(db, actor("cs1"), case.id, "register_report", report(policy_no, **changes))
    return case.id


def collect_all(db: Database, actor: ActorOf, case_id: int) -> None:
    """cs1 records every listed document as received."""
    rows = runtime.get_instance(db, case_id).data["documents"]
    received = [
        {
            "document": row["document"],
            "received": True,
            "attachment": [FILE_A],
            "received_at": "2026-03-02T11:00:00+08:00",
        }
        for row in rows
    ]
    work(db, actor("cs1"), case_id, "collect_documents", {"documents": received})


def submit(
    db: Database, actor: ActorOf, case_id: int, who: str = "ops1", simple: bool = True
) -> None:
    data = {
        "insurer_claim_no": "LP-2026-00912",
        "submitted_at": "2026-03-02T14:00:00+08:00",
        "documents_sent": [FILE_A, FILE_B],
        "simple_claim": simple,
    }
    work(db, actor(who), case_id, "submit_claim", data)


def submitted_case(db: Database, actor: ActorOf, policy_no: str = LIFE, simple: bool = True) -> int:
    """A case whose complete documents went to the insurer on 2026-03-02 at 14:00."""
    case_id = register(db, actor, policy_no, insurer_notified_at="2026-03-02T09:10:00+08:00")
    collect_all(db, actor, case_id)
    submit(db, actor, case_id, simple=simple)
    return case_id


def feedback(
    db: Database, actor: ActorOf, case_id: int, status: str, **extra: Any
) -> runtime.InstanceSummary:
    payload = {"feedback_status": status, "feedback_at": "2026-03-04T10:00:00+08:00", **extra}
    return runtime.correlate_message(db, actor("ops1"), MESSAGE, payload, instance_id=case_id)


def paid(db: Database, actor: ActorOf, case_id: int, amount: str = "300000.00") -> None:
    feedback(db, actor, case_id, "赔付", amount=amount, agreement_date="2026-03-03")


def payment(**changes: Any) -> dict[str, Any]:
    return {
        "paid_amount": "300000.00",
        "paid_at": "2026-03-04",
        "payee_role": "被保险人",
        "payee_name": "李建国",
        "payee_own_account": "是",
        "payment_proof": [FILE_B],
        **changes,
    }


def close_and_follow_up(
    db: Database, actor: ActorOf, case_id: int, frozen_clock: FrozenClock, reason: str
) -> runtime.InstanceSummary:
    """cs1 closes; the seller of the policy is informed; cs1 calls the customer 7 days later."""
    work(db, actor("cs1"), case_id, "close_claim", {"closure_reason": reason, "satisfaction": 4})
    assert [t for t, _ in runtime.get_instance(db, case_id).waiting_timers] == ["wait_follow_up"]
    seller = runtime.get_instance(db, case_id).data["seller"]
    informed = inbox.get_task(db, open_task(db, case_id, "inform_seller"))
    assert informed is not None
    assert informed.assignee_id == actor(seller).id
    with pytest.raises(PermissionDeniedError):  # the seller of this policy, not a colleague
        work(db, actor("sales2" if seller == "sales1" else "sales1"), case_id, "inform_seller")
    work(db, actor(seller), case_id, "inform_seller")
    frozen_clock.advance(timedelta(days=7) - timedelta(seconds=1))
    timers.run_once(db)
    assert [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)] == []
    frozen_clock.advance(timedelta(seconds=2))
    timers.run_once(db)
    return work(db, actor("cs1"), case_id, "follow_up")


def china(day: str) -> datetime:
    """One second after the end of a China-time day, as the worker's clock."""
    return datetime.fromisoformat(day + "T16:00:01+00:00").astimezone(UTC)


def due(db: Database, case_id: int, bpmn_id: str) -> str | None:
    task = inbox.get_task(db, open_task(db, case_id, bpmn_id))
    assert task is not None
    return task.due_at.astimezone(workdays.CHINA_TZ).isoformat() if task.due_at else None


def events(db: Database, case_id: int, kind: str) -> list[dict[str, Any]]:
    return [dict(e) for e in runtime.get_instance(db, case_id).history if e["type"] == kind]


def test_life_claim_is_registered_notified_collected_submitted_paid_closed_and_followed_up(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor)
    data = runtime.get_instance(db, case_id).data
    assert data["policy"]["found"] is True
    assert (data["insurer"], data["policy_category"], data["seller"]) == (
        "平安人寿",
        "普通寿险",
        "sales1",
    )
    # the insurer is told the same working day, by operations
    assert due(db, case_id, "notify_insurer") == "2026-03-02T23:59:59.999999+08:00"
    with pytest.raises(PermissionDeniedError):
        work(db, actor("cs1"), case_id, "notify_insurer")
    work(db, actor("ops1"), case_id, "notify_insurer")
    data = runtime.get_instance(db, case_id).data
    assert data["insurer_notified_at"].startswith("2026-03-02T09:00:00")
    # life policy: 5 years from the day the loss became known, no warning
    assert (data["limitation_years"], data["limitation_ends_at"]) == (
        5,
        "2031-02-21T23:59:59.999999+08:00",
    )
    assert data["limitation_warning"] is False
    assert [row["document"] for row in data["documents"]] == [
        "理赔申请书", "身份证明", "银行卡", "病历", "医疗费用发票", "费用明细清单", "诊断证明", "病理报告",
    ]  # fmt: skip
    assert due(db, case_id, "collect_documents") == "2031-02-21T23:59:59.999999+08:00"
    collect_all(db, actor, case_id)
    with pytest.raises(PermissionDeniedError):  # submission is operations' work
        work(db, actor("sales1"), case_id, "submit_claim")
    submit(db, actor, case_id)
    view = runtime.get_instance(db, case_id)
    # simple life claim: 5 working days from complete submission (R4 第23条)
    assert view.data["sla_due_at"] == "2026-03-09T23:59:59.999999+08:00"
    assert view.data["advance_due_at"] == "2026-05-01T23:59:59.999999+08:00"
    assert view.waiting_messages == (MESSAGE,)
    assert [t for t, _ in view.waiting_timers] == ["gw_wait"]  # the event-based gateway waits

    frozen_clock.advance(timedelta(days=2))
    paid(db, actor, case_id)
    assert due(db, case_id, "confirm_payment") == "2026-03-13T23:59:59.999999+08:00"
    work(db, actor("cs1"), case_id, "confirm_payment", payment())
    assert runtime.get_instance(db, case_id).data["payee_check"] == "通过"
    summary = close_and_follow_up(db, actor, case_id, frozen_clock, "已赔付")
    assert summary.status == runtime.COMPLETED

    # Audit (P3): document receipt times, every insurer communication, payment evidence and the
    # payee check, the closure reason; decisions with their inputs
    lookup = events(db, case_id, "operator_called")[0]["payload"]
    assert (lookup["operator"], lookup["result"]["policy_no"]) == ("policy_lookup", LIFE)
    decisions = {
        e["payload"]["decision"]: e["payload"] for e in events(db, case_id, "decision_made")
    }
    assert decisions["limitation_years"]["inputs"] == {"保单险种类别": "普通寿险"}
    assert decisions["insurer_sla"]["outputs"]["insurer_decision_deadline"] == "5 workdays"
    completed = {e["task_id"]: e for e in events(db, case_id, "task_completed")}
    rows = completed["collect_documents"]["payload"]["data"]["documents"]
    assert {row["received_at"] for row in rows} == {"2026-03-02T11:00:00+08:00"}
    assert completed["confirm_payment"]["payload"]["data"]["payment_proof"] == [FILE_B]
    assert completed["close_claim"]["payload"]["data"]["closure_reason"] == "已赔付"
    [message] = events(db, case_id, "message_received")
    assert message["payload"]["data"]["amount"] == "300000.00"
    final = events(db, case_id, "instance_completed")[0]["payload"]["data"]
    assert [c["kind"] for c in final["insurer_communications"]] == ["提交理赔材料", "保险公司反馈"]
    assert final["payee_check"] == "通过"
    assert final["sla_breaches"] == []
    assert [(e["task_id"], e["actor"]) for e in events(db, case_id, "task_completed")] == [
        ("register_report", "cs1"), ("notify_insurer", "ops1"), ("collect_documents", "cs1"),
        ("submit_claim", "ops1"), ("confirm_payment", "cs1"), ("close_claim", "cs1"),
        ("inform_seller", "sales1"), ("follow_up", "cs1"),
    ]  # fmt: skip
    with db.read() as session:
        assert audit.verify(session).ok


def test_an_unknown_policy_is_refused_and_nothing_else_happens(
    db: Database, actor: ActorOf
) -> None:
    case_id = register(db, actor, "P1999999999", insured_name="张三")
    view = runtime.get_instance(db, case_id)
    assert view.summary.status == runtime.COMPLETED
    assert view.data["policy"]["found"] is False
    assert "不在本机构保单档案中" in view.data["refusal_reason"]
    assert "不予受理" in view.data["refusal_reason"]
    [taken] = [e for e in events(db, case_id, "gateway_taken") if e["task_id"] == "gw_policy_found"]
    assert taken["payload"]["to"] == ["refuse_unknown_policy"]
    assert inbox.open_tasks_of(db, case_id) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"known_date": "2026-02-19"}, "知道出险日期早于出险日期"),
        ({"insured_name": "李建华"}, "被保险人与保单档案不符（保单被保险人：李建国）"),
        ({"insurer": "中国人寿"}, "保险公司与保单档案不符（保单档案：平安人寿）"),
        ({"policy_category": "长期健康"}, "险种类别与保单档案不符（保单档案：普通寿险）"),
        ({"claim_type": "车险"}, "理赔类型“车险”与保单险种“普通寿险”不符"),
    ],
)
def test_a_report_that_contradicts_the_policy_file_goes_back_to_the_registrar(
    db: Database, actor: ActorOf, changes: dict[str, Any], problem: str
) -> None:
    case_id = register(db, actor, **changes)
    assert runtime.get_instance(db, case_id).data["report_problem"] == problem
    task = inbox.get_task(db, open_task(db, case_id, "revise_report"))
    assert task is not None
    assert task.assignee_id == actor("cs1").id
    work(db, actor("cs1"), case_id, "revise_report", report(insurer="平安人寿"))
    assert runtime.get_instance(db, case_id).data["report_problem"] == ""
    open_task(db, case_id, "notify_insurer")


@pytest.mark.parametrize(
    ("policy_no", "known_date", "ends", "days_left"),
    [
        (MOTOR, "2024-04-15", "2026-04-15", 44),  # 2 years for non-life
        (LIFE, "2021-04-01", "2026-04-01", 30),  # 5 years for life
    ],
)
def test_a_claim_with_less_than_90_days_of_limitation_left_is_flagged(
    db: Database, actor: ActorOf, policy_no: str, known_date: str, ends: str, days_left: int
) -> None:
    case_id = register(
        db, actor, policy_no, loss_date=known_date, known_date=known_date,
        insurer_notified_at="2026-03-02T08:30:00+08:00",
    )  # fmt: skip
    data = runtime.get_instance(db, case_id).data
    assert (data["limitation_warning"], data["limitation_days_left"]) == (True, days_left)
    assert data["limitation_notice"].startswith(f"索赔时效将于 {ends} 届满，仅剩 {days_left} 日")
    # the insurer was told already: no notification task; the collection is due at the time bar
    assert [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)] == ["collect_documents"]
    assert due(db, case_id, "collect_documents") == f"{ends}T23:59:59.999999+08:00"
    gateway = [e for e in events(db, case_id, "gateway_taken") if e["task_id"] == "gw_limitation"]
    assert gateway[0]["payload"]["to"] == ["flag_limitation"]


def test_a_time_barred_claim_goes_straight_to_closure(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(
        db, actor, MOTOR, loss_date="2024-02-20", known_date="2024-02-20",
        insurer_notified_at="2026-03-02T08:30:00+08:00",
    )  # fmt: skip
    data = runtime.get_instance(db, case_id).data
    assert (data["limitation_expired"], data["limitation_days_left"]) == (True, -10)
    assert [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)] == ["close_claim"]
    summary = close_and_follow_up(db, actor, case_id, frozen_clock, "超过索赔时效")
    assert summary.status == runtime.COMPLETED


def test_collection_loops_until_complete_and_reminds_the_customer_every_7_days(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, MOTOR, insurer_notified_at="2026-03-02T08:30:00+08:00")
    rows = runtime.get_instance(db, case_id).data["documents"]
    partial = [{"document": r["document"], "received": False} for r in rows]
    partial[0] = {**partial[0], "received": True, "attachment": [FILE_A],
                  "received_at": "2026-03-02T10:00:00+08:00"}  # fmt: skip
    work(db, actor("cs1"), case_id, "collect_documents", {"documents": partial})
    data = runtime.get_instance(db, case_id).data
    assert data["documents_complete"] is False
    assert data["documents_missing"] == [
        "身份证明",
        "银行卡",
        "事故责任认定书",
        "行驶证、驾驶证",
        "维修发票",
    ]
    open_task(db, case_id, "collect_documents")
    # no reminder before 7 days; then one every 7 days while the collection is open
    frozen_clock.advance(timedelta(days=7) - timedelta(seconds=1))
    timers.run_once(db)
    assert "remind_customer" not in [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)]
    frozen_clock.advance(timedelta(seconds=2))
    timers.run_once(db)
    frozen_clock.advance(timedelta(days=7))
    timers.run_once(db)
    reminders = [t for t in inbox.open_tasks_of(db, case_id) if t.bpmn_id == "remind_customer"]
    assert len(reminders) == 2
    assert {t.assignee_id for t in reminders} == {actor("cs1").id}
    fired = [e["task_id"] for e in events(db, case_id, "timer_fired")]
    assert fired == ["remind_customer_due", "remind_customer_due"]
    for task in reminders:
        runtime.complete_task(db, actor("cs1"), task.id, {})
    collect_all(db, actor, case_id)
    assert [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)] == ["submit_claim"]
    assert runtime.get_instance(db, case_id).waiting_timers == ()


def test_the_customer_may_withdraw_during_collection(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = register(db, actor, insurer_notified_at="2026-03-02T08:30:00+08:00")
    rows = runtime.get_instance(db, case_id).data["documents"]
    work(
        db, actor("cs1"), case_id, "collect_documents",
        {"documents": [{"document": r["document"], "received": False} for r in rows], "withdrawn": True},
    )  # fmt: skip
    assert [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)] == ["close_claim"]
    assert close_and_follow_up(db, actor, case_id, frozen_clock, "客户撤案").status == "completed"


def test_a_supplementary_request_returns_to_collection_and_a_second_one_is_flagged_to_ops(
    db: Database, actor: ActorOf
) -> None:
    case_id = submitted_case(db, actor)
    feedback(db, actor, case_id, "补充材料", missing_documents="出院小结")
    data = runtime.get_instance(db, case_id).data
    assert (data["supplement_requests"], data["repeat_supplement_request"]) == (1, False)
    assert data["documents"][-1] == {
        "document": "第1次补充：出院小结", "received": False, "attachment": None, "received_at": None,
    }  # fmt: skip
    collect_all(db, actor, case_id)
    submit(db, actor, case_id)
    # the second request: flagged to operations, checked by someone other than the submitter
    feedback(db, actor, case_id, "补充材料", missing_documents="住院费用清单原件")
    assert runtime.get_instance(db, case_id).data["repeat_supplement_request"] is True
    with pytest.raises(PermissionDeniedError):
        work(db, actor("ops1"), case_id, "flag_repeat_request", chase())
    refused = events(db, case_id, "permission_denied")
    assert [(e["actor"], e["task_id"]) for e in refused] == [("ops1", "flag_repeat_request")]
    work(db, actor("ops2"), case_id, "flag_repeat_request",
         chase(insurer_response="保险公司承认首次通知遗漏，承诺此后不再要求补充"))  # fmt: skip
    data = runtime.get_instance(db, case_id).data
    assert data["documents"][-1]["document"] == "第2次补充：住院费用清单原件"
    assert [c["kind"] for c in data["insurer_communications"]] == [
        "提交理赔材料", "保险公司反馈", "提交理赔材料", "保险公司反馈", "重复补充材料要求交涉",
    ]  # fmt: skip
    open_task(db, case_id, "collect_documents")


def test_an_overdue_insurer_is_chased_escalated_and_asked_for_an_advance_payment(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = submitted_case(db, actor, MOTOR)  # motor: 30 days
    data = runtime.get_instance(db, case_id).data
    assert data["sla_due_at"] == "2026-04-01T23:59:59.999999+08:00"
    escalate_at = script_helpers.deadline(data["sla_due_at"], "5 workdays")
    assert data["escalate_at"] == escalate_at
    frozen_clock.set(china("2026-04-01") - timedelta(seconds=2))
    timers.run_once(db)
    assert "chase_insurer" not in [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)]
    frozen_clock.set(china("2026-04-01"))
    timers.run_once(db)
    with pytest.raises(PermissionDeniedError):
        work(db, actor("cs1"), case_id, "chase_insurer", chase())
    work(db, actor("ops1"), case_id, "chase_insurer", chase(chased_at="2026-04-02T10:00:00+08:00"))
    assert runtime.get_instance(db, case_id).data["next_action"] == "escalate"
    frozen_clock.set(datetime.fromisoformat(escalate_at) + timedelta(seconds=1))
    timers.run_once(db)
    task = inbox.get_task(db, open_task(db, case_id, "escalate_ddm"))
    assert task is not None
    assert task.candidate_role == "DDM"
    work(db, actor("ddm1"), case_id, "escalate_ddm", chase(chased_at="2026-04-10T10:00:00+08:00"))
    frozen_clock.set(china("2026-05-01"))
    timers.run_once(db)
    work(db, actor("ops2"), case_id, "advance_request", chase(advance_payment_requested=False))
    open_task(db, case_id, "advance_request")  # asking is the point of the task
    work(db, actor("ops2"), case_id, "advance_request", chase(advance_payment_requested=True))
    view = runtime.get_instance(db, case_id)
    assert view.data["next_action"] == "none"
    assert view.waiting_messages == (MESSAGE,)
    assert [b["kind"] for b in view.data["sla_breaches"]] == [
        "超过保险公司核定时限", "催办后仍未答复", "六十日仍未确定赔付金额",
    ]  # fmt: skip
    fired = [(e["task_id"], e["payload"]["due"]) for e in events(db, case_id, "timer_fired")]
    # the event-based gateway is what waits: it is named in the timer events, its path names the timer
    assert fired == [
        ("gw_wait", "2026-04-01T23:59:59.999999+08:00"),
        ("gw_wait", escalate_at),
        ("gw_wait", "2026-05-01T23:59:59.999999+08:00"),
    ]
    paths = [
        e["payload"]["to"]
        for e in events(db, case_id, "gateway_taken")
        if e["task_id"] == "gw_wait"
    ]
    assert paths == [["follow_up_due"]] * 3
    feedback(db, actor, case_id, "部分赔付", amount="12000.00", agreement_date="2026-05-02")
    # payment is due 10 days after the agreement; a late one shows as an overdue task
    assert due(db, case_id, "confirm_payment") == "2026-05-12T23:59:59.999999+08:00"
    frozen_clock.set(china("2026-05-12"))
    timers.run_once(db)
    assert [e["task_id"] for e in events(db, case_id, "task_overdue")] == ["confirm_payment"]
    work(db, actor("cs1"), case_id, "confirm_payment",
         payment(paid_amount="12000.00", payee_name="王秀英", paid_at="2026-05-02"))  # fmt: skip
    assert runtime.get_instance(db, case_id).data["payee_check"] == "通过"


def test_an_undone_chase_escalates_to_the_deputy_manager_anyway(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = submitted_case(db, actor)
    frozen_clock.set(china("2026-03-09"))
    timers.run_once(db)
    open_task(db, case_id, "chase_insurer")
    escalate_at = runtime.get_instance(db, case_id).data["escalate_at"]
    frozen_clock.set(datetime.fromisoformat(escalate_at) + timedelta(seconds=1))
    timers.run_once(db)
    assert [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)] == ["escalate_ddm"]
    assert "task_withdrawn" in history_types(db, case_id)
    assert [e["task_id"] for e in events(db, case_id, "timer_fired")] == ["gw_wait", "chase_late"]
    work(db, actor("ddm2"), case_id, "escalate_ddm", chase())
    data = runtime.get_instance(db, case_id).data
    assert (data["chased"], data["escalated"], data["next_action"]) == (True, True, "advance")


def test_an_answer_in_progress_keeps_the_deadlines_and_an_answer_during_a_chase_ends_it(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = submitted_case(db, actor)
    feedback(db, actor, case_id, "受理")
    view = runtime.get_instance(db, case_id)
    assert view.waiting_timers == (
        ("gw_wait", datetime.fromisoformat("2026-03-09T23:59:59.999999+08:00")),
    )
    frozen_clock.set(china("2026-03-09"))
    timers.run_once(db)
    open_task(db, case_id, "chase_insurer")
    feedback(db, actor, case_id, "拒赔", rejection_reason="既往症，不属于保险责任", notice=[FILE_B])
    assert [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)] == ["explain_rejection"]
    assert [e["task_id"] for e in events(db, case_id, "task_withdrawn")] == ["chase_insurer"]
    explanation = {
        "explained_at": "2026-03-10T14:00:00+08:00",
        "explanation_method": "面谈",
        "complaint_offered": "是",
        "customer_response": "有异议",
        "start_complaint": True,
    }
    work(db, actor("cs1"), case_id, "explain_rejection", explanation)
    referral = runtime.get_instance(db, case_id).data["complaint_referral"]
    assert referral == {
        "policy_no": LIFE, "insurer": "平安人寿", "insured_name": "李建国",
        "insurer_claim_no": "LP-2026-00912", "rejection_reason": "既往症，不属于保险责任",
    }  # fmt: skip
    assert close_and_follow_up(db, actor, case_id, frozen_clock, "拒赔").status == "completed"


def test_the_insurers_message_is_checked_against_its_form_and_must_be_awaited(
    db: Database, actor: ActorOf
) -> None:
    case_id = register(db, actor, insurer_notified_at="2026-03-02T08:30:00+08:00")
    with pytest.raises(ConflictError):  # still collecting documents: nothing was submitted
        feedback(db, actor, case_id, "受理")
    collect_all(db, actor, case_id)
    submit(db, actor, case_id)
    with pytest.raises(InvalidInputError) as caught:
        feedback(db, actor, case_id, "拒赔", rejection_reason="既往症")
    assert set(caught.value.field_errors) == {"notice"}
    with pytest.raises(InvalidInputError):
        feedback(db, actor, case_id, "已撤案")
    assert runtime.get_instance(db, case_id).waiting_messages == (MESSAGE,)


@pytest.mark.parametrize(
    ("policy_no", "changes", "problem"),
    [
        (LIFE, {"payee_name": "郑销售"}, "收款人“郑销售”不是被保险人“李建国”本人"),
        (LIFE, {"paid_amount": "300000.01"}, "到账金额 300000.01 超过核定金额 300000.00"),
        (LIFE, {"claim_type": "身故"}, "身故保险金不能付给被保险人，收款人应为受益人"),
    ],
)
def test_benefits_go_to_the_insured_or_a_beneficiary_only(
    db: Database,
    actor: ActorOf,
    frozen_clock: FrozenClock,
    policy_no: str,
    changes: dict[str, Any],
    problem: str,
) -> None:
    changes = dict(changes)  # the parameter is shared by both databases' runs
    claim_type = changes.pop("claim_type", "重疾")
    case_id = register(db, actor, policy_no, claim_type=claim_type,
                       insurer_notified_at="2026-03-02T08:30:00+08:00")  # fmt: skip
    collect_all(db, actor, case_id)
    submit(db, actor, case_id)
    frozen_clock.advance(timedelta(days=2))
    paid(db, actor, case_id)
    with pytest.raises(InvalidInputError) as caught:  # a staff member or anyone else: refused
        work(db, actor("cs1"), case_id, "confirm_payment", payment(payee_role="代理人"))
    assert set(caught.value.field_errors) == {"payee_role"}
    work(db, actor("cs1"), case_id, "confirm_payment", payment(**changes))
    assert runtime.get_instance(db, case_id).data["payee_problem"] == problem
    open_task(db, case_id, "confirm_payment")
    fixed = {"payee_role": "受益人", "payee_name": "李小红"} if claim_type == "身故" else {}
    work(db, actor("cs1"), case_id, "confirm_payment", payment(**fixed))
    assert runtime.get_instance(db, case_id).data["payee_check"] == "通过"
    open_task(db, case_id, "close_claim")
