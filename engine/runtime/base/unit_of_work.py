"""The unit of work around a runtime service: a lean transaction or a Session; refusals audited apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from engine import audit
from engine.errors import PermissionDeniedError
from engine.people.identity import Actor
from engine.storage import txn
from engine.storage.db import Database
from engine.storage.store import TaskRow
from engine.storage.txn import Txn

_T = TypeVar("_T")


class _NeedsSession(Exception):  # noqa: N818 - control flow, never leaves this module
    """The lean transaction met a rare path that needs the ORM: run the service in a Session."""


def run(
    db: Database,
    actor: Actor,
    work: Callable[[Txn], _T],
    instance_id: int | None = None,
    *,
    lean: bool = True,
) -> _T:
    """Run a service in a lean transaction, or (rare paths, or ``lean=False``) in a Session."""
    if lean:
        try:
            return _lean(db, actor, work, instance_id)
        except _NeedsSession:
            pass  # rolled back: nothing happened yet
    with step(db, actor, instance_id=instance_id) as session:
        return work(txn.of_session(session))


def _lean(db: Database, actor: Actor, work: Callable[[Txn], _T], instance_id: int | None) -> _T:
    where: dict[str, Any] = {"instance_id": instance_id, "task_id": None, "task": None}
    try:
        with txn.transaction(db) as tx:
            tx.info["where"] = where
            return work(tx)
    except PermissionDeniedError as exc:
        with txn.transaction(db) as tx:
            _audit_refusal(tx, actor, where, exc)
        raise


def read(
    db: Database, actor: Actor, work: Callable[[Session, Txn], _T], instance_id: int | None = None
) -> _T:
    """Run a view in one read-only transaction; a permission refusal is audited in a transaction
    of its own (a view takes no write lock, so readers never queue behind writers)."""
    where: dict[str, Any] = {"instance_id": instance_id, "task_id": None, "task": None}
    try:
        with db.read() as session:
            session.info["where"] = where
            return work(session, txn.of_session(session))
    except PermissionDeniedError as exc:
        with txn.transaction(db) as tx:
            _audit_refusal(tx, actor, where, exc)
        raise


@contextmanager
def step(db: Database, actor: Actor, *, instance_id: int | None = None) -> Iterator[Session]:
    """One ORM transaction; a permission refusal is audited in a transaction of its own."""
    where: dict[str, Any] = {"instance_id": instance_id, "task_id": None, "task": None}
    try:
        with db.unit_of_work() as session:
            session.info["where"] = where
            yield session
    except PermissionDeniedError as exc:
        with db.unit_of_work() as session:
            _audit_refusal(session, actor, where, exc)
        raise


def _audit_refusal(
    target: Session | Txn, actor: Actor, where: Mapping[str, Any], exc: Exception
) -> None:
    audit.record(
        target,
        "permission_denied",
        actor=actor.username,
        instance_id=where["instance_id"],
        task_id=where["task_id"],
        payload={"reason": str(exc), "task": where["task"], "roles": sorted(actor.roles)},
    )


def note_task(tx: Txn, task: TaskRow) -> None:
    """Name the task (and its instance) a permission refusal in this transaction is about."""
    where = tx.session.info if tx.session is not None else tx.info
    where.get("where", {}).update(instance_id=task.instance_id, task_id=task.bpmn_id, task=task.id)


def orm_session(tx: Txn) -> Session:
    """The transaction's Session; on a lean transaction, start the service again in one."""
    if tx.session is None:
        raise _NeedsSession
    return tx.session
