"""Start a process: the ones my roles may start; starting lands me on my first task."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.runtime.services import catalogue, inbox
from webapp.auth import actor, db

bp = Blueprint("catalogue", __name__)

SEARCH_LENGTH = 100


@bp.get("/start")
def index() -> ResponseReturnValue:
    search = request.args.get("q", "").strip()[:SEARCH_LENGTH]
    processes = catalogue.catalogue(db(), actor(), search=search or None)
    return render_template("catalogue.html", processes=processes, search=search)


@bp.post("/start/<key>")
def start(key: str) -> ResponseReturnValue:
    case = catalogue.start(db(), actor(), key)
    mine = [t for t in inbox.open_tasks_of(db(), case.id) if t.assignee_id == actor().id]
    if mine:
        return redirect(url_for("tasks.show", task_id=mine[0].id))
    return redirect(url_for("cases.show", case_id=case.id))
