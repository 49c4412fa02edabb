"""P1 customer development and sale, driven through the engine's public services as the demo
department: lead → needs → plan (OPS review loop) → disclosure → risk test → suitability →
KYC (OPS review) → health declaration → recording → signing → insurer (SLA timers, underwriting
message) → delivery → hesitation days, policy and archive records → the new-business callback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import audit, runtime
from engine.errors import InvalidInputError, PermissionDeniedError
from engine.people import identity
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.storage.models import ArchiveItem, Policy
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, history_types, open_task, work

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

KEY = "sales"
OWN_WILL = hashlib.sha256(b"own-will-confirmation.pdf").hexdigest()
RECEIPT = hashlib.sha256(b"signed-receipt.pdf").hexdigest()
# 王秀英 (demo customer C000002), born 1964-02-15: 62 on 2026-03-02
WANG_ID = "310104196402154020"

LEAD = {
    "customer_name": "王秀英",
    "mobile": "13912345678",
    "channel": "线下活动",
    "pi_notice_given": "是",
    "contact_consent": True,
}
NEEDS = {
    "needs": ["重疾", "医疗"],
    "risk_profile": "稳健",
    "annual_income": "96000",
    "affordable_annual_premium": "12000",
    "existing_similar_cover": "无",
}
PLAN = {
    "product_code": "CI-20-A",
    "product_name": "安康重大疾病保险",
    "insurer": "平安人寿",
    "category": "长期健康",
    "sales_channel": "线下",
    "term_years": 20,
    "sum_insured": "200000",
    "premium": "8600",
    "pay_mode": "年缴",
    "pay_years": 10,
    "duplicate_or_excess_cover": False,
}
CHECKS = ("in_authorised_scope", "seller_grade_allows", "terms_rates_approved", "plan_approved")
REVIEW_OK = dict.fromkeys(CHECKS, True)
DISCLOSURE = {
    "seller_practice_no": "02000111000080002024000123",
    "card_shown": "是",
    "customer_notice_given": "是",
    "terms_given": "是",
    "exclusions_explained": "是",
    "cooling_off_explained": "是",
    "surrender_loss_explained": "是",
    "disclosure_duty_explained": "是",
    "term_over_one_year": True,
    "cash_value_explained": "是",
    "product_description_given": "是",
}
KYC = {
    "id_type": "居民身份证",
    "id_no": WANG_ID,
    "birth_date": "1964-02-15",
    "id_long_term": True,
    "occupation": "退休教师",
    "address": "上海市徐汇区漕溪北路 1 号",
    "verify_method": "联网核查",
    "identity_verified": True,
    "verified_on": "2026-03-02",
    "insured_is_applicant": True,
    "death_cover": False,
    "beneficiary_is_applicant": True,
}
HEALTH = {
    "sensitive_pi_consent": "同意",
    "questionnaire_version": "HQ-2026-01",
    "answers": [{"question_no": "1", "question": "过去两年内是否住院？", "answer": "否"}],
    "abnormal": False,
}
RECORDING = {
    "recording_type": "现场双录",
    "recording_ref": "SR-2026-000381",
    "recorded_at": "2026-03-02T10:15:00+08:00",
    "sent_to_insurer_at": "2026-03-02T16:40:00+08:00",
}
SIGNING = {
    "application_no": "TB2026030200017",
    "signed_in_person": "是",
    "payer_is_applicant": "是",
    "premium_route": "投保人直接缴付保险公司",
    "signed_at": "2026-03-02T11:00:00+08:00",
}
ACCEPTED = {"underwriting_result": "承保", "underwriting_decided_at": "2026-03-02T15:00:00+08:00"}
ISSUANCE = {
    "policy_no": "P2026030200088",
    "effective_date": "2026-03-02",
    "receipt_signed_date": "2026-03-02",
    "receipt_doc": [RECEIPT],
}
# what the called new_business_callback reads from the sale (scenario 1)
CALLBACK_INPUTS = {
    "policy_no": "P2026030200088",
    "customer_name": "王秀英",
    "mobile": "13912345678",
    "seller": "sales1",
    "receipt_signed_date": "2026-03-02",
    "hesitation_days": 15,
    "callback_due": "2026-03-15",  # receipt + 15 days - 2 (P5 step 2)
    "recorded": True,
    "installments": True,
    "category": "长期健康",
    "term_years": 20,
}
# the sale up to signing, in order: (task, who, data)
HAPPY: list[tuple[str, str, Mapping[str, Any]]] = [
    ("register_lead", "sales1", LEAD),
    ("needs_analysis", "sales1", NEEDS),
    ("plan_design", "sales1", PLAN),
    ("plan_review", "ops1", REVIEW_OK),
    ("disclosure", "sales1", DISCLOSURE),
    ("kyc", "sales1", KYC),
    ("kyc_review", "ops2", {"kyc_approved": True}),
    ("health_declaration", "sales1", HEALTH),
    ("recording", "sales1", RECORDING),
    ("signing", "sales1", SIGNING),
]


def start(db: Database, actor: ActorOf, seller: str = "sales1") -> int:
    return runtime.start_instance(db, actor(seller), KEY).id


def drive(
    db: Database,
    actor: ActorOf,
    case_id: int,
    until: str | None = None,
    changes: Mapping[str, Mapping[str, Any]] | None = None,
    seller: str = "sales1",
    first: str = "register_lead",
) -> None:
    """Work the happy path's tasks from ``first`` in order, stopping before ``until`` (None:
    through signing); ``changes`` replace a task's submission."""
    names = [step[0] for step in HAPPY]
    for bpmn_id, who, payload in HAPPY[names.index(first) :]:
        if bpmn_id == until:
            return
        submission = (changes or {}).get(bpmn_id, payload)
        work(db, actor(seller if who == "sales1" else who), case_id, bpmn_id, submission)


