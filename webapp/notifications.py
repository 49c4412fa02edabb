"""The notification centre: my notifications, the unread count in the menu, mark read; my choices."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine import notifications
from webapp.auth import actor, db
from webapp.i18n import _

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
def index() -> ResponseReturnValue:
    return render_template(
        "notifications.html", items=notifications.list_for(db(), actor().id, limit=100)
    )


@bp.get("/notifications/count")
def count() -> ResponseReturnValue:
    """The menu's unread count (htmx swaps it in, and asks again every few seconds)."""
    return render_template(
        "_notification_count.html", unread=notifications.unread_count(db(), actor().id)
    )


@bp.post("/notifications/<id:notification_id>/read")
def read(notification_id: int) -> ResponseReturnValue:
    notifications.mark_read(db(), actor().id, notification_id)
    return redirect(url_for("notifications.index"))


@bp.post("/notifications/read")
def read_all() -> ResponseReturnValue:
    notifications.mark_read(db(), actor().id)
    flash(_("已全部标为已读"))
    return redirect(url_for("notifications.index"))


@bp.get("/notifications/preferences")
def preferences() -> ResponseReturnValue:
    kinds, chosen_language = notifications.preferences(db(), actor().id)
    return render_template(
        "notification_preferences.html", kinds=kinds, chosen_language=chosen_language
    )


@bp.post("/notifications/preferences")
def save_preferences() -> ResponseReturnValue:
    notifications.set_preferences(
        db(),
        actor().id,
        set(request.form.getlist("in_app")),
        set(request.form.getlist("email")),
        request.form.get("language", "zh"),
    )
    flash(_("通知设置已保存"))
    return redirect(url_for("notifications.preferences"))
