"""Running workflows: new instances, engine steps, user task completion, timers, messages, the mirror pass."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.errors import translated_run_errors
from engine.bpmn.scripts import SCRIPT_ENGINE
from engine.bpmn.specs import CompiledProcess
from engine.errors import OpsflowError
from engine.timekeeping import clock

# --- the clock: SpiffWorkflow's timers read datetime.now(timezone.utc) in their own module ---


class _ClockDatetime(dt.datetime):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> _ClockDatetime:
        current = clock.now()
        current = current.astimezone(tz) if tz is not None else current
        return cls.fromtimestamp(current.timestamp(), tz=current.tzinfo)


spiff_timer.datetime = _ClockDatetime


@dataclass(frozen=True)
class ReadyTask:
    """A user task waiting for a person."""

    task_id: str
    bpmn_id: str
    name: str
    lane: str | None


def new_workflow(compiled: CompiledProcess, data: Mapping[str, Any] | None = None) -> Any:
    """A new instance of the process with its start data; ``run_steps`` takes it to its first wait."""
    workflow = BpmnWorkflow(
        compiled.spec, dict(compiled.subprocess_specs), script_engine=SCRIPT_ENGINE
    )
    _start_timers_fire_now(workflow)
    if data:
        workflow.task_tree.data.update(data)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(data)
    return workflow


def _start_timers_fire_now(workflow: Any) -> None:
    """An instance starts when it is started: its timer start event fires once, now.

    Periodic starts are the worker's job (one new instance per occurrence, by calendar
    arithmetic); left alone, SpiffWorkflow would keep cycling inside the first instance.
    """
    past = (clock.now() - dt.timedelta(seconds=1)).isoformat()
    for task in workflow.get_tasks():
        definition = getattr(task.task_spec, "event_definition", None)
        if type(task.task_spec).__name__ != "StartEvent" or not isinstance(
            definition, spiff_timer.TimerEventDefinition
        ):
            continue
        if isinstance(definition, spiff_timer.CycleTimerEventDefinition):
            task.internal_data["event_value"] = {"cycles": 1, "next": past, "duration": 0}
        else:
            task.internal_data["event_value"] = past


def run_steps(workflow: Any) -> None:
    """Run every automatic task until people, messages or timers are awaited."""
    with translated_run_errors():
        workflow.do_engine_steps()


def ready_user_tasks(workflow: Any) -> list[ReadyTask]:
    return [_ready(task) for task in workflow.get_tasks(state=TaskState.READY, manual=True)]


def complete_user_task(workflow: Any, task_id: str, data: Mapping[str, Any]) -> None:
    """Complete a READY user task with the submitted data and run the engine on.

    :raise ScriptError: a script or condition after the task failed.
    """
    task = workflow.get_task_from_id(UUID(task_id))
    if task is None or task.state != TaskState.READY or not task.task_spec.manual:
        raise OpsflowError(f"task {task_id} is not a ready user task")
    task.data.update(data)
    with translated_run_errors():
        task.run()
    run_steps(workflow)


def fire_due_timers(workflow: Any) -> None:
    """Let timers whose time has come (by the engine clock) fire, and run the engine on."""
    with translated_run_errors():
        workflow.refresh_timers()
    run_steps(workflow)


def retry_failed(workflow: Any, data: Mapping[str, Any] | None = None) -> None:
    """Put tasks that failed back to READY (with corrected data) and run them again."""
    for task in workflow.get_tasks(state=TaskState.ERROR):
        task.data.update(data or {})
        task._set_state(TaskState.READY)
    run_steps(workflow)


def catch_message(workflow: Any, message_name: str, payload: Mapping[str, Any]) -> bool:
    """Deliver a message to the instance; True when a waiting event caught it."""
    found = _waiting_for_message(workflow, message_name)
    if found is None:
        return False
    waiting, definition = found
    with translated_run_errors():
        # the waiting event's own definition: the dialect's class must match for it to catch
        workflow.catch(BpmnEvent(definition, dict(payload)))
        if getattr(definition, "message_var", None) is None:
            # no spiffworkflow:messageVariable: the answer's fields join the case data
            waiting.data.update(payload)
    run_steps(workflow)
    return True


def _event_definitions(task: Any) -> list[Any]:
    """A waiting task's event definitions (an event-based gateway waits on several at once)."""
    definition = getattr(task.task_spec, "event_definition", None)
    if definition is None:
        return []
    return list(getattr(definition, "event_definitions", None) or [definition])


