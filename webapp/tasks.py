"""The task page: the task's form beside its case; save a draft, complete it; attached files."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine import runtime
from engine.errors import InvalidInputError
from engine.runtime.services import attachments, drafts, task_view
from webapp import form_input
from webapp.auth import actor, db
from webapp.i18n import _, engine_text, language

bp = Blueprint("tasks", __name__)


@bp.get("/tasks/<id:task_id>")
def show(task_id: int) -> ResponseReturnValue:
    view = task_view.open_task(db(), actor(), task_id)
    values = drafts.load(db(), actor(), task_id) if view.open else None
    return render_template(
        "task.html", view=view, values=values or task_view.prefill(view), errors={}
    )


@bp.post("/tasks/<id:task_id>")
def complete(task_id: int) -> ResponseReturnValue:
    view = task_view.open_task(db(), actor(), task_id)
    data = form_input.parse(view.form, request.form)
    try:
        _store_uploads(view, task_id, data)
        if request.form.get("action") == "draft":
            drafts.save(db(), actor(), task_id, data)
            flash(_("草稿已保存"))
            return redirect(url_for("tasks.show", task_id=task_id))
        runtime.complete_task(db(), actor(), task_id, data, locale=language())
    except InvalidInputError as exc:
        errors = {k: [engine_text(m) for m in v] for k, v in exc.field_errors.items()}
        page = render_template(
            "task.html", view=view, values=data, errors=errors, message=engine_text(exc)
        )
        return page, 422
    flash(_("任务已完成：%(name)s", name=view.task.name))
    return redirect(url_for("inbox.index"))


def _store_uploads(view: task_view.TaskView, task_id: int, data: dict[str, object]) -> None:
    """Files chosen in attachment fields are stored first; the field then holds their hashes."""
    for field in view.form.fields if view.form else ():
        if field.type not in ("attachment", "attachments"):
            continue
        kept = data.get(field.name)  # the hashes already attached (attachments fields only)
        hashes: list[str] = (
            list(kept) if field.type == "attachments" and isinstance(kept, list) else []
        )
        for upload in request.files.getlist(field.name):
            if not upload.filename:
                continue
            try:
                stored = attachments.store_file(
                    db(), actor(), task_id, upload.filename, upload.read(attachments.MAX_BYTES + 1)
                )
            except InvalidInputError as exc:
                raise InvalidInputError(str(exc), {field.name: exc.field_errors["file"]}) from exc
            hashes.append(stored.sha256)
        if hashes:
            data[field.name] = hashes if field.type == "attachments" else hashes[-1]


@bp.get("/files/<sha256>")
def file(sha256: str) -> ResponseReturnValue:
    info, content = attachments.read_file(db(), actor(), sha256)
    response = Response(content, mimetype=info.content_type)
    response.headers.update(file_headers(info.filename, info.content_type))
    return response


INLINE_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png"})
# a stored file is shown as itself, never as a page of this site: no scripts, no loads, no forms;
# only this site's pages may frame it (the inline preview)
FILE_POLICY = (
    "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def file_headers(filename: str, content_type: str) -> dict[str, str]:
    """PDF and images open in the page, anything else downloads, under its real name (RFC 5987)."""
    disposition = "inline" if content_type in INLINE_TYPES else "attachment"
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return {
        "Content-Disposition": (
            f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_POLICY,
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "private, no-store",
    }
