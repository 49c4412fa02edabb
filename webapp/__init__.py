"""The web app: Flask in front of the engine (HTTP only; every decision is the engine's).

``create_app`` wires the blueprints (one per area: ``auth``, ``inbox``, ``tasks``, ``cases``,
``catalogue``, ``account``, ``notifications``; ``api`` the REST API), the session login (Flask-Login over the
engine's login sessions), CSRF protection on every form (Flask-WTF), the language (Flask-Babel;
zh-CN by default, English selectable) and ``errors``, the only place that turns engine errors
into status codes.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from engine.config import DEV_SECRET_KEY, PROJECT_ROOT, Settings
from engine.storage.db import Database
from engine.storage.models import MAX_ROW_ID
from engine.timekeeping import clock
from webapp import (
    account,
    api,
    assets,
    auth,
    cases,
    catalogue,
    errors,
    failures,
    headers,
    i18n,
    inbox,
    notifications,
    request_input,
    tasks,
)

INSTANCE_DIR = PROJECT_ROOT / "instance"


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, **config: Any
) -> Flask:
    """The app for ``settings`` (from the environment when None); ``config`` overrides Flask settings."""

    settings = settings or Settings.from_environment()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https,  # OPSFLOW_HTTPS=1 when served over HTTPS
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        INBOX_REFRESH_SECONDS=10,  # the inbox list refreshes itself this often (htmx)
    )
    app.config.update(config)
    app.url_map.converters["id"] = RowId
    app.extensions["opsflow_db"] = db or Database(settings.database_url)
    app.extensions["opsflow_settings"] = settings
    app.before_request(request_input.check)  # first: no view, login or CSRF check sees bad input
    app.jinja_env.globals["current_path"] = request_input.current_path
    headers.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)
    for module in (auth, inbox, tasks, cases, catalogue, account, notifications, assets, failures):
        app.register_blueprint(module.bp)
    api.init_app(app)
    errors.init_app(app)
    app.context_processor(lambda: {"now": clock.now()})
    if settings.trusted_proxies:  # the client's address, for the login limits, from the proxies
        proxies = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    return app


class RowId(IntegerConverter):
    """A row id in a URL: 1 up to the databases' 64-bit integer limit (larger ones are 404s)."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ROW_ID)


def _secret_key(settings: Settings) -> str:
    """The configured key; for the development default, one kept in instance/ (never the default)."""
    if settings.secret_key != DEV_SECRET_KEY:
        return settings.secret_key
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        INSTANCE_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return Path(path).read_text(encoding="utf-8").strip()
