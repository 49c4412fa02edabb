"""The archive catalogue and its holds (七(二)、七(三); R3 第13条; R11 第18、19条).

P8a registers what the archivist accepted; P2 (and legal matters) place holds on every item of a
reference (a policy number) while a dispute is open and release them when it ends, keeping the
items at least ``keep_years`` longer; P8d lists what may be destroyed and destroys only items that
are neither permanent nor held, re-checked at the moment of destruction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from engine.case_files.operators import Call, operator
from engine.errors import ConflictError, InvalidInputError
from engine.storage import archives as archive_rows
from engine.storage.models import ArchiveItem
from engine.timekeeping import clock
from engine.timekeeping.workdays import CHINA_TZ


def _today() -> date:
    return clock.now().astimezone(CHINA_TZ).date()


def _iso_date(value: Any, what: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise InvalidInputError(f"{what} 不是日期 / {what} is not an ISO date: {value!r}") from None


def _names(values: Any, what: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise InvalidInputError(f"{what} 须为档号列表 / {what} must be a list of archive numbers")
    return sorted(set(values))


@operator("archive_register", required=("items",))
def archive_register(call: Call, items: list[Mapping[str, Any]]) -> dict[str, Any]:
    if not isinstance(items, list) or not items:
        raise InvalidInputError("items 须为非空列表 / items must be a non-empty list")
    now = clock.now()
    registered = []
    for item in items:
        missing = [k for k in ("archive_no", "category", "title") if not item.get(k)]
        if missing:
            raise InvalidInputError(f"档案缺少 {', '.join(missing)} / an item lacks {missing}")
        archive_no = str(item["archive_no"])
        if archive_rows.item_exists(call.tx, archive_no):
            raise ConflictError(f"档号 {archive_no} 已登记 / archive number {archive_no} exists")
        permanent = bool(item.get("permanent"))
        retention_until = (
            None if permanent else _iso_date(item.get("retention_until"), "retention_until")
        )
        archive_rows.insert_item(
            call.tx,
            archive_rows.NewArchiveItem(
                archive_no=archive_no,
                category=str(item["category"]),
                title=str(item["title"]),
                related_ref=item.get("related_ref") or None,
                retention_until=retention_until,
                permanent=permanent,
                media=item.get("media") or None,
                location=item.get("location") or None,
                filed_by_instance=call.instance_id,
                registered_at=now,
            ),
        )
        registered.append(archive_no)
    return {"registered": registered}


@operator("archive_hold", required=("related_ref", "reason", "case_ref"))
def archive_hold(call: Call, related_ref: str, reason: str, case_ref: str) -> dict[str, Any]:
    if not related_ref:
        return {"held": []}  # nothing filed under no reference (e.g. a complaint without a policy)
    tx, ref = call.tx, str(related_ref)
    archive_rows.lock_items_under(tx, ref)  # a destruction checking these items waits for the hold
    archive_rows.insert_hold(tx, ref, str(case_ref), str(reason), clock.now(), call.instance_id)
    return {"held": archive_rows.kept_under(tx, ref)}


@operator("archive_release", required=("related_ref", "case_ref"), optional=("keep_years",))
def archive_release(
    call: Call, related_ref: str, case_ref: str, keep_years: int = 0
) -> dict[str, Any]:
    if isinstance(keep_years, bool) or not isinstance(keep_years, int) or keep_years < 0:
        raise InvalidInputError("keep_years 须为非负整数 / keep_years must be a whole number >= 0")
    if not related_ref:
        return {"released": [], "kept_until": None}
    tx, ref = call.tx, str(related_ref)
    archive_rows.release_holds(tx, ref, str(case_ref), clock.now())
    today = _today()
    try:
        kept_until = today.replace(year=today.year + keep_years)
    except ValueError:  # 29 February
        kept_until = today.replace(year=today.year + keep_years, day=28)
    archive_rows.keep_until(tx, ref, kept_until.isoformat())
    return {"released": archive_rows.kept_under(tx, ref), "kept_until": kept_until.isoformat()}


@operator("archive_destruction_candidates", required=("as_of",))
def archive_destruction_candidates(call: Call, as_of: str) -> list[dict[str, Any]]:
    day = _iso_date(as_of, "as_of")
    return [asdict(item) for item in archive_rows.destruction_candidates(call.tx, day)]


def _state(call: Call, archive_nos: list[str]) -> dict[str, archive_rows.ArchiveItemState]:
    """archive number -> its state, for the catalogued ones among ``archive_nos``."""
    found = {}
    for name in archive_nos:
        state = archive_rows.item_state(call.tx, name)
        if state is not None:
            found[name] = state
    return found


@operator("archive_held", required=("archive_nos",))
def archive_held(call: Call, archive_nos: list[str]) -> list[str]:
    state = _state(call, _names(archive_nos, "archive_nos"))
    return [name for name, found in state.items() if found.held]


@operator("archive_destroy", required=("archive_nos", "list_ref"))
def archive_destroy(call: Call, archive_nos: list[str], list_ref: str) -> dict[str, Any]:
    names = _names(archive_nos, "archive_nos")
    archive_rows.lock_items(
        call.tx, names
    )  # before checking holds: one placed meanwhile waits or wins
    state = _state(call, names)
    refused = {}
    for name in names:
        if name not in state:
            refused[name] = "未登记 / not in the catalogue"
            continue
        found = state[name]
        if found.destroyed:
            refused[name] = "已销毁 / already destroyed"
        elif found.item.permanent:
            refused[name] = "永久保管 / kept permanently"
        elif found.held:
            refused[name] = "存在投诉或诉讼冻结 / under a complaint or legal hold"
    if refused:
        listed = "; ".join(f"{name}: {reason}" for name, reason in sorted(refused.items()))
        raise ConflictError(f"不得销毁 / may not be destroyed: {listed}")
    now = clock.now()
    for name in names:
        archive_rows.destroy_item(call.tx, name, now, call.instance_id)
    call.audit("archive_destroyed", {"list_ref": list_ref, "items": names})
    return {"destroyed": names, "destroyed_at": now.astimezone(CHINA_TZ).isoformat()}


def load_demo(session: Session, path: Path) -> None:
    """The demo catalogue from a JSON file's ``archive_items``; idempotent."""
    document = json.loads(path.read_text(encoding="utf-8"))
    for entry in document.get("archive_items", []):
        if session.get(ArchiveItem, entry["archive_no"]) is None:
            session.add(ArchiveItem(**entry, registered_at=clock.now()))
    session.flush()
