"""What a request may carry: one check of its input before any view runs, and query numbers.

Refused with 400 before anything is read or saved (``check`` runs before every request):

- NUL characters anywhere: the path, the query, form fields and file names, JSON (PostgreSQL
  cannot store NUL in text; SQLite would store what no one can see);
- bytes that are not UTF-8 in the query string or an urlencoded form (a lone surrogate arrives
  as ``%ED%A0%80``); in multipart forms werkzeug turns such bytes into U+FFFD, as browsers do
  with lone surrogates;
- JSON that is not plain data: not UTF-8 or not JSON, integers over ``MAX_DIGITS`` digits
  (Python refuses to read more than 4,300), nesting deeper than ``MAX_DEPTH`` (forms need 4;
  100,000 deep exhausts the parser's recursion), lone surrogates (``"\\ud800"``).

``parse_json`` is the one JSON reader: ``check`` parses a JSON body once and the API's argument
parser takes the result (``json_body``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import g, request
from werkzeug.exceptions import BadRequest

from webapp.i18n import _

MAX_DIGITS = 100
MAX_DEPTH = 32
_JSON_BODY = "opsflow_json_body"
_MISSING = object()


class RequestInputError(BadRequest):
    """Input the app does not take; ``description`` says why in the reader's language."""


def check() -> None:
    """Refuse the request unless its input is text the engine can take (a before-request hook).

    :raise RequestInputError:
    """
    _refuse_nul([request.path])
    _check_urlencoded(request.query_string)
    _refuse_nul(_pairs(request.args.items(multi=True)))
    if request.mimetype == "application/x-www-form-urlencoded":
        _check_urlencoded(request.get_data(cache=True))
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        _refuse_nul(_pairs(request.form.items(multi=True)))
        _refuse_nul(_pairs((name, f.filename or "") for name, f in request.files.items(multi=True)))
    if request.is_json:
        g.setdefault(_JSON_BODY, parse_json(request.get_data(cache=True)))


def current_path() -> str:
    """This page's path and query, to come back to; only the path when the query is not UTF-8
    (the error page saying so must still render)."""
    try:
        return request.full_path
    except UnicodeDecodeError:
        return request.path


def json_body() -> Any:
    """The request's JSON body as ``check`` parsed it (``None`` when there is none)."""
    return g.get(_JSON_BODY)


def parse_json(raw: bytes) -> Any:
    """JSON text → plain data, or :class:`RequestInputError` saying what is wrong with it."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_int=_integer)
    except UnicodeDecodeError:
        raise RequestInputError(_("请求体不是有效的 UTF-8 文本")) from None
    except RecursionError:
        raise RequestInputError(_("JSON 嵌套过深")) from None
    except ValueError:  # json.JSONDecodeError (an integer over MAX_DIGITS raised already)
        raise RequestInputError(_("请求体不是有效的 JSON")) from None
    _check_plain(value)
    return value


def query_number(name: str, *, default: int, low: int, high: int) -> int:
    """The whole number ``low``–``high`` in query parameter ``name`` (``default`` when absent).

    :raise RequestInputError: not a whole number, or out of range.
    """
    given = request.args.get(name)
    if given is None or given == "":
        return default
    if given.isascii() and given.isdigit() and len(given) <= len(str(high)):
        number = int(given)
        if low <= number <= high:
            return number
    message = _("参数 %(name)s 应为 %(low)d 到 %(high)d 之间的整数", name=name, low=low, high=high)
    raise RequestInputError(message)


def _integer(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_DIGITS:
        raise RequestInputError(_("JSON 中的整数最多 %(n)d 位", n=MAX_DIGITS))
    return int(literal)


def _check_plain(value: Any) -> None:
    """No NUL or lone surrogate in any key or text, no nesting deeper than MAX_DEPTH."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise RequestInputError(_("JSON 嵌套过深"))
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _check_string(text: str) -> None:
    _refuse_nul([text])
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # only a lone surrogate cannot be encoded
        raise RequestInputError(_("请求中含有无效的 Unicode 字符（孤立代理项）")) from None


def _check_urlencoded(raw: bytes) -> None:
    """``a=1&b=%E4%B8%AD``: every value, percent-decoded, must be UTF-8."""
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise RequestInputError(_("请求中含有无效的 UTF-8 文本")) from None


def _pairs(items: Iterable[tuple[str, str]]) -> Iterable[str]:
    for key, value in items:
        yield key
        yield value


def _refuse_nul(texts: Iterable[str]) -> None:
    if any("\x00" in text for text in texts):
        raise RequestInputError(_("请求中含有空字符（NUL）"))
