"""Login, logout and password change; the session user; every other page requires login."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from engine.errors import InvalidInputError, PermissionDeniedError
from engine.people import identity
from engine.people.identity import Actor
from engine.storage.db import Database
from webapp.i18n import _, engine_text
from webapp.redirects import local_path

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()
LOGIN_LIMIT = "10 per minute"

PUBLIC_ENDPOINTS = frozenset(
    {
        "auth.login",
        "static",
        "assets.file",
        "assets.package_file",
        "i18n.choose_language",
        "api-docs.openapi_json",
    }
)


class SessionUser(UserMixin):  # type: ignore[misc]  # Flask-Login is untyped: UserMixin is Any
    """The logged-in person as Flask-Login sees them; ``actor`` is what the engine takes."""

    def __init__(self, actor: Actor, stamp: str):
        self.actor = actor
        self.stamp = stamp

    def get_id(self) -> str:
        return f"{self.actor.id}:{self.stamp}"


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


def limit_logins(app: Flask) -> None:
    """Login attempts per client address, counted per app (after the blueprint is registered)."""
    limiter = Limiter(get_remote_address, app=app, default_limits=[])
    limit = limiter.limit(LOGIN_LIMIT, methods=["POST"])
    app.view_functions["auth.login"] = limit(login)  # the view the blueprint registered


def _load_user(user_id: str) -> SessionUser | None:
    number, _, stamp = user_id.partition(":")
    if not number.isdigit() or not stamp:
        return None
    with db().read() as session:
        found = identity.active_actor(session, int(number), stamp)
    return SessionUser(found, stamp) if found is not None else None


login_manager.user_loader(_load_user)  # registered by a call: Flask-Login's decorator is untyped


def _require_login() -> ResponseReturnValue | None:
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith("api.") or current_user.is_authenticated:
        return None  # the API authenticates with tokens (webapp.api)
    redirect_to_login: ResponseReturnValue = login_manager.unauthorized()
    return redirect_to_login


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("login.html", username="")
    username = request.form.get("username", "").strip()
    try:
        who = identity.authenticate(db(), username, request.form.get("password", ""))
    except PermissionDeniedError as exc:
        return render_template("login.html", username=username, error=engine_text(exc)), 401
    login_user(SessionUser(who, identity.session_stamp(db(), who.id)))
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    return local_path(target, url_for("inbox.index"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def password() -> ResponseReturnValue:
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            identity.change_password(
                db(), actor(), request.form.get("current", ""), request.form.get("new", "")
            )
        except InvalidInputError as exc:
            errors = {k: [engine_text(m) for m in v] for k, v in exc.field_errors.items()}
        except PermissionDeniedError as exc:
            errors = {"current": [engine_text(exc)]}
        else:  # this session goes on under the new password; every other one has ended
            login_user(SessionUser(actor(), identity.session_stamp(db(), actor().id)))
            flash(_("密码已修改"))
            return redirect(url_for("inbox.index"))
    return render_template("password.html", errors=errors), 400 if errors else 200
