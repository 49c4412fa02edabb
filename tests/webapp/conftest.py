"""The web app over the test database, and a logged-in client per demo user."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine.config import Settings
from engine.db import Database
from webapp import create_app


@pytest.fixture
def app(db: Database, deployed: object) -> Flask:
    return create_app(Settings(database_url=db.url, secret_key="test-secret"), db=db, TESTING=True)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
def login(app: Flask) -> Callable[[str], FlaskClient]:
    """``login("sales1")``: a client with that demo user's session (and its CSRF token)."""

    def _login(username: str) -> FlaskClient:
        client = app.test_client()
        token = csrf_token(client.get("/login").get_data(as_text=True))
        response = client.post(
            "/login",
            data={"username": username, "password": f"{username}-demo-2026", "csrf_token": token},
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        client.csrf = token  # type: ignore[attr-defined]
        return client

    return _login
