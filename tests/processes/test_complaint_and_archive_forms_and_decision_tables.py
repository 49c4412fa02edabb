"""P2 (customer enquiry and complaint) and P8 (archives): the task forms accept what the
specification asks for and refuse what it forbids, and the decision tables give its answers.

The decision tables run the way a process runs them: a tiny process with one business rule
task is deployed with the DMN file and started with the cleaned data of the form that feeds it,
so the tests also prove that the forms' field names are the tables' input names.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from lxml import etree

from engine import forms, runtime
from engine.config import PROJECT_ROOT
from engine.definitions import registry
from engine.errors import InvalidInputError
from engine.people import identity
from engine.storage.db import Database

FORMS_DIR = PROJECT_ROOT / "forms"
PROCESSES = PROJECT_ROOT / "processes"
TODAY = date(2026, 4, 1)
HASH = "ab" * 32
OTHER_HASH = "cd" * 32
ID_NO = "110105198001011238"
PROXY_ID_NO = "310101197512314561"
DMN_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"
DMNDI_NS = "https://www.omg.org/spec/DMN/20191111/DMNDI/"
DECISIONS = [
    "complaint_deadline",
    "major_complaint",
    "archive_retention",
    "archive_checklist",
    "archive_access_authority",
]
PERMANENT_MONTHS = 11988  # 999 years: "permanent" as a number a process can compare
MISSING = object()  # in an override: leave the field out of the submission

# --------------------------------------------------------------------------- valid submissions

VALID: dict[str, dict[str, Any]] = {
    "complaint_register": {
        "request_type": "投诉",
        "channel": "来访",
        "received_at": "2026-04-01",
        "complainant_name": "李建国",
        "phone": "+86 138-0013-8000",
        "id_no": ID_NO,
        "relation": "本人",
        "policy_no": "P2026000123",
        "insurer": "示例人寿保险股份有限公司",
        "respondent_staff": "sales1",
        "category": "销售误导",
        "request": "退还已交保费并赔礼道歉",
        "facts": "销售人员称该产品随时退保不损失本金，退保时仅退回现金价值。",
        "complainant_count": 1,
        "privacy_notice": "已告知",
    },
    "complaint_enquiry_answer": {
        "enquiry_answer": "已说明犹豫期内退保的办理方式和所需材料。",
        "answer_method": "电话",
        "answered_at": "2026-04-01",
        "enquiry_resolved": True,
    },
    "complaint_emergency_plan": {
        "emergency_lead": "部门经理 王敏",
        "emergency_started_at": "2026-04-01",
        "emergency_measures": "启动重大投诉应急预案，安排专人接待投诉代表并向公司报告。",
    },
    "complaint_investigation": {
        "no_conflict": "本人与该投诉无直接利害关系",
        "findings": "调阅双录及投保资料，销售人员确有夸大收益的表述。",
        "liability": "我方",
        "proposed_resolution": "协助客户办理退保并补偿现金价值差额。",
        "complexity": "简单",
    },
    "complaint_pause": {
        "pause_kind": "调解",
        "pause_reason": "双方同意提交保险纠纷调解委员会调解。",
        "paused_at": "2026-03-28",
        "pause_counterparty": "市保险纠纷调解委员会",
    },
    "complaint_resume": {"resumed_at": "2026-04-01", "resume_note": "调解结束，未达成协议。"},
    "complaint_extension": {
        "extension_level": "30日",
        "extension_reason": "需保险公司提供核保资料，15 日内无法核实。",
        "extension_decision": "同意",
        "complainant_informed_at": "2026-03-31",
        "extension_inform_method": "短信",
        "extension_inform_proof": [HASH],
    },
    "complaint_decision": {
        "decision_outcome": "部分支持",
        "verified_facts": "销售过程中存在夸大收益的表述。",
        "decision": "协助办理退保并补偿现金价值与已交保费差额的 50%。",
        "basis": "《保险销售行为管理办法》第二十一条；公司销售管理制度。",
        "notice_method": "短信",
        "notified_at": "2026-03-31",
        "notice_proof": [HASH],
    },
    "complaint_withdrawal": {"withdrawn_at": "2026-03-30", "withdrawal_channel": "电话"},
    "complaint_repeat": {"repeat_received_at": "2026-03-30", "has_new_facts": False},
    "complaint_review_request": {
        "review_requested_at": "2026-04-01",
        "review_request": "对补偿比例有异议，请求重新核查。",
    },
    "complaint_review": {
        "review_result": "维持原处理决定",
        "review_findings": "原决定认定事实清楚，补偿比例适当。",
        "review_notice_method": "邮寄",
        "review_notified_at": "2026-04-01",
        "review_notice_proof": [HASH],
    },
    "complaint_root_cause": {
        "root_cause_category": "销售行为",
        "root_cause_analysis": "销售话术未经合规审核。",
        "rectification_needed": True,
        "rectification_measures": "统一销售话术并开展专项培训。",
        "rectification_owner": "运营管理组 陈静",
        "rectification_due": "2026-05-31",
    },
    "archive_item": {
        "category": "业务档案",
        "document_type": "保单业务档案",
        "title": "李建国 重疾险保单业务档案",
        "related_ref": "P2026000123",
        "policy_term_months": 240,
        "media": "纸质",
        "location": "档案室 A 柜 3 层",
    },
    "archive_acceptance": {
        "acceptance_decision": "接收",
        "checklist_confirmed": "已按归档清单逐项核对",
        "archive_no": "YW-2026-0001",
        "storage_location": "档案室 A 柜 3 层",
    },
    "archive_access_request": {
        "items": [{"archive_no": "YW-2026-0001", "title": "李建国 重疾险保单业务档案"}],
        "archive_category": "业务档案",
        "own_team_files": True,
        "sensitive_personal_info": False,
        "purpose": "投诉处理",
        "purpose_detail": "核实投诉所涉保单的销售过程。",
        "access_mode": "查阅",
        "access_from": "2026-04-01",
        "access_to": "2026-04-03",
    },
    "archive_access_approval": {"approval_decision": "同意"},
    "archive_return_check": {"returned_on": "2026-04-01", "return_condition": "完好无缺"},
    "archive_appraisal": {
        "appraised_on": "2026-03-31",
        "appraisal_participants": [
            {"participant_name": "周档案", "participant_department": "档案管理"},
            {"participant_name": "吴会计", "participant_department": "财务"},
            {"participant_name": "郑审计", "participant_department": "审计/合规"},
            {"participant_name": "冯纪检", "participant_department": "纪检监察"},
        ],
        "appraisal_items": [
            {"archive_no": "KJ-2015-0001", "appraisal_result": "同意销毁"},
            {
                "archive_no": "KJ-2015-0002",
                "appraisal_result": "未结清债权债务单独保管",
                "appraisal_reason": "涉及未结清的应收佣金。",
            },
        ],
        "appraisal_opinion": "除 KJ-2015-0002 外均已到期且无保存价值，同意销毁。",
        "appraisal_report": [HASH],
    },
    "archive_destruction_list": {
        "list_no": "XH-2026-01",
        "prepared_on": "2026-04-01",
        "destruction_items": [
            {
                "item_name": "2015 年度记账凭证",
                "volume_no": "2015-01",
                "volume_count": 12,
                "start_year": 2015,
                "end_year": 2015,
                "archive_no": "KJ-2015-0001",
                "retention_period": "10年",
                "kept_period": "10年",
                "destruction_date": "2026-04-15",
            }
        ],
    },
    "archive_destruction_signoff": {"signoff_opinion": "同意"},
    "archive_destruction_supervision": {
        "supervisors": [
            {"supervisor_name": "周档案", "supervisor_unit": "档案管理"},
            {"supervisor_name": "吴会计", "supervisor_unit": "财务"},
        ],
        "pre_destruction_check": "销毁前已按清册逐项清点核对",
        "count_checked": 12,
        "destruction_method": "粉碎",
        "signed_at": "2026-04-01",
        "signed_list": [HASH],
    },
}


def load(key: str) -> forms.FormDefinition:
    path = FORMS_DIR / f"{key}.json"
    return forms.load_form(path.read_bytes(), str(path))


def submission(key: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {**VALID[key], **(overrides or {})}
    return {name: value for name, value in data.items() if value is not MISSING}


def cleaned(key: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON data a completed task puts into the process."""
    return forms.to_json_data(forms.validate(load(key), submission(key, overrides), today=TODAY))


