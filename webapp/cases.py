"""My cases, and one case: its data, where it waits, its history, its comments."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.runtime.services import comments, instance_view
from webapp.auth import actor, db
from webapp.i18n import _
from webapp.redirects import local_path

bp = Blueprint("cases", __name__)


@bp.get("/cases")
def index() -> ResponseReturnValue:
    return render_template("cases.html", cases=instance_view.cases_of(db(), actor()))


@bp.get("/cases/<id:case_id>")
def show(case_id: int) -> ResponseReturnValue:
    return render_template("case.html", case=instance_view.open_case(db(), actor(), case_id))


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