def _waiting_for_message(workflow: Any, message_name: str) -> tuple[Any, Any] | None:
    for task in workflow.get_tasks(state=TaskState.WAITING):
        for definition in _event_definitions(task):
            if isinstance(definition, MessageEventDefinition) and definition.name == message_name:
                return task, definition
    return None


def waiting_messages(workflow: Any) -> list[str]:
    return sorted(
        {
            definition.name
            for task in workflow.get_tasks(state=TaskState.WAITING)
            for definition in _event_definitions(task)
            if isinstance(definition, MessageEventDefinition)
        }
    )


@dataclass(frozen=True)
class AwaitedMessage:
    """A message a waiting catch event (intermediate, boundary, receive task, event-based
    gateway branch) awaits, with what names who answers it."""

    message: str
    bpmn_id: str
    name: str
    lane: str | None
    properties: Mapping[str, str]
    attached_lane: str | None  # a boundary event: the lane of the task it is attached to


def awaited_messages(workflow: Any) -> list[AwaitedMessage]:
    """Every message the instance waits for, one entry per waiting event, in BPMN id order."""
    found = []
    for each in (workflow, *workflow.subprocesses.values()):
        for task in each.tasks.values():
            if task._state != TaskState.WAITING:
                continue
            for definition in _event_definitions(task):
                if isinstance(definition, MessageEventDefinition):
                    found.append(_awaited(task, definition.name))
    return sorted(set(found), key=lambda m: (m.message, m.bpmn_id))


def _awaited(task: Any, message: str) -> AwaitedMessage:
    spec = task.task_spec
    parent = getattr(task.parent, "task_spec", None)  # a boundary event's parent: the task's host
    attached = getattr(parent, "main_child_task_spec", None)
    properties = (getattr(spec, "extensions", None) or {}).get("properties", {})
    return AwaitedMessage(
        message,
        str(spec.bpmn_id or spec.name),
        str(spec.bpmn_name or spec.bpmn_id or spec.name),
        spec.lane,
        _Props(properties),
        getattr(attached, "lane", None),
    )