# --------------------------------------------------------------------------- forms


def test_every_new_form_has_a_valid_example() -> None:
    on_disk = {p.stem for p in FORMS_DIR.glob("complaint_*.json")}
    on_disk |= {p.stem for p in FORMS_DIR.glob("archive_*.json")}
    # P8c (inventory) forms may be added by others: every P2/P8 form listed here must exist
    assert set(VALID) <= on_disk
    assert {k for k in on_disk if k.startswith("complaint_")} <= set(VALID)


@pytest.mark.parametrize("key", sorted(VALID))
def test_form_loads_and_accepts_a_realistic_submission(key: str) -> None:
    form = load(key)
    assert form.key == key
    assert form.title["zh"]
    assert form.title["en"]
    assert all(field.label.get("en") for field in form.fields)
    forms.validate(form, VALID[key], today=TODAY)


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # complaint_register (R6 第13、14、22条; R9 第17条)
    ("complaint_register", {"complainant_name": MISSING}, "complainant_name"),
    ("complaint_register", {"id_no": "110105198001011239"}, "id_no"),
    ("complaint_register", {"id_no": MISSING}, "id_no"),
    ("complaint_register", {"phone": "0571-8888"}, "phone"),
    ("complaint_register", {"received_at": "2026-04-02"}, "received_at"),
    ("complaint_register", {"channel": "监管转办"}, "regulator_ref"),
    ("complaint_register", {"relation": "受托人"}, "authorization_docs"),
    ("complaint_register", {"relation": "继承人"}, "representative_id_no"),
    ("complaint_register", {"complainant_count": 0}, "complainant_count"),
    ("complaint_register", {"category": "理财"}, "category"),
    ("complaint_register", {"privacy_notice": MISSING}, "privacy_notice"),
    ("complaint_enquiry_answer", {"answered_at": "2026-04-02"}, "answered_at"),
    ("complaint_enquiry_answer", {"enquiry_resolved": MISSING}, "enquiry_resolved"),
    ("complaint_emergency_plan", {"emergency_measures": " "}, "emergency_measures"),
    # investigation: 回避 statement, complexity, the clock pause and its reason
    ("complaint_investigation", {"no_conflict": MISSING}, "no_conflict"),
    ("complaint_investigation", {"complexity": MISSING}, "complexity"),
    ("complaint_investigation", {"external_pause": True}, "pause_reason"),
    ("complaint_investigation", {"external_pause": True}, "paused_at"),
    ("complaint_pause", {"pause_reason": MISSING}, "pause_reason"),
    ("complaint_pause", {"paused_at": "2026-04-08"}, "paused_at"),
    ("complaint_resume", {"resumed_at": "2026-04-02"}, "resumed_at"),
    # extension: a reason always; when approved, the complainant must have been informed
    ("complaint_extension", {"extension_reason": MISSING}, "extension_reason"),
    ("complaint_extension", {"complainant_informed_at": MISSING}, "complainant_informed_at"),
    ("complaint_extension", {"extension_inform_method": MISSING}, "extension_inform_method"),
    ("complaint_extension", {"complainant_informed_at": "2026-04-03"}, "complainant_informed_at"),
    ("complaint_extension", {"extension_decision": "不同意"}, "extension_comment"),
    ("complaint_extension", {"extension_level": "延长60日"}, "extension_level"),
    # decision notice: facts, basis, provable notice no later than today (R6 第19、21条)
    ("complaint_decision", {"basis": MISSING}, "basis"),
    ("complaint_decision", {"notice_proof": []}, "notice_proof"),
    ("complaint_decision", {"notice_proof": ["not-a-hash"]}, "notice_proof"),
    ("complaint_decision", {"notified_at": "2026-04-02"}, "notified_at"),
    ("complaint_decision", {"notice_method": "微信"}, "notice_method"),
    ("complaint_withdrawal", {"withdrawn_at": "2026-04-02"}, "withdrawn_at"),
    ("complaint_repeat", {"has_new_facts": True}, "new_facts"),
    ("complaint_review_request", {"review_request": MISSING}, "review_request"),
    ("complaint_review", {"review_result": "变更处理决定"}, "revised_decision"),
    ("complaint_review", {"review_notice_proof": MISSING}, "review_notice_proof"),
    ("complaint_root_cause", {"rectification_measures": MISSING}, "rectification_measures"),
    ("complaint_root_cause", {"rectification_due": "2026-03-31"}, "rectification_due"),
    # archive_item: holds need a reason, electronic records their hashes, terms and years
    ("archive_item", {"hold": True}, "hold_reason"),
    ("archive_item", {"hold": True}, "hold_type"),
    ("archive_item", {"media": "电子"}, "electronic_files"),
    ("archive_item", {"policy_term_months": MISSING}, "policy_term_months"),
    ("archive_item", {"document_type": "会计凭证"}, "fiscal_year"),
    ("archive_item", {"category": "其他档案"}, "category"),
    ("archive_acceptance", {"archive_no": MISSING}, "archive_no"),
    ("archive_acceptance", {"acceptance_decision": "退回"}, "return_reason"),
    # access request: purpose detail, dates from today, one row per file
    ("archive_access_request", {"purpose_detail": MISSING}, "purpose_detail"),
    ("archive_access_request", {"access_from": "2026-03-31"}, "access_from"),
    ("archive_access_request", {"access_to": "2026-03-31"}, "access_to"),
    ("archive_access_request", {"sensitive_personal_info": MISSING}, "sensitive_personal_info"),
    ("archive_access_request", {"items": []}, "items"),
    (
        "archive_access_request",
        {"items": [{"archive_no": "A-1", "title": "甲"}, {"archive_no": "A-1", "title": "乙"}]},
        "items[1].archive_no",
    ),
    ("archive_access_approval", {"approval_decision": "不同意"}, "approval_comment"),
    ("archive_access_approval", {"approved_access_to": "2026-03-31"}, "approved_access_to"),
    ("archive_return_check", {"return_condition": "缺损或缺页"}, "return_issue"),
    ("archive_return_check", {"returned_on": "2026-04-02"}, "returned_on"),
]


