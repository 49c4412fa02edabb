"""The paused deadline clock (R6 第18、23条: appraisal and mediation do not count).

``clock_pause`` holds every waiting timer of the instance and marks its open tasks' due times
paused; ``clock_resume`` moves the named deadline variables, the held timers and those due times
later by exactly the time spent paused. Both are audited with every value they moved, so no date
moves silently (processes.md §0 "Clock pauses").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine import bpmn, clock
from engine.errors import ConflictError, InvalidInputError
from engine.models import NEVER
from engine.operators import Call, operator
from engine.workdays import CHINA_TZ

PAUSED_AT = "clock_paused_at"
HELD_TIMERS = "clock_held_timers"
PAUSED_SECONDS = "clock_paused_seconds"


def _china(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).isoformat()


@operator("clock_pause", required=("reason",))
def clock_pause(call: Call, reason: str) -> dict[str, Any]:
    data = call.task.data
    if data.get(PAUSED_AT):
        raise ConflictError(f"期限已于 {data[PAUSED_AT]} 暂停 / the clock is already paused")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("暂停须说明原因 / a pause needs a reason")
    now = clock.now()
    held = bpmn.hold_timers(call.workflow)
    data[PAUSED_AT] = _china(now)
    data[HELD_TIMERS] = held
    call.tx.execute(
        "UPDATE human_task SET paused_at = ? WHERE instance_id = ? AND status = 'open'"
        " AND due_at IS NOT NULL AND paused_at IS NULL",
        (call.tx.when(now), call.instance_id),
    )
    call.audit("clock_paused", {"reason": reason, "paused_at": data[PAUSED_AT], "timers": held})
    return {"paused_at": data[PAUSED_AT]}


@operator("clock_resume", required=("deadlines",))
def clock_resume(call: Call, deadlines: list[str]) -> dict[str, Any]:
    data = call.task.data
    if not data.get(PAUSED_AT):
        raise ConflictError("期限未暂停 / the clock is not paused")
    if not isinstance(deadlines, list) or not all(isinstance(n, str) for n in deadlines):
        raise InvalidInputError("deadlines 须为变量名列表 / deadlines must be a list of names")
    now = clock.now()
    paused_at = datetime.fromisoformat(data[PAUSED_AT])
    paused_for = now - paused_at
    moved_values = {}
    for name in deadlines:
        if data.get(name):
            old = str(data[name])
            data[name] = (datetime.fromisoformat(old) + paused_for).isoformat()
            moved_values[name] = [old, data[name]]
    moved_timers = bpmn.shift_timers(call.workflow, data.get(HELD_TIMERS) or {}, paused_for)
    moved_tasks = _shift_task_due_times(call, paused_for)
    seconds = int(paused_for.total_seconds())
    data[PAUSED_AT], data[HELD_TIMERS] = None, {}
    data[PAUSED_SECONDS] = int(data.get(PAUSED_SECONDS) or 0) + seconds
    result = {"paused_at": _china(paused_at), "resumed_at": _china(now), "paused_seconds": seconds}
    call.audit(
        "clock_resumed",
        {
            **result,
            "deadlines": moved_values,
            "timers": [list(t) for t in moved_timers],
            "tasks": moved_tasks,
        },
    )
    return result


def _shift_task_due_times(call: Call, paused_for: Any) -> list[list[Any]]:
    tx = call.tx
    rows = tx.all(
        "SELECT id, bpmn_id, due_at FROM human_task WHERE instance_id = ? AND status = 'open'"
        " AND paused_at IS NOT NULL ORDER BY id",
        (call.instance_id,),
    )
    moved = []
    for task_id, bpmn_id, raw_due in rows:
        due = tx.read_when(raw_due)
        new_due = None if due is None else due + paused_for
        tx.execute(
            "UPDATE human_task SET due_at = ?, sort_due_at = ?, paused_at = NULL WHERE id = ?",
            (tx.when(new_due), tx.when(new_due or NEVER), task_id),
        )
        moved.append([bpmn_id, _china(due) if due else None, _china(new_due) if new_due else None])
    return moved
