"""Logging in over HTTP: sessions that end on the server, one pace for every refusal, the limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine.config import Settings
from engine.people import login_attempts
from engine.storage.db import Database
from tests.webapp.conftest import csrf_token
from webapp import create_app

pytestmark = pytest.mark.usefixtures("frozen_clock")

Login = Callable[[str], FlaskClient]
LIMIT = 10  # login attempts per address and minute


def test_a_cookie_copied_before_logout_is_refused_after_it(app: Flask, login: Login) -> None:
    client = login("cs1")
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert client.post("/logout", data={"csrf_token": client.csrf}).status_code == 302  # type: ignore[attr-defined]

    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    response = thief.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def attempt(client: FlaskClient, username: str, password: str, address: str) -> int:
    """One login from ``address``; the answer's status code."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )
    return response.status_code


def test_the_login_limit_holds_across_two_app_instances_on_one_database(db: Database) -> None:
    settings = Settings(database_url=db.url, secret_key="test-secret")
    first, second = (create_app(settings, db=db, TESTING=True).test_client() for _ in range(2))
    codes = [
        attempt(client, f"guess{n}", "x", "198.51.100.7")
        for n in range(LIMIT // 2)
        for client in (first, second)
    ]
    assert codes == [401] * LIMIT
    assert attempt(first, "guess", "x", "198.51.100.7") == 429
    assert attempt(second, "guess", "x", "198.51.100.7") == 429
    assert attempt(second, "guess", "x", "198.51.100.8") == 401  # another address has its own


def test_an_attackers_failures_do_not_lock_the_owner_out_and_the_owner_is_told(
    app: Flask,
) -> None:
    attacker, owner = app.test_client(), app.test_client()
    for _ in range(login_attempts.MAX_FAILURES + 1):
        assert attempt(attacker, "cs1", "guess-guess", "203.0.113.66") == 401
    assert attempt(attacker, "cs1", "cs1-demo-2026", "203.0.113.66") == 401  # locked there

    assert attempt(owner, "cs1", "cs1-demo-2026", "10.0.0.7") == 302
    inbox = owner.get("/").get_data(as_text=True)
    assert "自上次登录以来，有 7 次失败的登录尝试来自 203.0.113.66" in inbox
    assert "自上次登录以来" not in owner.get("/").get_data(as_text=True)  # told once


def test_behind_a_trusted_proxy_the_limits_count_the_forwarded_address(db: Database) -> None:
    settings = Settings(database_url=db.url, secret_key="test-secret", trusted_proxies=1)
    client = create_app(settings, db=db, TESTING=True).test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))

    def through_the_proxy(password: str, client_address: str) -> int:
        response = client.post(
            "/login",
            data={"username": "cs1", "password": password, "csrf_token": token},
            headers={"X-Forwarded-For": client_address},
        )
        return response.status_code

    for _ in range(login_attempts.MAX_FAILURES):
        assert through_the_proxy("guess-guess", "203.0.113.5") == 401
    assert through_the_proxy("cs1-demo-2026", "203.0.113.5") == 401
    assert through_the_proxy("cs1-demo-2026", "10.0.0.9") == 302