def _appraisal_overrides() -> list[tuple[str, dict[str, Any], str]]:
    people = VALID["archive_appraisal"]["appraisal_participants"]
    keep = [
        {"archive_no": "KJ-2015-0003", "appraisal_result": "继续保管", "appraisal_reason": "诉讼"}
    ]
    twice = [people[0], {**people[1], "participant_department": "档案管理"}, *people[2:]]
    return [
        ("archive_appraisal", {"appraisal_items": keep}, "appraisal_items[0].new_retention_until"),
        ("archive_appraisal", {"appraisal_participants": people[:3]}, "appraisal_participants"),
        (
            "archive_appraisal",
            {"appraisal_participants": twice},
            "appraisal_participants[1].participant_department",
        ),
        ("archive_appraisal", {"appraisal_report": MISSING}, "appraisal_report"),
    ]


def _destruction_overrides() -> list[tuple[str, dict[str, Any], str]]:
    row = VALID["archive_destruction_list"]["destruction_items"][0]
    no_volume = {k: v for k, v in row.items() if k != "volume_no"}
    past = {**row, "destruction_date": "2026-03-31"}
    one = VALID["archive_destruction_supervision"]["supervisors"][:1]
    return [
        (
            "archive_destruction_list",
            {"destruction_items": [no_volume]},
            "destruction_items[0].volume_no",
        ),
        (
            "archive_destruction_list",
            {"destruction_items": [past]},
            "destruction_items[0].destruction_date",
        ),
        ("archive_destruction_signoff", {"signoff_opinion": "不同意"}, "signoff_comment"),
        ("archive_destruction_supervision", {"supervisors": one}, "supervisors"),
        ("archive_destruction_supervision", {"destruction_method": "电子擦除"}, "backup_removal"),
        ("archive_destruction_supervision", {"signed_at": "2026-04-02"}, "signed_at"),
        (
            "archive_destruction_supervision",
            {"pre_destruction_check": MISSING},
            "pre_destruction_check",
        ),
    ]


