"""My cases, and one case: its data, where it waits, its history, its comments."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine import runtime
from engine.errors import InvalidInputError
from engine.runtime.services import comments, instance_view
from webapp import form_input
from webapp.auth import actor, db
from webapp.i18n import _, engine_text, language
from webapp.redirects import local_path

bp = Blueprint("cases", __name__)


@bp.get("/cases")
def index() -> ResponseReturnValue:
    return render_template("cases.html", cases=instance_view.cases_of(db(), actor()))


@bp.get("/cases/<id:case_id>")
def show(case_id: int) -> ResponseReturnValue:
    case = instance_view.open_case(db(), actor(), case_id)
    return render_template("case.html", case=case, answering=None, values={}, errors={})


@bp.post("/cases/<id:case_id>/messages/<string(maxlength=128):name>")
def answer(case_id: int, name: str) -> ResponseReturnValue:
    """An outside party's answer entered by the role that liaises with them."""
    case = instance_view.open_case(db(), actor(), case_id)
    data = form_input.parse(case.answer_forms.get(name), request.form)  # the engine refuses
    try:
        _refuse_uploads()
        runtime.correlate_message(db(), actor(), name, data, instance_id=case_id, locale=language())
    except InvalidInputError as exc:
        errors = {k: [engine_text(m) for m in v] for k, v in exc.field_errors.items()}
        page = render_template(
            "case.html",
            case=case,
            answering=name,
            values=data,
            errors=errors,
            message=engine_text(exc),
        )
        return page, 422
    flash(_("外部答复已录入：%(name)s", name=name))
    return redirect(url_for("cases.show", case_id=case_id))


@bp.get("/cases/<id:case_id>/diagram")
def diagram(case_id: int) -> ResponseReturnValue:
    found = instance_view.diagram_of(db(), actor(), case_id)
    return {"bpmn_xml": found.bpmn_xml, "completed": found.completed, "current": found.current}


@bp.post("/cases/<id:case_id>/comments")
def comment(case_id: int) -> ResponseReturnValue:
    comments.add(db(), actor(), case_id, request.form.get("text", ""))
    flash(_("评论已添加"))
    fallback = url_for("cases.show", case_id=case_id)
    return redirect(local_path(request.form.get("next"), fallback))


def _refuse_uploads() -> None:
    """Files are stored per task; an outside answer has none yet, so a chosen file is refused
    rather than silently dropped."""
    chosen = {name for name, upload in request.files.items(multi=True) if upload.filename}
    if chosen:
        message = "外部答复暂不能上传附件 / files cannot be uploaded with an outside answer yet"
        raise InvalidInputError(message, {name: [message] for name in sorted(chosen)})
