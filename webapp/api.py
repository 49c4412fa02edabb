"""REST API ``/api/v1`` (flask-smorest; OpenAPI at ``/api/v1/openapi.json``), token authenticated.

Clients send ``Authorization: Bearer <token>`` with a token a user created on their settings page.
The endpoints are the inbox's: list, claim and complete tasks; start processes; read a case and
its history; deliver an outside answer (a message) by case id or business key; list the failed
cases, retry or cancel one. Errors come as JSON ``{"status", "message", "errors"}`` (``webapp.errors``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate
from webargs import core
from webargs.flaskparser import FlaskParser

from engine import runtime
from engine.errors import InvalidInputError, PermissionDeniedError
from engine.people import api_tokens
from engine.people.identity import Actor
from engine.runtime.services import attachments, catalogue, failures, inbox, instance_view
from webapp import request_input
from webapp.auth import csrf, db
from webapp.i18n import engine_text


class _Arguments(FlaskParser):
    """webargs, reading the JSON body ``request_input`` parsed and checked (one JSON reader)."""

    def _raw_load_json(self, req: Any) -> Any:
        return request_input.json_body() if req.is_json else core.missing


bp = Blueprint(
    "api", __name__, url_prefix="/api/v1", description="opsflow 任务与流程 / tasks and processes"
)
bp.ARGUMENTS_PARSER = _Arguments()  # before the endpoints below take their arguments from it

BEARER: dict[str, list[str]] = {"bearerAuth": []}


def init_app(app: Flask) -> None:
    app.config.update(
        API_TITLE="opsflow",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = Api(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    csrf.exempt(bp)
    api.register_blueprint(bp)


def api_actor() -> Actor:
    found: Actor = g.api_actor
    return found


@bp.before_request
def _authenticate() -> ResponseReturnValue | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token:
            raise PermissionDeniedError(
                "需要 API 令牌 / an API token is required (Authorization: Bearer)"
            )
        g.api_actor = api_tokens.authenticate(db(), token.strip())
    except PermissionDeniedError as exc:  # who is asking is unknown: 401, not 403
        body = {"status": 401, "message": engine_text(exc)}
        return body, 401, {"WWW-Authenticate": 'Bearer realm="opsflow"'}
    return None


# --- schemas ---


class TaskSchema(Schema):
    id = fields.Int()
    instance_id = fields.Int()
    process_key = fields.Str()
    instance_title = fields.Str()
    business_key = fields.Str(allow_none=True)
    bpmn_id = fields.Str()
    name = fields.Str()
    candidate_role = fields.Str(allow_none=True)
    assignee_id = fields.Int(allow_none=True)
    form_key = fields.Str(allow_none=True)
    status = fields.Str()
    due_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    overdue = fields.Bool(metadata={"description": "open, its clock running, past its due time"})
    due_soon = fields.Bool(metadata={"description": "open, not overdue, due within 24 hours"})


class TaskQuerySchema(Schema):
    tab = fields.Str(
        load_default=inbox.MINE, validate=validate.OneOf([inbox.MINE, inbox.CLAIMABLE, inbox.DONE])
    )
    process = fields.Str(load_default=None)
    q = fields.Str(load_default=None, validate=validate.Length(max=100))
    due = fields.Str(load_default=None, validate=validate.OneOf(["overdue", "today", "week"]))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class CompleteSchema(Schema):
    data = fields.Dict(keys=fields.Str(), load_default=dict)
    expected_version = fields.Int(load_default=None, allow_none=True)


class StartSchema(Schema):
    key = fields.Str(required=True, validate=validate.Length(min=1, max=128))
    business_key = fields.Str(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=catalogue.BUSINESS_KEY_LENGTH),  # the engine's limit
    )


class InstanceSchema(Schema):
    id = fields.Int()
    key = fields.Str()
    definition_version = fields.Int()
    status = fields.Str()
    business_key = fields.Str(allow_none=True)
    title = fields.Str()
    version = fields.Int()
    open_task_ids = fields.List(fields.Int())
    error = fields.Str(allow_none=True)
    error_element = fields.Str(allow_none=True)


class CaseSchema(InstanceSchema):
    started_by = fields.Str(allow_none=True)
    started_at = fields.DateTime()
    data = fields.Dict()
    history = fields.List(fields.Dict())


def _case(view: instance_view.InstanceView) -> dict[str, Any]:
    summary = view.summary
    return {
        **{name: getattr(summary, name) for name in InstanceSchema().fields},
        "started_by": view.started_by,
        "started_at": view.started_at,
        "data": dict(view.data),
        "history": list(view.history),
    }


# --- endpoints ---


@bp.route("/tasks")
class Tasks(MethodView):
    @bp.arguments(TaskQuerySchema, location="query")
    @bp.response(200, TaskSchema(many=True))
    @bp.doc(security=[BEARER])
    def get(self, query: dict[str, Any]) -> list[inbox.TaskRow]:
        """The caller's tasks: mine, claimable (my roles'), or done."""
        filters = inbox.Filters(query["process"], query["q"], query["due"])
        return inbox.list_tasks(
            db(),
            api_actor(),
            query["tab"],
            filters=filters,
            limit=query["limit"],
            offset=query["offset"],
        )


@bp.route("/tasks/<id:task_id>/claim", methods=["POST"])
@bp.response(200, TaskSchema)
@bp.doc(security=[BEARER])
def claim(task_id: int) -> inbox.TaskRow | None:
    """Take a role's task for yourself."""
    runtime.claim_task(db(), api_actor(), task_id)
    return inbox.get_task(db(), task_id)


