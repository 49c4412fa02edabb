"""Logging in over HTTP: sessions that end on the server, one pace for every refusal, the limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

pytestmark = pytest.mark.usefixtures("frozen_clock")

Login = Callable[[str], FlaskClient]


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