def role_of(db: Database, case_id: int, bpmn_id: str) -> str | None:
    task = inbox.get_task(db, open_task(db, case_id, bpmn_id))
    assert task is not None
    return task.candidate_role


def underwrite(db: Database, case_id: int, **payload: Any) -> runtime.InstanceSummary:
    return runtime.correlate_message(
        db,
        identity.SYSTEM,
        "sales_underwriting_result",
        {**ACCEPTED, **payload},
        instance_id=case_id,
    )


def data(db: Database, case_id: int) -> dict[str, Any]:
    return dict(runtime.get_instance(db, case_id).data)


def events(
    db: Database, case_id: int, type_: str, task_id: str | None = None
) -> list[Mapping[str, Any]]:
    return [
        e
        for e in runtime.get_instance(db, case_id).history
        if e["type"] == type_ and (task_id is None or e["task_id"] == task_id)
    ]


def submitted(db: Database, case_id: int, task_id: str) -> list[dict[str, Any]]:
    return [e["payload"]["data"] for e in events(db, case_id, "task_completed", task_id)]


def decision(db: Database, case_id: int, task_id: str) -> dict[str, Any]:
    [made] = events(db, case_id, "decision_made", task_id)
    payload: dict[str, Any] = made["payload"]
    return payload


def open_ids(db: Database, case_id: int) -> list[str]:
    return [t.bpmn_id for t in inbox.open_tasks_of(db, case_id)]


# --------------------------------------------------------------------------- acceptance scenario 1


