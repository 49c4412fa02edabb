"""``opsflow serve`` through the real console script: the app it serves keeps every setting."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from itsdangerous import BadSignature
from sqlalchemy import select

from engine.config import Settings
from engine.storage.db import Database
from engine.storage.models import AuditEvent
from webapp import create_app

OPSFLOW = Path(sys.executable).parent / "opsflow"
SECRET = "serve-test-secret-key"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail("opsflow serve did not start listening")


@pytest.fixture(params=["environment", "--database"])
def served(db: Database, request: pytest.FixtureRequest) -> Iterator[int]:
    """``opsflow serve`` on a free port, its database named by the environment or by
    ``--database``, the other settings by the environment; yields the port."""
    port = _free_port()
    env = {**os.environ, "OPSFLOW_SECRET_KEY": SECRET, "OPSFLOW_HTTPS": "1"}
    env.pop("OPSFLOW_DATABASE_URL", None)
    database: list[str] = []
    if request.param == "environment":
        env["OPSFLOW_DATABASE_URL"] = db.url
    else:
        database = ["--database", db.url]
    command = [str(OPSFLOW), *database, "serve", "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(
        [*command, "--no-worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(port, server)
        yield port
    finally:
        server.terminate()
        server.communicate(timeout=30)


def _request(
    port: int, method: str, path: str, body: str | None = None, cookie: str = ""
) -> tuple[int, str, str]:
    """(status, Set-Cookie, page) of one request to the served app."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Cookie": cookie}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    page = response.read().decode()
    connection.close()
    return response.status, response.getheader("Set-Cookie") or "", page


def _signed_with(key: str, cookie: str) -> bool:
    app: Flask = create_app(Settings(database_url="sqlite://", secret_key=key))
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    try:
        serializer.loads(cookie.split(";", 1)[0].split("=", 1)[1])
    except BadSignature:
        return False
    return True


def test_serve_with_a_database_url_keeps_the_configured_secret_key_and_secure_cookies(
    db: Database, served: int
) -> None:
    status, cookie, page = _request(served, "GET", "/login")
    assert status == 200
    assert "Secure" in cookie.split("; ")  # OPSFLOW_HTTPS=1
    assert _signed_with(SECRET, cookie)  # OPSFLOW_SECRET_KEY, not instance/secret_key
    assert not _signed_with("some-other-key", cookie)

    session = cookie.split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    form = urlencode({"username": "sales1", "password": "sales1-demo-2026", "csrf_token": token[1]})
    assert _request(served, "POST", "/login", form, session)[0] == 302
    with db.read() as read:  # the served app works on the database it was given
        logins = read.scalars(select(AuditEvent.actor).where(AuditEvent.type == "login")).all()
    assert logins == ["sales1"]
