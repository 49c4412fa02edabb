"""The only place that maps errors to HTTP answers: a page, or JSON for the API (``/api/``).

Engine errors get their status from ``STATUS``; every other HTTP error (unknown routes, wrong
methods, bad requests, a server fault) gets the same page or JSON body, never a login redirect.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from engine.errors import (
    ConflictError,
    InvalidDefinitionError,
    InvalidInputError,
    NotFoundError,
    OpsflowError,
    PermissionDeniedError,
    RateLimitedError,
)
from webapp.auth import API_PREFIX
from webapp.i18n import _, engine_text
from webapp.request_input import RequestInputError

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
    """Register the handlers (after the API, whose own HTTP error handler these replace)."""
    app.register_error_handler(OpsflowError, _engine_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)


def _http_message(status: int) -> str:
    messages = {
        400: _("请求无效"),
        404: _("页面不存在"),
        405: _("不支持此请求方法"),
        413: _("上传内容过大"),
        422: _("请求参数无效"),
    }
    found = messages.get(status) or (
        _("服务器出错，请稍后再试") if status >= 500 else _("请求无效")
    )
    return str(found)


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    data = getattr(exc, "data", None)  # webargs puts the parameters' messages here
    messages = data.get("messages") if isinstance(data, Mapping) else None
    field_errors = _flatten(messages) if isinstance(messages, Mapping) else None
    message = exc.description if isinstance(exc, RequestInputError) else _http_message(status)
    body, _status = _page(status, str(message), field_errors)
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    return body, status, headers  # e.g. Allow for 405


def _flatten(messages: Mapping[str, object], prefix: str = "") -> dict[str, list[str]]:
    """``{"json": {"key": ["Missing data"]}}`` → ``{"json.key": ["Missing data"]}``."""
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = [str(m) for m in value] if isinstance(value, list) else [str(value)]
    return flat


def _engine_error(exc: OpsflowError) -> ResponseReturnValue:
    field_errors = exc.field_errors if isinstance(exc, InvalidInputError) else None
    return _page(status_of(exc), engine_text(exc), field_errors)


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    return _page(400, _("表单已过期或来源不明，请刷新页面后重试"))


def _page(
    status: int, message: str, field_errors: dict[str, list[str]] | None = None
) -> tuple[str | dict[str, object], int]:
    if request.path.startswith(API_PREFIX) or request.accept_mimetypes.best == "application/json":
        body: dict[str, object] = {"status": status, "message": message}
        if field_errors:
            body["errors"] = {k: [engine_text(m) for m in v] for k, v in field_errors.items()}
        return body, status
    return render_template("error.html", status=status, message=message), status
