"""The web app over the test database, and a logged-in client per demo user."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Protocol

import pluggy
import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, BrowserContext, Page
from werkzeug.serving import make_server

from engine.config import Settings
from engine.storage.db import Database
from webapp import create_app


@pytest.fixture
def app(db: Database, deployed: object) -> Flask:
    return create_app(Settings(database_url=db.url, secret_key="test-secret"), db=db, TESTING=True)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


class UserClient(FlaskClient):
    """A test client with a demo user's session; ``csrf`` is the session's CSRF token."""

    csrf: str


Login = Callable[[str], UserClient]
"""The ``login`` fixture: ``login("sales1")`` is a client logged in as that demo user."""


@pytest.fixture
def login(app: Flask) -> Login:
    """``login("sales1")``: a client with that demo user's session (and its CSRF token)."""

    def _login(username: str) -> UserClient:
        client = UserClient(app, app.response_class, use_cookies=True)
        token = csrf_token(client.get("/login").get_data(as_text=True))
        response = client.post(
            "/login",
            data={"username": username, "password": f"{username}-demo-2026", "csrf_token": token},
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        client.csrf = token
        return client

    return _login


# --- a live server and browser pages (Playwright on Debian's chromium) ---

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app served on a free local port in a thread; yields its base URL."""
    app.config["INBOX_REFRESH_SECONDS"] = 1
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for number, page in enumerate(getattr(item, "pages", [])):
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{item.name}-{number}.png"), full_page=True)


class NewPage(Protocol):
    """The ``new_page`` fixture: ``new_page("sales1")`` is a browser page logged in as them."""

    def __call__(self, username: str | None = None) -> Page: ...


@pytest.fixture
def new_page(
    browser: Browser, live_server: str, request: pytest.FixtureRequest
) -> Iterator[NewPage]:
    """``new_page("sales1")``: a page in a context of its own, logged in; screenshots on failure."""
    contexts: list[BrowserContext] = []
    request.node.pages = []

    def _new_page(username: str | None = None) -> Page:
        context = browser.new_context(base_url=live_server, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        request.node.pages.append(page)
        if username:
            page.goto("/login")
            page.fill("#username", username)
            page.fill("#password", f"{username}-demo-2026")
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server}/")
        return page

    yield _new_page
    for context in contexts:
        context.close()
