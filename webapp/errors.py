"""The only place that maps engine errors to HTTP status codes, as a page (or JSON for the API)."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError

from engine.errors import (
    ConflictError,
    InvalidDefinitionError,
    InvalidInputError,
    NotFoundError,
    OpsflowError,
    PermissionDeniedError,
    RateLimitedError,
)
from webapp.i18n import _, engine_text

STATUS: tuple[tuple[type[Exception], int], ...] = (
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (InvalidDefinitionError, 422),
    (RateLimitedError, 429),
    (OpsflowError, 400),
)


def status_of(exc: Exception) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


def init_app(app: Flask) -> None:
    app.register_error_handler(OpsflowError, _engine_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(404, lambda exc: _page(404, _("页面不存在")))


def _engine_error(exc: OpsflowError) -> ResponseReturnValue:
    field_errors = exc.field_errors if isinstance(exc, InvalidInputError) else None
    return _page(status_of(exc), engine_text(exc), field_errors)


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    return _page(400, _("表单已过期或来源不明，请刷新页面后重试"))


def _page(
    status: int, message: str, field_errors: dict[str, list[str]] | None = None
) -> ResponseReturnValue:
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        body: dict[str, object] = {"status": status, "message": message}
        if field_errors:
            body["errors"] = {k: [engine_text(m) for m in v] for k, v in field_errors.items()}
        return body, status
    return render_template("error.html", status=status, message=message), status