def test_scenario_1_elderly_long_term_sale_through_the_callback(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id, until="kyc")
    # a birth date that contradicts the ID number goes back to the seller
    work(db, actor("sales1"), case_id, "kyc", {**KYC, "birth_date": "1964-02-16"})
    assert data(db, case_id)["kyc_problem"] == "出生日期与身份证号码不一致"
    drive(db, actor, case_id, "health_declaration", first="kyc")
    # health data needs the customer's separate consent (R9 第29条): refused without it
    no_consent = {k: v for k, v in HEALTH.items() if k != "sensitive_pi_consent"}
    for consent in ({}, {"sensitive_pi_consent": "不同意"}):
        with pytest.raises(InvalidInputError) as refused:
            work(db, actor("sales1"), case_id, "health_declaration", {**no_consent, **consent})
        assert "sensitive_pi_consent" in refused.value.field_errors
    work(db, actor("sales1"), case_id, "health_declaration", HEALTH)
    view = data(db, case_id)
    assert view["seller"] == "sales1"
    assert view["applicant_age"] == 62
    assert view["kyc_record"]["method"] == "联网核查"
    assert view["kyc_record"]["id_no"] == "310104********4020"
    assert (view["risk_assessment_required"], view["advise_stop"]) == (False, False)
    assert decision(db, case_id, "decide_recording")["outputs"]["recording_required"] == "现场双录"
    assert view["health_consent"]["consent"] == "同意"  # recorded apart from the answers
    assert submitted(db, case_id, "health_declaration")[0]["sensitive_pi_consent"] == "同意"
    # the customer file is updated (王秀英 is on file), not duplicated
    assert view["customer_no"] == "C000002"
    assert view["customer_file_result"]["created"] is False
    # signing is blocked until the recording is registered with its reference
    assert open_ids(db, case_id) == ["recording"]
    no_ref = {k: v for k, v in RECORDING.items() if k != "recording_ref"}
    with pytest.raises(InvalidInputError) as refused:
        work(db, actor("sales1"), case_id, "recording", no_ref)
    assert "recording_ref" in refused.value.field_errors
    # the kind the table requires, handed to the insurer after it was made
    work(db, actor("sales1"), case_id, "recording", {**RECORDING, "recording_type": "全程录音"})
    assert data(db, case_id)["recording_problem"] == "录制方式应为“现场双录”"
    late = {**RECORDING, "sent_to_insurer_at": "2026-03-02T09:00:00+08:00"}
    work(db, actor("sales1"), case_id, "recording", late)
    assert data(db, case_id)["recording_problem"] == "移交保险公司时间早于录制时间"
    assert open_ids(db, case_id) == ["recording"]
    work(db, actor("sales1"), case_id, "recording", RECORDING)
    assert data(db, case_id)["recording_record"]["copy_kept"] is False  # R3 第12条
    assert open_ids(db, case_id) == ["signing"]
    work(db, actor("sales1"), case_id, "signing", SIGNING)
    assert runtime.get_instance(db, case_id).waiting_messages == ("sales_underwriting_result",)
    underwrite(db, case_id)
    work(db, actor("sales1"), case_id, "issuance", ISSUANCE)

    view = data(db, case_id)
    assert view["hesitation_days"] == 15
    assert view["callback_due"] == "2026-03-15"
    assert view["hesitation_ends"] == "2026-03-17"
    assert view["callback_required"] is True
    # what the callback reads (the contract with new_business_callback)
    assert {k: view[k] for k in CALLBACK_INPUTS} == CALLBACK_INPUTS
    # the audit: disclosure versions, recording reference and handover time
    versions = decision(db, case_id, "decide_disclosure_versions")["outputs"]
    assert versions == {
        "notice_version": "人身保险客户告知书 KHGZS-L-2026.01",
        "terms_version": "平安人寿 CI-20-A 条款（备案版本 2026.01）",
    }
    handover = submitted(db, case_id, "recording")[-1]
    assert (handover["recording_ref"], handover["sent_to_insurer_at"]) == (
        "SR-2026-000381",
        "2026-03-02T16:40:00+08:00",
    )
    assert view["business_record"]["notice_version"] == versions["notice_version"]
    assert view["business_record"]["seller_practice_no"] == DISCLOSURE["seller_practice_no"]
    # the callback (new_business_callback) calls from day 2, by customer service
    frozen_clock.set(datetime(2026, 3, 4, 2, 0, tzinfo=UTC))  # 10:00 China time
    fresh = Database(db.url)  # no hot workflow: the called process is restored from storage
    assert timers.run_once(fresh) == 1
    assert role_of(fresh, case_id, "callback") == "CS"
    answers: dict[str, object] = {**dict.fromkeys(CALLBACK_ANSWERS, True), "issue_found": False}
    answers |= {"call_result": "接通", "call_recording_ref": "CB-0001", "customer_complains": False}
    assert work(fresh, actor("cs1"), case_id, "callback", answers).status == runtime.COMPLETED
    fresh.dispose()
    final = events(db, case_id, "instance_completed")[0]["payload"]["data"]
    assert (final["callback_outcome"], final["sale_outcome"]) == ("已确认", "已承保")
    with db.read() as session:
        assert audit.verify(session).ok


