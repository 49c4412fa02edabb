"""Logins: lockout after repeated wrong passwords, password changes; both audited."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text

from engine.errors import InvalidInputError, PermissionDeniedError, RateLimitedError
from engine.people import identity, login_attempts
from engine.storage.db import Database
from engine.storage.models import AuditEvent
from engine.timekeeping.clock import FrozenClock

pytestmark = pytest.mark.usefixtures("frozen_clock")


def types(db: Database, actor: str) -> list[str]:
    with db.read() as session:
        return list(
            session.scalars(
                select(AuditEvent.type).where(AuditEvent.actor == actor).order_by(AuditEvent.seq)
            )
        )


def wrong(db: Database, username: str, times: int) -> list[str]:
    messages = []
    for _ in range(times):
        with pytest.raises(PermissionDeniedError) as refused:
            identity.authenticate(db, username, "not-the-password")
        messages.append(str(refused.value))
    return messages


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    db: Database, frozen_clock: FrozenClock
) -> None:
    messages = wrong(db, "cs1", login_attempts.MAX_FAILURES)
    assert set(messages) == {identity.LOGIN_REFUSED}  # nothing tells a locked account apart
    with pytest.raises(PermissionDeniedError):
        identity.authenticate(db, "cs1", "cs1-demo-2026")  # even the right password
    frozen_clock.advance(login_attempts.LOCKOUT + timedelta(seconds=1))
    assert identity.authenticate(db, "cs1", "cs1-demo-2026").actor.username == "cs1"
    with db.read() as session:  # the audit says until when
        locked = session.scalar(select(AuditEvent).where(AuditEvent.type == "account_locked"))
        assert locked is not None
        assert '"until":"2026-03-02T01:15:00+00:00"' in locked.payload
    assert types(db, "cs1") == [
        *["login_failed"] * login_attempts.MAX_FAILURES,
        "account_locked",
        "login_locked",
        "login",
    ]


def test_a_successful_login_resets_the_count(db: Database) -> None:
    wrong(db, "cs2", login_attempts.MAX_FAILURES - 1)
    identity.authenticate(db, "cs2", "cs2-demo-2026")
    wrong(db, "cs2", login_attempts.MAX_FAILURES - 1)
    assert identity.authenticate(db, "cs2", "cs2-demo-2026").actor.username == "cs2"
    assert "account_locked" not in types(db, "cs2")


def test_an_unknown_username_never_locks_anything_and_looks_the_same(db: Database) -> None:
    assert set(wrong(db, "nobody", 7)) == {identity.LOGIN_REFUSED}
    assert "account_locked" not in types(db, "nobody")


def test_a_password_change_needs_the_current_password_and_a_long_new_one(db: Database) -> None:
    with db.read() as session:
        ops1 = identity.get_actor(session, "ops1")
    with pytest.raises(InvalidInputError) as short:
        identity.change_password(db, ops1, "ops1-demo-2026", "short")
    assert "at least 10 characters" in str(short.value.field_errors["new"])
    with pytest.raises(PermissionDeniedError, match="current password is wrong"):
        identity.change_password(db, ops1, "guess-guess-guess", "a-new-long-password")
    identity.change_password(db, ops1, "ops1-demo-2026", "a-new-long-password")
    with pytest.raises(PermissionDeniedError):
        identity.authenticate(db, "ops1", "ops1-demo-2026")
    assert identity.authenticate(db, "ops1", "a-new-long-password").actor.username == "ops1"
    assert types(db, "ops1")[:2] == ["password_change_refused", "password_changed"]


class CountingHasher(PasswordHasher):
    """argon2 as the tests use it, counting the password checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.checks = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.checks += 1
        return super().verify(hash, password)


def test_an_unknown_or_deactivated_user_costs_the_same_password_check_as_a_wrong_password(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE \"user\" SET active = :off WHERE username = 'ops2'"), {"off": False}
        )
    checks = {}
    for username, password in (
        ("cs1", "not-the-password"),
        ("nobody", "not-the-password"),
        ("ops2", "ops2-demo-2026"),  # deactivated, with the right password
    ):
        hasher = CountingHasher()
        monkeypatch.setattr(identity, "_hasher", hasher)
        with pytest.raises(PermissionDeniedError):
            identity.authenticate(db, username, password)
        checks[username] = hasher.checks
    assert checks == {"cs1": 1, "nobody": 1, "ops2": 1}


def test_concurrent_attempts_from_one_address_never_pass_the_limit(db: Database) -> None:
    def attempt(n: int) -> str:
        try:
            identity.authenticate(db, f"guess{n}", "x", address="198.51.100.1")
        except RateLimitedError:
            return "limited"
        except PermissionDeniedError:
            return "refused"
        return "admitted"

    extra = 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(login_attempts.RATE_LIMIT + extra)))
    assert outcomes.count("refused") == login_attempts.RATE_LIMIT
    assert outcomes.count("limited") == extra
