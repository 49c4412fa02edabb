"""The SQL on open tasks' due times that the paused deadline clock needs, through a lean ``Txn``."""

from __future__ import annotations

from datetime import datetime

from engine.storage.models import NEVER, TaskStatus
from engine.storage.txn import Txn


def pause_due_times(tx: Txn, instance_id: int, paused_at: datetime) -> None:
    """Mark the instance's open tasks that have a due time (and are not marked yet) paused."""
    tx.execute(
        f"UPDATE human_task SET paused_at = ? WHERE instance_id = ? AND status = '{TaskStatus.OPEN}'"
        " AND due_at IS NOT NULL AND paused_at IS NULL",
        (tx.when(paused_at), instance_id),
    )


def paused_tasks(tx: Txn, instance_id: int) -> list[tuple[int, str, datetime | None]]:
    """(id, BPMN id, due time) of the instance's open tasks marked paused, oldest first."""
    rows = tx.all(
        f"SELECT id, bpmn_id, due_at FROM human_task WHERE instance_id = ? AND status = '{TaskStatus.OPEN}'"
        " AND paused_at IS NOT NULL ORDER BY id",
        (instance_id,),
    )
    return [(task_id, bpmn_id, tx.read_when(raw_due)) for task_id, bpmn_id, raw_due in rows]


def resume_due_time(tx: Txn, task_id: int, due_at: datetime | None) -> None:
    """A paused task's new due time; it is no longer marked paused."""
    tx.execute(
        "UPDATE human_task SET due_at = ?, sort_due_at = ?, paused_at = NULL WHERE id = ?",
        (tx.when(due_at), tx.when(due_at or NEVER), task_id),
    )
