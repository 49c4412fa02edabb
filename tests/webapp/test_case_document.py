"""The case as a document: sections by task in the forms' words, files, the history in words."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine import runtime
from engine.storage.db import Database
from tests.conftest import ActorOf, open_task, work
from tests.expense_claims import claim_data
from tests.webapp.conftest import Login, NewPage, UserClient
from tests.webapp.test_pages import form_of

pytestmark = pytest.mark.usefixtures("frozen_clock")

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
RAW_KEYS = ("budget", "invoices_held", "invoice_total", "revision", "claim_ok", "cost_center")


def submitted_claim(db: Database, actor: ActorOf, login: Login) -> tuple[int, str]:
    """An expense claim of ¥12,345.60 filed through the page with its invoice PDF."""
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    client = login("sales1")
    data = form_of(claim_data(amount="12345.60", category="差旅"))
    data.pop("attachments")
    data["csrf_token"] = client.csrf
    data["attachments"] = (io.BytesIO(PDF), "发票 March.pdf")
    task_id = open_task(db, case.id, "submit_claim")
    done = client.post(f"/tasks/{task_id}", data=data, content_type="multipart/form-data")
    assert done.status_code == 302, done.get_data(as_text=True)
    return case.id, hashlib.sha256(PDF).hexdigest()


def english(client: UserClient) -> None:
    client.post("/language", data={"language": "en", "csrf_token": client.csrf})


def test_the_case_page_reads_as_a_document_without_variable_keys_or_json(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id, digest = submitted_claim(db, actor, login)
    html = login("sales1").get(f"/cases/{case_id}").get_data(as_text=True)
    document = html.split('<div class="case-document">', 1)[1].split("</div>\n</section>", 1)[0]
    for key in RAW_KEYS:
        assert key not in document
    assert "{" not in document
    assert "[" not in document
    assert "¥12,345.60" in document  # the amount as money, in the claim and its invoice table
    assert "填写报销单" in document
    assert "成本中心" in document
    assert "差旅" in document
    assert "发票号码" in document  # the invoice table keeps its columns
    assert f"/files/{digest}" in document
    assert "发票 March.pdf" in document


def test_the_document_names_who_entered_each_part_with_their_role(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id, _digest = submitted_claim(db, actor, login)
    work(db, actor("ddm1"), case_id, "approve_ddm", {"decision": "同意", "comment": "可以"})
    case = runtime.get_instance(db, case_id)
    tasks = [(s.task.zh, s.by.role is not None if s.by else False) for s in case.document.sections]
    assert [name for name, _role in tasks] == ["填写报销单", "副经理审批"]
    assert all(has_role for _name, has_role in tasks)


def test_a_finished_task_opens_read_only_with_what_was_submitted(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id, _digest = submitted_claim(db, actor, login)
    task_id = next(t.task_id for t in runtime.get_instance(db, case_id).document.sections)
    html = login("sales1").get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "此任务已完成" in html

    main = html.split("<h1>", 1)[1].split("</section>", 1)[0]
    assert "<input" not in main
    assert "<textarea" not in main
    assert "报销金额（元）" in main
    assert "¥12,345.60" in main
    assert "赴上海参加保险公司产品培训" in main


def test_the_history_is_told_in_words_in_the_readers_language(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id, _digest = submitted_claim(db, actor, login)
    client = login("sales1")
    zh = client.get(f"/cases/{case_id}").get_data(as_text=True)
    history = zh.split('<ol class="history">', 1)[1].split("</ol>", 1)[0]
    assert "发起了案件" in history
    assert "完成了「填写报销单」" in history
    assert "instance_started" not in history
    assert "task_completed" not in history
    english(client)
    en = client.get(f"/cases/{case_id}").get_data(as_text=True)
    history = en.split('<ol class="history">', 1)[1].split("</ol>", 1)[0]
    assert "started the case" in history
    assert "completed “Fill in the claim”" in history
    assert re.search(r"\(Sales[^)]*\) started the case", history), history


def test_task_and_process_names_are_shown_in_english_to_an_english_reader(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id, _digest = submitted_claim(db, actor, login)
    client = login("sales1")
    english(client)
    html = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Fill in the claim" in html
    assert "Expense reimbursement" in html
    assert "Cost centre" in html
    assert "Travel" in html
    task_id = runtime.get_instance(db, case_id).document.sections[0].task_id
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "<h1>Fill in the claim</h1>" in page
    assert "<title>Fill in the claim" in page


def test_a_file_is_served_inline_or_as_download_under_its_name_in_a_sandbox(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id, digest = submitted_claim(db, actor, login)
    file = login("sales1").get(f"/files/{digest}")
    assert file.status_code == 200
    assert file.data == PDF
    assert file.headers["Content-Disposition"] == (
        "inline; filename=\"__ March.pdf\"; filename*=UTF-8''%E5%8F%91%E7%A5%A8%20March.pdf"
    )
    assert file.headers["X-Content-Type-Options"] == "nosniff"
    policy = file.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox; default-src 'none'")
    assert "frame-ancestors 'self'" in policy
    assert case_id


@pytest.mark.browser
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # a threaded server on one file
def test_an_approver_opens_the_invoice_pdf_from_the_approval_task(
    db: Database, actor: ActorOf, login: Login, new_page: NewPage, tmp_path: Path
) -> None:
    case_id, digest = submitted_claim(db, actor, login)
    task_id = open_task(db, case_id, "approve_ddm")
    runtime.claim_task(db, actor("ddm1"), task_id)
    approver = new_page("ddm1")
    approver.goto(f"/tasks/{task_id}")
    panel = approver.locator("aside .case-document")
    expect(panel).to_be_visible()  # the case is there to read, not folded shut
    expect(panel).to_contain_text("¥12,345.60")
    expect(panel.locator("table.doc-table")).to_contain_text("发票号码")
    link = panel.get_by_role("link", name="发票 March.pdf")
    assert link.get_attribute("href") == f"/files/{digest}"
    wide = approver.evaluate(
        "() => [...document.querySelectorAll('aside .case-document *')]"
        ".some(e => e.getBoundingClientRect().right > "
        "document.querySelector('aside').getBoundingClientRect().right + 1)"
    )
    assert wide is False  # nothing sticks out of its column
    panel.locator("details.preview summary").first.click()
    expect(panel.locator("iframe.pdf")).to_have_attribute("src", f"/files/{digest}")
    with approver.expect_popup() as opened:
        link.click()
    pdf = opened.value
    response = pdf.request.get(f"/files/{digest}")
    assert response.body() == PDF
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["content-type"] == "application/pdf"
    approver.set_viewport_size({"width": 1280, "height": 900})
    approver.screenshot(path=str(tmp_path / "task.png"), full_page=True)
