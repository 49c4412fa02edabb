"""Failed cases: the list for administrators and operations, retry and cancel with a reason."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from engine import runtime
from engine.errors import InvalidInputError
from engine.runtime.services import failures
from webapp.auth import actor, db
from webapp.i18n import _, engine_text

bp = Blueprint("failures", __name__)


@bp.app_context_processor
def _nav() -> dict[str, object]:
    """``may_see_failures()`` for the menu link."""
    return {
        "may_see_failures": lambda: (
            current_user.is_authenticated and failures.may_see_failures(actor())
        )
    }


@bp.get("/cases/failed")
def index() -> ResponseReturnValue:
    return render_template("failed_cases.html", cases=failures.failed_cases(db(), actor()))


@bp.post("/cases/failed/<id:case_id>/retry")
def retry(case_id: int) -> ResponseReturnValue:
    summary = runtime.retry_instance(db(), actor(), case_id)
    if summary.status == runtime.ERROR:
        flash(_("案件 #%(id)s 重试后仍然出错", id=case_id))
    else:
        flash(_("案件 #%(id)s 已重试，继续运行", id=case_id))
    return redirect(url_for("failures.index"))


@bp.post("/cases/failed/<id:case_id>/cancel")
def cancel(case_id: int) -> ResponseReturnValue:
    try:
        runtime.cancel_instance(db(), actor(), case_id, request.form.get("reason", ""))
    except InvalidInputError as exc:
        page = render_template(
            "failed_cases.html",
            cases=failures.failed_cases(db(), actor()),
            message=engine_text(exc),
            failed_id=case_id,
        )
        return page, 422
    flash(_("案件 #%(id)s 已撤销", id=case_id))
    return redirect(url_for("failures.index"))
