"""One step of an instance: its deployed version and hot workflow, the engine step, persisting the result.

Persisting writes the instance's status, its ``human_task`` and ``timer`` mirror (by difference
with the hot entry's), its state (``bpmn.StateWriter``) and audit events, and puts the hot
workflow back in the cache only once the new version has committed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from engine import audit, bpmn, case_files, forms, notifications
from engine.errors import ScriptError
from engine.people import assignment
from engine.people.identity import Actor
from engine.runtime.base import caches
from engine.storage import store
from engine.storage.db import Database
from engine.storage.models import InstanceStatus
from engine.storage.store import InstanceRow
from engine.storage.txn import Txn
from engine.timekeeping import clock

RUNNING, COMPLETED, CANCELLED, ERROR = (
    InstanceStatus.RUNNING,
    InstanceStatus.COMPLETED,
    InstanceStatus.CANCELLED,
    InstanceStatus.ERROR,
)


@dataclass(frozen=True)
class InstanceSummary:
    """What a service hands back about an instance (never an ORM object)."""

    id: int
    key: str
    definition_version: int
    status: str
    business_key: str | None
    title: str
    version: int
    open_task_ids: tuple[int, ...]
    error: str | None = None
    error_element: str | None = None


def checkout(
    db: Database, tx: Txn, instance: InstanceRow, definition: caches.Definition
) -> caches.Hot:
    """The instance's hot workflow at the locked row's version, or restored from storage."""
    hot = caches.of(db).checkout(instance.id, instance.version)
    if hot is None:
        workflow = bpmn.load_state(definition.compiled, store.state(tx, instance.id))
        hot = caches.Hot(
            instance.version,
            workflow,
            bpmn.StateWriter(),
            store.open_tasks(tx, instance.id),
            store.waiting_timers(tx, instance.id),
        )
    return hot


def attempt(
    tx: Txn, actor: Actor, instance_id: int, hot: caches.Hot, step: Callable[[], object]
) -> ScriptError | None:
    """Run an engine step; a failing script leaves the workflow with that task in ERROR.

    Service-task operators the step calls run in ``tx``; their audit events, and those of what
    the step decided on its own (DMN decisions, gateway paths, timers fired), wait in
    ``hot.events`` for ``persist``, so they follow the step's own event in the chain.
    """
    since = time.time()  # SpiffWorkflow stamps task state changes with time.time()
    with case_files.step(tx, actor, instance_id) as context:
        try:
            step()
        except ScriptError as exc:
            return exc
        finally:
            hot.events.extend(context.events)
            hot.events.extend(bpmn.step_events(hot.workflow, since))
    return None


def persist(
    db: Database,
    tx: Txn,
    actor: Actor,
    instance: InstanceRow,
    definition: caches.Definition,
    hot: caches.Hot,
    failure: ScriptError | None,
) -> InstanceSummary:
    """Write what the step changed; the hot workflow goes back to the cache after COMMIT.

    :raise ConflictError: the instance row's version moved (someone else wrote it).
    """
    workflow = hot.workflow
    for type_, element_id, payload in hot.events:
        audit.record(
            tx,
            type_,
            actor=actor.username,
            instance_id=instance.id,
            task_id=element_id,
            payload=forms.to_json_data(payload) | {"version": definition.version},
        )
    hot.events.clear()
    _retitle(tx, instance, definition, workflow)
    bpmn.hold_new_timers(workflow)  # a paused clock holds timers armed since the pause too
    mirror = bpmn.mirror(workflow)
    _set_status(tx, actor, instance, workflow, failure, mirror.completed)
    state = hot.writer.dump(workflow)
    _sync_tasks(tx, actor, instance, definition, hot, mirror.ready)
    _sync_timers(tx, instance.id, hot, mirror.timers if instance.status == RUNNING else frozenset())
    store.update_instance(tx, instance, state)  # the optimistic lock: version checked and bumped
    hot.version = instance.version
    if instance.status in (RUNNING, ERROR):
        tx.on_commit(partial(caches.of(db).checkin, instance.id, hot))
    return summary(instance, definition, hot.open_tasks)


def _retitle(tx: Txn, instance: InstanceRow, definition: caches.Definition, workflow: Any) -> None:
    """A case whose diagram named it (``case_title``, e.g. the customer) shows that name."""
    label = bpmn.case_title(workflow)
    title = f"{definition.name} · {label}"[:255] if label else None
    if title is not None and title != instance.title:
        store.set_title(tx, instance.id, title)
        instance.title = title


def _set_status(
    tx: Txn,
    actor: Actor,
    instance: InstanceRow,
    workflow: Any,
    failure: ScriptError | None,
    completed: bool,
) -> None:
    if failure is not None:
        instance.status, instance.error_element, instance.error_message = (
            ERROR,
            failure.element_id,
            str(failure),
        )
        audit.record(
            tx,
            "instance_failed",
            actor=actor.username,
            instance_id=instance.id,
            task_id=failure.element_id,
            payload={"error": str(failure), "kind": type(failure).__name__},
        )
    elif completed:
        instance.status, instance.ended_at = COMPLETED, clock.now()
        audit.record(
            tx,
            "instance_completed",
            actor=actor.username,
            instance_id=instance.id,
            payload={"data": forms.to_json_data(bpmn.workflow_data(workflow))},
        )
    else:
        instance.status, instance.error_element, instance.error_message = RUNNING, None, None


def _sync_tasks(
    tx: Txn,
    actor: Actor,
    instance: InstanceRow,
    definition: caches.Definition,
    hot: caches.Hot,
    ready: tuple[bpmn.ReadyTask, ...],
) -> None:
    """Open rows whose task is no longer ready are withdrawn; newly ready tasks get a row."""
    ready_ids = {task.task_id for task in ready}
    for spiff_id, (row_id, bpmn_id) in sorted(hot.open_tasks.items(), key=lambda item: item[1]):
        if spiff_id not in ready_ids:
            store.withdraw_task(tx, row_id, clock.now())
            del hot.open_tasks[spiff_id]
            audit.record(
                tx,
                "task_withdrawn",
                actor=actor.username,
                instance_id=instance.id,
                task_id=bpmn_id,
                payload={"task": row_id},
            )
    notices: list[notifications.Notice] = []
    for task in ready:
        if task.task_id not in hot.open_tasks:
            row_id = _create_task(tx, actor, instance, definition, hot.workflow, task, notices)
            hot.open_tasks[task.task_id] = (row_id, task.bpmn_id)
    notifications.notify(tx, notices)  # one INSERT for the step's new tasks


def _create_task(
    tx: Txn,
    actor: Actor,
    instance: InstanceRow,
    definition: caches.Definition,
    workflow: Any,
    task: bpmn.ReadyTask,
    notices: list[notifications.Notice],
) -> int:
    rules = definition.rules(task.bpmn_id)
    props = rules.properties
    now = clock.now()
    data = functools.cache(lambda: bpmn.task_data(workflow, task.task_id))
    due_at = assignment.due_at(props, now, data)
    role = assignment.role_for_lane(task.lane, props)
    routing = assignment.route(tx, props, starter_id=instance.started_by, role=role, data=data)
    assignee, excluded = routing.assignee, routing.excluded
    paused_at = now if bpmn.clock_paused(workflow) and due_at is not None else None
    row_id = store.insert_task(
        tx,
        store.NewTask(
            instance.id, task.task_id, task.bpmn_id, task.name, task.lane, role, assignee,
            props.get("formKey"), rules.approval, due_at, now, excluded, paused_at,
        ),
    )  # fmt: skip
    audit.record(
        tx,
        "task_created",
        actor=actor.username,
        instance_id=instance.id,
        task_id=task.bpmn_id,
        payload={
            "task": row_id,
            "role": role,
            "assignee": assignee,
            "due_at": due_at.isoformat() if due_at else None,
            "version": definition.version,
            **({"excluded": list(excluded)} if excluded else {}),
        },
    )
    notice = notifications.for_new_task(
        tx,
        instance_id=instance.id,
        task_id=row_id,
        params=notifications.task_params(task.name, instance.title, due_at),
        role=role,
        assignee=assignee,
        excluded=excluded,
        starter=instance.started_by,
        actor_id=actor.id,
    )
    if notice is not None:
        notices.append(notice)
    return row_id


def _sync_timers(
    tx: Txn, instance_id: int, hot: caches.Hot, waiting: frozenset[tuple[str, datetime]]
) -> None:
    """Timer rows follow the waiting set; nothing is written when it did not change."""
    if waiting == hot.timers:
        return
    for bpmn_id, fire_at in hot.timers - waiting:
        store.finish_timer(tx, instance_id, bpmn_id, fire_at)
    for bpmn_id, fire_at in sorted(waiting - hot.timers):
        store.add_timer(tx, instance_id, bpmn_id, fire_at)
    hot.timers = waiting


def summary(
    instance: InstanceRow, definition: caches.Definition, open_tasks: Mapping[str, tuple[int, str]]
) -> InstanceSummary:
    """The instance as the caller sees it once the step is written."""
    return InstanceSummary(
        instance.id,
        definition.key,
        definition.version,
        instance.status,
        instance.business_key,
        instance.title,
        instance.version,
        tuple(sorted(row_id for row_id, _bpmn_id in open_tasks.values())),
        instance.error_message,
        instance.error_element,
    )
