"""Login, logout and password change; the session user; every other page requires login."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from engine.errors import InvalidInputError, PermissionDeniedError, RateLimitedError
from engine.people import identity
from engine.people.identity import Actor
from engine.storage.db import Database
from webapp.i18n import _, engine_text
from webapp.redirects import local_path

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

PUBLIC_ENDPOINTS = frozenset(
    {
        "auth.login",
        "static",
        "assets.file",
        "assets.package_file",
        "i18n.choose_language",
    }
)
API_PREFIX = "/api/"  # the REST API authenticates with tokens (webapp.api), never a login page


class SessionUser(UserMixin):  # type: ignore[misc]
    """The logged-in person as Flask-Login sees them: ``actor`` is what the engine takes,
    ``secret`` their login session's (kept in the cookie; the server decides if it is live)."""

    def __init__(self, actor: Actor, secret: str):
        self.actor = actor
        self.secret = secret

    def get_id(self) -> str:
        return self.secret


def db() -> Database:
    database: Database = current_app.extensions["opsflow_db"]
    return database


def actor() -> Actor:
    """The logged-in person (every view but the login page runs after ``_require_login``)."""
    user: SessionUser = current_user
    return user.actor


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    csrf.init_app(app)
    app.before_request(_require_login)


def _load_user(secret: str) -> SessionUser | None:
    found = identity.session_actor(db(), secret)
    return SessionUser(found, secret) if found is not None else None


login_manager.user_loader(_load_user)  # registered by a call: Flask-Login's decorator is untyped


def _require_login() -> ResponseReturnValue | None:
    endpoint = request.endpoint or ""
    public = endpoint in PUBLIC_ENDPOINTS or request.path.startswith(API_PREFIX)
    if public or current_user.is_authenticated:
        return None
    return login_manager.unauthorized()  # type: ignore[no-any-return]


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("login.html", username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        who = identity.authenticate(db(), username, password, address=request.remote_addr or "")
    except (PermissionDeniedError, RateLimitedError) as exc:  # who is asking is unknown: 401
        status = 429 if isinstance(exc, RateLimitedError) else 401
        return render_template("login.html", username=username, error=engine_text(exc)), status
    login_user(SessionUser(who.actor, who.session))
    for failed in who.failures:  # the limits are per address: tell the owner what others tried
        notice = _("自上次登录以来，有 %(n)d 次失败的登录尝试来自 %(address)s", n=failed.count,
                   address=failed.address or "?")  # fmt: skip
        flash(notice)
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    return local_path(target, url_for("inbox.index"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    user: SessionUser = current_user
    identity.log_out(db(), user.secret)
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def password() -> ResponseReturnValue:
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            secret = identity.change_password(
                db(), actor(), request.form.get("current", ""), request.form.get("new", "")
            )
        except InvalidInputError as exc:
            errors = {k: [engine_text(m) for m in v] for k, v in exc.field_errors.items()}
        except PermissionDeniedError as exc:
            errors = {"current": [engine_text(exc)]}
        else:  # this session goes on under the new password; every other one has ended
            login_user(SessionUser(actor(), secret))
            flash(_("密码已修改"))
            return redirect(url_for("inbox.index"))
    return render_template("password.html", errors=errors), 400 if errors else 200
