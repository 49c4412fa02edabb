"""Language: zh-CN by default, English selectable and remembered in the session (Flask-Babel).

Page texts are written in Chinese and translated in ``translations/en``. Engine messages come
bilingual, "中文 / English"; ``engine_text`` shows the half in the reader's language.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, redirect, request, session
from flask.typing import ResponseReturnValue
from flask_babel import Babel, format_currency, format_datetime, get_locale
from flask_babel import gettext as _

from engine.timekeeping.workdays import CHINA_TZ
from webapp.redirects import local_path

LANGUAGES = ("zh", "en")
TRANSLATIONS = Path(__file__).parent / "translations"

bp = Blueprint("i18n", __name__)

__all__ = ["_", "bp", "engine_text", "init_app", "language"]


def language() -> str:
    chosen = session.get("language")
    return chosen if chosen in LANGUAGES else "zh"


def init_app(app: Flask) -> None:
    _compile_catalogues()
    Babel(app, locale_selector=language, default_timezone="Asia/Shanghai")
    app.register_blueprint(bp)
    app.jinja_env.globals.update(engine_text=engine_text, language=language, _=_)
    app.jinja_env.filters.update(when=when, money=money)


def _compile_catalogues() -> None:
    """messages.po → messages.mo when the .mo is missing or older (a fresh clone has none)."""
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        with mo.open("wb") as target:
            write_mo(target, catalog)


@bp.post("/language")
def choose_language() -> ResponseReturnValue:
    chosen = request.form.get("language", "zh")
    session["language"] = chosen if chosen in LANGUAGES else "zh"
    session.permanent = True
    return redirect(local_path(request.form.get("next"), "/"))


def engine_text(message: object) -> str:
    """The reader's half of an engine message written "中文 / English"."""
    text = str(message)
    if " / " not in text:
        return text
    zh, en = text.split(" / ", 1)
    return en if str(get_locale()) == "en" else zh


def when(value: Any) -> str:
    """A time in China time, written the reader's way: 2026/3/2 09:00, or 3/2/26, 9:00 AM."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=CHINA_TZ)
    written: str = format_datetime(value, "short")
    return written


def money(value: Any) -> str:
    """CNY with two decimals, grouped for the reader's locale: ¥12,000.00."""
    if value in (None, ""):
        return ""
    written: str = format_currency(Decimal(str(value)), "CNY")
    return written
