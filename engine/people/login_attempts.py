"""The login limits, counted in the database so every web worker sees the same counts.

- **Rate**: at most ``RATE_LIMIT`` attempts per source address in ``RATE_WINDOW``, whatever
  the usernames; more are refused unchecked (``RateLimitedError``).
- **Lock**: ``MAX_FAILURES`` wrong passwords for one account from one address, with no
  successful login from there in between, lock that account *at that address* for ``LOCKOUT``
  (even the right password is refused there); the owner logging in from anywhere else is not
  affected, and a successful login from an address resets its count.
- **Telling the owner**: a successful login returns the failed attempts on the account since
  its previous successful login, by address.

These functions work in the caller's transaction; ``identity.authenticate`` uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import RateLimitedError
from engine.storage.db import hold_lock
from engine.storage.models import LoginAttempt

RATE_LIMIT = 10
RATE_WINDOW = timedelta(minutes=1)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)

OK, FAILED, LOCKED = "ok", "failed", "locked"


@dataclass(frozen=True)
class FailedAttempts:
    """Failed logins on an account from one address since its owner last logged in."""

    address: str
    count: int
    last_at: datetime


def admit(session: Session, address: str, now: datetime) -> None:
    """Let one more attempt from ``address`` through, or refuse it.

    Holds the address's lock to the end of the transaction, so two workers never both read a
    count of 9 and let an 11th attempt in.
    :raise RateLimitedError: ``RATE_LIMIT`` attempts from there within ``RATE_WINDOW``.
    """
    hold_lock(session, f"login:{address}")
    recent = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.address == address, LoginAttempt.at > now - RATE_WINDOW)
    )
    if (recent or 0) >= RATE_LIMIT:
        raise RateLimitedError(
            "登录尝试过于频繁，请一分钟后再试 / too many login attempts; try again in a minute"
        )


def record(session: Session, username: str, address: str, outcome: str, now: datetime) -> None:
    session.add(LoginAttempt(at=now, address=address, username=username, outcome=outcome))
    session.flush()


def locked_until(session: Session, username: str, address: str, now: datetime) -> datetime | None:
    """When the account's lock at ``address`` ends, or None when it is not locked there."""
    last_ok = session.scalar(
        select(func.max(LoginAttempt.id)).where(
            LoginAttempt.username == username,
            LoginAttempt.address == address,
            LoginAttempt.outcome == OK,
        )
    )
    query = select(LoginAttempt.at).where(
        LoginAttempt.username == username,
        LoginAttempt.address == address,
        LoginAttempt.outcome == FAILED,
        LoginAttempt.at > now - LOCKOUT,
    )
    if last_ok is not None:
        query = query.where(LoginAttempt.id > last_ok)
    failures = session.scalars(query.order_by(LoginAttempt.id.desc()).limit(MAX_FAILURES)).all()
    return failures[-1] + LOCKOUT if len(failures) == MAX_FAILURES else None


def failures_since_last_login(session: Session, username: str) -> tuple[FailedAttempts, ...]:
    """The account's failed and locked-out attempts since its last successful login, by address
    (most first)."""
    last_ok = session.scalar(
        select(func.max(LoginAttempt.id)).where(
            LoginAttempt.username == username, LoginAttempt.outcome == OK
        )
    )
    count = func.count().label("count")
    query = (
        select(LoginAttempt.address, count, func.max(LoginAttempt.at))
        .where(LoginAttempt.username == username, LoginAttempt.outcome.in_((FAILED, LOCKED)))
        .group_by(LoginAttempt.address)
        .order_by(count.desc(), LoginAttempt.address)
    )
    if last_ok is not None:
        query = query.where(LoginAttempt.id > last_ok)
    return tuple(FailedAttempts(address, n, at) for address, n, at in session.execute(query))