class _Props(dict[str, str]):
    """Hashable properties (an awaited message is a set member)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def waiting_timers(workflow: Any) -> list[tuple[str, dt.datetime]]:
    """(BPMN id, due time) of every timer event the instance waits on."""
    timers = []
    for task in workflow.get_tasks(state=TaskState.WAITING):
        timers.extend(_waiting_timer(task))
    return timers


@dataclass(frozen=True)
class Mirror:
    """What the database mirrors of a workflow: ready user tasks (tree order), waiting timers,
    and whether the workflow is completed (``is_completed``)."""

    ready: tuple[ReadyTask, ...]
    timers: frozenset[tuple[str, dt.datetime]]
    completed: bool


def mirror(workflow: Any) -> Mirror:
    """``ready_user_tasks`` and ``waiting_timers`` in one pass over the task dictionaries.

    SpiffWorkflow's tree iterator costs ~20 µs per query on a 15-task instance; the
    dictionaries hold the same tasks (subprocesses included). Tree order matters only when
    several user tasks are ready at once, and is then taken from the iterator.
    """
    ready: list[Any] = []
    timers: set[tuple[str, dt.datetime]] = set()
    for each in (workflow, *workflow.subprocesses.values()):
        for task in each.tasks.values():
            state = task._state
            if state == TaskState.READY:
                if task.task_spec.manual:
                    ready.append(task)
            elif state == TaskState.WAITING:
                timers.update(_waiting_timer(task))
    found = tuple(ready_user_tasks(workflow)) if len(ready) > 1 else tuple(map(_ready, ready))
    return Mirror(found, frozenset(timers), _completed(workflow))


def _completed(workflow: Any) -> bool:
    """``Workflow.is_completed`` (flag included) without its tree iterator: no unfinished task."""
    if not workflow.completed and not any(
        task._state & TaskState.NOT_FINISHED_MASK for task in workflow.tasks.values()
    ):
        workflow.completed = True
    return bool(workflow.completed)


def _ready(task: Any) -> ReadyTask:
    spec = task.task_spec
    return ReadyTask(str(task.id), spec.bpmn_id, spec.bpmn_name or spec.bpmn_id, spec.lane)


def _waiting_timer(task: Any) -> list[tuple[str, dt.datetime]]:
    """The (BPMN id, due time) a WAITING task waits for, if it waits on a timer."""
    definition = next(
        (d for d in _event_definitions(task) if isinstance(d, spiff_timer.TimerEventDefinition)),
        None,
    )
    if definition is None:
        return []
    due = _timer_due(task, definition)
    return [] if due is None else [(task.task_spec.bpmn_id or task.task_spec.name, due)]


def _timer_due(task: Any, definition: Any = None) -> dt.datetime | None:
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):
        value = value.get("next")
    if not isinstance(value, str):
        return None
    try:
        due = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return due if due.tzinfo else due.replace(tzinfo=dt.UTC)


# --- a paused deadline clock: waiting timers held, then shifted by the paused time ---

_HELD = "9999-12-31T00:00:00+00:00"


def hold_timers(workflow: Any) -> dict[str, str]:
    """Stop every waiting timer of the instance; returns {task id: its due time} to resume with.

    A held timer waits for a date no clock reaches; ``shift_timers`` gives it back its own due
    time moved by the paused duration. Timers already held are left alone.
    """
    held: dict[str, str] = {}
    for task in _waiting_timer_tasks(workflow):
        due = _timer_due(task, None)
        if due is None or due.year == 9999:
            continue
        held[str(task.id)] = due.isoformat()
        _set_timer_due(task, _HELD)
    return held


def shift_timers(
    workflow: Any, held: Mapping[str, str], by: dt.timedelta
) -> list[tuple[str, str, str]]:
    """Give held timers that still wait their due time plus ``by``: [(BPMN id, old, new)]."""
    moved = []
    for task in _waiting_timer_tasks(workflow):
        old = held.get(str(task.id))
        if old is None:
            continue
        new = (dt.datetime.fromisoformat(old) + by).isoformat()
        _set_timer_due(task, new)
        moved.append((str(task.task_spec.bpmn_id or task.task_spec.name), old, new))
    return moved


_CLOCK = "opsflow_clock"  # in the top workflow's data while the case's deadline clock is paused


def _top(workflow: Any) -> Any:
    return getattr(workflow, "top_workflow", None) or workflow


def clock_paused(workflow: Any) -> bool:
    return bool(_top(workflow).data.get(_CLOCK))


def pause_clock(workflow: Any, paused_at: str) -> dict[str, str]:
    """Hold every waiting timer until ``resume_clock``; returns {task id: due time} held."""
    held = hold_timers(workflow)
    _top(workflow).data[_CLOCK] = {"paused_at": paused_at, "held": held}
    return held


def hold_new_timers(workflow: Any) -> None:
    """While paused, a timer armed since (e.g. a new task's boundary timer) is held too."""
    state = _top(workflow).data.get(_CLOCK)
    if state:
        state["held"].update(hold_timers(workflow))


def paused_since(workflow: Any) -> str | None:
    state = _top(workflow).data.get(_CLOCK)
    return str(state["paused_at"]) if state else None


def resume_clock(workflow: Any, by: dt.timedelta) -> list[tuple[str, str, str]]:
    """Give every held timer its due time moved by ``by``; the clock runs again."""
    state = _top(workflow).data.pop(_CLOCK, None) or {}
    return shift_timers(workflow, state.get("held", {}), by)


def timer_values(workflow: Any) -> dict[str, Any]:
    """The due values of the instance's waiting timers (and the clock), to restore after a
    failed change."""
    return {
        _CLOCK: copy.deepcopy(_top(workflow).data.get(_CLOCK)),
        **{
            str(task.id): copy.deepcopy(task.internal_data.get("event_value"))
            for task in _waiting_timer_tasks(workflow)
        },
    }


def restore_timer_values(workflow: Any, values: Mapping[str, Any]) -> None:
    top = _top(workflow)
    if values.get(_CLOCK) is None:
        top.data.pop(_CLOCK, None)
    else:
        top.data[_CLOCK] = copy.deepcopy(values[_CLOCK])
    for task in _waiting_timer_tasks(workflow):
        if str(task.id) in values:
            task.internal_data["event_value"] = copy.deepcopy(values[str(task.id)])


def _waiting_timer_tasks(workflow: Any) -> list[Any]:
    """Every waiting timer of the instance, subprocesses included, from any of its workflows."""
    top = getattr(workflow, "top_workflow", None) or workflow
    return [
        task
        for each in (top, *top.subprocesses.values())
        for task in each.tasks.values()
        if task._state == TaskState.WAITING
        and any(isinstance(d, spiff_timer.TimerEventDefinition) for d in _event_definitions(task))
    ]


def _set_timer_due(task: Any, due: str) -> None:
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):
        task.internal_data["event_value"] = {**value, "next": due}
    else:
        task.internal_data["event_value"] = due


