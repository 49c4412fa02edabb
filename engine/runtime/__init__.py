"""The runtime's public services: start, claim, complete, delegate, correlate, cancel, retry, one unit of work each.

A running instance's state lives in ``process_instance.state``; its open user tasks are
mirrored into ``human_task`` and its waiting timers into ``timer`` in the same transaction,
with the audit events. Services run on a lean transaction (``engine.storage.txn``) and write rows
with ``engine.storage.store``; a step re-serializes only the tasks it changed (``bpmn.StateWriter``).
The deserialized workflow and its mirror are kept hot per database (``engine.runtime.base.caches``) and
reused only at the version their changes were committed at. Rare paths that need the ORM
(loading a deployed version, looking up a colleague, naming who completed a task) run the
service again in a ``Session``. See docs/engine.md.

Callers use this module; the services live in ``task_actions`` (claim, unclaim, delegate),
``completion`` (complete), ``instance_actions`` (start, correlate, cancel, retry, fire
timers) and ``instance_view`` (read), on ``unit_of_work`` (the transaction around a service)
and ``steps`` (one step of an instance and persisting it).
"""

from engine.runtime.services.completion import complete_task
from engine.runtime.services.instance_actions import (
    cancel_instance,
    correlate_message,
    fire_timers_in,
    retry_instance,
    start_in,
    start_instance,
)
from engine.runtime.services.instance_view import InstanceView, get_instance
from engine.runtime.services.task_actions import claim_task, delegate_task, unclaim_task
from engine.runtime.step.steps import CANCELLED, COMPLETED, ERROR, RUNNING, InstanceSummary
from engine.storage.store import DONE, OPEN, WITHDRAWN

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "DONE",
    "ERROR",
    "OPEN",
    "RUNNING",
    "WITHDRAWN",
    "InstanceSummary",
    "InstanceView",
    "cancel_instance",
    "claim_task",
    "complete_task",
    "correlate_message",
    "delegate_task",
    "fire_timers_in",
    "get_instance",
    "retry_instance",
    "start_in",
    "start_instance",
    "unclaim_task",
]