CALLBACK_ANSWERS = [
    "identity_confirmed",
    "bought_and_signed_personally",
    "read_product_docs",
    "knows_coverage_exclusions_term",
    "knows_surrender_loss",
    "knows_cooling_off",
    "knows_pay_period_frequency",
    "recording_accepted_and_true",
]


@pytest.mark.parametrize(
    ("plan", "term", "retention"),
    [
        ({}, 20, "2056-03-02"),  # 10 years after the contract ends on 2046-03-02 (R1 第56条)
        ({"whole_life": True, "term_years": None}, None, None),  # counted once the contract ends
    ],
)
def test_policy_and_business_archive_are_recorded_at_delivery(
    db: Database, actor: ActorOf, plan: dict[str, Any], term: int | None, retention: str | None
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id, changes={"plan_design": {**PLAN, **plan}})
    underwrite(db, case_id)
    # the receipt cannot be signed before the policy takes effect: back to the seller
    work(db, actor("sales1"), case_id, "issuance", {**ISSUANCE, "effective_date": "2026-03-05"})
    assert data(db, case_id)["issuance_problem"] == "回执签收日期不得早于生效日期"
    work(db, actor("sales1"), case_id, "issuance", ISSUANCE)
    with db.read() as session:
        policy = session.get(Policy, "P2026030200088")
        item = session.get(ArchiveItem, "YW-P2026030200088")
    assert policy is not None
    assert item is not None
    assert (policy.term_years, policy.receipt_signed_date) == (term, "2026-03-02")
    assert policy.seller_id == actor("sales1").id
    assert (item.related_ref, item.retention_until) == ("P2026030200088", retention)
    assert "retention_months" not in data(db, case_id)
    operators = [e["payload"]["operator"] for e in events(db, case_id, "operator_called")]
    assert operators == ["customer_file", "policy_record", "archive_register"]


# --------------------------------------------------------------------------- plan review loop


def test_rejected_plans_go_back_to_design_and_every_round_is_counted(
    db: Database, actor: ActorOf
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id, until="plan_review")
    reject = {**REVIEW_OK, "plan_approved": False, "plan_review_comment": "超出授权区域"}
    work(db, actor("ops1"), case_id, "plan_review", reject)
    work(db, actor("sales1"), case_id, "plan_design", {**PLAN, "insurer": "中国人寿"})
    # approved, but a check failed: counted as a rejection
    work(db, actor("ops2"), case_id, "plan_review", {**REVIEW_OK, "terms_rates_approved": False})
    assert open_ids(db, case_id) == ["plan_design"]
    work(db, actor("sales1"), case_id, "plan_design", PLAN)
    work(db, actor("ops1"), case_id, "plan_review", REVIEW_OK)
    view = data(db, case_id)
    assert view["plan_review_rounds"] == 3
    rounds = [(r["round"], r["accepted"]) for r in view["plan_reviews"]]
    assert rounds == [(1, False), (2, False), (3, True)]
    assert view["plan_reviews"][0]["comment"] == "超出授权区域"
    assert view["plan_reviews"][1]["comment"].startswith("复核检查项未全部通过")
    assert open_ids(db, case_id) == ["disclosure"]


