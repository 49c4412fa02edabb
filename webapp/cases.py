"""My cases, and one case: its data, where it waits, its history."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from engine import instance_view
from webapp.auth import actor, db

bp = Blueprint("cases", __name__)


@bp.get("/cases")
def index() -> ResponseReturnValue:
    return render_template("cases.html", cases=instance_view.cases_of(db(), actor()))


@bp.get("/cases/<int:case_id>")
def show(case_id: int) -> ResponseReturnValue:
    return render_template("case.html", case=instance_view.open_case(db(), actor(), case_id))