@bp.route("/tasks/<id:task_id>/complete", methods=["POST"])
@bp.arguments(CompleteSchema)
@bp.response(200, InstanceSchema)
@bp.doc(security=[BEARER])
def complete(body: dict[str, Any], task_id: int) -> Any:
    """Complete a task with its form data; 422 lists the field errors."""
    return runtime.complete_task(
        db(), api_actor(), task_id, body["data"], body["expected_version"], locale=_locale()
    )


@bp.route("/instances", methods=["POST"])
@bp.arguments(StartSchema)
@bp.response(201, InstanceSchema)
@bp.doc(security=[BEARER])
def start(body: dict[str, Any]) -> Any:
    """Start the latest version of a process the caller may start."""
    return catalogue.start(db(), api_actor(), body["key"], business_key=body["business_key"])


@bp.route("/instances/<id:instance_id>")
@bp.response(200, CaseSchema)
@bp.doc(security=[BEARER])
def instance(instance_id: int) -> dict[str, Any]:
    """A case the caller started or worked on, with its data and audit history."""
    return _case(instance_view.open_case(db(), api_actor(), instance_id))


# --- starting a case with data, uploading a file ---


class CaseStartSchema(StartSchema):
    data = fields.Dict(keys=fields.Str(), load_default=dict)


class UploadSchema(Schema):
    file = Upload(required=True)


class StoredFileSchema(Schema):
    sha256 = fields.Str()
    filename = fields.Str()
    content_type = fields.Str()
    size = fields.Int()


@bp.route("/cases", methods=["POST"])
@bp.arguments(CaseStartSchema)
@bp.response(201, InstanceSchema)
@bp.doc(security=[BEARER])
def start_case(body: dict[str, Any]) -> Any:
    """Start a process the caller may start, with its start data; 422 lists the field errors."""
    return catalogue.start(
        db(), api_actor(), body["key"], body["data"], business_key=body["business_key"]
    )


