"""P1 (customer development and sale) and P3 (claims assistance): the task forms accept realistic
submissions and reject what the specification rules out, and the decision tables pass the
deploy-time checks, cover their input space exactly and give the specification's answers."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine import bpmn, forms, runtime, sandbox
from engine.config import PROJECT_ROOT
from engine.definitions import dmn_checks, registry
from engine.errors import InvalidInputError
from engine.people import identity
from engine.storage.db import Database
from engine.timekeeping import workdays
from tests.diagrams import process, sequence

pytestmark = pytest.mark.usefixtures("frozen_clock")

FORMS_DIR = PROJECT_ROOT / "forms"
PROCESSES = PROJECT_ROOT / "processes"
TODAY = date(2026, 3, 2)
FILE_A = hashlib.sha256(b"own-will-confirmation.pdf").hexdigest()
FILE_B = hashlib.sha256(b"diagnosis.pdf").hexdigest()
FILE_C = hashlib.sha256(b"invoice.pdf").hexdigest()
# 王秀英, born 1963-05-12 (62 on 2026-03-02); her son, born 1988-08-08.
APPLICANT_ID = "110101196305120025"
SON_ID = "110105198808080031"
DROP = object()  # in a change set: leave the field out of the submission

# The script a BPMN author runs after KYC (the sandbox cannot read the clock, so the age is taken
# on the verification date, which the KYC form records).
AGE_SCRIPT = (
    "applicant_age = verified_on.year - birth_date.year"
    " - ((verified_on.month, verified_on.day) < (birth_date.month, birth_date.day))"
)

DECISIONS = (
    "recording_required",
    "risk_assessment_required",
    "suitability",
    "hesitation_days",
    "callback_required",
    "claim_documents",
    "insurer_sla",
    "limitation_years",
)

# --------------------------------------------------------------------------- realistic submissions

VALID: dict[str, dict[str, Any]] = {
    "sales_lead_register": {
        "customer_name": "王秀英",
        "mobile": "139 1234 5678",
        "channel": "转介绍",
        "pi_notice_given": "是",
        "contact_consent": True,
        "note": "女儿介绍，关注重疾保障",
    },
    "sales_needs_analysis": {
        "needs": ["重疾", "医疗"],
        "risk_profile": "稳健",
        "annual_income": "96000",
        "affordable_annual_premium": "12000",
        "existing_similar_cover": "城乡居民医保；无商业重疾险",
        "dependents": 0,
        "preferences": "希望保障到 82 岁",
    },
    "sales_plan_design": {
        "product_code": "CI-20-A",
        "product_name": "安康重大疾病保险",
        "insurer": "某某人寿保险股份有限公司",
        "category": "长期健康",
        "sales_channel": "线下",
        "term_years": 20,
        "sum_insured": "200000",
        "premium": "8600",
        "pay_mode": "年缴",
        "pay_years": 10,
        "duplicate_or_excess_cover": False,
    },
    "sales_plan_review": {
        "in_authorised_scope": True,
        "seller_grade_allows": True,
        "terms_rates_approved": True,
        "plan_approved": True,
    },
    "sales_disclosure": {
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
    },
    "sales_risk_assessment": {"assessment_score": 64, "assessment_record": [FILE_A]},
    "sales_suitability": {
        "mismatch_reasons": ["缴费能力不足"],
        "termination_advised": "是",
        "customer_insists": True,
        "risks_explained": "是",
        "own_will_confirmation": [FILE_A],
    },
    "sales_kyc": {
        "id_type": "居民身份证",
        "id_no": APPLICANT_ID,
        "birth_date": "1963-05-12",
        "id_long_term": True,
        "occupation": "退休教师",
        "address": "北京市东城区东华门大街 1 号",
        "verify_method": "联网核查",
        "identity_verified": True,
        "verified_on": "2026-03-02",
        "insured_is_applicant": True,
        "death_cover": False,
        "beneficiary_is_applicant": False,
        "beneficiary_name": "李明",
        "beneficiary_id_type": "居民身份证",
        "beneficiary_id_no": SON_ID,
    },
    "sales_kyc_review": {"kyc_approved": True},
    "sales_health_declaration": {
        "sensitive_pi_consent": "同意",
        "questionnaire_version": "HQ-2026-01",
        "answers": [
            {"question_no": "1", "question": "过去两年内是否住院？", "answer": "否"},
            {
                "question_no": "2",
                "question": "是否患有高血压？",
                "answer": "是",
                "answer_detail": "2019 年确诊，服药控制良好",
            },
        ],
        "abnormal": True,
        "details": "高血压，服药控制",
    },
    "sales_recording": {
        "recording_type": "现场双录",
        "recording_ref": "SR-2026-000381",
        "recorded_at": "2026-03-02T10:15:00+08:00",
        "sent_to_insurer_at": "2026-03-02T16:40:00+08:00",
    },
    "sales_signing": {
        "application_no": "TB2026030200017",
        "signed_in_person": "是",
        "payer_is_applicant": "是",
        "premium_route": "投保人直接缴付保险公司",
        "signed_at": "2026-03-02T11:00:00+08:00",
    },
    "sales_underwriting_result": {
        "underwriting_result": "承保",
        "underwriting_decided_at": "2026-03-02T15:00:00+08:00",
        "insurer_ref": "UW-88231",
    },
    "sales_issuance": {
        "policy_no": "P2026030200088",
        "effective_date": "2026-02-26",
        "receipt_signed_date": "2026-03-02",
        "receipt_doc": [FILE_C],
    },
    "claim_report": {
        "policy_no": "P2024110500031",
        "insurer": "某某人寿保险股份有限公司",
        "policy_category": "长期健康",
        "insured_name": "张伟",
        "reporter_name": "张伟",
        "reporter_mobile": "+86 138-0013-8000",
        "reporter_relation": "被保险人本人",
        "loss_date": "2026-02-20",
        "known_date": "2026-02-21",
        "claim_type": "重疾",
        "description": "2 月 20 日体检发现肿块，21 日病理确诊恶性肿瘤。",
        "estimated_amount": "300000",
    },
    "claim_document_collection": {
        "documents": [
            {
                "document": "诊断证明",
                "received": True,
                "attachment": [FILE_B],
                "received_at": "2026-02-27T09:00:00+08:00",
            },
            {"document": "病理报告", "received": False},
        ],
    },
    "claim_submission": {
        "insurer_claim_no": "LP-2026-00912",
        "submitted_at": "2026-03-02T10:00:00+08:00",
        "documents_sent": [FILE_B, FILE_C],
        "simple_claim": True,
    },
    "claim_insurer_feedback": {
        "feedback_status": "赔付",
        "feedback_at": "2026-03-02T09:30:00+08:00",
        "amount": "300000.00",
        "agreement_date": "2026-03-01",
    },
    "claim_chase": {
        "chased_at": "2026-03-02T09:30:00+08:00",
        "chase_method": "电话",
        "insurer_contact": "理赔部刘女士",
        "insurer_response": "已进入复核，预计三个工作日内核定",
        "next_follow_up": "2026-03-05",
    },
    "claim_payment_confirmation": {
        "paid_amount": "300000.00",
        "paid_at": "2026-03-02",
        "payee_role": "被保险人",
        "payee_name": "张伟",
        "payee_own_account": "是",
        "payment_proof": [FILE_C],
    },
    "claim_rejection_explanation": {
        "explained_at": "2026-03-02T14:00:00+08:00",
        "explanation_method": "面谈",
        "complaint_offered": "是",
        "customer_response": "有异议",
        "start_complaint": True,
    },
    "claim_closure": {"closure_reason": "已赔付", "satisfaction": 5, "comment": "到账及时"},
}


def load(key: str) -> forms.FormDefinition:
    path = FORMS_DIR / f"{key}.json"
    return forms.load_form(path.read_bytes(), path.name)


def submit(key: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {**VALID[key], **(changes or {})}
    return forms.validate(load(key), {k: v for k, v in data.items() if v is not DROP}, today=TODAY)


def field_errors(key: str, changes: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(InvalidInputError) as caught:
        submit(key, changes)
    return caught.value.field_errors


def test_every_p1_and_p3_form_has_a_submission_here() -> None:
    on_disk = {p.stem for p in FORMS_DIR.glob("*.json") if p.stem.startswith(("sales_", "claim_"))}
    assert on_disk == set(VALID)


@pytest.mark.parametrize("key", sorted(VALID))
def test_form_loads_and_accepts_a_realistic_submission(key: str) -> None:
    form = load(key)
    assert form.key == key
    assert all(field.label.get("en") for field in form.fields)
    cleaned = submit(key)
    assert forms.validate(form, forms.to_json_data(cleaned), today=TODAY) == cleaned


# (form, changes, field, message): each a case the specification rules out.
REJECTED = [
    ("sales_lead_register", {"mobile": "12345678901"}, "mobile", "请输入有效的手机号码"),
    ("sales_lead_register", {"customer_name": "王"}, "customer_name", "至少需要 2 个字符"),
    ("sales_lead_register", {"contact_consent": DROP}, "contact_consent", "此项为必填项"),
    ("sales_lead_register", {"pi_notice_given": "否"}, "pi_notice_given", "请从选项中选择"),
    ("sales_needs_analysis", {"needs": []}, "needs", "此项为必填项"),
    (
        "sales_needs_analysis",
        {"affordable_annual_premium": "-1"},
        "affordable_annual_premium",
        "不得小于 0.00",
    ),
    (
        "sales_needs_analysis",
        {"existing_similar_cover": " "},
        "existing_similar_cover",
        "此项为必填项",
    ),
    ("sales_plan_design", {"term_years": DROP}, "term_years", "此项为必填项"),
    ("sales_plan_design", {"term_years": 0}, "term_years", "不得小于 1"),
    ("sales_plan_design", {"premium": "0"}, "premium", "不得小于 0.01"),
    ("sales_plan_design", {"premium": "8600.005"}, "premium", "最多两位小数"),
    ("sales_plan_design", {"pay_years": DROP}, "pay_years", "此项为必填项"),
    ("sales_plan_design", {"sales_channel": "上门"}, "sales_channel", "请从选项中选择"),
    ("sales_plan_review", {"plan_approved": False}, "plan_review_comment", "此项为必填项"),
    ("sales_disclosure", {"exclusions_explained": DROP}, "exclusions_explained", "此项为必填项"),
    (
        "sales_disclosure",
        {"cooling_off_explained": "否"},
        "cooling_off_explained",
        "请从选项中选择",
    ),
    ("sales_disclosure", {"cash_value_explained": DROP}, "cash_value_explained", "此项为必填项"),
    ("sales_risk_assessment", {"assessment_score": 101}, "assessment_score", "不得大于 100"),
    # acceptance scenario 2: insisting without the own-will attachment is rejected
    ("sales_suitability", {"own_will_confirmation": DROP}, "own_will_confirmation", "此项为必填项"),
    ("sales_suitability", {"risks_explained": DROP}, "risks_explained", "此项为必填项"),
    ("sales_kyc", {"id_no": APPLICANT_ID[:-1] + "4"}, "id_no", "身份证号码校验位不正确"),
    ("sales_kyc", {"id_no": "110101196302300028"}, "id_no", "身份证号码中的出生日期无效"),
    (
        "sales_kyc",
        {"id_long_term": False, "id_expiry": "2026-03-01"},
        "id_expiry",
        "日期不得早于 2026-03-02",
    ),
    ("sales_kyc", {"id_long_term": False}, "id_expiry", "此项为必填项"),
    ("sales_kyc", {"id_type": "护照", "id_no": DROP}, "other_id_no", "此项为必填项"),
    ("sales_kyc", {"verified_on": "2026-03-03"}, "verified_on", "日期不得晚于 2026-03-02"),
    ("sales_kyc", {"identity_verified": False}, "verify_note", "此项为必填项"),
    (
        "sales_kyc",
        {"insured_is_applicant": False, "death_cover": True},
        "insured_consent_doc",
        "此项为必填项",
    ),
    ("sales_kyc", {"insured_is_applicant": False}, "insured_name", "此项为必填项"),
    (
        "sales_kyc",
        {"beneficiary_id_no": SON_ID[:-1] + "2"},
        "beneficiary_id_no",
        "身份证号码校验位不正确",
    ),
    ("sales_kyc", {"beneficiary_id_type": DROP}, "beneficiary_id_type", "此项为必填项"),
    ("sales_kyc_review", {"kyc_approved": False}, "kyc_review_comment", "此项为必填项"),
    (
        "sales_health_declaration",
        {"sensitive_pi_consent": DROP},
        "sensitive_pi_consent",
        "此项为必填项",
    ),
    (
        "sales_health_declaration",
        {"sensitive_pi_consent": "不同意"},
        "sensitive_pi_consent",
        "请从选项中选择",
    ),
    ("sales_health_declaration", {"details": DROP}, "details", "此项为必填项"),
    (
        "sales_health_declaration",
        {"answers": [{"question_no": "1", "question": "是否吸烟？", "answer": "是"}]},
        "answers[0].answer_detail",
        "此项为必填项",
    ),
    ("sales_recording", {"recording_ref": DROP}, "recording_ref", "此项为必填项"),
    (
        "sales_recording",
        {"sent_to_insurer_at": "2026-03-02 16:40"},
        "sent_to_insurer_at",
        "请输入带时区的日期时间（如 2026-08-27T09:30:00+08:00）",
    ),
    ("sales_signing", {"signed_in_person": DROP}, "signed_in_person", "此项为必填项"),
    ("sales_signing", {"payer_is_applicant": "否"}, "payer_is_applicant", "请从选项中选择"),
    (
        "sales_underwriting_result",
        {"underwriting_result": "拒保"},
        "decline_reason",
        "此项为必填项",
    ),
    (
        "sales_issuance",
        {"receipt_signed_date": "2026-03-03"},
        "receipt_signed_date",
        "日期不得晚于 2026-03-02",
    ),
    ("claim_report", {"loss_date": "2026-03-03"}, "loss_date", "日期不得晚于 2026-03-02"),
    ("claim_report", {"known_date": "2026-03-05"}, "known_date", "日期不得晚于 2026-03-02"),
    ("claim_report", {"claim_type": "宠物"}, "claim_type", "请从选项中选择"),
    (
        "claim_report",
        {"reporter_mobile": "010-12345678"},
        "reporter_mobile",
        "请输入有效的手机号码",
    ),
    ("claim_report", {"estimated_amount": "-0.01"}, "estimated_amount", "不得小于 0.00"),
    (
        "claim_document_collection",
        {"documents": [{"document": "病历", "received": True}]},
        "documents[0].attachment",
        "此项为必填项",
    ),
    (
        "claim_document_collection",
        {"documents": [{"document": "病历", "received": False}] * 2},
        "documents[1].document",
        "与第 1 行重复",
    ),
    ("claim_submission", {"documents_sent": []}, "documents_sent", "此项为必填项"),
    ("claim_submission", {"documents_sent": ["not-a-hash"]}, "documents_sent", "附件标识无效"),
    ("claim_insurer_feedback", {"feedback_status": "拒赔"}, "notice", "此项为必填项"),
    ("claim_insurer_feedback", {"feedback_status": "拒赔"}, "rejection_reason", "此项为必填项"),
    ("claim_insurer_feedback", {"amount": DROP}, "amount", "此项为必填项"),
    (
        "claim_insurer_feedback",
        {"feedback_status": "补充材料"},
        "missing_documents",
        "此项为必填项",
    ),
    ("claim_chase", {"next_follow_up": "2026-03-01"}, "next_follow_up", "日期不得早于 2026-03-02"),
    ("claim_payment_confirmation", {"payee_role": "代理人"}, "payee_role", "请从选项中选择"),
    ("claim_payment_confirmation", {"paid_amount": "0"}, "paid_amount", "不得小于 0.01"),
    (
        "claim_payment_confirmation",
        {"payee_own_account": DROP},
        "payee_own_account",
        "此项为必填项",
    ),
    ("claim_rejection_explanation", {"start_complaint": DROP}, "start_complaint", "此项为必填项"),
    ("claim_closure", {"satisfaction": 6}, "satisfaction", "不得大于 5"),
]


@pytest.mark.parametrize(
    ("key", "changes", "field", "message"),
    REJECTED,
    ids=[f"{key}-{field}-{n}" for n, (key, _c, field, _m) in enumerate(REJECTED)],
)
def test_form_rejects_what_the_specification_rules_out(
    key: str, changes: dict[str, Any], field: str, message: str
) -> None:
    assert message in field_errors(key, changes).get(field, [])


def test_every_form_field_that_the_rejections_name_exists() -> None:
    for key, _changes, field, _message in REJECTED:
        top = field.split("[")[0]
        assert load(key).field(top), (key, field)


def test_conditional_fields_are_only_asked_when_they_apply() -> None:
    whole_life = submit("sales_plan_design", {"whole_life": True, "term_years": DROP})
    assert whole_life["term_years"] is None
    single = submit("sales_plan_design", {"pay_mode": "趸缴", "pay_years": DROP})
    assert single["pay_years"] is None
    short = submit(
        "sales_disclosure",
        {
            "term_over_one_year": False,
            "cash_value_explained": DROP,
            "product_description_given": DROP,
        },
    )
    assert short["cash_value_explained"] is None
    walks_away = submit(
        "sales_suitability",
        {"customer_insists": False, "risks_explained": DROP, "own_will_confirmation": DROP},
    )
    assert walks_away["own_will_confirmation"] is None
    healthy = submit(
        "sales_health_declaration",
        {
            "abnormal": False,
            "details": DROP,
            "answers": VALID["sales_health_declaration"]["answers"][:1],
        },
    )
    assert healthy["details"] is None
    accepted = submit(
        "claim_rejection_explanation", {"customer_response": "接受", "start_complaint": DROP}
    )
    assert accepted["start_complaint"] is None


def test_kyc_asks_for_the_documents_that_fit_the_case() -> None:
    resident = submit("sales_kyc")
    assert resident["id_no"] == APPLICANT_ID
    assert "other_id_no" not in resident
    assert "id_expiry" not in resident  # a long-term resident ID has no expiry date
    assert "insured_name" not in resident
    assert "insured_consent_doc" not in resident  # no death cover
    passport = submit("sales_kyc", {"id_type": "护照", "id_no": DROP, "other_id_no": "E12345678"})
    assert "id_no" not in passport
    # death cover on the applicant's own life needs no separate consent (保险法第34条)
    own_life = submit("sales_kyc", {"death_cover": True})
    assert own_life["insured_consent_doc"] is None
    son_insured = submit(
        "sales_kyc",
        {
            "insured_is_applicant": False,
            "insured_name": "李明",
            "insured_id_type": "居民身份证",
            "insured_id_no": SON_ID,
            "death_cover": True,
            "insured_consent_doc": [FILE_A],
        },
    )
    assert son_insured["insured_consent_doc"] == [FILE_A]
    statutory = submit(
        "sales_kyc",
        {
            "beneficiary_statutory": True,
            "beneficiary_name": DROP,
            "beneficiary_id_type": DROP,
            "beneficiary_id_no": DROP,
        },
    )
    assert statutory["beneficiary_name"] is None
    myself = submit(
        "sales_kyc",
        {
            "beneficiary_is_applicant": True,
            "beneficiary_name": DROP,
            "beneficiary_id_type": DROP,
            "beneficiary_id_no": DROP,
        },
    )
    assert "beneficiary_name" not in myself


def test_only_telephone_sales_recordings_may_be_kept_by_the_agency() -> None:
    onsite = submit("sales_recording", {"recording_file": [FILE_A]})
    assert "recording_file" not in onsite
    phone = submit("sales_recording", {"recording_type": "全程录音", "recording_file": [FILE_A]})
    assert phone["recording_file"] == [FILE_A]


# --------------------------------------------------------------------------- decision tables


def dmn_text(decision: str) -> str:
    return (PROCESSES / f"{decision}.dmn").read_text(encoding="utf-8")


@pytest.mark.parametrize("decision", DECISIONS)
def test_decision_table_passes_the_deploy_checks(decision: str) -> None:
    xml = dmn_text(decision)
    assert registry.check_dmn(xml, f"{decision}.dmn") == []
    assert 'xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"' in xml
    assert f'<decision id="{decision}"' in xml
    [(decision_id, table)] = bpmn.dmn_tables(xml, f"{decision}.dmn")
    assert decision_id == decision
    for rule in table.rules:
        assert re.search(r"R\d+ 第", rule.description) or "公司可配置" in rule.description, rule.id


def decide(db: Database, data: dict[str, Any], *decisions: str) -> dict[str, Any]:
    """Run the decision tables in order, through a deployed process, and return the case data."""
    key = "decide_" + "_".join(decisions)
    tasks = "".join(
        f'<bpmn:businessRuleTask id="{d}" name="{d}"><bpmn:extensionElements>'
        f"<spiffworkflow:calledDecisionId>{d}</spiffworkflow:calledDecisionId>"
        "</bpmn:extensionElements></bpmn:businessRuleTask>"
        for d in decisions
    )
    xml = process(
        key,
        '<bpmn:startEvent id="start"/>'
        + tasks
        + '<bpmn:endEvent id="end"/>'
        + sequence("start", *decisions, "end"),
    )
    dmn = {f"{d}.dmn": dmn_text(d) for d in decisions}
    with db.unit_of_work() as session:
        registry.deploy(
            session, identity.SYSTEM, registry.ProcessFiles(f"{key}.bpmn", xml, dmn, {})
        )
    started = runtime.start_instance(db, identity.SYSTEM, key, data)
    assert started.error is None, started.error
    assert started.status == "completed"
    return dict(runtime.get_instance(db, started.id).data)


def plan(category: str, term_years: int | None, **more: Any) -> dict[str, Any]:
    return {
        "category": category,
        "whole_life": term_years is None,
        "term_years": term_years,
        **more,
    }


CASES = [
    # acceptance scenario 1: 62-year-old, 20-year critical illness, face to face
    (
        "recording_required",
        plan("长期健康", 20, sales_channel="线下", applicant_age=62),
        {"recording_required": "现场双录"},
    ),
    (
        "recording_required",
        plan("普通寿险", None, sales_channel="线下", applicant_age=60),
        {"recording_required": "现场双录"},
    ),
    (
        "recording_required",
        plan("普通寿险", 20, sales_channel="线下", applicant_age=59),
        {"recording_required": "无"},
    ),
    (
        "recording_required",
        plan("投连", 10, sales_channel="线下", applicant_age=35),
        {"recording_required": "现场双录"},
    ),
    (
        "recording_required",
        plan("意外", 1, sales_channel="线下", applicant_age=70),
        {"recording_required": "无"},
    ),
    (
        "recording_required",
        plan("车险", 1, sales_channel="线下", applicant_age=70),
        {"recording_required": "无"},
    ),
    (
        "recording_required",
        plan("长期健康", 20, sales_channel="电话", applicant_age=62),
        {"recording_required": "全程录音"},
    ),
    (
        "recording_required",
        plan("财产", 1, sales_channel="互联网", applicant_age=40),
        {"recording_required": "互联网可回溯"},
    ),
    ("risk_assessment_required", {"category": "投连"}, {"risk_assessment_required": True}),
    ("risk_assessment_required", {"category": "万能"}, {"risk_assessment_required": True}),
    ("risk_assessment_required", {"category": "分红"}, {"risk_assessment_required": True}),
    ("risk_assessment_required", {"category": "长期健康"}, {"risk_assessment_required": False}),
    # acceptance scenario 2: affordable 3,000 against a 9,000 premium
    (
        "suitability",
        {
            "category": "长期健康",
            "needs": ["重疾"],
            "premium": Decimal("9000.00"),
            "pay_mode": "年缴",
            "affordable_annual_premium": Decimal("3000.00"),
            "duplicate_or_excess_cover": False,
        },
        {"advise_stop": True, "suitability_finding": "缴费能力不足：年化保费高于可负担年缴保费"},
    ),
    (
        "suitability",
        {
            "category": "长期健康",
            "needs": ["重疾", "医疗"],
            "premium": Decimal("8600.00"),
            "pay_mode": "年缴",
            "affordable_annual_premium": Decimal("12000.00"),
            "duplicate_or_excess_cover": False,
        },
        {"advise_stop": False},
    ),
    (
        "suitability",
        {
            "category": "长期健康",
            "needs": ["重疾"],
            "premium": Decimal("12000.00"),
            "pay_mode": "年缴",
            "affordable_annual_premium": Decimal("12000.00"),
            "duplicate_or_excess_cover": False,
        },
        {"advise_stop": False},
    ),
    (
        "suitability",
        {
            "category": "短期健康",
            "needs": ["医疗"],
            "premium": Decimal("900.00"),
            "pay_mode": "月缴",
            "affordable_annual_premium": Decimal("10000.00"),
            "duplicate_or_excess_cover": False,
        },
        {"advise_stop": True},
    ),
    (
        "suitability",
        {
            "category": "投连",
            "needs": ["重疾", "医疗"],
            "premium": Decimal("5000.00"),
            "pay_mode": "年缴",
            "affordable_annual_premium": Decimal("12000.00"),
            "duplicate_or_excess_cover": False,
        },
        {"advise_stop": True, "suitability_finding": "方案与客户需求明显不匹配"},
    ),
    (
        "suitability",
        {
            "category": "意外",
            "needs": ["意外"],
            "premium": Decimal("300.00"),
            "pay_mode": "趸缴",
            "affordable_annual_premium": Decimal("1000.00"),
            "duplicate_or_excess_cover": True,
        },
        {"advise_stop": True, "suitability_finding": "重复投保或超额投保"},
    ),
    ("hesitation_days", plan("长期健康", 20), {"hesitation_days": 15}),
    ("hesitation_days", plan("长期健康", 1), {"hesitation_days": 15}),
    ("hesitation_days", plan("普通寿险", None), {"hesitation_days": 15}),
    ("hesitation_days", plan("意外", 1), {"hesitation_days": 0}),
    ("hesitation_days", plan("车险", 1), {"hesitation_days": 0}),
    ("limitation_years", {"policy_category": "普通寿险"}, {"limitation_years": 5}),
    ("limitation_years", {"policy_category": "万能"}, {"limitation_years": 5}),
    ("limitation_years", {"policy_category": "长期健康"}, {"limitation_years": 2}),
    (
        "limitation_years",
        {"policy_category": "车险"},
        {"limitation_years": 2, "limitation_warn_days": 90},
    ),
    (
        "insurer_sla",
        {"claim_type": "医疗", "simple_claim": True},
        {"insurer_decision_deadline": "5 workdays", "payment_deadline": "10 days"},
    ),
    (
        "insurer_sla",
        {"claim_type": "身故", "simple_claim": False},
        {"insurer_decision_deadline": "30 days", "rejection_notice_deadline": "3 days"},
    ),
    (
        "insurer_sla",
        {"claim_type": "车险", "simple_claim": True},
        {"insurer_decision_deadline": "30 days", "advance_payment_after": "60 days"},
    ),
]


@pytest.mark.parametrize(
    ("decision", "data", "expected"),
    CASES,
    ids=[f"{decision}-{n}" for n, (decision, _d, _e) in enumerate(CASES)],
)
def test_decision_table_gives_the_specification_answer(
    db: Database, decision: str, data: dict[str, Any], expected: dict[str, Any]
) -> None:
    result = decide(db, data, decision)
    assert {name: result.get(name) for name in expected} == expected


BASIC_DOCUMENTS = ["理赔申请书", "身份证明", "银行卡"]
MEDICAL_DOCUMENTS = ["病历", "医疗费用发票", "费用明细清单", "诊断证明"]


@pytest.mark.parametrize(
    ("claim_type", "documents"),
    [
        ("医疗", BASIC_DOCUMENTS + MEDICAL_DOCUMENTS),
        ("重疾", [*BASIC_DOCUMENTS, *MEDICAL_DOCUMENTS, "病理报告"]),
        ("身故", [*BASIC_DOCUMENTS, "死亡证明", "户籍注销证明", "受益人关系证明"]),
        ("车险", [*BASIC_DOCUMENTS, "事故责任认定书", "行驶证、驾驶证", "维修发票"]),
    ],
)
def test_claim_documents_collects_every_document_the_claim_needs(
    db: Database, claim_type: str, documents: list[str]
) -> None:
    result = decide(db, {"claim_type": claim_type}, "claim_documents")
    assert result["required_documents"] == documents


def test_callback_is_due_two_days_before_the_cooling_off_period_ends(db: Database) -> None:
    receipt = date(2026, 3, 2)
    result = decide(db, plan("长期健康", 20), "hesitation_days", "callback_required")
    assert result["hesitation_days"] == 15
    assert result["callback_required"] is True
    assert result["callback_type"] == "犹豫期回访"
    assert receipt + timedelta(days=result["callback_due_days"]) == date(2026, 3, 15)
    one_year = decide(db, plan("短期健康", 1), "hesitation_days", "callback_required")
    assert (one_year["callback_type"], one_year["callback_due_days"]) == ("服务回访", 30)
    motor = decide(db, plan("车险", 1), "hesitation_days", "callback_required")
    assert (motor["callback_type"], motor["callback_due_days"]) == ("服务回访", 30)


def test_acceptance_scenario_1_from_the_submitted_forms(db: Database) -> None:
    """王秀英, 62: the cleaned forms, the age script and the tables give 现场双录 and 15 days."""
    data: dict[str, Any] = {}
    for key in ("sales_needs_analysis", "sales_plan_design", "sales_kyc"):
        data.update(submit(key))
    sandbox.execute(AGE_SCRIPT, data)
    assert data["applicant_age"] == 62
    result = decide(
        db,
        data,
        "risk_assessment_required",
        "suitability",
        "recording_required",
        "hesitation_days",
        "callback_required",
    )
    assert result["risk_assessment_required"] is False
    assert result["advise_stop"] is False
    assert result["recording_required"] == "现场双录"
    assert result["hesitation_days"] == 15
    assert result["callback_due_days"] == 13


def test_every_insurer_deadline_is_a_deadline_the_engine_can_count() -> None:
    [(_id, table)] = bpmn.dmn_tables(dmn_text("insurer_sla"), "insurer_sla.dmn")
    assert table.rules
    for rule in table.rules:
        specs = [sandbox.evaluate(entry.text, {}) for entry in rule.outputEntries]
        assert len(specs) == len(table.outputs), rule.id  # each rule sets every deadline
        for spec in specs:
            amount, unit = workdays.parse_deadline_spec(spec)  # raises for what it cannot read
            assert amount > 0, (rule.id, spec)
            assert unit in ("workdays", "days"), (rule.id, spec)  # the regulation counts days


@pytest.mark.parametrize(
    ("prefix", "decisions"),
    [("sales_", DECISIONS[:5]), ("claim_", DECISIONS[5:])],
)
def test_no_two_forms_or_tables_of_a_procedure_write_the_same_variable(
    prefix: str, decisions: tuple[str, ...]
) -> None:
    writers: dict[str, list[str]] = {}
    for key in sorted(k for k in VALID if k.startswith(prefix)):
        for field in load(key).fields:
            writers.setdefault(field.name, []).append(key)
    for decision in decisions:
        [(_id, table)] = bpmn.dmn_tables(dmn_text(decision), f"{decision}.dmn")
        for output in table.outputs:
            writers.setdefault(output.name, []).append(decision)
    assert {name: keys for name, keys in writers.items() if len(keys) > 1} == {}


# --------------------------------------------------------------------------- exact coverage


def choices(form: str, field: str) -> list[str]:
    return [choice.value for choice in load(form).field(field).choices]


CATEGORIES = choices("sales_plan_design", "category")
BOOLS = [True, False]
DOMAINS: dict[str, list[list[Any]]] = {
    "recording_required": [
        choices("sales_plan_design", "sales_channel"),
        CATEGORIES,
        BOOLS,
        [18, 59, 60, 62, 80],
    ],
    "risk_assessment_required": [CATEGORIES],
    "suitability": [BOOLS, BOOLS, BOOLS],
    "hesitation_days": [CATEGORIES, BOOLS],
    "callback_required": [CATEGORIES, BOOLS],
    "insurer_sla": [choices("claim_report", "claim_type"), BOOLS],
    "limitation_years": [choices("claim_report", "policy_category")],
}


def matches(entry: Any, value: Any) -> bool:
    text = (entry.text or "").strip()
    return text in ("", "-") or bool(
        sandbox.evaluate(dmn_checks.entry_expression(text), {"dmn_input": value})
    )


@pytest.mark.parametrize("decision", sorted(DOMAINS))
def test_unique_table_has_exactly_one_rule_for_every_form_value(decision: str) -> None:
    [(_id, table)] = bpmn.dmn_tables(dmn_text(decision), f"{decision}.dmn")
    assert str(table.hit_policy).upper() == "UNIQUE"
    for values in itertools.product(*DOMAINS[decision]):
        hits = [
            rule.id
            for rule in table.rules
            if all(
                matches(entry, value)
                for entry, value in zip(rule.inputEntries, values, strict=True)
            )
        ]
        assert len(hits) == 1, (values, hits)


def test_claim_documents_lists_something_for_every_claim_type() -> None:
    [(_id, table)] = bpmn.dmn_tables(dmn_text("claim_documents"), "claim_documents.dmn")
    assert str(table.hit_policy).upper() == "COLLECT"
    for claim_type in choices("claim_report", "claim_type"):
        specific = [
            rule.id
            for rule in table.rules
            if (rule.inputEntries[0].text or "").strip() not in ("", "-")
            and matches(rule.inputEntries[0], claim_type)
        ]
        assert specific, claim_type