@pytest.mark.parametrize(
    ("key", "overrides", "field"),
    INVALID + _appraisal_overrides() + _destruction_overrides(),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_form_rejects_what_the_specification_forbids(
    key: str, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        forms.validate(load(key), submission(key, overrides), today=TODAY)
    assert field in caught.value.field_errors


def test_enquiry_needs_no_id_number_but_a_complaint_does() -> None:
    enquiry = cleaned("complaint_register", {"request_type": "咨询", "id_no": MISSING})
    assert enquiry["id_no"] is None
    assert enquiry["phone"] == "13800138000"


def test_proxy_complaint_with_documents_is_accepted() -> None:
    data = cleaned(
        "complaint_register",
        {
            "relation": "受托人",
            "representative_name": "李明",
            "representative_id_no": PROXY_ID_NO,
            "authorization_docs": [HASH.upper()],
        },
    )
    assert data["authorization_docs"] == [HASH]


def test_register_defaults_feed_the_decision_tables() -> None:
    data = cleaned("complaint_register")
    assert data["complexity"] == "简单"
    assert data["life_insurance_product"] is False
    assert data["disaster_related"] is False
    assert data["regulator_designated"] is False


def test_decision_notice_names_the_four_remedies_by_default() -> None:
    remedies = cleaned("complaint_decision")["remedies_text"]
    assert all(route in remedies for route in ("核查", "调解", "仲裁", "诉讼"))


def test_archive_item_hold_with_reason_is_accepted() -> None:
    data = cleaned(
        "archive_item",
        {
            "hold": True,
            "hold_type": "诉讼/仲裁",
            "hold_reason": "客户已起诉。",
            "media": "电子",
            "electronic_files": [HASH, OTHER_HASH, HASH],
        },
    )
    assert data["electronic_files"] == [HASH, OTHER_HASH]
    assert data["hold_type"] == "诉讼/仲裁"


# --------------------------------------------------------------------------- DMN files


@pytest.mark.parametrize("decision_id", DECISIONS)
def test_decision_table_passes_the_deploy_checks(decision_id: str) -> None:
    path = PROCESSES / f"{decision_id}.dmn"
    xml = path.read_text(encoding="utf-8")
    assert registry.check_dmn(xml, path.name) == []
    root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False))
    assert root.tag == f"{{{DMN_NS}}}definitions"
    (decision,) = root.findall(f"{{{DMN_NS}}}decision")
    assert decision.get("id") == decision_id
    rules = decision.findall(f".//{{{DMN_NS}}}rule")
    assert rules
    for rule in rules:
        assert (rule.findtext(f"{{{DMN_NS}}}description") or "").strip(), rule.get("id")
    shape = root.find(f".//{{{DMNDI_NS}}}DMNShape")
    assert shape is not None
    assert shape.get("dmnElementRef") == decision_id


