"""Outside answers on the case page, and the failed-cases page (Flask client and a real browser)."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from playwright.sync_api import expect

from engine import runtime
from engine.config import PROJECT_ROOT
from engine.runtime.services import failures
from engine.storage.db import Database
from tests.conftest import ActorOf, open_task
from tests.engine.test_runtime import DIVIDE, deploy
from tests.processes import test_claims_assistance as claims
from tests.webapp.conftest import Login, NewPage

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

DOCS_IMG = PROJECT_ROOT / "docs" / "img"
SUPPLEMENT = {
    "feedback_status": "补充材料",
    "feedback_at": "2026-03-04T10:00:00+08:00",
    "missing_documents": "出院小结",
}


def answer_url(case_id: int) -> str:
    return f"/cases/{case_id}/messages/{claims.MESSAGE}"


def test_the_case_page_shows_the_wait_and_the_form_only_to_the_liaising_role(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id = claims.submitted_case(db, actor)
    ops = login("ops1").get(f"/cases/{case_id}").get_data(as_text=True)
    assert "等待外部答复" in ops
    assert f'action="{answer_url(case_id)}"' in ops
    assert 'name="missing_documents"' in ops
    reader = login("po1").get(f"/cases/{case_id}").get_data(as_text=True)
    assert "等待外部答复" in reader
    assert "由 OPS 录入" in reader
    assert 'name="missing_documents"' not in reader


def test_an_answer_entered_on_the_case_page_moves_the_case_on(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id = claims.submitted_case(db, actor)
    client = login("ops1")
    done = client.post(answer_url(case_id), data={**SUPPLEMENT, "csrf_token": client.csrf})
    assert done.status_code == 302
    assert done.headers["Location"] == f"/cases/{case_id}"
    assert "外部答复已录入" in client.get(done.headers["Location"]).get_data(as_text=True)
    open_task(db, case_id, "collect_documents")  # back to collection for the missing document


def test_a_wrong_answer_shows_field_errors_inline_in_the_readers_language_with_input_kept(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id = claims.submitted_case(db, actor)
    version = runtime.get_instance(db, case_id).summary.version
    client = login("ops1")
    client.post("/language", data={"language": "en", "csrf_token": client.csrf})
    wrong = {"feedback_status": "赔付", "feedback_at": "2026-03-04T10:00:00+08:00"}
    page = client.post(answer_url(case_id), data={**wrong, "csrf_token": client.csrf})
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'data-field="amount"' in html
    assert "field-error" in html
    assert "必填" not in html  # English, the reader's language
    assert 'value="2026-03-04T10:00:00+08:00"' in html  # the input kept
    assert runtime.get_instance(db, case_id).summary.version == version


def test_a_file_chosen_with_an_answer_is_refused_not_dropped(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id = claims.submitted_case(db, actor)
    client = login("ops1")
    upload = (io.BytesIO(b"%PDF-1.7\n%%EOF\n"), "通知书.pdf")
    refused = client.post(
        answer_url(case_id),
        data={**SUPPLEMENT, "notice": upload, "csrf_token": client.csrf},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert "外部答复暂不能上传附件" in refused.get_data(as_text=True)
    assert claims.MESSAGE in runtime.get_instance(db, case_id).waiting_messages


def test_someone_outside_the_liaising_role_is_refused_and_nothing_changes(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id = claims.submitted_case(db, actor)
    client = login("po1")
    refused = client.post(answer_url(case_id), data={**SUPPLEMENT, "csrf_token": client.csrf})
    assert refused.status_code == 403
    assert "permission_denied" in [e["type"] for e in runtime.get_instance(db, case_id).history]
    assert claims.MESSAGE in runtime.get_instance(db, case_id).waiting_messages


def failed_case(db: Database, actor: ActorOf) -> int:
    deploy(db, "divide.bpmn", DIVIDE)
    return runtime.start_instance(db, actor("ops1"), "divide", {"total": 100, "parts": 0}).id


def test_the_failed_cases_page_is_for_admin_and_ops_with_a_menu_link(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id = failed_case(db, actor)
    ops = login("ops2")
    page = ops.get("/cases/failed").get_data(as_text=True)
    assert f'data-case="{case_id}"' in page
    assert "ZeroDivisionError" in page
    assert 'href="/cases/failed"' in ops.get("/").get_data(as_text=True)
    sales = login("sales1")
    assert sales.get("/cases/failed").status_code == 403
    assert 'href="/cases/failed"' not in sales.get("/").get_data(as_text=True)


def test_cancel_on_the_failed_cases_page_needs_a_reason(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id = failed_case(db, actor)
    ops = login("ops2")
    blank = ops.post(
        f"/cases/failed/{case_id}/cancel", data={"reason": " ", "csrf_token": ops.csrf}
    )
    assert blank.status_code == 422
    assert "撤销须说明理由" in blank.get_data(as_text=True)
    assert runtime.get_instance(db, case_id).summary.status == runtime.ERROR
    done = ops.post(
        f"/cases/failed/{case_id}/cancel", data={"reason": "测试数据", "csrf_token": ops.csrf}
    )
    assert done.status_code == 302
    assert runtime.get_instance(db, case_id).summary.status == runtime.CANCELLED
    assert failures.failed_cases(db, actor("ops2")) == []


def test_retry_on_the_failed_cases_page_says_when_the_case_failed_again(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id = failed_case(db, actor)
    ops = login("ops2")
    again = ops.post(f"/cases/failed/{case_id}/retry", data={"csrf_token": ops.csrf})
    assert again.status_code == 302
    assert "重试后仍然出错" in ops.get("/cases/failed").get_data(as_text=True)


# --- in a real browser ---


@pytest.mark.browser
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # a threaded server on one file
def test_operations_enter_the_insurers_supplement_request_then_its_decision(
    app: Flask, db: Database, actor: ActorOf, new_page: NewPage
) -> None:
    case_id = claims.submitted_case(db, actor)
    page = new_page("ops1")
    page.goto(f"/cases/{case_id}")
    section = page.locator("section.awaiting")
    expect(section).to_contain_text("等待外部答复")
    section.locator("summary").click()
    page.select_option("#feedback_status", "补充材料")
    page.fill("#feedback_at", "2026-03-04T10:00:00+08:00")
    page.fill("#missing_documents", "出院小结")
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "case_awaiting.png"), full_page=False)
    section.get_by_role("button", name="提交答复").click()
    expect(page.locator(".flash")).to_contain_text("外部答复已录入")
    open_task(db, case_id, "collect_documents")

    claims.collect_all(db, actor, case_id)
    claims.submit(db, actor, case_id)
    page.goto(f"/cases/{case_id}")
    page.locator("section.awaiting summary").click()
    page.select_option("#feedback_status", "赔付")
    page.fill("#feedback_at", "2026-03-05T10:00:00+08:00")
    page.get_by_role("button", name="提交答复").click()  # no amount, no agreement date
    expect(page.locator("[data-field=amount] .field-error")).to_be_visible()
    expect(page.locator("#feedback_at")).to_have_value("2026-03-05T10:00:00+08:00")
    page.fill("#amount", "300000.00")
    page.fill("#agreement_date", "2026-03-02")
    page.get_by_role("button", name="提交答复").click()
    expect(page.locator(".flash")).to_contain_text("外部答复已录入")
    after = runtime.get_instance(db, case_id)
    assert after.data["feedback_status"] == "赔付"
    assert claims.MESSAGE not in after.waiting_messages or after.summary.open_task_ids


@pytest.mark.browser
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_operations_cancel_a_failed_case_with_a_reason_in_the_browser(
    app: Flask, db: Database, actor: ActorOf, new_page: NewPage
) -> None:
    case_id = failed_case(db, actor)
    other = failed_case(db, actor)
    page = new_page("ops2")
    page.get_by_role("link", name="出错的流程").click()
    row = page.locator(f"tr[data-case='{case_id}']")
    expect(row).to_contain_text("ZeroDivisionError")
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "failed_cases.png"), full_page=True)
    row.get_by_role("button", name="撤销").click()
    expect(page.locator(f"tr[data-case='{case_id}'] .field-error")).to_contain_text("理由")
    page.fill(f"#reason-{case_id}", "重复登记的测试案件")
    page.locator(f"tr[data-case='{case_id}']").get_by_role("button", name="撤销").click()
    expect(page.locator(".flash")).to_contain_text(f"案件 #{case_id} 已撤销")
    expect(page.locator(f"tr[data-case='{other}']")).to_be_visible()
    assert runtime.get_instance(db, case_id).summary.status == runtime.CANCELLED