@bp.route("/tasks/<id:task_id>/attachments", methods=["POST"])
@bp.arguments(UploadSchema, location="files")
@bp.response(201, StoredFileSchema)
@bp.doc(security=[BEARER])
def upload(files: dict[str, Any], task_id: int) -> attachments.StoredFile:
    """Store a file for a task the caller may work (PDF, JPEG, PNG, DOCX, XLSX; at most 10 MB).

    The answer's ``sha256`` is what the task's attachment fields take.
    """
    chosen = files["file"]
    try:
        if not chosen.filename:
            message = "请选择文件 / choose a file"
            raise InvalidInputError(message, {"file": [message]})
        content = chosen.read(attachments.MAX_BYTES + 1)
    finally:
        chosen.close()
    return attachments.store_file(db(), api_actor(), task_id, chosen.filename, content)


# --- outside answers and failed cases ---


class MessageSchema(Schema):
    data = fields.Dict(
        keys=fields.Str(), load_default=dict, metadata={"description": "the message's form data"}
    )


class KeyedMessageSchema(MessageSchema):
    business_key = fields.Str(
        required=True, validate=validate.Length(min=1, max=catalogue.BUSINESS_KEY_LENGTH)
    )


class RetrySchema(Schema):
    data = fields.Dict(
        keys=fields.Str(), load_default=dict, metadata={"description": "corrected case data"}
    )


class CancelSchema(Schema):
    reason = fields.Str(required=True, validate=validate.Length(max=2000))


class FailedCaseSchema(Schema):
    id = fields.Int()
    process_key = fields.Str()
    title = fields.Str()
    business_key = fields.Str(allow_none=True)
    element = fields.Str(allow_none=True)
    message = fields.Str(allow_none=True)
    since = fields.DateTime(allow_none=True, metadata={"description": "when it failed"})


@bp.route("/cases/<id:case_id>/messages/<string(maxlength=128):name>", methods=["POST"])
@bp.arguments(MessageSchema)
@bp.response(200, InstanceSchema)
@bp.doc(security=[BEARER])
def case_message(body: dict[str, Any], case_id: int, name: str) -> Any:
    """Deliver an outside answer to the case waiting for it (the liaising role, or ADMIN);
    409 when it waits for no such message, 422 lists the field errors."""
    return runtime.correlate_message(
        db(), api_actor(), name, body["data"], instance_id=case_id, locale=_locale()
    )


@bp.route("/messages/<string(maxlength=128):name>", methods=["POST"])
@bp.arguments(KeyedMessageSchema)
@bp.response(200, InstanceSchema)
@bp.doc(security=[BEARER])
def keyed_message(body: dict[str, Any], name: str) -> Any:
    """Deliver an outside answer to the running case with this business key (integrations)."""
    return runtime.correlate_message(
        db(), api_actor(), name, body["data"], business_key=body["business_key"], locale=_locale()
    )


@bp.route("/failed-cases")
@bp.response(200, FailedCaseSchema(many=True))
@bp.doc(security=[BEARER])
def failed_cases() -> list[failures.FailedCase]:
    """Cases in the error state, with the element and the message (ADMIN and OPS)."""
    return failures.failed_cases(db(), api_actor())


@bp.route("/cases/<id:case_id>/retry", methods=["POST"])
@bp.arguments(RetrySchema)
@bp.response(200, InstanceSchema)
@bp.doc(security=[BEARER])
def retry(body: dict[str, Any], case_id: int) -> Any:
    """Run a failed case's step again once its cause is fixed (ADMIN, PO, OPS)."""
    return runtime.retry_instance(db(), api_actor(), case_id, body["data"] or None)


@bp.route("/cases/<id:case_id>/cancel", methods=["POST"])
@bp.arguments(CancelSchema)
@bp.response(200, InstanceSchema)
@bp.doc(security=[BEARER])
def cancel(body: dict[str, Any], case_id: int) -> Any:
    """Cancel a case with a reason (its starter, DM, ADMIN; a failed case also OPS)."""
    return runtime.cancel_instance(db(), api_actor(), case_id, body["reason"])


def _locale() -> str:
    return "en" if request.accept_languages.best_match(["zh", "en"]) == "en" else "zh"