def test_company_configurable_values_are_marked_in_the_tables() -> None:
    for decision_id in ("complaint_deadline", "archive_access_authority", "archive_retention"):
        xml = (PROCESSES / f"{decision_id}.dmn").read_text(encoding="utf-8")
        assert "公司可配置" in xml, decision_id


# --------------------------------------------------------------------------- running the tables

DECIDE_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs_{key}" targetNamespace="https://opsflow.test">
  <bpmn:process id="{key}" name="{key}" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:businessRuleTask id="decide" name="决策">
      <bpmn:extensionElements><spiffworkflow:calledDecisionId>{decision}</spiffworkflow:calledDecisionId></bpmn:extensionElements>
    </bpmn:businessRuleTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide"/>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def decide(db: Database, decision_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Run one decision table as a process would, and return the instance data after it."""
    key = f"decide_{decision_id}"
    dmn = (PROCESSES / f"{decision_id}.dmn").read_text(encoding="utf-8")
    files = registry.ProcessFiles(
        f"{key}.bpmn",
        DECIDE_PROCESS.format(key=key, decision=decision_id),
        {f"{decision_id}.dmn": dmn},
        {},
    )
    with db.unit_of_work() as session:
        registry.deploy(session, identity.SYSTEM, files)
    started = runtime.start_instance(db, identity.SYSTEM, key, data)
    view = runtime.get_instance(db, started.id)
    assert view.summary.status == runtime.COMPLETED, view.summary.error
    return dict(view.data)


