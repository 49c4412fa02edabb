"""A notification reaches the deputy manager live in the browser, and by e-mail (a loopback SMTP server)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.runtime.services import timers
from engine.storage.db import Database
from tests.mailbox import Server
from tests.webapp.conftest import NewPage
from tests.webapp.test_browser import fill_claim

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("frozen_clock"),
    pytest.mark.parametrize("db", ["sqlite"], indirect=True),  # a threaded server on one file
]


def test_a_claim_reaching_the_ddm_queue_notifies_the_deputy_manager_live_and_by_email(
    db: Database, new_page: NewPage, mailbox: Server
) -> None:
    approver = new_page("ddm1")
    expect(approver.locator("#notification-link")).to_have_text("通知")
    expect(approver.locator("#notification-count")).to_have_count(0)

    seller = new_page("sales1")
    seller.click("text=发起流程")
    seller.locator("[data-process=expense_reimbursement]").get_by_role(
        "button", name="发起"
    ).click()
    fill_claim(seller, "赴上海参加保险公司产品培训的差旅费用")
    seller.get_by_role("button", name="提交").click()
    expect(seller.locator(".flash")).to_contain_text("任务已完成")

    # the approver's open page shows the count rising, without a reload
    expect(approver.locator("#notification-count")).to_have_text("1", timeout=8000)
    approver.locator("#notification-link").click()
    expect(approver.locator("table.notifications")).to_contain_text(
        "新任务「副经理审批」进入您的角色队列"
    )
    # the worker sends the outbox to the SMTP server
    timers.run_once(db, mailer=mailbox.mailer)
    [mail] = mailbox.box.to("ddm1@opsflow.example")
    assert mail["Subject"].startswith("[opsflow] 新任务「副经理审批」进入您的角色队列")
    approver.get_by_role("button", name="标为已读", exact=True).click()
    expect(approver.locator("#notification-count")).to_have_count(0)
    expect(approver.locator("table.notifications")).to_contain_text("已读")
