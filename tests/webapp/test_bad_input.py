"""Hostile or broken input over HTTP: a clear 4xx, never a 500, and nothing saved (both databases)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from engine import runtime
from engine.people import api_tokens
from engine.people.identity import Actor
from engine.storage.db import Database
from tests.conftest import open_task
from tests.webapp.conftest import csrf_token

pytestmark = pytest.mark.usefixtures("frozen_clock")

Login = Callable[[str], FlaskClient]
ActorOf = Callable[[str], Actor]
URLENCODED = "application/x-www-form-urlencoded"


def rows(db: Database, table: str) -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())  # noqa: S608


def bearer(db: Database, actor: ActorOf, username: str = "sales1") -> dict[str, str]:
    return {"Authorization": f"Bearer {api_tokens.create(db, actor(username), 'script')}"}


START = '{"key": "expense_reimbursement", "business_key": %s}'
BAD_JSON = {
    "an integer of 5,000 digits": (START % ("1" * 5000)).encode(),
    "nesting 100,000 deep": (START % ("[" * 100_000 + "]" * 100_000)).encode(),
    "nesting 40 deep": (START % ("[" * 40 + "]" * 40)).encode(),
    "a lone surrogate": (START % '"EXP-\\ud800"').encode(),
    "a NUL": (START % '"EXP-\\u0000-1"').encode(),
    "a NUL in a key": b'{"key": "expense_reimbursement", "business_key": "E", "a\\u0000": 1}',
    "bytes that are not UTF-8": (START % '"EXP-\xff"').encode("latin-1"),
    "not JSON at all": b'{"key": ',
}


@pytest.mark.parametrize("body", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_a_json_body_that_is_not_plain_data_is_refused_and_nothing_starts(
    app: Flask, db: Database, actor: ActorOf, body: bytes
) -> None:
    headers = bearer(db, actor)
    response = app.test_client().post(
        "/api/v1/instances", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.is_json
    assert response.get_json()["message"]
    assert rows(db, "process_instance") == 0


def test_task_data_with_a_lone_surrogate_or_nul_is_refused_and_the_task_stays_open(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    task_id = open_task(db, case.id, "submit_claim")
    headers = bearer(db, actor)
    for value in ('"\\udfff"', '"a\\u0000"', "1" + "0" * 4400):
        response = app.test_client().post(
            f"/api/v1/tasks/{task_id}/complete",
            data=f'{{"data": {{"purpose": {value}}}}}',
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 400
    assert open_task(db, case.id, "submit_claim") == task_id


@pytest.mark.parametrize(
    "query",
    [
        "page=99999999999999999999",
        "page=0",
        "page=-5",
        "page=x",
        "q=a%00b",
        "process=a%00b",
        "tab=mine%00",
        "q=%ED%A0%80",  # a lone surrogate, as UTF-8 would have it: not UTF-8
        "q=%FF",
    ],
)
def test_a_bad_inbox_query_is_refused(login: Login, query: str) -> None:
    response = login("ddm1").get(f"/?{query}")
    assert response.status_code == 400
    assert '<p class="error" role="alert">' in response.get_data(as_text=True)


def test_a_query_string_of_raw_bytes_that_are_not_utf8_is_refused(login: Login) -> None:
    raw = b"q=\xed\xa0\x80".decode("latin-1")  # WSGI hands the bytes over as latin-1 text
    response = login("ddm1").get("/", environ_overrides={"QUERY_STRING": raw})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query", ["q=a%00b", "process=a%00b", "limit=99999999999999999999", "offset=-1"]
)
def test_a_bad_api_query_is_refused(app: Flask, db: Database, actor: ActorOf, query: str) -> None:
    response = app.test_client().get(f"/api/v1/tasks?{query}", headers=bearer(db, actor))
    assert response.status_code in (400, 422)
    assert response.is_json


@pytest.mark.parametrize(
    ("path", "fields", "table"),
    [
        ("/filters", {"name": "a\x00b", "tab": "mine"}, "saved_filter"),
        ("/filters", {"name": "本周", "q": "x\x00"}, "saved_filter"),
        ("/settings/tokens", {"name": "a\x00b"}, "api_token"),
    ],
)
def test_a_form_field_holding_nul_is_refused_and_nothing_saved(
    db: Database, login: Login, path: str, fields: dict[str, str], table: str
) -> None:
    client = login("ddm1")
    before = rows(db, table)
    response = client.post(path, data={**fields, "csrf_token": client.csrf})  # type: ignore[attr-defined]
    assert response.status_code == 400
    assert "空字符" in response.get_data(as_text=True)
    assert rows(db, table) == before


@pytest.mark.parametrize("name", [b"%ED%A0%80", b"%ED%B0%80x", b"\xff"])
def test_a_form_field_that_is_not_utf8_is_refused_and_nothing_saved(
    db: Database, login: Login, name: bytes
) -> None:
    client = login("ddm1")
    body = b"name=" + name + b"&csrf_token=" + client.csrf.encode()  # type: ignore[attr-defined]
    response = client.post("/settings/tokens", data=body, content_type=URLENCODED)
    assert response.status_code == 400
    assert rows(db, "api_token") == 0


def test_a_login_with_nul_in_the_username_is_refused_before_it_is_counted(
    app: Flask, db: Database
) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"username": "cs1\x00", "password": "x", "csrf_token": token}
    )
    assert response.status_code == 400
    assert rows(db, "login_attempt") == 0


def test_a_task_form_field_holding_nul_is_refused_and_no_draft_saved(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    task_id = open_task(db, case.id, "submit_claim")
    client = login("sales1")
    response = client.post(
        f"/tasks/{task_id}",
        data={"purpose": "差旅\x00", "action": "draft", "csrf_token": client.csrf},  # type: ignore[attr-defined]
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert rows(db, "task_draft") == 0


def test_a_path_holding_nul_is_refused(login: Login) -> None:
    assert login("sales1").get("/files/ab%00cd").status_code == 400


@pytest.mark.parametrize("blank", ["\u200b", "\u3000", " ", "\u200b\ufeff"])
def test_a_required_field_of_blank_characters_is_missing_on_the_task_page(
    db: Database, actor: ActorOf, login: Login, blank: str
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    task_id = open_task(db, case.id, "submit_claim")
    client = login("sales1")
    response = client.post(
        f"/tasks/{task_id}",
        data={"cost_center": blank, "action": "complete", "csrf_token": client.csrf},  # type: ignore[attr-defined]
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert page.count("此项为必填项") >= 1
    assert 'data-field="cost_center"' in page
    assert open_task(db, case.id, "submit_claim") == task_id


def test_a_required_field_of_blank_characters_is_missing_in_the_readers_language(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    task_id = open_task(db, case.id, "submit_claim")
    response = app.test_client().post(
        f"/api/v1/tasks/{task_id}/complete",
        json={"data": {"cost_center": "\u200b"}},
        headers={**bearer(db, actor), "Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert response.get_json()["errors"]["cost_center"] == ["This field is required."]