def complaint(**overrides: Any) -> dict[str, Any]:
    return cleaned("complaint_register", overrides)


# P2 step 6/8 and the DMN complaint_deadline paragraph
DEADLINES = [
    pytest.param(
        complaint(request_type="咨询", id_no=MISSING),
        {"deadline_days": None, "deadline_working_days": 1, "extension_chain": ""},
        id="enquiry-1-working-day",
    ),
    pytest.param(
        complaint(),
        {
            "deadline_days": 15,
            "deadline_working_days": None,
            "reminder_days_before": 3,
            "extension_chain": "",
            "inform_complainant": False,
            "escalate_to": "DDM",
        },
        id="simple-15-days",
    ),
    pytest.param(
        complaint(life_insurance_product=True),
        {"deadline_days": 15, "deadline_working_days": 10, "extension_chain": ""},
        id="simple-life-product-also-10-working-days",
    ),
    pytest.param(
        complaint(complexity="复杂"),
        {"deadline_days": 30, "extension_chain": "DDM", "inform_complainant": True},
        id="complex-30-days-DDM",
    ),
    pytest.param(
        complaint(complexity="特别复杂", life_insurance_product=True),
        {
            "deadline_days": 60,
            "deadline_working_days": None,
            "extension_chain": "DDM,GM",
            "inform_complainant": True,
        },
        id="especially-complex-60-days-GM",
    ),
]


@pytest.mark.parametrize(("data", "expected"), DEADLINES)
def test_the_complaint_deadline_follows_the_request_type_and_complexity(
    db: Database, data: dict[str, Any], expected: dict[str, Any]
) -> None:
    result = decide(db, "complaint_deadline", data)
    assert {name: result[name] for name in expected} == expected


def test_complaint_deadline_covers_every_complaint(db: Database) -> None:
    for request_type in ("咨询", "投诉"):
        for complexity in ("简单", "复杂", "特别复杂"):
            for life in (False, True):
                data = complaint(
                    request_type=request_type, complexity=complexity, life_insurance_product=life
                )
                result = decide(db, "complaint_deadline", data)
                assert "extension_chain" in result, (request_type, complexity, life)


def test_acceptance_scenario_3_deadlines_fall_on_the_specified_dates(db: Database) -> None:
    """Received 2026-04-01: simple → reminder 04-13, an SMS decision on 04-10 is in time;
    complex → DDM extends to 05-01; especially complex → GM approval and notice, day 60."""
    received = date(2026, 4, 1)
    simple = decide(db, "complaint_deadline", complaint())
    due = received + timedelta(days=simple["deadline_days"])
    assert due - timedelta(days=simple["reminder_days_before"]) == date(2026, 4, 13)
    assert date(2026, 4, 10) <= due == date(2026, 4, 16)

    after_investigation = complaint() | cleaned("complaint_investigation", {"complexity": "复杂"})
    complex_ = decide(db, "complaint_deadline", after_investigation)
    assert complex_["extension_chain"] == "DDM"
    assert received + timedelta(days=complex_["deadline_days"]) == date(2026, 5, 1)

    especially = decide(db, "complaint_deadline", complaint(complexity="特别复杂"))
    assert especially["extension_chain"].split(",")[-1] == "GM"
    assert especially["inform_complainant"] is True
    assert received + timedelta(days=especially["deadline_days"]) == received + timedelta(days=60)