def test_nobody_reviews_their_own_sale_and_only_the_seller_works_it(
    db: Database, actor: ActorOf
) -> None:
    with db.unit_of_work() as session:
        identity.create_user(
            session, "sales_ops", "销售兼运营", password="x", roles=["SALES", "OPS"]
        )
    case_id = start(db, actor, "sales_ops")
    with pytest.raises(PermissionDeniedError):
        work(db, actor("sales2"), case_id, "register_lead", LEAD)
    drive(db, actor, case_id, until="plan_review", seller="sales_ops")
    with pytest.raises(PermissionDeniedError, match="申请人不得审批"):
        work(db, actor("sales_ops"), case_id, "plan_review", REVIEW_OK)
    drive(db, actor, case_id, "kyc_review", seller="sales_ops", first="plan_review")
    task_id = open_task(db, case_id, "kyc_review")
    with pytest.raises(PermissionDeniedError):
        runtime.complete_task(db, actor("sales_ops"), task_id, {"kyc_approved": True})
    denied = events(db, case_id, "permission_denied")
    assert [(e["actor"], e["task_id"]) for e in denied] == [
        ("sales2", "register_lead"),
        ("sales_ops", "plan_review"),
        ("sales_ops", "kyc_review"),
    ]
    work(db, actor("ops1"), case_id, "kyc_review", {"kyc_approved": True})
    assert open_ids(db, case_id) == ["health_declaration"]


# --------------------------------------------------------------------------- disclosure, risk test


def test_disclosure_must_match_the_plan_and_every_item_is_confirmed(
    db: Database, actor: ActorOf
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id, until="disclosure")
    with pytest.raises(InvalidInputError) as refused:
        work(db, actor("sales1"), case_id, "disclosure", {**DISCLOSURE, "terms_given": "否"})
    assert "terms_given" in refused.value.field_errors
    short = {**DISCLOSURE, "term_over_one_year": False}
    work(db, actor("sales1"), case_id, "disclosure", short)
    assert data(db, case_id)["disclosure_problem"].startswith("“保险期间超过一年”与方案不一致")
    assert open_ids(db, case_id) == ["disclosure"]
    work(db, actor("sales1"), case_id, "disclosure", DISCLOSURE)
    record = data(db, case_id)["disclosure_record"]
    assert record["notice_version"] == "人身保险客户告知书 KHGZS-L-2026.01"
    assert record["cash_value_explained"] == "是"
    assert open_ids(db, case_id) == ["kyc"]


def test_participating_products_need_the_risk_tolerance_test(db: Database, actor: ActorOf) -> None:
    case_id = start(db, actor)
    changes: dict[str, dict[str, Any]] = {
        "needs_analysis": {**NEEDS, "needs": ["年金"]},
        "plan_design": {**PLAN, "category": "分红", "product_code": "PAR-10"},
    }
    drive(db, actor, case_id, until="kyc", changes=changes)
    assert open_ids(db, case_id) == ["risk_assessment"]
    work(db, actor("sales1"), case_id, "risk_assessment", {"assessment_score": 58})
    assert open_ids(db, case_id) == ["kyc"]
    assert decision(db, case_id, "decide_risk_assessment")["inputs"] == {"险种类别": "分红"}


# --------------------------------------------------------------------------- acceptance scenario 2


def unaffordable(db: Database, actor: ActorOf) -> int:
    case_id = start(db, actor)
    changes: dict[str, dict[str, Any]] = {
        "needs_analysis": {**NEEDS, "affordable_annual_premium": "3000"},
        "plan_design": {**PLAN, "premium": "9000"},
    }
    drive(db, actor, case_id, until="kyc", changes=changes)
    assert open_ids(db, case_id) == ["advise_stop"]
    return case_id


WALKS = {
    "mismatch_reasons": ["缴费能力不足"],
    "termination_advised": "是",
    "customer_insists": False,
}
INSISTS = {**WALKS, "customer_insists": True, "risks_explained": "是"}


