"""The archive catalogue and its holds (七(二)、七(三); R3 第13条; R11 第18、19条).

P8a registers what the archivist accepted; P2 (and legal matters) place holds on every item of a
reference (a policy number) while a dispute is open and release them when it ends, keeping the
items at least ``keep_years`` longer; P8d lists what may be destroyed and destroys only items that
are neither permanent nor held, re-checked at the moment of destruction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from engine.case_files import Call, operator
from engine.errors import ConflictError, InvalidInputError
from engine.storage.models import ArchiveItem
from engine.timekeeping import clock
from engine.timekeeping.workdays import CHINA_TZ

_KEYS = (
    "archive_no", "category", "title", "related_ref", "retention_until", "permanent", "media",
    "location",
)  # fmt: skip
_SELECT_ITEM = (
    "SELECT archive_no, category, title, related_ref, retention_until, permanent, media, location,"
    " destroyed_at, EXISTS (SELECT 1 FROM archive_hold h WHERE h.related_ref = archive_item.related_ref"
    " AND h.released_at IS NULL) FROM archive_item WHERE archive_no = ?"
)


def _today() -> date:
    return clock.now().astimezone(CHINA_TZ).date()


def _iso_date(value: Any, what: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise InvalidInputError(f"{what} 不是日期 / {what} is not an ISO date: {value!r}") from None


def _item(row: Any) -> dict[str, Any]:
    item = dict(zip(_KEYS, row[: len(_KEYS)], strict=True))
    item["permanent"] = bool(item["permanent"])
    return item


def _names(values: Any, what: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise InvalidInputError(f"{what} 须为档号列表 / {what} must be a list of archive numbers")
    return sorted(set(values))


@operator("archive_register", required=("items",))
def archive_register(call: Call, items: list[Mapping[str, Any]]) -> dict[str, Any]:
    if not isinstance(items, list) or not items:
        raise InvalidInputError("items 须为非空列表 / items must be a non-empty list")
    now = call.tx.when(clock.now())
    registered = []
    for item in items:
        missing = [k for k in ("archive_no", "category", "title") if not item.get(k)]
        if missing:
            raise InvalidInputError(f"档案缺少 {', '.join(missing)} / an item lacks {missing}")
        archive_no = str(item["archive_no"])
        if call.tx.one("SELECT 1 FROM archive_item WHERE archive_no = ?", (archive_no,)):
            raise ConflictError(f"档号 {archive_no} 已登记 / archive number {archive_no} exists")
        permanent = bool(item.get("permanent"))
        retention_until = (
            None if permanent else _iso_date(item.get("retention_until"), "retention_until")
        )
        call.tx.execute(
            "INSERT INTO archive_item (archive_no, category, title, related_ref, retention_until,"
            " permanent, media, location, filed_by_instance, registered_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                archive_no,
                str(item["category"]),
                str(item["title"]),
                item.get("related_ref") or None,
                retention_until,
                permanent,
                item.get("media") or None,
                item.get("location") or None,
                call.instance_id,
                now,
            ),
        )
        registered.append(archive_no)
    return {"registered": registered}


def _lock_items_under(call: Call, related_ref: str) -> None:
    if not call.tx.sqlite:  # SQLite's BEGIN IMMEDIATE already serializes writers
        call.tx.all(
            "SELECT archive_no FROM archive_item WHERE related_ref = ? FOR UPDATE",
            (str(related_ref),),
        )


def _kept_under(call: Call, related_ref: str) -> list[str]:
    """The archive numbers of the items filed under a reference and not destroyed."""
    rows = call.tx.all(
        "SELECT archive_no FROM archive_item WHERE related_ref = ? AND destroyed_at IS NULL"
        " ORDER BY archive_no",
        (str(related_ref),),
    )
    return [row[0] for row in rows]


@operator("archive_hold", required=("related_ref", "reason", "case_ref"))
def archive_hold(call: Call, related_ref: str, reason: str, case_ref: str) -> dict[str, Any]:
    if not related_ref:
        return {"held": []}  # nothing filed under no reference (e.g. a complaint without a policy)
    _lock_items_under(call, related_ref)  # a destruction checking these items waits for the hold
    call.tx.execute(
        "INSERT INTO archive_hold (related_ref, case_ref, reason, placed_at, placed_by_instance)"
        " VALUES (?, ?, ?, ?, ?)",
        (str(related_ref), str(case_ref), str(reason), call.tx.when(clock.now()), call.instance_id),
    )
    return {"held": _kept_under(call, related_ref)}


@operator("archive_release", required=("related_ref", "case_ref"), optional=("keep_years",))
def archive_release(
    call: Call, related_ref: str, case_ref: str, keep_years: int = 0
) -> dict[str, Any]:
    if isinstance(keep_years, bool) or not isinstance(keep_years, int) or keep_years < 0:
        raise InvalidInputError("keep_years 须为非负整数 / keep_years must be a whole number >= 0")
    if not related_ref:
        return {"released": [], "kept_until": None}
    call.tx.execute(
        "UPDATE archive_hold SET released_at = ? WHERE related_ref = ? AND case_ref = ?"
        " AND released_at IS NULL",
        (call.tx.when(clock.now()), str(related_ref), str(case_ref)),
    )
    today = _today()
    try:
        kept_until = today.replace(year=today.year + keep_years)
    except ValueError:  # 29 February
        kept_until = today.replace(year=today.year + keep_years, day=28)
    call.tx.execute(
        "UPDATE archive_item SET retention_until = ? WHERE related_ref = ? AND permanent = ?"
        " AND destroyed_at IS NULL AND retention_until IS NOT NULL AND retention_until < ?",
        (kept_until.isoformat(), str(related_ref), False, kept_until.isoformat()),
    )
    return {"released": _kept_under(call, related_ref), "kept_until": kept_until.isoformat()}


@operator("archive_destruction_candidates", required=("as_of",))
def archive_destruction_candidates(call: Call, as_of: str) -> list[dict[str, Any]]:
    day = _iso_date(as_of, "as_of")
    rows = call.tx.all(
        "SELECT archive_no, category, title, related_ref, retention_until, permanent, media,"
        " location FROM archive_item WHERE destroyed_at IS NULL AND permanent = ?"
        " AND retention_until IS NOT NULL AND retention_until < ? AND NOT EXISTS (SELECT 1"
        " FROM archive_hold h WHERE h.related_ref = archive_item.related_ref"
        " AND h.released_at IS NULL) ORDER BY archive_no",
        (False, day),
    )
    return [_item(row) for row in rows]


def _state(call: Call, archive_nos: list[str]) -> dict[str, tuple[dict[str, Any], bool, bool]]:
    """archive number -> (item, destroyed, held) for the catalogued ones among ``archive_nos``."""
    found = {}
    for name in archive_nos:
        row = call.tx.one(_SELECT_ITEM, (name,))
        if row is not None:
            found[name] = (_item(row), row[-2] is not None, bool(row[-1]))
    return found


@operator("archive_held", required=("archive_nos",))
def archive_held(call: Call, archive_nos: list[str]) -> list[str]:
    state = _state(call, _names(archive_nos, "archive_nos"))
    return [name for name, (_item, _destroyed, held) in state.items() if held]


@operator("archive_destroy", required=("archive_nos", "list_ref"))
def archive_destroy(call: Call, archive_nos: list[str], list_ref: str) -> dict[str, Any]:
    names = _names(archive_nos, "archive_nos")
    if not call.tx.sqlite:  # lock before checking holds: a hold placed meanwhile waits or wins
        for name in names:
            call.tx.one(
                "SELECT archive_no FROM archive_item WHERE archive_no = ? FOR UPDATE", (name,)
            )
    state = _state(call, names)
    refused = {}
    for name in names:
        if name not in state:
            refused[name] = "未登记 / not in the catalogue"
            continue
        item, destroyed, held = state[name]
        if destroyed:
            refused[name] = "已销毁 / already destroyed"
        elif item["permanent"]:
            refused[name] = "永久保管 / kept permanently"
        elif held:
            refused[name] = "存在投诉或诉讼冻结 / under a complaint or legal hold"
    if refused:
        listed = "; ".join(f"{name}: {reason}" for name, reason in sorted(refused.items()))
        raise ConflictError(f"不得销毁 / may not be destroyed: {listed}")
    now = clock.now()
    for name in names:
        call.tx.execute(
            "UPDATE archive_item SET destroyed_at = ?, destroyed_by_instance = ? WHERE archive_no = ?",
            (call.tx.when(now), call.instance_id, name),
        )
    call.audit("archive_destroyed", {"list_ref": list_ref, "items": names})
    return {"destroyed": names, "destroyed_at": now.astimezone(CHINA_TZ).isoformat()}


def load_demo(session: Session, path: Path) -> None:
    """The demo catalogue from a JSON file's ``archive_items``; idempotent."""
    document = json.loads(path.read_text(encoding="utf-8"))
    for entry in document.get("archive_items", []):
        if session.get(ArchiveItem, entry["archive_no"]) is None:
            session.add(ArchiveItem(**entry, registered_at=clock.now()))
    session.flush()
