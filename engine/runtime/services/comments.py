"""Comments on a case: written into the audit trail (append-only, hash-chained), read from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import audit
from engine.errors import InvalidInputError
from engine.people.identity import Actor
from engine.runtime.services import instance_view
from engine.storage.db import Database

MAX_CHARS = 2000
COMMENT = "comment_added"


def add(db: Database, actor: Actor, instance_id: int, text: str) -> None:
    """:raise InvalidInputError: empty or too long. :raise PermissionDeniedError: (audited)"""
    body = text.strip()
    if not body or len(body) > MAX_CHARS:
        message = f"评论须为 1-{MAX_CHARS} 个字符 / a comment has 1-{MAX_CHARS} characters"
        raise InvalidInputError(message, {"text": [message]})
    instance_view.open_case(db, actor, instance_id)
    with db.unit_of_work() as session:
        audit.record(
            session, COMMENT, actor=actor.username, instance_id=instance_id, payload={"text": body}
        )


def of_case(history: tuple[Mapping[str, Any], ...]) -> list[Mapping[str, Any]]:
    """The comments among a case's history events, oldest first."""
    return [event for event in history if event["type"] == COMMENT]