def test_scenario_2_insisting_needs_the_own_will_attachment(db: Database, actor: ActorOf) -> None:
    case_id = unaffordable(db, actor)
    with pytest.raises(InvalidInputError) as refused:
        work(db, actor("sales1"), case_id, "advise_stop", INSISTS)
    assert "own_will_confirmation" in refused.value.field_errors
    assert open_ids(db, case_id) == ["advise_stop"]
    confirmed = {**INSISTS, "own_will_confirmation": [OWN_WILL]}
    work(db, actor("sales1"), case_id, "advise_stop", confirmed)
    assert open_ids(db, case_id) == ["kyc"]
    made = decision(db, case_id, "decide_suitability")
    assert made["outputs"] == {
        "advise_stop": True,
        "suitability_finding": "缴费能力不足：年化保费高于可负担年缴保费",
    }
    [advice] = submitted(db, case_id, "advise_stop")
    assert (advice["customer_insists"], advice["own_will_confirmation"]) == (True, [OWN_WILL])
    assert data(db, case_id)["suitability_record"]["own_will_confirmation"] == [OWN_WILL]
    [gateway] = events(db, case_id, "gateway_taken", "gw_insists")
    assert gateway["payload"]["to"] == ["kyc"]


def test_scenario_2_a_customer_who_does_not_insist_is_not_sold(
    db: Database, actor: ActorOf
) -> None:
    case_id = unaffordable(db, actor)
    assert work(db, actor("sales1"), case_id, "advise_stop", WALKS).status == runtime.COMPLETED
    [done] = events(db, case_id, "instance_completed")
    assert done["payload"]["data"]["sale_outcome"] == "未成交"
    [gateway] = events(db, case_id, "gateway_taken", "gw_insists")
    assert gateway["payload"]["to"] == ["end_not_sold"]


# --------------------------------------------------------------------------- KYC


@pytest.mark.parametrize(
    ("kyc", "review"),
    [
        ({"identity_verified": False, "verify_note": "联网核查照片不一致"}, None),
        ({}, {"kyc_approved": False, "kyc_review_comment": "证件影像模糊，无法确认"}),
    ],
)
def test_a_kyc_failure_ends_the_sale_and_notifies_the_deputy_manager(
    db: Database, actor: ActorOf, kyc: dict[str, Any], review: dict[str, Any] | None
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id, until="kyc")
    work(db, actor("sales1"), case_id, "kyc", {**KYC, **kyc})
    if review:
        work(db, actor("ops1"), case_id, "kyc_review", review)
    assert role_of(db, case_id, "notify_ddm_kyc") == "DDM"
    assert open_ids(db, case_id) == ["notify_ddm_kyc"]  # nobody is served further
    assert work(db, actor("ddm1"), case_id, "notify_ddm_kyc").status == runtime.COMPLETED
    final = data(db, case_id)
    assert final["sale_outcome"] == "身份核实未通过"
    reason = kyc["verify_note"] if review is None else review["kyc_review_comment"]
    assert final["kyc_failure"] == reason
    assert "customer_file_result" not in final


# --------------------------------------------------------------------------- health, recording


def test_a_younger_applicant_signs_without_a_recording(db: Database, actor: ActorOf) -> None:
    case_id = start(db, actor)
    younger = {**KYC, "id_no": "110101197001010016", "birth_date": "1970-01-01"}
    drive(db, actor, case_id, until="recording", changes={"kyc": younger})
    assert data(db, case_id)["recording_required"] == "无"
    assert open_ids(db, case_id) == ["signing"]
    work(db, actor("sales1"), case_id, "signing", SIGNING)
    assert data(db, case_id)["recorded"] is False