MAJOR = [
    pytest.param(complaint(complainant_count=20), True, id="20-in-person"),
    pytest.param(complaint(complainant_count=19), False, id="19-in-person"),
    pytest.param(complaint(channel="网络", complainant_count=300), False, id="300-online"),
    pytest.param(complaint(disaster_related=True), True, id="disaster"),
    pytest.param(complaint(channel="监管转办", regulator_ref="监管-2026-17"), False, id="transfer"),
    pytest.param(
        complaint(channel="监管转办", regulator_ref="监管-2026-18", regulator_designated=True),
        True,
        id="regulator-designated",
    ),
]


@pytest.mark.parametrize(("data", "major"), MAJOR)
def test_a_complaint_is_major_for_20_in_person_a_disaster_or_a_regulators_designation(
    db: Database, data: dict[str, Any], major: bool
) -> None:
    result = decide(db, "major_complaint", data)
    assert result["major_complaint"] is major
    assert result["notify_role"] == ("DM" if major else None)
    assert bool(result["major_complaint_reason"]) is major


def item(document_type: str, **overrides: Any) -> dict[str, Any]:
    """archive_item data for a document type (no policy term unless given)."""
    base = {"document_type": document_type, "policy_term_months": MISSING, "fiscal_year": 2015}
    if document_type in ("保单业务档案", "客户告知书", "双录及电子销售记录"):
        base["policy_term_months"] = 12
    return cleaned("archive_item", base | overrides)


RETENTION = [
    pytest.param(item("保单业务档案", policy_term_months=12), [60], id="policy-1-year-5y"),
    pytest.param(item("保单业务档案", policy_term_months=13), [120], id="policy-over-1-year-10y"),
    pytest.param(item("业务台账"), [120], id="ledger-no-term-10y"),
    pytest.param(item("会计账簿", fiscal_year=2015), [120, 360], id="account-books-30y-wins"),
    pytest.param(
        item("佣金收入原始凭证", policy_term_months=6), [60, 360], id="commission-voucher"
    ),
    pytest.param(item("会计凭证"), [360], id="vouchers-30y"),
    pytest.param(item("银行对账单"), [120], id="bank-statements-10y"),
    pytest.param(item("客户身份资料"), [120], id="kyc-10y"),
    pytest.param(item("固定资产卡片"), [60], id="asset-cards-5y"),
    pytest.param(item("劳动合同（已解除或终止）"), [24], id="labour-contract-2y"),
    pytest.param(item("个人信息保护影响评估报告及处理记录"), [36], id="pia-3y"),
    pytest.param(item("系统日志"), [6], id="system-logs-6-months"),
    pytest.param(item("业务系统数据"), [60], id="system-data-5y"),
    pytest.param(item("投诉记录", policy_term_months=12), [60], id="complaint-records-as-business"),
    pytest.param(item("管理文件（30年）"), [360], id="management-30y"),
    pytest.param(
        item(
            "双录及电子销售记录",
            policy_term_months=240,
            hold=True,
            hold_type="投诉",
            hold_reason="投诉处理中",
        ),
        [120, 24],
        id="recording-under-complaint",
    ),
    pytest.param(
        item("双录及电子销售记录", hold=True, hold_type="监管调查", hold_reason="检查"),
        [60],
        id="recording-other-hold",
    ),
]


@pytest.mark.parametrize(("data", "months"), RETENTION)
def test_archive_retention_collects_every_applicable_rule(
    db: Database, data: dict[str, Any], months: list[int]
) -> None:
    result = decide(db, "archive_retention", data)
    assert sorted(result["retention_months"]) == sorted(months)
    assert not any(result["permanent"])
    assert len(result["retention_start"]) == len(months) == len(result["retention_basis"])


def test_archive_retention_takes_the_longest_with_its_start_event(db: Database) -> None:
    result = decide(db, "archive_retention", item("会计账簿"))
    rows = sorted(zip(result["retention_months"], result["retention_start"], strict=True))
    assert max(result["retention_months"]) == 360
    assert rows[-1] == (360, "会计年度终了次日")
    assert rows[0] == (120, "保险合同终止")


