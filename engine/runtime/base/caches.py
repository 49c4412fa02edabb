"""Per-database caches in this process: deployed versions' immutable data, parsed forms, hot workflows.

A deployed version never changes, so what the runtime reads off it (compiled spec, user
task properties, form documents) is loaded once per database handle. A hot workflow is
the deserialized instance with its incremental state writer and the rows that mirror it
(open ``human_task`` ids, waiting timers), valid at one ``process_instance.version``: a step
takes it out, and it is put back only by an after-commit callback, so a rolled-back step
never leaves anything behind, and any other writer's commit bumps the version past it.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine import bpmn, forms
from engine.definitions import registry
from engine.errors import NotFoundError
from engine.people import assignment
from engine.runtime.base import unit_of_work
from engine.storage.db import Database
from engine.storage.models import ProcessDefinition
from engine.storage.txn import Txn


@dataclass(frozen=True)
class TaskRules:
    """A user task's properties and the segregation rules derived from them."""

    properties: Mapping[str, str] = field(default_factory=dict)
    approval: bool = False
    segregated_from: frozenset[str] = frozenset()

    @property
    def segregated(self) -> bool:
        return self.approval or bool(self.segregated_from)


_NO_RULES = TaskRules()


@dataclass(frozen=True)
class Definition:
    """What the runtime needs of one deployed process version (immutable)."""

    id: int
    key: str
    version: int
    name: str
    forms: Mapping[str, Any]
    compiled: bpmn.CompiledProcess
    tasks: Mapping[str, TaskRules]
    # the request's own forms: user tasks the diagram gives the starter (assignee=starter)
    submitting_tasks: frozenset[str] = frozenset()

    def rules(self, bpmn_id: str) -> TaskRules:
        return self.tasks.get(bpmn_id, _NO_RULES)


@dataclass
class Hot:
    """A deserialized instance and what mirrors it, as of ``version`` (owned by one step at a time)."""

    version: int
    workflow: Any
    writer: bpmn.StateWriter
    open_tasks: dict[str, tuple[int, str]]  # spiff task id -> (human_task.id, BPMN id)
    timers: frozenset[tuple[str, datetime]]  # (BPMN id, fire_at) of the waiting timer rows
    # audit events of the step's service-task operators, written by steps.persist
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class Caches:
    def __init__(self, size: int = 2048):
        self.size = size
        self.workflows: OrderedDict[int, Hot] = OrderedDict()
        self.definitions: dict[int, Definition] = {}
        self.forms: dict[tuple[int, str], forms.FormDefinition] = {}

    def checkout(self, instance_id: int, version: int) -> Hot | None:
        """Take the hot workflow out (so no other thread can step it) if its version matches."""
        hot = self.workflows.pop(instance_id, None)
        return hot if hot is not None and hot.version == version else None

    def checkin(self, instance_id: int, hot: Hot) -> None:
        """Put a workflow back; call only once the version it carries is committed."""
        self.workflows[instance_id] = hot
        if len(self.workflows) > self.size:
            self.workflows.popitem(last=False)

    def drop(self, instance_id: int) -> None:
        self.workflows.pop(instance_id, None)

    def load_definition(self, session: Session, definition_id: int) -> Definition:
        """Read a deployed version through the ORM once; kept for the life of the handle."""
        found = self.definitions.get(definition_id)
        if found is not None:
            return found
        row = session.get(ProcessDefinition, definition_id)
        if row is None:
            raise NotFoundError(f"流程版本缺失 / process version #{definition_id} is missing")
        definition = Definition(
            id=row.id,
            key=row.key,
            version=row.version,
            name=row.name,
            forms=dict(row.forms),
            compiled=registry.compiled_version(session, row),
            tasks={bpmn_id: _rules(meta) for bpmn_id, meta in row.user_tasks.items()},
            submitting_tasks=frozenset(
                bpmn_id
                for bpmn_id, meta in row.user_tasks.items()
                if assignment.is_starter_rule(meta.get("properties", {}).get("assignee"))
            ),
        )
        self.definitions[definition_id] = definition
        return definition

    def form(self, definition: Definition, key: str) -> forms.FormDefinition:
        form = self.forms.get((definition.id, key))
        if form is None:
            form = self.forms[(definition.id, key)] = forms.from_document(definition.forms[key])
        return form


def _rules(meta: Mapping[str, Any]) -> TaskRules:
    properties: Mapping[str, str] = dict(meta.get("properties", {}))
    approval, others = assignment.segregated_from(properties)
    return TaskRules(properties, approval, others)


def definition(db: Database, tx: Txn, definition_id: int) -> Definition:
    """A deployed version from the cache, or read through the ORM the first time.

    :raise NotFoundError: the version is missing.
    """
    found = of(db).definitions.get(definition_id)
    if found is not None:
        return found
    return of(db).load_definition(unit_of_work.orm_session(tx), definition_id)


_CACHES: weakref.WeakKeyDictionary[Database, Caches] = weakref.WeakKeyDictionary()


def of(db: Database) -> Caches:
    caches = _CACHES.get(db)
    if caches is None:
        caches = _CACHES[db] = Caches()
    return caches
