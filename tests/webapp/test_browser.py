"""The web app in a real browser, as people use it (Playwright driving Debian's chromium)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import FilePayload, Page, expect

from engine import runtime
from engine.people.identity import Actor
from engine.storage.db import Database
from tests.conftest import ActorOf, history_types, open_task
from tests.expense_claims import claim_data
from tests.processes.test_sales import drive, start
from tests.webapp.conftest import NewPage

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("frozen_clock"),
    pytest.mark.parametrize("db", ["sqlite"], indirect=True),  # a threaded server on one file
]


def fill_claim(page: Page, purpose: str) -> None:
    data = claim_data()
    page.fill("#cost_center", data["cost_center"])
    page.select_option("#category", data["category"])
    page.fill("#amount", data["amount"])
    page.fill("#incurred_date", data["incurred_date"])
    page.fill("#purpose", purpose)
    row = data["invoices"][0]
    for column in ("invoice_no", "date", "amount"):
        page.fill(f"#invoices-0-{column}", row[column])
    page.fill("#payee_account", data["payee_account"])
    invoice = FilePayload(name="发票.pdf", mimeType="application/pdf", buffer=b"%PDF-1.7\n%%EOF\n")
    page.set_input_files("#attachments", files=[invoice])


def test_a_claim_is_started_corrected_and_lands_in_the_approvers_queue_live(
    new_page: NewPage,
) -> None:
    approver = new_page("ddm1")
    approver.click("text=待认领")
    expect(approver.locator("#count-claimable")).to_have_text("0")

    seller = new_page("sales1")
    seller.click("text=发起流程")
    seller.locator("[data-process=expense_reimbursement]").get_by_role(
        "button", name="发起"
    ).click()
    expect(seller.get_by_role("heading", name="填写报销单")).to_be_visible()
    fill_claim(seller, "短")
    seller.get_by_role("button", name="提交").click()
    expect(seller.locator("[data-field=purpose] .field-error")).to_contain_text("至少")
    expect(seller.locator("#payee_account")).to_have_value("6222020200112233445")  # input kept
    fill_claim(seller, "赴上海参加保险公司产品培训的差旅费用")
    seller.get_by_role("button", name="提交").click()
    expect(seller.locator(".flash")).to_contain_text("任务已完成")

    # the approver's open page picks the new task up by itself, without a reload
    expect(approver.locator("#count-claimable")).to_have_text("1", timeout=8000)
    expect(approver.locator("#task-list")).to_contain_text("副经理审批")
    approver.locator("#task-list a", has_text="副经理审批").click()
    approver.get_by_role("button", name="认领").click()
    approver.select_option("#decision", "同意")
    approver.get_by_role("button", name="提交").click()
    expect(approver.locator(".flash")).to_contain_text("任务已完成")


def test_a_sale_is_started_corrected_and_reaches_operations_without_a_reload(
    new_page: NewPage,
) -> None:
    operations = new_page("ops1")
    operations.click("text=待认领")
    expect(operations.locator("#count-claimable")).to_have_text("0")

    seller = new_page("sales1")
    seller.click("text=发起流程")
    seller.locator("[data-process=sales]").get_by_role("button", name="发起").click()
    expect(seller.get_by_role("heading", name="登记线索")).to_be_visible()
    seller.fill("#customer_name", "王秀英")
    seller.fill("#mobile", "1391234")  # too short
    seller.select_option("#channel", "线下活动")
    seller.select_option("#pi_notice_given", "是")
    seller.check("#contact_consent")
    seller.get_by_role("button", name="提交").click()
    expect(seller.locator("[data-field=mobile] .field-error")).to_contain_text("手机号")
    expect(seller.locator("#customer_name")).to_have_value("王秀英")  # the input stays
    seller.fill("#mobile", "13912345678")
    seller.get_by_role("button", name="提交").click()
    expect(seller.locator(".flash")).to_contain_text("任务已完成")

    seller.locator("#task-list a", has_text="需求分析").click()
    for need in ("重疾", "医疗"):
        seller.check(f"input[name=needs][value={need}]")
    seller.select_option("#risk_profile", "稳健")
    seller.fill("#annual_income", "96000")
    seller.fill("#affordable_annual_premium", "12000")
    seller.fill("#existing_similar_cover", "无")
    seller.get_by_role("button", name="提交").click()
    seller.locator("#task-list a", has_text="方案设计").click()
    for field, value in (
        ("product_code", "CI-20-A"), ("product_name", "安康重大疾病保险"), ("insurer", "平安人寿"),
        ("term_years", "20"), ("sum_insured", "200000"), ("premium", "8600"), ("pay_years", "10"),
    ):  # fmt: skip
        seller.fill(f"#{field}", value)
    seller.select_option("#category", "长期健康")
    seller.select_option("#sales_channel", "线下")
    seller.select_option("#pay_mode", "年缴")
    seller.get_by_role("button", name="提交").click()
    expect(seller.locator(".flash")).to_contain_text("方案设计")

    # the operations page, open all along, shows the plan review by itself
    expect(operations.locator("#count-claimable")).to_have_text("1", timeout=8000)
    operations.locator("#task-list a", has_text="方案复核").click()
    operations.get_by_role("button", name="认领").click()
    for check in (
        "in_authorised_scope",
        "seller_grade_allows",
        "terms_rates_approved",
        "plan_approved",
    ):
        operations.check(f"#{check}")
    operations.get_by_role("button", name="提交").click()
    expect(operations.locator(".flash")).to_contain_text("方案复核")


def test_a_task_of_another_role_is_refused_by_url_and_the_attempt_audited(
    db: Database, actor: ActorOf, new_page: NewPage
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    task_id = open_task(db, case.id, "approve_ddm")
    for step in ("approve_ddm", "finance_review"):
        if step == "finance_review":
            runtime.claim_task(db, actor("ddm1"), task_id)
            runtime.complete_task(db, actor("ddm1"), task_id, {"decision": "同意"})
            task_id = open_task(db, case.id, step)
    page = new_page("cs1")
    response = page.goto(f"/tasks/{task_id}")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", name="无权访问")).to_be_visible()
    assert history_types(db, case.id)[-1] == "permission_denied"


def test_the_language_switch_works_and_is_remembered(new_page: NewPage) -> None:
    page = new_page("cs1")
    expect(page.get_by_role("link", name="我的任务")).to_be_visible()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("link", name=re.compile("My tasks"))).to_be_visible()
    page.goto("/start")
    expect(page.get_by_role("heading", name="Start a process")).to_be_visible()


def test_the_diagram_highlights_the_current_task(
    db: Database, actor: ActorOf, new_page: NewPage
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    page = new_page("sales1")
    page.goto(f"/cases/{case.id}")
    expect(page.locator("#diagram[data-ready=true]")).to_be_attached()
    expect(page.locator('#diagram [data-element-id="approve_ddm"].current')).to_be_attached()
    expect(page.locator('#diagram [data-element-id="submit_claim"].done')).to_be_attached()


def test_a_conditional_field_shows_only_while_its_condition_holds(
    db: Database, actor: ActorOf, new_page: NewPage
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id, until="kyc")
    page = new_page("sales1")
    page.goto(f"/tasks/{open_task(db, case_id, 'kyc')}")
    passport_no = page.locator("[data-field=other_id_no]")
    resident_no = page.locator("[data-field=id_no]")
    page.select_option("#id_type", "居民身份证")
    expect(resident_no).to_be_visible()
    expect(passport_no).to_be_hidden()
    page.select_option("#id_type", "护照")
    expect(passport_no).to_be_visible()
    expect(resident_no).to_be_hidden()


WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


def test_no_page_breaks_the_content_security_policy(
    db: Database, actor: Callable[[str], Actor], new_page: Callable[[str], Page]
) -> None:
    case_id = start(db, actor)
    drive(db, actor, case_id, until="kyc")
    page = new_page("sales1")
    refused: list[str] = []
    page.on(
        "console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None
    )
    page.add_init_script(WATCH_CSP)

    def visit(path: str) -> None:
        response = page.goto(path)
        assert response is not None
        assert "script-src 'self'" in response.headers["content-security-policy"]

    def violations() -> list[str]:
        found: list[str] = page.evaluate("window.__cspViolations")
        return found

    visit("/")  # the live inbox: htmx swaps the list in place
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"):
        pass
    expect(page.locator("#count-mine")).to_have_text("1")
    assert violations() == []
    visit(f"/tasks/{open_task(db, case_id, 'kyc')}")  # a form with conditional fields, a diagram
    expect(page.locator("#diagram[data-ready=true]")).to_be_attached()
    page.select_option("#id_type", "护照")
    expect(page.locator("[data-field=other_id_no]")).to_be_visible()
    expect(page.locator("[data-field=id_no]")).to_be_hidden()
    assert violations() == []
    visit(f"/cases/{case_id}")
    expect(page.locator('#diagram [data-element-id="kyc"].current')).to_be_attached()
    assert violations() == []
    for path in ("/start", "/cases", "/password", "/settings/tokens"):
        visit(path)
        assert violations() == []
    assert refused == []
