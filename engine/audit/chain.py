"""Append hash-chained audit events in the caller's transaction; verify the chain; export it.

Two writers share one chain format: through an ORM ``Session`` (events added to the
session), or through a lean ``Txn`` (the runtime's hot path), which locks the head at the
first event, keeps the events in memory and writes them in one batch just before COMMIT.
Either way the head row is read with ``FOR UPDATE`` on PostgreSQL (SQLite serializes
writers with ``BEGIN IMMEDIATE``) so the chain never forks.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.instrumentation import manager_of_class

from engine.storage import audit_rows
from engine.storage.models import AuditEvent, AuditHead
from engine.storage.txn import Txn
from engine.timekeeping import clock

GENESIS = "0" * 64
_HEAD_KEY = "opsflow_audit_head"


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"{type(value).__name__} is not allowed in an audit record")


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
)


def canonical_json(value: Any) -> str:
    """The one encoding hashes are computed over: sorted keys, no spaces, UTF-8 text."""
    return _CANONICAL.encode(value)


def _digest(prev_hash: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


def _body(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at,
        "actor": event.actor,
        "instance_id": event.instance_id,
        "task_id": event.task_id,
        "type": event.type,
        "payload": event.payload,
    }


def _head(session: Session) -> AuditHead:
    head: AuditHead | None = session.info.get(_HEAD_KEY)
    if head is None:
        head = session.scalars(select(AuditHead).with_for_update()).one_or_none()
        if head is None:
            head = AuditHead(id=1, seq=0, hash=GENESIS)
            session.add(head)
        session.info[_HEAD_KEY] = head
    return head


def record(
    session: Session | Txn,
    type: str,
    *,
    actor: str | None,
    payload: Mapping[str, Any] | None = None,
    instance_id: int | None = None,
    task_id: str | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction (it commits or rolls back with it)."""
    if isinstance(session, Txn):
        if session.session is None:
            chain = session.info.get(_HEAD_KEY)
            if chain is None:
                chain = session.info[_HEAD_KEY] = _Chain(session)
            return chain.append(type, actor, payload, instance_id, task_id)
        session = session.session
    head = _head(session)
    event = AuditEvent(
        seq=head.seq + 1,
        at=clock.now().isoformat(),
        actor=actor,
        instance_id=instance_id,
        task_id=task_id,
        type=type,
        payload=canonical_json(dict(payload or {})),
        prev_hash=head.hash,
    )
    event.hash = _digest(event.prev_hash, _body(event))
    head.seq, head.hash = event.seq, event.hash
    session.add(event)
    return event


_new_event = manager_of_class(AuditEvent).new_instance


class _Chain:
    """The chain's head within one ``Txn``: locked at the first event, written before COMMIT."""

    def __init__(self, tx: Txn):
        self.tx = tx
        self.seq, self.hash = audit_rows.locked_head(tx, GENESIS)
        self.rows: list[tuple[Any, ...]] = []
        tx.before_commit.append(self.flush)

    def append(
        self,
        type: str,
        actor: str | None,
        payload: Mapping[str, Any] | None,
        instance_id: int | None,
        task_id: str | None,
    ) -> AuditEvent:
        body: dict[str, Any] = {
            "seq": self.seq + 1,
            "at": clock.now().isoformat(),
            "actor": actor,
            "instance_id": instance_id,
            "task_id": task_id,
            "type": type,
            "payload": canonical_json(dict(payload or {})),
        }
        digest = _digest(self.hash, body)
        self.rows.append((*body.values(), self.hash, digest))
        # a transient, already-written event (built without the ORM's change tracking)
        event = _new_event()
        event.__dict__.update(body, prev_hash=self.hash, hash=digest)
        self.seq, self.hash = body["seq"], digest
        return event

    def flush(self) -> None:
        if self.rows:
            audit_rows.insert_events(self.tx, self.rows)
            audit_rows.move_head(self.tx, self.seq, self.hash)
            self.rows = []


@dataclass(frozen=True)
class ChainReport:
    """What ``verify`` found: how many events it checked and the first one that does not hold."""

    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


def verify(session: Session, batch: int = 5000) -> ChainReport:
    """Recompute every link of the chain in order and name the first broken event."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq > last_seq)
            .order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for event in rows:
            problem = _check_link(event, expected_seq, prev_hash)
            if problem:
                return ChainReport(checked, event.seq, problem)
            prev_hash, expected_seq, checked = event.hash, event.seq + 1, checked + 1
        last_seq = rows[-1].seq
    return _check_head(session, checked, prev_hash, expected_seq - 1)


def _check_link(event: AuditEvent, expected_seq: int, prev_hash: str) -> str | None:
    if event.seq != expected_seq:
        return f"event {expected_seq} is missing (next is {event.seq})"
    if event.prev_hash != prev_hash:
        return "prev_hash does not match the previous event's hash"
    if event.hash != _digest(prev_hash, _body(event)):
        return "hash does not match the event's content (the row was altered)"
    return None


def _check_head(session: Session, checked: int, last_hash: str, last_seq: int) -> ChainReport:
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq, head.hash) != (last_seq, last_hash):
        return ChainReport(checked, last_seq + 1, f"events after {last_seq} were deleted")
    return ChainReport(checked)


def history(session: Session, instance_id: int) -> list[dict[str, Any]]:
    """Every event of one instance, oldest first, as plain dictionaries (for display and export)."""
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.seq)
    )
    return [
        {**_body(event), "payload": json.loads(event.payload), "hash": event.hash} for event in rows
    ]
