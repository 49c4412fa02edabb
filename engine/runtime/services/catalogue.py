"""The processes a person may start: the latest version of each key whose start lane they belong to.

A start event in a lane that names a role (销售组, 客服组 …) may be used by that role's members; a
start event in an applicant's lane (申请人), or in no lane, by anyone. A process another one
calls (the new-business callback, called by the sale) is started by its caller, with that case's
data, and is not offered. Each entry carries what the process is for (the diagram's
documentation) and the regulation clauses it serves (docs/regulation.md, engine.definitions.regulation);
the catalogue can be searched by name, description and clause. ``start`` checks the rules (and the business key's length) and starts;
the web, the API and the CLI start through it (the worker's periodic starts as the system, unchecked).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import bpmn
from engine.definitions.regulation import Clause, clauses_of
from engine.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from engine.people import assignment
from engine.people.identity import Actor
from engine.runtime.base import caches, unit_of_work
from engine.runtime.services import instance_actions
from engine.runtime.step.steps import InstanceSummary
from engine.storage.db import Database
from engine.storage.models import BUSINESS_KEY_LENGTH as BUSINESS_KEY_LENGTH
from engine.storage.models import ProcessDefinition


@dataclass(frozen=True)
class Startable:
    key: str
    name: str
    version: int
    roles: frozenset[str]  # empty: anyone may start it
    called: bool = False  # another process calls it: it starts from there, with that case's data
    description: str = ""  # the diagram's bpmn:documentation
    clauses: tuple[Clause, ...] = ()  # the regulation clauses it serves
    fields: frozenset[str] = frozenset()  # the fields of its forms: what start data may hold

    def matches(self, search: str) -> bool:
        """Every word of ``search`` is in the name, key, description or a clause (number or words)."""
        text = " ".join(
            [self.name, self.key, self.description]
            + [f"{clause.number} {clause.quote}" for clause in self.clauses]
        ).casefold()
        return all(word in text for word in search.casefold().split())


def catalogue(db: Database, actor: Actor, search: str | None = None) -> list[Startable]:
    """What ``actor`` may start, by name; with ``search``, only the entries that match it."""
    return sorted(
        (
            e
            for e in _latest(db)
            if not e.called and _may_start(actor, e) and (not search or e.matches(search))
        ),
        key=lambda e: e.name,
    )


def processes(db: Database) -> list[tuple[str, str]]:
    """(key, name) of every deployed process, by name (the inbox's process filter)."""
    return sorted(((e.key, e.name) for e in _latest(db)), key=lambda item: item[1])


def start(
    db: Database,
    actor: Actor,
    key: str,
    data: Mapping[str, Any] | None = None,
    *,
    business_key: str | None = None,
) -> InstanceSummary:
    """Start the latest version of ``key`` as ``actor``, with ``data`` as the case's first data.

    :raise NotFoundError: no such process. :raise PermissionDeniedError: (audited)
    :raise InvalidInputError: a business key longer than ``BUSINESS_KEY_LENGTH``, or data the
        names a field no form of the process has (no process declares a start form of its own).
    """
    if business_key is not None and len(business_key) > BUSINESS_KEY_LENGTH:
        message = (
            f"业务编号最多 {BUSINESS_KEY_LENGTH} 个字符 / at most {BUSINESS_KEY_LENGTH} characters"
        )
        raise InvalidInputError(
            "业务编号过长 / the business key is too long", {"business_key": [message]}
        )
    entry = next((e for e in _latest(db) if e.key == key), None)
    if entry is None:
        raise NotFoundError(f"流程不存在 / no process '{key}'")
    _check_start_data(entry, data)
    if entry.called:
        raise ConflictError(
            f"“{entry.name}”由其他流程调用发起，不能单独发起 / {key} is started by the process that "
            "calls it, with that case's data"
        )
    if not _may_start(actor, entry):
        with unit_of_work.step(db, actor):
            raise PermissionDeniedError(
                f"您不能发起此流程（需要角色 {', '.join(sorted(entry.roles))}）/ you may not start "
                f"this process (it needs the role {', '.join(sorted(entry.roles))})"
            )
    return instance_actions.start_instance(db, actor, key, data, business_key=business_key)


def _check_start_data(entry: Startable, data: Mapping[str, Any] | None) -> None:
    """Start data may only name fields of the process's forms (no process has a start form)."""
    unknown = sorted(str(name) for name in data or {} if name not in entry.fields)
    if unknown:
        message = "此流程的表单没有此字段 / no form of this process has this field"
        raise InvalidInputError(
            "发起数据无效 / the start data is invalid", {name: [message] for name in unknown}
        )


def _may_start(actor: Actor, entry: Startable) -> bool:
    return not entry.roles or actor.has_role(*entry.roles)


_KNOWN: weakref.WeakKeyDictionary[Database, tuple[int, list[Startable]]] = (
    weakref.WeakKeyDictionary()
)


def _latest(db: Database) -> list[Startable]:
    """The latest version of every key; recomputed only when a version was deployed since."""
    with db.read() as session:
        newest_id = session.scalar(select(func.max(ProcessDefinition.id))) or 0
        known = _KNOWN.get(db)
        if known is not None and known[0] == newest_id:
            return known[1]
        found = _compute_latest(db, session)
    _KNOWN[db] = (newest_id, found)
    return found


def _compute_latest(db: Database, session: Session) -> list[Startable]:
    newest = (
        select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("version"))
        .group_by(ProcessDefinition.key)
        .subquery()
    )
    ids = session.scalars(
        select(ProcessDefinition.id).join(
            newest,
            (ProcessDefinition.key == newest.c.key)
            & (ProcessDefinition.version == newest.c.version),
        )
    ).all()
    definitions = [caches.of(db).load_definition(session, i) for i in ids]
    called = {key for d in definitions for key in d.compiled.called_keys}
    found = []
    for definition in definitions:
        roles = {
            assignment.role_for_lane(lane, {}) for lane in bpmn.start_lanes(definition.compiled)
        }
        found.append(
            Startable(
                definition.key,
                definition.name,
                definition.version,
                frozenset() if None in roles else frozenset(r for r in roles if r),
                definition.key in called,
                definition.compiled.documentation,
                clauses_of(definition.key),
                frozenset(
                    field.name
                    for key in definition.forms
                    for field in caches.of(db).form(definition, key).fields
                ),
            )
        )
    return found
