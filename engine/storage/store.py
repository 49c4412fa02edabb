"""The runtime's SQL on process_instance, human_task, timer and user rows, through a lean ``Txn``.

Rows are read into small dataclasses and written with plain statements; every write of an
instance row checks and bumps its version (``UPDATE … WHERE id = ? AND version = ?``).
On PostgreSQL the instance row is locked with ``FOR UPDATE`` before its task is read, so a
second completer sees the first one's commit; on SQLite ``BEGIN IMMEDIATE`` already
serializes writers and one joined SELECT does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import ConflictError, NotFoundError
from engine.storage.models import NEVER, InstanceStatus, TaskStatus, TimerStatus
from engine.storage.txn import Txn

OPEN, DONE, WITHDRAWN = TaskStatus.OPEN, TaskStatus.DONE, TaskStatus.WITHDRAWN


@dataclass
class InstanceRow:
    id: int
    definition_id: int
    business_key: str | None
    title: str
    status: str
    started_by: int | None
    version: int
    error_element: str | None
    error_message: str | None
    ended_at: datetime | None


@dataclass(frozen=True)
class TaskRow:
    id: int
    instance_id: int
    spiff_task_id: str
    bpmn_id: str
    status: str
    assignee_id: int | None
    candidate_role: str | None
    form_key: str | None
    completed_by: int | None
    completed_at: datetime | None
    excluded: tuple[int, ...]  # users who must recuse themselves (excludeUsers)


_JOINED = (
    "SELECT t.id, t.instance_id, t.spiff_task_id, t.bpmn_id, t.status, t.assignee_id,"
    " t.candidate_role, t.form_key, t.completed_by, t.completed_at, t.excluded_user_ids,"
    " i.id, i.definition_id, i.business_key, i.title, i.status, i.started_by, i.version,"
    " i.error_element, i.error_message, i.ended_at"
    " FROM human_task t JOIN process_instance i ON i.id = t.instance_id WHERE t.id = ?"
)
_TASK = (
    "SELECT id, instance_id, spiff_task_id, bpmn_id, status, assignee_id,"
    " candidate_role, form_key, completed_by, completed_at, excluded_user_ids"
    " FROM human_task WHERE id = ?"
)
_INSTANCE = (
    "SELECT id, definition_id, business_key, title, status, started_by, version,"
    " error_element, error_message, ended_at FROM process_instance WHERE id = ?"
)
_LOCK_INSTANCE = _INSTANCE + " FOR UPDATE"
_LOCK_INSTANCE_OF_TASK = (
    "SELECT id, definition_id, business_key, title, status, started_by, version,"
    " error_element, error_message, ended_at FROM process_instance"
    " WHERE id = (SELECT instance_id FROM human_task WHERE id = ?) FOR UPDATE"
)


def _instance(tx: Txn, row: Any) -> InstanceRow:
    values = list(row)
    values[9] = tx.read_when(values[9])
    return InstanceRow(*values)


def _task(tx: Txn, row: Any) -> TaskRow:
    values = list(row)
    values[9] = tx.read_when(values[9])
    values[10] = decode_user_ids(values[10])
    return TaskRow(*values)


# --- human_task.excluded_user_ids: the users who must recuse themselves, as "3,17" ---


def encode_user_ids(ids: tuple[int, ...]) -> str | None:
    """The column's text for a set of user ids (None for none)."""
    return ",".join(map(str, ids)) or None


def decode_user_ids(text: str | None) -> tuple[int, ...]:
    return tuple(int(i) for i in text.split(",") if i) if text else ()


def listed(user_id: int) -> str:
    """A LIKE pattern matching ``"," || column || ","`` when the column lists ``user_id``."""
    return f"%,{int(user_id)},%"


def _no_task(task_id: int) -> NotFoundError:
    return NotFoundError(f"任务不存在 / no task #{task_id}")


def task(tx: Txn, task_id: int) -> tuple[TaskRow, InstanceRow]:
    """A task and its instance, unlocked. :raise NotFoundError:"""
    row = tx.one(_JOINED, (task_id,))
    if row is None:
        raise _no_task(task_id)
    return _task(tx, row[:11]), _instance(tx, row[11:])


def task_locking_instance(tx: Txn, task_id: int) -> tuple[TaskRow, InstanceRow]:
    """A task and its instance, the instance row locked; the task read after the lock."""
    if tx.sqlite:
        return task(tx, task_id)
    # A task never changes instance, so the subquery may read an older snapshot; the task row
    # itself is read by a second statement, which sees whatever committed before the lock.
    locked = tx.one(_LOCK_INSTANCE_OF_TASK, (task_id,))
    if locked is None:
        raise _no_task(task_id)
    row = tx.one(_TASK, (task_id,))
    return _task(tx, row), _instance(tx, locked)


