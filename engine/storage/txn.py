"""A lean transaction on the driver (DBAPI) connection, for the engine's hot path.

A SQLAlchemy ``Session`` costs about 70 µs per transaction before its first statement and
Core ``execute`` about 90 µs per statement (measured in ``docs/engine.md``); the sqlite3
driver runs a whole 8-statement completion in less. ``Txn`` sends SQL straight to the
driver's cursor and keeps the guarantees ``Database.unit_of_work`` gives:

- on SQLite the transaction starts with ``BEGIN IMMEDIATE`` (writers queue up); on
  PostgreSQL psycopg opens it implicitly and callers lock rows with ``FOR UPDATE``;
- commit when the block ends normally, roll back on any exception;
- statements are written once with ``?`` placeholders and rewritten to ``%s`` for psycopg;
- datetimes and JSON are bound by the very processors the ORM column types use, so rows
  written here read back through the ORM exactly as if the ORM had written them.

``of_session`` wraps the connection of a caller's ``Session`` instead (the worker's
transactions); the session then owns commit and rollback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from engine.storage.db import AFTER_COMMIT, Database
from engine.storage.models import HumanTask

_PG_SQL: dict[str, str] = {}


class _Binds:
    """The ORM's own bind/result processors for the column types the hot path writes.

    On SQLite two are written out (tests/engine/test_hot_path.py checks they agree with the
    ORM's): SQLAlchemy's processor chain costs a few µs per value on the hot path.
    """

    def __init__(self, dialect: Dialect):
        when = HumanTask.__table__.c.created_at.type.dialect_impl(dialect)
        data = HumanTask.__table__.c.data.type.dialect_impl(dialect)
        self.bind_when = when.bind_processor(dialect) or _same
        self.read_when = when.result_processor(dialect, None) or _same
        self.bind_json = data.bind_processor(dialect) or _same
        if dialect.name == "sqlite" and getattr(dialect, "_json_serializer", None) is None:
            self.bind_when, self.bind_json = sqlite_datetime, _json_text


def _json_text(value: Any) -> str:
    return json.dumps(value)  # SQLAlchemy's default JSON serializer


def _same(value: Any) -> Any:
    return value


def sqlite_datetime(value: datetime) -> str:
    """A ``UTCDateTime`` as SQLAlchemy stores it in SQLite: naive UTC, microseconds always."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTCDateTime column")
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


_BINDS: dict[tuple[str, str], _Binds] = {}


def _binds(dialect: Dialect) -> _Binds:
    key = (dialect.name, str(dialect.driver))
    found = _BINDS.get(key)
    if found is None:
        found = _BINDS[key] = _Binds(dialect)
    return found


class Txn:
    """One database transaction: ``execute`` SQL with ``?`` placeholders, bind values like the ORM."""

    def __init__(self, dialect: Dialect, connection: Any, session: Session | None = None):
        self.sqlite = dialect.name == "sqlite"
        self.session = session
        self.info: dict[str, Any] = {}
        self.before_commit: list[Callable[[], None]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._cursor = connection.cursor()
        binds = _binds(dialect)
        self._bind_when, self._read_when, self._bind_json = (
            binds.bind_when,
            binds.read_when,
            binds.bind_json,
        )

    # --- statements ---

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the driver cursor (``rowcount``, ``fetchone``...)."""
        self._cursor.execute(sql if self.sqlite else _pg(sql), params)
        return self._cursor

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row (a tuple) or None."""
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.execute(sql, params).fetchall())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql if self.sqlite else _pg(sql), rows)

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT into a table with an ``id`` key; returns the new row's id."""
        if self.sqlite:
            return int(self.execute(sql, params).lastrowid)
        row = self.one(sql + " RETURNING id", params)
        return int(row[0])

    @contextmanager
    def savepoint(self, name: str) -> Iterator[None]:
        """Undo what the block wrote if it raises (also revives an aborted PostgreSQL transaction)."""
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.execute(f"RELEASE SAVEPOINT {name}")

    # --- values, exactly as the ORM column types bind and read them ---

    def when(self, value: datetime | None) -> Any:
        """A timezone-aware datetime for a ``UTCDateTime`` column."""
        return None if value is None else self._bind_when(value)

    def read_when(self, value: Any) -> datetime | None:
        """A ``UTCDateTime`` column's raw value back as an aware UTC datetime."""
        return None if value is None else self._read_when(value)

    def json(self, value: Any) -> Any:
        """A value for a ``JSON`` column."""
        return self._bind_json(value)

    # --- the end of the transaction ---

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never if it rolls back)."""
        if self.session is not None:
            self.session.info.setdefault(AFTER_COMMIT, []).append(callback)
        else:
            self._after_commit.append(callback)


def _pg(sql: str) -> str:
    converted = _PG_SQL.get(sql)
    if converted is None:
        converted = _PG_SQL[sql] = sql.replace("?", "%s")
    return converted


@contextmanager
def transaction(db: Database) -> Iterator[Txn]:
    """One transaction on a pooled connection: committed when the block ends, else rolled back.

    ``before_commit`` hooks run just before COMMIT (the audit chain's batched writes);
    ``on_commit`` callbacks after it succeeded (the hot workflow cache's check-in).
    """
    pooled = db.engine.raw_connection()
    connection = pooled.dbapi_connection
    try:
        tx = Txn(db.engine.dialect, connection)
        if tx.sqlite:
            tx.execute("BEGIN IMMEDIATE")
        yield tx
        for hook in tx.before_commit:
            hook()
        connection.commit()  # type: ignore[union-attr]
    except BaseException:
        connection.rollback()  # type: ignore[union-attr]
        raise
    finally:
        pooled.close()
    for callback in tx._after_commit:
        callback()


_SESSION_TXN = "opsflow_txn"


def of_session(session: Session) -> Txn:
    """The ``Txn`` of a caller's session (flushed first): its connection, its transaction."""
    session.flush()
    connection = session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    known: tuple[Any, Txn] | None = session.info.get(_SESSION_TXN)
    if known is not None and known[0] is dbapi_connection:
        return known[1]
    tx = Txn(connection.dialect, dbapi_connection, session)
    session.info[_SESSION_TXN] = (dbapi_connection, tx)
    return tx