# --- what a step decided on its own: the derived values the audit trail needs (§1.3) ---

_GATEWAYS = frozenset({"ExclusiveGateway", "InclusiveGateway", "EventBasedGateway"})


def step_events(workflow: Any, since: float) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, BPMN id, payload) for what completed since ``since`` (``time.time()``), in order:
    ``decision_made`` (a DMN table's inputs and outputs), ``gateway_taken`` (the path chosen)
    and ``timer_fired`` (a timer event, also one that was already due when it was armed)."""
    found: list[tuple[float, str, str, dict[str, Any]]] = []
    for each in (workflow, *workflow.subprocesses.values()):
        for task in each.tasks.values():
            if task._state != TaskState.COMPLETED or task.last_state_change < since:
                continue
            event = _step_event(task)
            if event is not None:
                found.append((task.last_state_change, *event))
    found.sort(key=lambda item: item[0])
    return [(kind, element, payload) for _at, kind, element, payload in found]


def _step_event(task: Any) -> tuple[str, str, dict[str, Any]] | None:
    spec = task.task_spec
    element = str(spec.bpmn_id or spec.name)
    if type(spec).__name__ in _GATEWAYS:
        taken = sorted(str(c.task_spec.bpmn_id) for c in task.children if c.task_spec.bpmn_id)
        return "gateway_taken", element, {"to": taken}
    table = getattr(getattr(spec, "dmnEngine", None), "decision_table", None)
    if table is not None:
        return "decision_made", element, _decision(task, spec, table)
    if type(spec).__name__ != "StartEvent" and any(
        isinstance(d, spiff_timer.TimerEventDefinition) for d in _event_definitions(task)
    ):
        due = _timer_due(task)
        return "timer_fired", element, {"due": due.isoformat() if due else None}
    return None


def _decision(task: Any, spec: Any, table: Any) -> dict[str, Any]:
    inputs = {}
    for column in table.inputs:
        name = column.label or column.expression
        try:
            inputs[name] = SCRIPT_ENGINE.environment.evaluate(column.expression, dict(task.data))
        except Exception:  # the table ran on these data; an input it could not read shows as None
            inputs[name] = None
    extensions = getattr(spec, "extensions", None) or {}
    return {
        "decision": extensions.get("calledDecisionId") or table.name or table.id,
        "inputs": inputs,
        "outputs": {column.name: task.data.get(column.name) for column in table.outputs},
    }


def is_completed(workflow: Any) -> bool:
    return bool(workflow.is_completed())


def workflow_data(workflow: Any) -> dict[str, Any]:
    """The data of the most recently completed task, in any subprocess (the case's current data)."""
    candidates = [w.last_task for w in (workflow, *workflow.subprocesses.values()) if w.last_task]
    if not candidates:
        return dict(workflow.data)
    last = max(candidates, key=lambda task: task.last_state_change)
    return dict(last.data)


def case_title(workflow: Any) -> str | None:
    """The ``case_title`` a diagram's script gave the case (e.g. the customer's name), if any."""
    candidates = [w.last_task for w in (workflow, *workflow.subprocesses.values()) if w.last_task]
    if not candidates:
        return None
    value = max(candidates, key=lambda task: task.last_state_change).data.get("case_title")
    return value.strip() if isinstance(value, str) and value.strip() else None


def task_data(workflow: Any, task_id: str) -> dict[str, Any]:
    task = workflow.get_task_from_id(UUID(task_id))
    return dict(task.data) if task is not None else {}


def completed_bpmn_ids(workflow: Any) -> set[str]:
    return {
        task.task_spec.bpmn_id
        for task in workflow.get_tasks(state=TaskState.COMPLETED)
        if task.task_spec.bpmn_id
    }
