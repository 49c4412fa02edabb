"""The task page: the task's form beside its case; completing it."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine import runtime, task_view
from engine.errors import InvalidInputError
from webapp import form_input
from webapp.auth import actor, db
from webapp.i18n import _, engine_text, language

bp = Blueprint("tasks", __name__)


@bp.get("/tasks/<int:task_id>")
def show(task_id: int) -> ResponseReturnValue:
    view = task_view.open_task(db(), actor(), task_id)
    return render_template("task.html", view=view, values=task_view.prefill(view), errors={})


@bp.post("/tasks/<int:task_id>")
def complete(task_id: int) -> ResponseReturnValue:
    view = task_view.open_task(db(), actor(), task_id)
    data = form_input.parse(view.form, request.form)
    try:
        runtime.complete_task(db(), actor(), task_id, data, locale=language())
    except InvalidInputError as exc:
        errors = {
            name: [engine_text(m) for m in messages] for name, messages in exc.field_errors.items()
        }
        page = render_template(
            "task.html", view=view, values=data, errors=errors, message=engine_text(exc)
        )
        return page, 422
    flash(_("任务已完成：%(name)s", name=view.task.name))
    return redirect(url_for("inbox.index"))
