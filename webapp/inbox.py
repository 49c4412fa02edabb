"""The inbox: my tasks, my roles' unclaimed tasks, what I completed; claim, unclaim, delegate."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine import runtime
from engine.runtime.services import catalogue, inbox
from webapp import request_input
from webapp.auth import actor, db
from webapp.i18n import _
from webapp.redirects import local_path

bp = Blueprint("inbox", __name__)
PAGE = 25
MAX_PAGE = 1_000_000 // PAGE  # as deep as the API's offset goes
TABS = (inbox.MINE, inbox.CLAIMABLE, inbox.DONE)


def _filters() -> inbox.Filters:
    """The inbox query as the engine takes it."""
    args = request.args
    return inbox.Filters(
        process=args.get("process") or None,
        search=(args.get("q") or "").strip()[:100] or None,
        due=args.get("due") if args.get("due") in ("overdue", "today", "week") else None,
        sort="created" if args.get("sort") == "created" else "due",
    )


@bp.get("/")
def index() -> ResponseReturnValue:
    tab = request.args.get("tab", inbox.MINE)
    tab = tab if tab in TABS else inbox.MINE
    page = request_input.query_number("page", default=1, low=1, high=MAX_PAGE)
    filters = _filters()
    tasks = inbox.list_tasks(
        db(), actor(), tab, filters=filters, limit=PAGE + 1, offset=(page - 1) * PAGE
    )
    template = "_task_list.html" if request.headers.get("HX-Request") else "inbox.html"
    return render_template(
        template,
        tab=tab,
        tasks=tasks[:PAGE],
        more=len(tasks) > PAGE,
        page=page,
        filters=filters,
        counts=inbox.counts(db(), actor(), filters),
        saved=inbox.saved_filters(db(), actor()),
        processes=catalogue.processes(db()),
    )


@bp.post("/filters")
def save_filter() -> ResponseReturnValue:
    inbox.save_filter(db(), actor(), request.form.get("name", ""), request.form)
    flash(_("筛选已保存"))
    query: dict[str, Any] = {k: request.form[k] for k in inbox.QUERY_KEYS if request.form.get(k)}
    return redirect(url_for("inbox.index", **query))


@bp.post("/filters/<id:filter_id>/delete")
def delete_filter(filter_id: int) -> ResponseReturnValue:
    inbox.delete_filter(db(), actor(), filter_id)
    return redirect(url_for("inbox.index"))


def _back() -> ResponseReturnValue:
    return redirect(local_path(request.form.get("next"), url_for("inbox.index")))


@bp.post("/tasks/<id:task_id>/claim")
def claim(task_id: int) -> ResponseReturnValue:
    runtime.claim_task(db(), actor(), task_id)
    flash(_("已认领任务"))
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/tasks/claim")
def claim_many() -> ResponseReturnValue:
    ids = [int(v) for v in request.form.getlist("task") if v.isdigit()]
    claimed = 0
    for task_id in ids:
        runtime.claim_task(db(), actor(), task_id)
        claimed += 1
    flash(_("已认领 %(n)d 个任务", n=claimed))
    return redirect(url_for("inbox.index", tab=inbox.MINE))


@bp.post("/tasks/<id:task_id>/unclaim")
def unclaim(task_id: int) -> ResponseReturnValue:
    runtime.unclaim_task(db(), actor(), task_id)
    flash(_("已退回任务"))
    return _back()


@bp.post("/tasks/<id:task_id>/delegate")
def delegate(task_id: int) -> ResponseReturnValue:
    runtime.delegate_task(db(), actor(), task_id, request.form.get("to", "").strip())
    flash(_("已转交任务"))
    return redirect(url_for("inbox.index"))