@pytest.mark.parametrize(
    "document_type",
    ["年度财务报告", "会计档案保管清册", "档案销毁清册", "会计档案鉴定意见书", "管理文件（永久）"],
)
def test_reports_registers_and_permanent_files_are_kept_permanently(
    db: Database, document_type: str
) -> None:
    result = decide(db, "archive_retention", item(document_type))
    assert result["permanent"] == [True]
    assert max(result["retention_months"]) == PERMANENT_MONTHS


def test_archive_retention_covers_every_document_type(db: Database) -> None:
    choices = load("archive_item").field("document_type").choices
    for choice in choices:
        result = decide(db, "archive_retention", item(choice.value))
        assert result.get("retention_months"), choice.value
        for months, permanent in zip(result["retention_months"], result["permanent"], strict=True):
            assert permanent is (months == PERMANENT_MONTHS), choice.value


def test_archive_checklist_for_business_files(db: Database) -> None:
    paper = decide(db, "archive_checklist", cleaned("archive_item"))
    assert len(paper["checklist_item"]) == 8
    assert sum("R1 第50条" in basis for basis in paper["checklist_basis"]) == 4
    assert any("执业登记编号" in element for element in paper["checklist_item"])
    electronic = decide(
        db,
        "archive_checklist",
        cleaned("archive_item", {"media": "电子", "electronic_files": [HASH]}),
    )
    assert len(electronic["checklist_item"]) == 9
    assert any("SHA-256" in element for element in electronic["checklist_item"])


def test_archive_checklist_for_accounting_files(db: Database) -> None:
    result = decide(db, "archive_checklist", item("会计凭证") | {"category": "财务/会计档案"})
    assert any("移交清册" in element for element in result["checklist_item"])
    assert not any("R1 第50条" in basis for basis in result["checklist_basis"])


def access(**overrides: Any) -> dict[str, Any]:
    return cleaned("archive_access_request", overrides)


ACCESS = [
    pytest.param(access(), "DDM", False, id="own-team-business-DDM"),
    pytest.param(
        access(archive_category="客户档案", sensitive_personal_info=True),
        "DM",
        False,
        id="sensitive-DM",
    ),
    pytest.param(access(own_team_files=False), "DM", False, id="other-team-DM"),
    pytest.param(access(archive_category="人事档案"), "DM", False, id="personnel-DM"),
    pytest.param(
        access(archive_category="财务/会计档案"), "FIN_ACC,DM", False, id="accounting-FIN-and-DM"
    ),
    pytest.param(access(access_mode="借出"), "DDM", False, id="borrow-within-the-company"),
    pytest.param(
        access(access_mode="查阅", lend_outside_unit=True), "DDM", False, id="outside-flag-ignored"
    ),
    pytest.param(
        access(access_mode="借出", lend_outside_unit=True), "DM,GM", True, id="lend-outside-GM"
    ),
    pytest.param(
        access(archive_category="财务/会计档案", access_mode="借出", lend_outside_unit=True),
        "FIN_ACC,DM,GM",
        True,
        id="accounting-lend-outside-GM",
    ),
]


@pytest.mark.parametrize(("data", "chain", "exceptional"), ACCESS)
def test_archive_access_needs_the_approvals_its_category_and_mode_call_for(
    db: Database, data: dict[str, Any], chain: str, exceptional: bool
) -> None:
    result = decide(db, "archive_access_authority", data)
    assert result["access_approval_chain"] == chain
    assert result["access_exceptional"] is exceptional
    assert result["access_max_working_days"] == 5
    assert "FIN_CASH" not in chain  # the cashier never handles accounting archives (R10 第35条)


def test_archive_access_authority_covers_every_request(db: Database) -> None:
    categories = [c.value for c in load("archive_access_request").field("archive_category").choices]
    for category in categories:
        for mode, outside in (("查阅", False), ("借出", True)):
            for own in (False, True):
                for sensitive in (False, True):
                    data = access(
                        archive_category=category,
                        access_mode=mode,
                        lend_outside_unit=outside,
                        own_team_files=own,
                        sensitive_personal_info=sensitive,
                    )
                    result = decide(db, "archive_access_authority", data)
                    assert result.get("access_approval_chain"), (category, mode, own, sensitive)
