"""The REST API: tokens from the settings page, the task endpoints, starting, reading a case."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask

from engine.people import api_tokens
from engine.people.identity import Actor
from engine.storage.db import Database
from tests.conftest import ActorOf
from tests.expense_claims import claim_data
from tests.webapp.conftest import Login

pytestmark = pytest.mark.usefixtures("frozen_clock")


def token_for(login: Login, username: str) -> str:
    client = login(username)
    page = client.post("/settings/tokens", data={"name": "脚本", "csrf_token": client.csrf})
    assert page.status_code == 201
    match = re.search(r"<code data-token>([^<]+)</code>", page.get_data(as_text=True))
    assert match
    return match.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_openapi_document_lists_the_endpoints(app: Flask) -> None:
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert spec["info"]["title"] == "opsflow"
    assert {"/api/v1/tasks", "/api/v1/instances", "/api/v1/instances/{instance_id}"} <= set(
        spec["paths"]
    )


def test_without_a_valid_token_the_api_refuses(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/api/v1/tasks").status_code == 401
    refused = client.get("/api/v1/tasks", headers=bearer("opsf_not-a-token"))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.get_json()["message"]


def test_a_claim_goes_from_start_to_approval_through_the_api(app: Flask, login: Login) -> None:
    client = app.test_client()
    sales, ddm = token_for(login, "sales1"), token_for(login, "ddm1")
    started = client.post(
        "/api/v1/instances", json={"key": "expense_reimbursement", "business_key": "API-1"},
        headers=bearer(sales),
    )  # fmt: skip
    assert started.status_code == 201
    case = started.get_json()
    [task] = client.get("/api/v1/tasks", headers=bearer(sales)).get_json()
    assert task["bpmn_id"] == "submit_claim"
    bad = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": {"amount": "-1"}},
        headers=bearer(sales),
    )
    assert bad.status_code == 422
    assert "amount" in bad.get_json()["errors"]
    data = claim_data()
    data["incurred_date"] = str(data["incurred_date"])
    done = client.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"data": data}, headers=bearer(sales)
    )
    assert done.status_code == 200
    queue = client.get("/api/v1/tasks?tab=claimable", headers=bearer(ddm)).get_json()
    approval = next(t for t in queue if t["instance_id"] == case["id"])
    assert (
        client.post(f"/api/v1/tasks/{approval['id']}/claim", headers=bearer(ddm)).status_code == 200
    )
    client.post(
        f"/api/v1/tasks/{approval['id']}/complete",
        json={"data": {"decision": "同意"}},
        headers=bearer(ddm),
    )
    read = client.get(f"/api/v1/instances/{case['id']}", headers=bearer(sales)).get_json()
    assert read["business_key"] == "API-1"
    assert [e["type"] for e in read["history"]].count("task_completed") == 2
    assert (
        client.get(
            f"/api/v1/instances/{case['id']}", headers=bearer(token_for(login, "cs1"))
        ).status_code
        == 403
    )


def test_a_revoked_token_stops_working(
    app: Flask, login: Login, db: Database, actor: ActorOf
) -> None:
    token = token_for(login, "ops1")
    client = app.test_client()
    assert client.get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    [info] = api_tokens.tokens_of(db, actor("ops1"))
    owner = login("ops1")
    owner.post(f"/settings/tokens/{info.id}/revoke", data={"csrf_token": owner.csrf})
    assert client.get("/api/v1/tasks", headers=bearer(token)).status_code == 401
    with pytest.raises(Exception, match="no token"):
        api_tokens.revoke(db, actor("cs1"), info.id)  # not theirs


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nothing-here", 404),
        ("GET", "/api/v1/instances/99999999999999999999", 404),
        ("POST", "/api/v2/tasks", 404),
        ("DELETE", "/api/v1/tasks", 405),
        ("GET", "/api/v1/tasks/1/claim", 405),
    ],
)
def test_an_unknown_api_route_answers_json_never_the_login_page(
    app: Flask, db: Database, actor: Callable[[str], Actor], method: str, path: str, status: int
) -> None:
    token = api_tokens.create(db, actor("sales1"), "script")
    for headers in ({}, bearer(token)):
        response = app.test_client().open(path, method=method, headers=headers)
        assert response.status_code == status
        assert response.is_json, response.get_data(as_text=True)[:200]
        body = response.get_json()
        assert body["status"] == status
        assert body["message"]
