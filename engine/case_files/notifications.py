"""The ``notify`` operator: a diagram's reminder (催办) tells the holder of a task, and their manager.

    <bpmn:serviceTask id="notify_ddm" name="催办副经理">
      <spiffworkflow:serviceTaskOperator id="notify">
        <spiffworkflow:parameter id="task" type="str" value="&quot;approve_ddm&quot;"/>
        <spiffworkflow:parameter id="manager" type="bool" value="False"/>

The holder is the open task's assignee, or every active holder of its role who is not recused;
with ``manager`` their managers are told too. The notifications are written in the step's
transaction (``engine.storage.notifications``), in the recipients' choices of channel.
"""

from __future__ import annotations

from typing import Any

from engine.case_files.operators import Call, operator
from engine.storage import notifications as sql
from engine.timekeeping import clock


@operator("notify", required=("task",), optional=("manager",))
def notify(call: Call, task: str, manager: bool = False) -> dict[str, Any]:
    """Remind whoever holds the case's open task ``task``; how many people were told."""
    title = sql.case_title(call.tx, call.instance_id)
    notices: list[sql.Notice] = []
    told: set[int] = set()
    for open_task in sql.open_tasks_named(call.tx, call.instance_id, str(task)):
        params = {
            "task": open_task.name,
            "case": title,
            "due": sql.local_time(open_task.due_at),
        }
        if open_task.assignee_id is not None:
            holders: tuple[int, ...] = (open_task.assignee_id,)
            holder_zh = holder_en = sql.display_name(call.tx, open_task.assignee_id)
        elif open_task.role is not None:
            holders = sql.role_holders(call.tx, open_task.role, open_task.excluded)
            zh, en = sql.role_names(call.tx, open_task.role)
            holder_zh, holder_en = f"{zh}队列", f"the {en} queue"
        else:
            continue
        notices.append(sql.Notice(sql.REMINDER, call.instance_id, open_task.id, params, holders))
        told.update(holders)
        if manager:
            managers = tuple(m for m in sql.managers_of(call.tx, holders) if m not in holders)
            team = params | {"holder_zh": holder_zh, "holder_en": holder_en}
            notices.append(
                sql.Notice(sql.TEAM_REMINDER, call.instance_id, open_task.id, team, managers)
            )
            told.update(managers)
    sql.insert(call.tx, notices, clock.now())
    return {"reminded": len(told)}
