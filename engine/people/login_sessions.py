"""Login sessions: one random secret per login, kept on the server as its SHA-256.

The browser's cookie carries the secret; a session is live until logout or a password change
ends it, and an ended session opens nothing again, whoever copied its cookie. These functions
work in the caller's transaction; ``identity`` offers them as services.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.storage.models import LoginSession
from engine.timekeeping import clock

MAX_SECRET_LENGTH = 100  # token_urlsafe(32) is 43 characters; longer text is no secret of ours


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_session(session: Session, user_id: int) -> str:
    """A new live session for the user; returns its secret (the only time it exists in clear)."""
    secret = secrets.token_urlsafe(32)
    session.add(LoginSession(user_id=user_id, secret_hash=_digest(secret), created_at=clock.now()))
    session.flush()
    return secret


def user_of(session: Session, secret: str) -> int | None:
    """The user of a live session, or None (unknown, ended, or not a secret at all)."""
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    return session.scalar(
        select(LoginSession.user_id).where(
            LoginSession.secret_hash == _digest(secret), LoginSession.ended_at.is_(None)
        )
    )


def end_session(session: Session, secret: str) -> int | None:
    """End one session; the user it belonged to, or None when it was not live."""
    user_id = user_of(session, secret)
    if user_id is not None:
        session.execute(
            update(LoginSession)
            .where(LoginSession.secret_hash == _digest(secret))
            .values(ended_at=clock.now())
        )
    return user_id


def end_sessions(session: Session, user_id: int) -> int:
    """End every live session of the user; how many there were."""
    live = session.scalars(
        select(LoginSession).where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
    ).all()
    for row in live:
        row.ended_at = clock.now()
    return len(live)
