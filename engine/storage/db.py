"""Database(url): engine, sessions, SQLite pragmas and BEGIN IMMEDIATE, unit_of_work(), migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_READ_ONLY = "opsflow_read_only"
# session.info key: callables to run once the unit of work has committed (never on rollback)
AFTER_COMMIT = "opsflow_after_commit"


class Database:
    """One database: SQLite (the default, embedded) or PostgreSQL, by URL."""

    def __init__(self, url: str, **engine_options: Any):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _make_sqlite_folder(url)
            engine_options.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        self.engine: Engine = create_engine(url, **engine_options)
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit when the block ends normally, roll back on any exception.

        On SQLite the transaction begins with BEGIN IMMEDIATE, so writers queue up instead
        of failing later with "database is locked" when they upgrade a read lock.
        Callbacks queued in ``session.info[AFTER_COMMIT]`` run after a successful commit.
        """
        with self._sessions() as session:
            with session.begin():
                yield session
            for callback in session.info.pop(AFTER_COMMIT, ()):
                callback()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (a plain deferred BEGIN on SQLite)."""
        with self._read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest migration."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


def hold_lock(session: Session, name: str) -> None:
    """Hold the lock called ``name`` until the session's transaction ends: a PostgreSQL advisory
    lock (for counts that must not be read by two writers at once); on SQLite every writer
    already holds the database's one write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name}
        )


def _make_sqlite_folder(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: Engine) -> None:
    # The sqlite3 driver's legacy transaction handling breaks SAVEPOINT and cannot issue
    # BEGIN IMMEDIATE; take over (SQLAlchemy SQLite dialect docs, "Serializable isolation").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
