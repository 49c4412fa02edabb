"""The SQL that writes notifications on the hot path: every notice of a step in one INSERT.

A notice names its recipients as user ids or as a role's queue (its active holders, less those
who must recuse); each recipient's ``notification_preference`` row (none: both channels) decides
whether it is shown in the notification centre and whether it waits in the e-mail outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.storage.models import TaskStatus
from engine.storage.txn import Txn

PENDING, SENT, FAILED = "pending", "sent", "failed"
_LOCAL = ZoneInfo("Asia/Shanghai")


def local_time(value: datetime | None) -> str:
    """A deadline as the department reads it (China time)."""
    return "" if value is None else value.astimezone(_LOCAL).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Notice:
    """One event to tell people about."""

    kind: str
    instance_id: int | None
    task_id: int | None
    params: dict[str, Any]
    user_ids: tuple[int, ...] = ()
    role: str | None = None  # the role's queue: every active holder
    excluded: tuple[int, ...] = ()  # who is not told (recused, or the one who caused it)


_SELECT = (
    "SELECT u.id, ?, ?, ?, ?, ?, COALESCE(p.in_app, TRUE),"
    f" CASE WHEN COALESCE(p.email, TRUE) AND u.email IS NOT NULL THEN '{PENDING}' END, 0, ?"
    ' FROM "user" u LEFT JOIN notification_preference p ON p.user_id = u.id AND p.kind = ?'
    " WHERE u.active = TRUE AND (COALESCE(p.in_app, TRUE) OR COALESCE(p.email, TRUE))"
)


def _marks(values: tuple[int, ...]) -> str:
    return ", ".join("?" for _ in values)  # placeholders only: no value in the text


def _part(tx: Txn, notice: Notice, at: datetime) -> tuple[str, list[Any]]:
    sql = _SELECT
    params: list[Any] = [
        notice.kind,
        notice.instance_id,
        notice.task_id,
        tx.json(notice.params),
        tx.when(at),
        tx.when(at),
        notice.kind,
    ]
    if notice.role is not None:
        sql += " AND u.id IN (SELECT user_id FROM user_role WHERE role_code = ?)"
        params.append(notice.role)
    else:
        sql += f" AND u.id IN ({_marks(notice.user_ids) or 'NULL'})"
        params.extend(notice.user_ids)
    if notice.excluded:
        sql += f" AND u.id NOT IN ({_marks(notice.excluded)})"
        params.extend(notice.excluded)
    return sql, params


def insert(tx: Txn, notices: list[Notice], at: datetime) -> None:
    """Write the notifications of ``notices`` in one statement (none when the list is empty)."""
    parts = [_part(tx, notice, at) for notice in notices if notice.role or notice.user_ids]
    if not parts:
        return
    tx.execute(
        "INSERT INTO notification (user_id, kind, instance_id, task_id, params, created_at,"
        " shown, email_status, email_attempts, email_next_at) "
        + " UNION ALL ".join(sql for sql, _params in parts),
        [value for _sql, params in parts for value in params],
    )


def worked_on(tx: Txn, instance_id: int, user_id: int) -> bool:
    """Whether the user completed a task of this case before (a task back to them is rework)."""
    row = tx.one(
        f"SELECT 1 FROM human_task WHERE instance_id = ? AND completed_by = ? AND status = '{TaskStatus.DONE}' LIMIT 1",
        (instance_id, user_id),
    )
    return row is not None


def managers_of(tx: Txn, user_ids: tuple[int, ...]) -> tuple[int, ...]:
    """The (active) managers of these users."""
    if not user_ids:
        return ()
    rows = tx.all(
        'SELECT DISTINCT m.id FROM "user" u JOIN "user" m ON m.id = u.manager_id'
        f" WHERE m.active = TRUE AND u.id IN ({_marks(user_ids)})",
        user_ids,
    )
    return tuple(sorted(int(row[0]) for row in rows))


def role_holders(tx: Txn, role: str, excluded: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The active holders of a role, less ``excluded``."""
    rows = tx.all(
        'SELECT u.id FROM "user" u JOIN user_role r ON r.user_id = u.id'
        " WHERE u.active = TRUE AND r.role_code = ?",
        (role,),
    )
    return tuple(sorted(int(row[0]) for row in rows if int(row[0]) not in excluded))


def task_label(tx: Txn, task_id: int) -> tuple[str, datetime | None]:
    """A task's name and deadline, as its notifications name it."""
    row = tx.one("SELECT name, due_at FROM human_task WHERE id = ?", (task_id,))
    return ("", None) if row is None else (str(row[0]), tx.read_when(row[1]))


def display_name(tx: Txn, user_id: int) -> str:
    row = tx.one('SELECT display_name FROM "user" WHERE id = ?', (user_id,))
    return "" if row is None else str(row[0])


def role_names(tx: Txn, role: str) -> tuple[str, str]:
    """The role's Chinese and English names (its code when unknown)."""
    row = tx.one("SELECT name_zh, name_en FROM role WHERE code = ?", (role,))
    return (role, role) if row is None else (str(row[0]), str(row[1]))


REMINDER, TEAM_REMINDER = "reminder", "team_reminder"  # the diagrams' 催办 (``notify`` operator)


@dataclass(frozen=True)
class OpenTask:
    id: int
    name: str
    assignee_id: int | None
    role: str | None
    excluded: tuple[int, ...]
    due_at: datetime | None


def open_tasks_named(tx: Txn, instance_id: int, bpmn_id: str) -> list[OpenTask]:
    """The case's open tasks of this BPMN id (several for a multi-instance task)."""
    rows = tx.all(
        "SELECT id, name, assignee_id, candidate_role, excluded_user_ids, due_at FROM human_task"
        f" WHERE instance_id = ? AND bpmn_id = ? AND status = '{TaskStatus.OPEN}' ORDER BY id",
        (instance_id, bpmn_id),
    )
    return [
        OpenTask(
            int(row[0]),
            str(row[1]),
            None if row[2] is None else int(row[2]),
            row[3],
            tuple(int(p) for p in (row[4] or "").split(",") if p.strip().isdigit()),
            tx.read_when(row[5]),
        )
        for row in rows
    ]


def case_title(tx: Txn, instance_id: int) -> str:
    row = tx.one("SELECT title FROM process_instance WHERE id = ?", (instance_id,))
    return "" if row is None else str(row[0])
