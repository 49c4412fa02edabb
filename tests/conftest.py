"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL too when configured), the demo
department, a frozen clock, and helpers to deploy and act as a user."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import text

from engine import case_files, cli, runtime
from engine.config import PROJECT_ROOT, Settings
from engine.definitions import registry
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime import InstanceSummary
from engine.runtime.services import inbox
from engine.storage.db import Database
from engine.timekeeping import clock
from tests import mailbox as mailbox_

SHARED = PROJECT_ROOT.parent / "shared"
_PG_BASE = os.environ.get("OPSFLOW_TEST_DATABASE_URL")
# Each test run gets a schema of its own, so runs on one server never see each other's rows.
PG_SCHEMA = f"opsflow_test_{os.getpid()}"
PG_URL = (
    f"{_PG_BASE}{'&' if '?' in _PG_BASE else '?'}options=-csearch_path%3D{PG_SCHEMA}"
    if _PG_BASE
    else None
)
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
DEMO = Settings().demo_data
DEMO_CASE_FILES = Settings().demo_case_files
# 2026-03-02 09:00 China time, a Monday and a working day.
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """argon2 with its cheapest parameters: the same algorithm, 1000x faster for test users."""
    saved = identity._hasher
    identity._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    identity._hasher = saved


@pytest.fixture(scope="session")
def sqlite_template(
    tmp_path_factory: pytest.TempPathFactory, _cheap_password_hashing: None
) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    with db.unit_of_work() as session:
        identity.load_department(session, DEMO)
        case_files.load_demo(session, DEMO_CASE_FILES)
    db.dispose()
    return path


def _sqlite(template: Path, tmp_path: Path) -> Database:
    path = tmp_path / "opsflow.sqlite"
    shutil.copy(template, path)
    return Database(f"sqlite:///{path}")


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[None]:
    assert _PG_BASE is not None
    admin = Database(_PG_BASE)
    with admin.engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    assert PG_URL is not None
    schema_db = Database(PG_URL)
    schema_db.upgrade()
    schema_db.dispose()
    yield
    with admin.engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    admin.dispose()


def _postgresql(request: pytest.FixtureRequest) -> Database:
    request.getfixturevalue("pg_schema")
    assert PG_URL is not None
    db = Database(PG_URL)
    with db.engine.begin() as connection:
        tables = ", ".join(
            f'"{t}"'
            for t in (
                "login_session",
                "task_reminder",
                "notification_preference",
                "notification",
                "login_attempt",
                "saved_filter",
                "task_draft",
                "attachment_use",
                "attachment",
                "api_token",
                "invoice_register",
                "budget_entry",
                "budget_line",
                "archive_hold",
                "archive_item",
                "policy",
                "customer",
                "audit_event",
                "audit_head",
                "timer",
                "human_task",
                "process_instance",
                "periodic_start",
                "process_definition",
                "user_role",
                "user",
                "role",
            )
        )
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    with db.unit_of_work() as session:
        identity.load_department(session, DEMO)
        case_files.load_demo(session, DEMO_CASE_FILES)
    return db


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    database = (
        _sqlite(sqlite_template, tmp_path) if request.param == "sqlite" else _postgresql(request)
    )
    yield database
    database.dispose()


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    frozen = clock.FrozenClock(START)
    clock.use(frozen)
    yield frozen
    clock.use(None)


ActorOf = Callable[[str], Actor]
"""The ``actor`` fixture: ``actor("ddm1")`` is that demo user as an Actor."""


class Opsflow(Protocol):
    """The ``opsflow`` fixture: ``opsflow("tasks", "--as", "ddm1")`` runs the CLI in process."""

    def __call__(self, *args: object) -> Result: ...


@pytest.fixture
def actor(db: Database) -> ActorOf:
    """``actor("ddm1")``: the demo user as an Actor."""

    def _actor(username: str) -> Actor:
        with db.read() as session:
            return identity.get_actor(session, username)

    return _actor


def deploy_processes(
    db: Database, folder: Path = PROJECT_ROOT / "processes"
) -> list[registry.DeployedVersion]:
    with db.unit_of_work() as session:
        return registry.deploy_all(session, identity.SYSTEM, registry.read_directory(folder))


@pytest.fixture
def deployed(db: Database) -> list[registry.DeployedVersion]:
    return deploy_processes(db)


def open_task(db: Database, instance_id: int, bpmn_id: str) -> int:
    """The id of the instance's open task for a BPMN element (fails the test if there is none)."""
    matches = [row.id for row in inbox.open_tasks_of(db, instance_id) if row.bpmn_id == bpmn_id]
    assert matches, (
        f"no open task {bpmn_id} in instance {instance_id}: {inbox.open_tasks_of(db, instance_id)}"
    )
    return matches[0]


def inbox_row(db: Database, task_id: int) -> inbox.TaskRow:
    """A task as the inbox lists it (fails the test if there is no such task)."""
    row = inbox.get_task(db, task_id)
    assert row is not None, f"no task {task_id}"
    return row


def work(
    db: Database,
    who: Actor,
    instance_id: int,
    bpmn_id: str,
    data: Mapping[str, object] | None = None,
) -> InstanceSummary:
    """Claim (when it is a role's task) and complete an instance's open task as a user."""
    task_id = open_task(db, instance_id, bpmn_id)
    if inbox_row(db, task_id).assignee_id is None:
        runtime.claim_task(db, who, task_id)
    return runtime.complete_task(db, who, task_id, data or {})


def history_types(db: Database, instance_id: int) -> list[str]:
    return [event["type"] for event in runtime.get_instance(db, instance_id).history]


@pytest.fixture
def mailbox() -> Iterator[mailbox_.Server]:
    """A real SMTP server on loopback; ``mailbox.mailer`` sends to it, ``mailbox.box`` holds what came."""
    server = mailbox_.Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def opsflow() -> Opsflow:
    """``opsflow(*args)``: the CLI in process (it closes the database it opens)."""

    def _opsflow(*args: object) -> Result:
        return CliRunner().invoke(cli.main, [str(a) for a in args])

    return _opsflow


# --- the browser (Debian's chromium through Playwright; never a downloaded one) ---

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session (``make setup`` installs it and node_modules)."""
    for need, fix in (
        (CHROMIUM, "apt-get install chromium"),
        (PROJECT_ROOT / "node_modules", "npm ci"),
    ):
        if not need.exists():
            pytest.fail(f"{need} is missing: run `make setup` ({fix})")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()
