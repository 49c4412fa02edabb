"""The user's settings: API tokens (create, shown once; revoke)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.people import api_tokens
from webapp.auth import actor, db
from webapp.i18n import _

bp = Blueprint("account", __name__)


@bp.get("/settings/tokens")
def tokens() -> ResponseReturnValue:
    return render_template("tokens.html", tokens=api_tokens.tokens_of(db(), actor()), created=None)


@bp.post("/settings/tokens")
def create_token() -> ResponseReturnValue:
    created = api_tokens.create(db(), actor(), request.form.get("name", ""))
    listed = api_tokens.tokens_of(db(), actor())
    return render_template("tokens.html", tokens=listed, created=created), 201


@bp.post("/settings/tokens/<id:token_id>/revoke")
def revoke_token(token_id: int) -> ResponseReturnValue:
    api_tokens.revoke(db(), actor(), token_id)
    flash(_("令牌已撤销"))
    return redirect(url_for("account.tokens"))
