"""The web app over HTTP: login, the inbox, the task page, starting, cases, errors, language."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine import runtime
from engine.config import PROJECT_ROOT, Settings
from engine.errors import PermissionDeniedError
from engine.people import api_tokens
from engine.runtime.services import inbox
from engine.storage.db import Database
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, history_types, inbox_row, open_task
from tests.expense_claims import claim_data
from tests.processes.test_sales import LEAD
from tests.webapp.conftest import Login, csrf_token
from webapp import create_app

pytestmark = pytest.mark.usefixtures("frozen_clock")


def form_of(data: Mapping[str, Any]) -> dict[str, object]:
    """A claim as the browser posts it: table cells by row, lists repeated."""
    flat: dict[str, object] = {}
    for key, value in data.items():
        if key == "invoices":
            for i, row in enumerate(value):
                for column, cell in row.items():
                    flat[f"invoices-{i}-{column}"] = cell
        else:
            flat[key] = value
    return flat


def test_every_page_but_login_needs_a_login(app: Flask) -> None:
    client = app.test_client()
    for path in ("/", "/start", "/cases", "/tasks/1", "/cases/1", "/password"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
    assert client.get("/login").status_code == 200


def test_a_wrong_password_is_refused_and_a_right_one_opens_the_inbox(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    refused = client.post("/login", data={"username": "cs1", "password": "x", "csrf_token": token})
    assert refused.status_code == 401
    assert "用户名或密码错误" in refused.get_data(as_text=True)
    ok = client.post(
        "/login", data={"username": "cs1", "password": "cs1-demo-2026", "csrf_token": token}
    )
    assert (ok.status_code, ok.headers["Location"]) == (302, "/")
    page = client.get("/").get_data(as_text=True)
    assert "我的任务" in page
    assert "冯客服" in page


def test_a_form_without_its_csrf_token_is_refused(login: Login) -> None:
    client = login("sales1")
    response = client.post("/start/expense_reimbursement")
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)


def test_a_next_parameter_never_leaves_the_site(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=//evil.example/x",
        data={"username": "cs1", "password": "cs1-demo-2026", "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_start_fill_wrongly_fix_and_the_approver_finds_it_in_the_queue(
    db: Database, login: Login, actor: ActorOf
) -> None:
    sales = login("sales1")
    catalogue = sales.get("/start").get_data(as_text=True)
    assert "费用报销" in catalogue
    started = sales.post("/start/expense_reimbursement", data={"csrf_token": sales.csrf})
    assert started.status_code == 302
    task_path = started.headers["Location"]
    page = sales.get(task_path).get_data(as_text=True)
    assert "填写报销单" in page
    wrong = form_of(claim_data("800.00", "办公", purpose="短"))
    wrong["csrf_token"] = sales.csrf
    refused = sales.post(task_path, data=wrong)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "至少" in html  # the purpose is too short, said in Chinese
    assert 'value="6222020200112233445"' in html  # the input stays on the page
    right = form_of(claim_data("800.00", "办公"))
    right["csrf_token"] = sales.csrf
    done = sales.post(task_path, data=right)
    assert (done.status_code, done.headers["Location"]) == (302, "/")
    approver = login("ddm1")
    queue = approver.get("/?tab=claimable").get_data(as_text=True)
    assert "副经理审批" in queue
    case_id = inbox.list_tasks(db, actor("ddm1"), inbox.CLAIMABLE)[0].instance_id
    task_id = open_task(db, case_id, "approve_ddm")
    claimed = approver.post(f"/tasks/{task_id}/claim", data={"csrf_token": approver.csrf})
    assert claimed.headers["Location"] == f"/tasks/{task_id}"
    approver.post(f"/tasks/{task_id}", data={"decision": "同意", "csrf_token": approver.csrf})
    assert open_task(db, case_id, "finance_review")


def test_another_roles_task_is_refused_by_url_and_the_attempt_audited(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    task_id = open_task(db, case.id, "approve_ddm")
    response = login("cs1").get(f"/tasks/{task_id}")
    assert response.status_code == 403
    assert "需要角色 DDM" in response.get_data(as_text=True)
    assert history_types(db, case.id)[-1] == "permission_denied"


def test_a_task_completed_a_second_earlier_shows_who_did_it(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    task_id = open_task(db, case.id, "approve_ddm")
    slow = login("ddm2")
    page = slow.get(f"/tasks/{task_id}")  # ddm2 looks at it while ddm1 claims and approves
    assert page.status_code == 200
    runtime.claim_task(db, actor("ddm1"), task_id)
    runtime.complete_task(db, actor("ddm1"), task_id, {"decision": "同意"})
    late = slow.post(f"/tasks/{task_id}/claim", data={"csrf_token": slow.csrf})
    assert late.status_code == 409
    assert "ddm1" in late.get_data(as_text=True)


def test_the_language_switch_is_remembered(login: Login) -> None:
    client = login("cs1")
    assert "我的任务" in client.get("/").get_data(as_text=True)
    client.post("/language", data={"language": "en", "next": "/", "csrf_token": client.csrf})
    page = client.get("/").get_data(as_text=True)
    assert "My tasks" in page
    assert "我的任务" not in page


def test_my_cases_show_where_each_waits(db: Database, login: Login, actor: ActorOf) -> None:
    case = runtime.start_instance(
        db, actor("sales1"), "expense_reimbursement", business_key="EXP-9"
    )
    page = login("sales1").get("/cases").get_data(as_text=True)
    assert "EXP-9" in page
    assert "填写报销单" in page
    assert login("sales1").get(f"/cases/{case.id}").status_code == 200
    assert login("cs1").get(f"/cases/{case.id}").status_code == 403


def test_logins_are_rate_limited(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    codes = [
        client.post(
            "/login", data={"username": f"n{i}", "password": "x", "csrf_token": token}
        ).status_code
        for i in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]


def test_a_saved_filter_follows_its_owner(login: Login) -> None:
    client = login("ddm1")
    client.post(
        "/filters",
        data={"name": "我的本周", "tab": "claimable", "due": "week", "csrf_token": client.csrf},
    )
    on_another_device = login("ddm1")
    page = on_another_device.get("/").get_data(as_text=True)
    assert "我的本周" in page
    assert "tab=claimable" in page
    assert "我的本周" not in login("ddm2").get("/").get_data(as_text=True)


def test_a_task_is_delegated_to_a_colleague_with_the_same_role(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    task_id = open_task(db, case.id, "approve_ddm")
    runtime.claim_task(db, actor("ddm1"), task_id)
    client = login("ddm1")
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert 'option value="ddm2"' in page
    client.post(f"/tasks/{task_id}/delegate", data={"to": "ddm2", "csrf_token": client.csrf})
    assert inbox_row(db, task_id).assignee_id == actor("ddm2").id


def test_front_end_packages_come_from_node_modules_and_nothing_else(app: Flask) -> None:
    client = app.test_client()

    def status(path: str) -> int:
        with client.get(path) as response:  # closes the file it streams
            return response.status_code

    assert status("/assets/htmx.min.js") == 200
    assert status("/assets/pico.min.css") == 200
    assert status("/assets/bpmn-js/bpmn-js.css") == 200
    assert status("/assets/package.json") == 404
    assert status("/assets/bpmn-js/../../../package.json") == 404


def test_the_case_diagram_knows_what_is_done_and_what_waits(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    diagram = login("sales1").get(f"/cases/{case.id}/diagram").get_json()
    assert diagram["bpmn_xml"].startswith("<?xml")
    assert {"submit_claim", "check_claim", "decide_chain"} <= set(diagram["completed"])
    assert diagram["current"] == ["approve_ddm"]
    assert login("cs1").get(f"/cases/{case.id}/diagram").status_code == 403


def test_the_inbox_refreshes_its_list_and_counts_in_place(login: Login) -> None:
    client = login("ddm1")
    partial = client.get("/?tab=claimable", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial
    assert 'id="count-claimable" hx-swap-oob="true"' in partial


@pytest.mark.parametrize(
    ("username", "may_start", "may_not_start"),
    [
        ("sales1", {"sales", "expense_reimbursement"}, {"complaint", "claims_assistance"}),
        (
            "cs1",
            {"complaint", "claims_assistance", "expense_reimbursement"},
            {"sales", "new_business_callback"},  # the callback starts from the sale that calls it
        ),
        ("arc1", {"archive_destruction", "archive_access"}, {"sales", "complaint"}),
        ("acc1", {"expense_reimbursement", "archive_access"}, {"sales", "archive_destruction"}),
    ],
)
def test_each_role_sees_and_may_start_only_its_own_processes(
    db: Database, login: Login, username: str, may_start: set[str], may_not_start: set[str]
) -> None:
    client = login(username)
    page = client.get("/start").get_data(as_text=True)
    for key in may_start:
        assert f"/start/{key}" in page
    for key in may_not_start:
        assert f"/start/{key}" not in page
        refused = client.post(f"/start/{key}", data={"csrf_token": client.csrf})
        assert refused.status_code == (409 if key == "new_business_callback" else 403)


@pytest.mark.parametrize(
    "username",
    ["dm", "ddm1", "ops1", "sales1", "cs1", "acc1", "cash1", "arc1", "cmp1", "hr1", "gm", "po1"],
)
def test_every_role_has_its_inbox_cases_and_settings(login: Login, username: str) -> None:
    client = login(username)
    for path in (
        "/",
        "/?tab=claimable",
        "/?tab=done&sort=created",
        "/cases",
        "/start",
        "/settings/tokens",
        "/password",
    ):
        assert client.get(path).status_code == 200, path


def test_times_and_amounts_are_written_the_readers_way(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    client = login("ddm1")
    # due 5 working days after Monday 2 March: the end of Monday 9 March, China time
    assert "2026/3/9 23:59" in client.get("/?tab=claimable").get_data(as_text=True)
    assert "¥800.00" in client.get(f"/cases/{case.id}").get_data(as_text=True)
    client.post("/language", data={"language": "en", "next": "/", "csrf_token": client.csrf})
    assert "3/9/26, 11:59\u202fPM" in client.get("/?tab=claimable").get_data(as_text=True)
    assert "CN¥800.00" in client.get(f"/cases/{case.id}").get_data(as_text=True)


def test_the_inbox_filters_by_process_and_by_task_name(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement", business_key="E-7")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    client = login("ddm1")
    assert "E-7" in client.get("/?tab=claimable&process=expense_reimbursement").get_data(
        as_text=True
    )
    assert "E-7" not in client.get("/?tab=claimable&process=complaint").get_data(as_text=True)
    assert "E-7" in client.get("/?tab=claimable&q=副经理审批").get_data(as_text=True)
    assert "E-7" not in client.get("/?tab=claimable&q=财务审核").get_data(as_text=True)


def test_a_task_due_within_a_day_is_marked(
    db: Database, login: Login, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data())
    client = login("ddm1")
    assert "即将到期" not in client.get("/?tab=claimable").get_data(as_text=True)
    frozen_clock.advance(timedelta(days=7))  # Monday 9 March, the day it is due
    assert "即将到期" in client.get("/?tab=claimable").get_data(as_text=True)
    frozen_clock.advance(timedelta(days=1))
    assert "已超期" in client.get("/?tab=claimable").get_data(as_text=True)


def test_session_cookies_are_secure_when_served_over_https(db: Database) -> None:
    app = create_app(Settings(database_url=db.url, secret_key="s", https=True), db=db)
    cookie = app.test_client().get("/login", base_url="https://localhost").headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_a_case_is_named_after_its_customer_and_found_by_that_name(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "sales")
    runtime.complete_task(db, actor("sales1"), open_task(db, case.id, "register_lead"), LEAD)
    assert runtime.get_instance(db, case.id).summary.title == "客户开发与销售 · 王秀英"
    client = login("sales1")
    assert "需求分析" in client.get("/?q=王秀英").get_data(as_text=True)
    assert "需求分析" not in client.get("/?q=李建国").get_data(as_text=True)


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "/%09/evil.example", "/%0a", "/\\\\evil.example", "https://evil.example"],
)
def test_no_next_parameter_leaves_the_site(app: Flask, target: str) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        f"/login?next={target}",
        data={"username": "cs1", "password": "cs1-demo-2026", "csrf_token": token},
    )
    assert (response.status_code, response.headers["Location"]) == (302, "/")


def test_a_password_change_ends_every_other_session_and_api_token(
    db: Database, login: Login, actor: ActorOf
) -> None:
    elsewhere = login("ops2")
    token = api_tokens.create(db, actor("ops2"), "script")
    here = login("ops2")
    changed = here.post(
        "/password",
        data={"current": "ops2-demo-2026", "new": "a-brand-new-pass", "csrf_token": here.csrf},
    )
    assert changed.status_code == 302
    assert elsewhere.get("/").status_code == 302  # back to the login page
    assert here.get("/").status_code == 200  # the session that changed it goes on
    with pytest.raises(PermissionDeniedError):
        api_tokens.authenticate(db, token)


def test_a_wrong_method_and_a_server_fault_answer_with_the_error_page(db: Database) -> None:
    settings = Settings(database_url=db.url, secret_key="test-secret")
    app = create_app(settings, db=db, TESTING=True, PROPAGATE_EXCEPTIONS=False)

    def broken() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", "broken", broken)
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post(
        "/login", data={"username": "cs1", "password": "cs1-demo-2026", "csrf_token": token}
    )

    wrong = client.get("/logout")
    assert (wrong.status_code, wrong.mimetype) == (405, "text/html")
    assert "不支持此请求方法" in wrong.get_data(as_text=True)
    assert "POST" in wrong.headers["Allow"]
    fault = client.get("/broken")
    assert (fault.status_code, fault.mimetype) == (500, "text/html")
    page = fault.get_data(as_text=True)
    assert "服务器出错" in page
    assert "a bug" not in page
    assert "Traceback" not in page


def test_every_answer_forbids_inline_script_framing_and_leaking_the_address(
    app: Flask, login: Callable[[str], FlaskClient]
) -> None:
    client = login("sales1")
    answers = [client.get(path) for path in ("/", "/start", "/cases", "/nothing", "/api/v1/x")]
    answers += [app.test_client().get("/login"), client.get("/assets/htmx.min.js")]
    for answer in answers:
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in answer.headers["Content-Security-Policy"].split(";")
        )
        assert policy["script-src"] == "'self'"
        assert policy["style-src"] == "'self'"
        assert policy["object-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'"
        assert policy["base-uri"] == "'none'"
        assert policy["form-action"] == "'self'"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        answer.close()


def test_no_template_holds_inline_script_style_or_event_handlers() -> None:
    templates = PROJECT_ROOT / "webapp" / "templates"
    for template in templates.glob("*.html"):
        html = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), template.name
        assert "<style" not in html, template.name
        assert not re.search(r"\s(on[a-z]+|style)=", html), template.name
