"""Task forms in a real browser: table rows added and removed, labels, errors focused."""

from __future__ import annotations

import pytest
from playwright.sync_api import FilePayload, Page, expect

from engine.people import identity
from engine.storage.db import Database
from tests.conftest import ActorOf
from tests.expense_claims import claim_data
from tests.webapp.conftest import NewPage

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("frozen_clock"),
    pytest.mark.parametrize("db", ["sqlite"], indirect=True),  # a threaded server on one file
]


def open_claim_form(page: Page) -> None:
    page.goto("/start")
    page.locator("[data-process=expense_reimbursement]").get_by_role("button", name="发起").click()
    expect(page.get_by_role("heading", name="填写报销单")).to_be_visible()


def fill_claim_head(page: Page) -> None:
    data = claim_data()
    page.fill("#cost_center", data["cost_center"])
    page.select_option("#category", data["category"])
    page.fill("#amount", "800.00")
    page.fill("#incurred_date", data["incurred_date"])
    page.fill("#purpose", data["purpose"])
    page.fill("#payee_account", data["payee_account"])
    invoice = FilePayload(name="发票.pdf", mimeType="application/pdf", buffer=b"%PDF-1.7\n%%EOF\n")
    page.set_input_files("#attachments", files=[invoice])


def test_an_invoice_table_grows_to_five_rows_and_all_five_are_submitted(
    db: Database, actor: ActorOf, new_page: NewPage
) -> None:
    page = new_page("sales1")
    open_claim_form(page)
    fill_claim_head(page)
    rows = page.locator("table[data-table=invoices] tbody tr")
    expect(rows).to_have_count(1)
    for _ in range(5):
        page.get_by_role("button", name="添加一行").click()
    expect(rows).to_have_count(6)
    rows.nth(2).get_by_role("button", name="删除此行").click()  # one too many, removed mid-table
    expect(rows).to_have_count(5)
    for index in range(5):
        page.get_by_label(f"发票号码 第{index + 1}行").fill(f"INV-9{index:04d}")
        page.get_by_label(f"开票日期 第{index + 1}行").fill("2026-02-26")
        page.get_by_label(f"发票金额（元） 第{index + 1}行").fill("160.00")
    page.get_by_role("button", name="提交").click()
    expect(page.locator(".flash")).to_contain_text("任务已完成")

    page.goto("/cases")
    page.locator("a", has_text="报销").first.click()
    for index in range(5):
        expect(page.locator("body")).to_contain_text(f"INV-9{index:04d}")


def test_a_refused_submit_marks_the_wrong_cell_and_focuses_the_first_error(
    new_page: NewPage,
) -> None:
    page = new_page("sales1")
    open_claim_form(page)
    fill_claim_head(page)
    page.get_by_label("发票号码 第1行").fill("INV-80001")
    page.get_by_label("开票日期 第1行").fill("2026-02-26")
    page.get_by_label("发票金额（元） 第1行").fill("不是数字")
    page.fill("#purpose", "短")
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#purpose")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#invoices-0-amount")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#invoices-0-invoice_no")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#purpose")).to_be_focused()


def test_the_person_picker_offers_only_the_holders_of_the_role(
    db: Database, new_page: NewPage
) -> None:
    with db.read() as session:
        holders = [p.username for p in identity.colleagues(session, "CS", besides=0)]
    assert "sales1" not in holders
    page = new_page("cs1")
    page.goto("/start")
    page.locator("[data-process=complaint]").get_by_role("button", name="发起").click()
    picker = page.locator("select#handler")
    expect(picker).to_have_attribute("data-role", "CS")
    offered = picker.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert offered == ["", *holders]
    expect(page.get_by_role("group", name="投诉人")).to_be_visible()  # a titled section