def instance(tx: Txn, instance_id: int) -> InstanceRow:
    """:raise NotFoundError:"""
    row = tx.one(_INSTANCE, (instance_id,))
    if row is None:
        raise NotFoundError(f"流程实例不存在 / no case #{instance_id}")
    return _instance(tx, row)


def lock_instance(tx: Txn, instance_id: int) -> InstanceRow:
    """:raise NotFoundError:"""
    row = tx.one(_INSTANCE if tx.sqlite else _LOCK_INSTANCE, (instance_id,))
    if row is None:
        raise NotFoundError(f"流程实例不存在 / no case #{instance_id}")
    return _instance(tx, row)


def running_instance_ids(tx: Txn, business_key: str | None) -> list[int]:
    rows = tx.all(
        f"SELECT id FROM process_instance WHERE business_key = ? AND status = '{InstanceStatus.RUNNING}'",
        (business_key,),
    )
    return [int(row[0]) for row in rows]


def state(tx: Txn, instance_id: int) -> str:
    return str(tx.one("SELECT state FROM process_instance WHERE id = ?", (instance_id,))[0])


def open_tasks(tx: Txn, instance_id: int) -> dict[str, tuple[int, str]]:
    """spiff task id -> (human_task.id, BPMN id) of the instance's open tasks."""
    rows = tx.all(
        "SELECT id, spiff_task_id, bpmn_id FROM human_task"
        f" WHERE instance_id = ? AND status = '{TaskStatus.OPEN}' ORDER BY id",
        (instance_id,),
    )
    return {str(spiff_id): (int(row_id), str(bpmn_id)) for row_id, spiff_id, bpmn_id in rows}


def waiting_timers(tx: Txn, instance_id: int) -> frozenset[tuple[str, datetime]]:
    rows = tx.all(
        f"SELECT bpmn_id, fire_at FROM timer WHERE instance_id = ? AND status = '{TimerStatus.WAITING}'",
        (instance_id,),
    )
    found: set[tuple[str, datetime]] = set()
    for bpmn_id, fire_at in rows:
        when = tx.read_when(fire_at)
        if when is not None:  # fire_at is NOT NULL
            found.add((str(bpmn_id), when))
    return frozenset(found)


def completers(tx: Txn, instance_id: int) -> dict[str, set[int]]:
    """BPMN task id -> ids of the users who completed it, in this instance."""
    rows = tx.all(
        f"SELECT bpmn_id, completed_by FROM human_task WHERE instance_id = ? AND status = '{TaskStatus.DONE}'",
        (instance_id,),
    )
    found: dict[str, set[int]] = {}
    for bpmn_id, user_id in rows:
        if user_id is not None:
            found.setdefault(bpmn_id, set()).add(user_id)
    return found


def case_exclusions(tx: Txn, instance_id: int) -> tuple[int, ...]:
    """Everyone who must recuse themselves from some task of the case."""
    rows = tx.all(
        "SELECT excluded_user_ids FROM human_task"
        " WHERE instance_id = ? AND excluded_user_ids IS NOT NULL",
        (instance_id,),
    )
    return tuple(sorted({user for (text,) in rows for user in decode_user_ids(text)}))


_TOOK_PART = (
    "SELECT 1 FROM human_task WHERE instance_id = ? AND (completed_by = ? OR assignee_id = ?"
    f" OR (status = '{TaskStatus.OPEN}' AND candidate_role IN ({{marks}}))) LIMIT 1"
)


def took_part(tx: Txn, instance_id: int, user_id: int, roles: frozenset[str]) -> bool:
    """Whether the user completed or holds a task of the case, or one waits in their roles' queue."""
    marks = ", ".join("?" for _ in roles) or "NULL"  # placeholders only: no value in the text
    sql = _TOOK_PART.format(marks=marks)
    row = tx.one(sql, (instance_id, user_id, user_id, *sorted(roles)))
    return row is not None


# --- writes ---


def insert_instance(tx: Txn, row: InstanceRow, state: str, started_at: datetime) -> None:
    """Insert the row (``row.id`` is set)."""
    row.id = tx.insert(
        "INSERT INTO process_instance (definition_id, business_key, title, status, state,"
        " error_element, error_message, started_by, started_at, ended_at, version)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.definition_id,
            row.business_key,
            row.title,
            row.status,
            state,
            row.error_element,
            row.error_message,
            row.started_by,
            tx.when(started_at),
            tx.when(row.ended_at),
            row.version,
        ),
    )


def _stale() -> ConflictError:
    return ConflictError(
        "流程实例已被他人修改，请刷新后重试 / the case was changed by someone else; reload and retry"
    )


_UPDATE_INSTANCE = (
    "UPDATE process_instance SET status = ?, error_element = ?, error_message = ?, ended_at = ?,"
    " version = ? WHERE id = ? AND version = ?"
)
_UPDATE_INSTANCE_STATE = (
    "UPDATE process_instance SET state = ?, status = ?, error_element = ?, error_message = ?,"
    " ended_at = ?, version = ? WHERE id = ? AND version = ?"
)


