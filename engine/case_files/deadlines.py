"""The paused deadline clock (R6 第18、23条: appraisal and mediation do not count).

``clock_pause`` holds every waiting timer of the instance and marks its open tasks' due times
paused; while paused, timers armed and tasks created are held and marked too (``steps.persist``);
``clock_resume`` moves the named deadline variables, the held timers and those due times later by
exactly the time spent paused. Both are audited with every value they moved, so no date
moves silently (processes.md §0 "Clock pauses").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine import bpmn
from engine.case_files.operators import Call, operator
from engine.errors import ConflictError, InvalidInputError
from engine.storage import case_clocks
from engine.timekeeping import clock
from engine.timekeeping.workdays import CHINA_TZ

PAUSED_AT = "clock_paused_at"
PAUSED_SECONDS = "clock_paused_seconds"


def _china(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).isoformat()


@operator("clock_pause", required=("reason",))
def clock_pause(call: Call, reason: str) -> dict[str, Any]:
    if bpmn.clock_paused(call.workflow):
        since = bpmn.paused_since(call.workflow)
        raise ConflictError(f"期限已于 {since} 暂停 / the clock is already paused since {since}")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("暂停须说明原因 / a pause needs a reason")
    now = clock.now()
    paused_at = _china(now)
    held = bpmn.pause_clock(call.workflow, paused_at)
    call.task.data[PAUSED_AT] = paused_at  # for the diagram's own records
    case_clocks.pause_due_times(call.tx, call.instance_id, now)
    call.audit("clock_paused", {"reason": reason, "paused_at": paused_at, "timers": held})
    return {"paused_at": paused_at}


@operator("clock_resume", required=("deadlines",))
def clock_resume(call: Call, deadlines: list[str]) -> dict[str, Any]:
    since = bpmn.paused_since(call.workflow)
    if since is None:
        raise ConflictError("期限未暂停 / the clock is not paused")
    if not isinstance(deadlines, list) or not all(isinstance(n, str) for n in deadlines):
        raise InvalidInputError("deadlines 须为变量名列表 / deadlines must be a list of names")
    data = call.task.data
    now = clock.now()
    paused_at = datetime.fromisoformat(since)
    paused_for = now - paused_at
    moved_values = {}
    for name in deadlines:  # every named value is checked before anything moves
        if data.get(name):
            old = str(data[name])
            moved_values[name] = [old, (datetime.fromisoformat(old) + paused_for).isoformat()]
    for name, (_old, new) in moved_values.items():
        data[name] = new
    moved_timers = bpmn.resume_clock(call.workflow, paused_for)
    moved_tasks = _shift_task_due_times(call, paused_for)
    seconds = int(paused_for.total_seconds())
    data[PAUSED_AT] = None
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
    moved = []
    for task_id, bpmn_id, due in case_clocks.paused_tasks(call.tx, call.instance_id):
        new_due = None if due is None else due + paused_for
        case_clocks.resume_due_time(call.tx, task_id, new_due)
        moved.append([bpmn_id, _china(due) if due else None, _china(new_due) if new_due else None])
    return moved
