"""The lean completion path: the statements it issues, rows it writes exactly as the ORM would,
and a hot workflow cache that only ever holds committed versions."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.dialects import sqlite

from engine import runtime
from engine.audit import chain as audit_chain
from engine.definitions import registry
from engine.people import identity
from engine.runtime.base import caches
from engine.runtime.services import inbox
from engine.storage import txn
from engine.storage.db import Database
from engine.storage.models import HumanTask, ProcessInstance
from tests.conftest import START, ActorOf, open_task
from tests.diagrams import files, process, sequence, user_task

pytestmark = pytest.mark.usefixtures("frozen_clock")

OPS = "运营管理组"
NOTE_FORM = (
    '{"key": "note", "title": {"zh": "备注"}, "fields": [{"name": "note", "type": "string", '
    '"required": true, "label": {"zh": "备注"}}]}'
)
STEPS = process(
    "steps",
    '<bpmn:startEvent id="start"/>'
    + "".join(user_task(f"t{i}", f"步骤 {i}", formKey="note") for i in range(4))
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "t0", "t1", "t2", "t3", "end"),
    lanes={OPS: ["start", "t0", "t1", "t2", "t3", "end"]},
)


@pytest.fixture
def steps(db: Database) -> None:
    with db.unit_of_work() as session:
        registry.deploy(session, identity.SYSTEM, files("steps.bpmn", STEPS, {"note": NOTE_FORM}))


def version(db: Database, instance_id: int) -> int:
    with db.read() as session:
        row = session.get(ProcessInstance, instance_id)
        assert row is not None
        return row.version


@pytest.fixture
def traced(db: Database) -> Iterator[tuple[Database, list[str]]]:
    """A fresh SQLite handle whose connections report every statement they run."""
    handle = Database(db.url)
    statements: list[str] = []

    @event.listens_for(handle.engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    yield handle, statements
    handle.dispose()


# statement tracing is the sqlite3 driver's
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("steps")
def test_a_warm_completion_issues_nine_statements_and_no_orm_query(
    traced: tuple[Database, list[str]], actor: ActorOf
) -> None:
    handle, statements = traced
    ops1 = actor("ops1")
    case = runtime.start_instance(handle, ops1, "steps")
    first = runtime.complete_task(handle, ops1, case.open_task_ids[0], {"note": "a"})
    statements.clear()
    runtime.complete_task(handle, ops1, first.open_task_ids[0], {"note": "b"})
    assert [" ".join(s.split()[:2]) for s in statements] == [
        "BEGIN IMMEDIATE",
        "SELECT t.id,",  # the task joined with its instance (BEGIN IMMEDIATE is the lock)
        "UPDATE human_task",  # the completed task
        "SELECT seq,",  # the audit chain's head
        "INSERT INTO",  # human_task: the next task
        "INSERT INTO",  # notification: the next task's queue is told, in one statement
        "UPDATE process_instance",  # state, status, version = version + 1 WHERE version = ?
        "INSERT INTO",  # audit_event: task_completed
        "INSERT INTO",  # audit_event: task_created
        "UPDATE audit_head",
        "COMMIT",  # (the pool's reset on return issues nothing after it)
    ]
    assert "INSERT INTO human_task" in statements[4]
    assert "INSERT INTO notification" in statements[5]
    assert all("audit_event" in s for s in statements[7:9])


@pytest.mark.usefixtures("steps")
def test_rows_written_by_the_lean_path_read_back_through_the_orm(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("ops1"), "steps")
    task_id = case.open_task_ids[0]
    runtime.complete_task(db, actor("ops1"), task_id, {"note": "已核对"})
    with db.read() as session:
        row = session.get(HumanTask, task_id)
        assert row is not None
        assert (row.status, row.completed_at, row.data) == ("completed", START, {"note": "已核对"})
        created = session.get(HumanTask, task_id + 1)
        assert created is not None
        assert (created.status, created.created_at, created.is_approval) == ("open", START, False)
        assert created.candidate_role == "OPS"


def test_sqlite_values_are_bound_as_the_orm_binds_them() -> None:
    dialect = sqlite.dialect()
    when = HumanTask.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    data = HumanTask.__table__.c.data.type.dialect_impl(dialect).bind_processor(dialect)
    assert when is not None
    assert data is not None
    ours = txn._Binds(dialect)
    china = dt.timezone(dt.timedelta(hours=8))
    for _ in range(500):
        value = dt.datetime(2026, 1, 1, tzinfo=china) + dt.timedelta(
            microseconds=random.randint(0, 10**14)
        )
        assert ours.bind_when(value) == when(value)
    document = {"note": "已核对", "amount": "120.50", "rows": [{"a": 1}], "none": None}
    assert ours.bind_json(document) == data(document)
    with pytest.raises(ValueError, match="naive"):
        ours.bind_when(dt.datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


# --- the hot workflow cache holds committed versions only ---


@pytest.mark.usefixtures("steps")
def test_a_commit_that_fails_leaves_no_hot_workflow_and_nothing_written(
    db: Database, actor: ActorOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops1 = actor("ops1")
    case = runtime.start_instance(db, ops1, "steps")
    assert caches.of(db).workflows[case.id].version == case.version
    before = runtime.get_instance(db, case.id)

    def failing_flush(self: Any) -> None:  # the last thing before COMMIT
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit_chain._Chain, "flush", failing_flush)
    with pytest.raises(RuntimeError, match="disk full"):
        runtime.complete_task(db, ops1, case.open_task_ids[0], {"note": "lost"})
    monkeypatch.undo()
    assert case.id not in caches.of(db).workflows  # taken out for the step, never put back
    assert runtime.get_instance(db, case.id) == before
    done = runtime.complete_task(db, ops1, case.open_task_ids[0], {"note": "kept"})
    assert runtime.get_instance(db, case.id).data["note"] == "kept"
    assert caches.of(db).workflows[case.id].version == done.version == version(db, case.id)


@pytest.mark.usefixtures("steps")
def test_a_start_rolled_back_by_its_caller_is_never_cached(db: Database, actor: ActorOf) -> None:
    started: list[int] = []

    def crashing_worker() -> None:
        with db.unit_of_work() as session:
            started.append(runtime.start_in(db, session, actor("ops1"), "steps").id)
            raise RuntimeError("worker crashed")

    with pytest.raises(RuntimeError, match="worker crashed"):
        crashing_worker()
    assert started
    assert started[0] not in caches.of(db).workflows
    with db.unit_of_work() as session:
        summary = runtime.start_in(db, session, actor("ops1"), "steps")
        assert summary.id not in caches.of(db).workflows  # checked in only after COMMIT
    assert caches.of(db).workflows[summary.id].version == summary.version


@pytest.mark.usefixtures("steps")
def test_another_handles_commit_makes_a_hot_workflow_stale(db: Database, actor: ActorOf) -> None:
    ops1, ops2 = actor("ops1"), actor("ops2")
    case = runtime.start_instance(db, ops1, "steps")
    first = runtime.complete_task(db, ops1, case.open_task_ids[0], {"note": "one"})
    other = Database(db.url)
    try:
        second = runtime.complete_task(other, ops2, first.open_task_ids[0], {"note": "two"})
    finally:
        other.dispose()
    assert caches.of(db).workflows[case.id].version == first.version < second.version
    third = runtime.complete_task(db, ops1, second.open_task_ids[0], {"note": "three"})
    assert third.version == second.version + 1
    assert [r.bpmn_id for r in inbox.open_tasks_of(db, case.id)] == ["t3"]
    assert open_task(db, case.id, "t3") == third.open_task_ids[0]
    history = runtime.get_instance(db, case.id).history
    assert [e["payload"]["data"]["note"] for e in history if e["type"] == "task_completed"] == [
        "one",
        "two",
        "three",
    ]