def update_instance(tx: Txn, row: InstanceRow, state: str | None) -> None:
    """Write status, error, end (and state, unless None) and bump the version it was read at.

    :raise ConflictError: another transaction changed the row since.
    """
    values = (row.status, row.error_element, row.error_message, tx.when(row.ended_at))
    guard = (row.version + 1, row.id, row.version)
    if state is None:
        cursor = tx.execute(_UPDATE_INSTANCE, (*values, *guard))
    else:
        cursor = tx.execute(_UPDATE_INSTANCE_STATE, (state, *values, *guard))
    if cursor.rowcount != 1:
        raise _stale()
    row.version += 1


def set_title(tx: Txn, instance_id: int, title: str) -> None:
    tx.execute("UPDATE process_instance SET title = ? WHERE id = ?", (title, instance_id))


def complete_task(tx: Txn, task_id: int, at: datetime, by: int | None, data: Any) -> None:
    tx.execute(
        f"UPDATE human_task SET status = '{TaskStatus.DONE}', completed_at = ?, completed_by = ?, data = ?"
        " WHERE id = ?",
        (tx.when(at), by, tx.json(data), task_id),
    )


def withdraw_task(tx: Txn, task_id: int, at: datetime) -> None:
    tx.execute(
        f"UPDATE human_task SET status = '{TaskStatus.WITHDRAWN}', completed_at = ? WHERE id = ?",
        (tx.when(at), task_id),
    )


@dataclass(frozen=True)
class NewTask:
    instance_id: int
    spiff_task_id: str
    bpmn_id: str
    name: str
    lane: str | None
    candidate_role: str | None
    assignee_id: int | None
    form_key: str | None
    is_approval: bool
    due_at: datetime | None
    created_at: datetime
    excluded: tuple[int, ...] = ()
    paused_at: datetime | None = None  # created while the case's clock is paused


def insert_task(tx: Txn, new: NewTask) -> int:
    return tx.insert(
        "INSERT INTO human_task (instance_id, spiff_task_id, bpmn_id, name, lane, candidate_role,"
        " assignee_id, form_key, is_approval, status, due_at, sort_due_at, created_at,"
        f" excluded_user_ids, paused_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{TaskStatus.OPEN}', ?, ?, ?, ?, ?)",
        (
            new.instance_id,
            new.spiff_task_id,
            new.bpmn_id,
            new.name,
            new.lane,
            new.candidate_role,
            new.assignee_id,
            new.form_key,
            new.is_approval,
            tx.when(new.due_at),
            tx.when(new.due_at or NEVER),
            tx.when(new.created_at),
            encode_user_ids(new.excluded),
            tx.when(new.paused_at),
        ),
    )


def claim(tx: Txn, task_id: int, user_id: int) -> bool:
    """Assign an open, unassigned task; False when someone else has it."""
    cursor = tx.execute(
        f"UPDATE human_task SET assignee_id = ? WHERE id = ? AND assignee_id IS NULL AND status = '{TaskStatus.OPEN}'",
        (user_id, task_id),
    )
    return bool(cursor.rowcount == 1)


def set_assignee(tx: Txn, task_id: int, user_id: int | None) -> None:
    tx.execute("UPDATE human_task SET assignee_id = ? WHERE id = ?", (user_id, task_id))


def withdraw_all(tx: Txn, instance_id: int) -> None:
    """A cancelled instance: its open tasks leave the inbox, its timers stop waiting."""
    tx.execute(
        f"UPDATE human_task SET status = '{TaskStatus.WITHDRAWN}' WHERE instance_id = ? AND status = '{TaskStatus.OPEN}'",
        (instance_id,),
    )
    tx.execute(
        f"UPDATE timer SET status = '{TimerStatus.DONE}' WHERE instance_id = ? AND status = '{TimerStatus.WAITING}'",
        (instance_id,),
    )


def add_timer(tx: Txn, instance_id: int, bpmn_id: str, fire_at: datetime) -> None:
    tx.execute(
        f"INSERT INTO timer (instance_id, bpmn_id, fire_at, status) VALUES (?, ?, ?, '{TimerStatus.WAITING}')",
        (instance_id, bpmn_id, tx.when(fire_at)),
    )


def finish_timer(tx: Txn, instance_id: int, bpmn_id: str, fire_at: datetime) -> None:
    tx.execute(
        f"UPDATE timer SET status = '{TimerStatus.DONE}'"
        f" WHERE instance_id = ? AND bpmn_id = ? AND fire_at = ? AND status = '{TimerStatus.WAITING}'",
        (instance_id, bpmn_id, tx.when(fire_at)),
    )