def test_motor_insurance_skips_health_and_gets_a_30_day_service_callback(
    db: Database, actor: ActorOf
) -> None:
    case_id = start(db, actor)
    motor = {**PLAN, "category": "车险", "term_years": 1, "pay_mode": "趸缴", "pay_years": None}
    changes: dict[str, dict[str, Any]] = {
        "needs_analysis": {**NEEDS, "needs": ["车辆"]},
        "plan_design": motor,
    }
    short = {**DISCLOSURE, "term_over_one_year": False}
    drive(db, actor, case_id, until="disclosure", changes=changes)
    work(db, actor("sales1"), case_id, "disclosure", short)
    drive(db, actor, case_id, "health_declaration", first="kyc")
    assert open_ids(db, case_id) == ["signing"]  # no health questions, no recording
    work(db, actor("sales1"), case_id, "signing", SIGNING)
    underwrite(db, case_id)
    work(db, actor("sales1"), case_id, "issuance", ISSUANCE)
    view = data(db, case_id)
    assert (view["hesitation_days"], view["callback_type"]) == (0, "服务回访")
    assert view["callback_due"] == "2026-04-01"
    assert (view["installments"], view["recorded"]) == (False, False)
    assert "health_consent" not in view


# --------------------------------------------------------------------------- insurer


def test_insurer_sla_timers_escalate_without_interrupting_the_wait(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id)
    view = data(db, case_id)
    assert view["uw_remind_at"] == "2026-03-09T23:59:59.999999+08:00"  # 5 working days
    assert view["uw_overdue_at"] == "2026-03-23T23:59:59.999999+08:00"  # 15 working days
    frozen_clock.set(datetime(2026, 3, 9, 15, 59, 59, tzinfo=UTC))
    assert timers.run_once(db) == 0
    frozen_clock.advance(timedelta(seconds=1))
    assert timers.run_once(db) == 1
    assert role_of(db, case_id, "chase_insurer") == "OPS"
    frozen_clock.set(datetime(2026, 3, 23, 16, 0, tzinfo=UTC))
    assert timers.run_once(db) == 1
    assert role_of(db, case_id, "escalate_underwriting") == "DDM"
    fired = [(e["task_id"], e["payload"]["due"]) for e in events(db, case_id, "timer_fired")]
    assert fired == [
        ("sla_exam_notice", "2026-03-09T23:59:59.999999+08:00"),
        ("sla_issue", "2026-03-23T23:59:59.999999+08:00"),
    ]
    # the insurer still answers; the escalations are worked off separately
    underwrite(db, case_id, underwriting_decided_at="2026-03-24T10:00:00+08:00")
    assert sorted(open_ids(db, case_id)) == ["chase_insurer", "escalate_underwriting", "issuance"]
    work(db, actor("ops1"), case_id, "chase_insurer")
    work(db, actor("ddm1"), case_id, "escalate_underwriting")
    assert open_ids(db, case_id) == ["issuance"]


def test_a_medical_exam_rearms_the_decision_deadline(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id)
    exam = {"underwriting_result": "体检", "exam_report_date": "2026-03-02"}
    underwrite(db, case_id, **exam)
    view = runtime.get_instance(db, case_id)
    assert view.data["uw_stage"] == "exam"
    assert dict(view.waiting_timers)["sla_issue"] == datetime(2026, 3, 23, 15, 59, 59, 999999, UTC)
    assert view.waiting_messages == ("sales_underwriting_result",)
    frozen_clock.set(datetime(2026, 3, 10, 1, 0, tzinfo=UTC))
    assert timers.run_once(db) == 0  # no exam-notice reminder once the insurer asked for one
    underwrite(db, case_id)
    assert [h["result"] for h in data(db, case_id)["underwriting_history"]] == ["体检", "承保"]
    assert open_ids(db, case_id) == ["issuance"]


def test_a_declined_application_is_explained_to_the_customer(db: Database, actor: ActorOf) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id)
    with pytest.raises(InvalidInputError):
        underwrite(db, case_id, underwriting_result="拒保")  # the reason is required
    underwrite(db, case_id, underwriting_result="拒保", decline_reason="既往病史不符合承保条件")
    assert open_ids(db, case_id) == ["inform_declined"]
    assert work(db, actor("sales1"), case_id, "inform_declined").status == runtime.COMPLETED
    final = events(db, case_id, "instance_completed")[0]["payload"]["data"]
    assert final["sale_outcome"] == "拒保"
    assert "message_received" in history_types(db, case_id)
