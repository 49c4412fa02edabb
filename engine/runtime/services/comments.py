"""Comments on a case: written into the audit trail (append-only, hash-chained), read from it."""

from __future__ import annotations

from functools import partial

from engine import audit
from engine.errors import InvalidInputError
from engine.people.identity import Actor
from engine.runtime.base import access, unit_of_work
from engine.storage import store
from engine.storage.db import Database
from engine.storage.txn import Txn

MAX_CHARS = 2000
COMMENT = "comment_added"


def add(db: Database, actor: Actor, instance_id: int, text: str) -> None:
    """:raise InvalidInputError: empty or too long. :raise PermissionDeniedError: (audited)"""
    body = text.strip()
    if not body or len(body) > MAX_CHARS:
        message = f"评论须为 1-{MAX_CHARS} 个字符 / a comment has 1-{MAX_CHARS} characters"
        raise InvalidInputError(message, {"text": [message]})
    unit_of_work.run(db, actor, partial(_add, actor, instance_id, body), instance_id)


def _add(actor: Actor, instance_id: int, body: str, tx: Txn) -> None:
    access.check_may_read_case(tx, actor, store.instance(tx, instance_id))
    audit.record(tx, COMMENT, actor=actor.username, instance_id=instance_id, payload={"text": body})
