"""Start a process: the ones my roles may start; starting lands me on my first task."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from engine.runtime.services import catalogue, inbox
from webapp.auth import actor, db

bp = Blueprint("catalogue", __name__)


@bp.get("/start")
def index() -> ResponseReturnValue:
    return render_template("catalogue.html", processes=catalogue.catalogue(db(), actor()))


@bp.post("/start/<key>")
def start(key: str) -> ResponseReturnValue:
    case = catalogue.start(db(), actor(), key)
    mine = [t for t in inbox.open_tasks_of(db(), case.id) if t.assignee_id == actor().id]
    if mine:
        return redirect(url_for("tasks.show", task_id=mine[0].id))
    return redirect(url_for("cases.show", case_id=case.id))
