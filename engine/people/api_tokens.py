"""Tokens for REST API clients: created by a user for themselves, shown once, stored hashed.

A token is 32 random bytes (URL-safe text, prefixed ``opsf_``); the database keeps only its
SHA-256, which is enough for a secret of that entropy and lets a request find its token with one
indexed lookup. Creating and revoking are audited; a revoked token never authenticates again.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from engine import audit
from engine.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from engine.people import identity
from engine.people.identity import Actor
from engine.storage.db import Database
from engine.storage.models import ApiToken
from engine.timekeeping import clock

PREFIX = "opsf_"
USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(db: Database, actor: Actor, name: str) -> str:
    """A new token for ``actor``; the only time its text is ever available."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInputError(
            "令牌名称须为 1-64 个字符 / a token name has 1-64 characters",
            {"name": ["令牌名称须为 1-64 个字符 / a token name has 1-64 characters"]},
        )
    token = PREFIX + secrets.token_urlsafe(32)
    with db.unit_of_work() as session:
        row = ApiToken(
            user_id=actor.id, name=name, token_hash=_digest(token), created_at=clock.now()
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            "api_token_created",
            actor=actor.username,
            payload={"token": row.id, "name": name},
        )
    return token


def tokens_of(db: Database, actor: Actor) -> list[TokenInfo]:
    with db.read() as session:
        rows = session.scalars(
            select(ApiToken).where(ApiToken.user_id == actor.id).order_by(ApiToken.id)
        )
        return [TokenInfo(r.id, r.name, r.created_at, r.last_used_at, r.revoked_at) for r in rows]


def revoke(db: Database, actor: Actor, token_id: int) -> None:
    """:raise NotFoundError: not one of the actor's tokens."""
    with db.unit_of_work() as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.user_id != actor.id:
            raise NotFoundError(f"令牌不存在 / no token #{token_id}")
        if row.revoked_at is None:
            row.revoked_at = clock.now()
            audit.record(
                session, "api_token_revoked", actor=actor.username, payload={"token": row.id}
            )


def authenticate(db: Database, token: str) -> Actor:
    """The active user a live token belongs to. :raise PermissionDeniedError:"""
    refused = PermissionDeniedError("令牌无效或已撤销 / the token is invalid or revoked")
    if not token.startswith(PREFIX) or len(token) > 100:
        raise refused
    now = clock.now()
    with db.read() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
        if row is None or row.revoked_at is not None:
            raise refused
        found = identity.active_actor(session, row.user_id)
        stale = row.last_used_at is None or now - row.last_used_at > USE_RESOLUTION
        token_id = row.id
    if found is None:
        raise refused
    if stale:  # "last used" to the minute: no write on every request
        with db.unit_of_work() as session:
            used = session.get(ApiToken, token_id)
            if used is not None:
                used.last_used_at = now
    return found
