"""Users, roles, the org chart (who manages whom), password hashing, login."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from engine.people import login_attempts, login_sessions
from engine.storage.db import Database
from engine.storage.models import ApiToken, Role, User, UserRole
from engine.timekeeping import clock

# (code, 中文, English): the regulation's org chart (二(一)) and the functions around it.
ROLES: tuple[tuple[str, str, str], ...] = (
    ("DM", "部门经理", "Department manager"),
    ("DDM", "副经理", "Deputy manager"),
    ("OPS", "运营管理组", "Operations group"),
    ("SALES", "销售组", "Sales group"),
    ("CS", "客服组", "Customer service group"),
    ("FIN_ACC", "财务-会计", "Finance - accountant"),
    ("FIN_CASH", "财务-出纳", "Finance - cashier"),
    ("ARC", "档案管理员", "Archivist"),
    ("CMP", "合规", "Compliance"),
    ("HR", "人事", "Human resources"),
    ("GM", "总经理", "General manager"),
    ("PO", "流程负责人", "Process owner"),
    ("ADMIN", "系统管理员", "System administrator"),
)

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Actor:
    """Who is acting: the user and the roles they hold."""

    id: int
    username: str
    display_name: str
    roles: frozenset[str]

    def has_role(self, *codes: str) -> bool:
        return not self.roles.isdisjoint(codes)


SYSTEM = Actor(id=0, username="system", display_name="系统 / system", roles=frozenset({"ADMIN"}))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def ensure_roles(session: Session) -> None:
    """Create the regulation's roles that do not exist yet."""
    existing = set(session.scalars(select(Role.code)))
    for code, name_zh, name_en in ROLES:
        if code not in existing:
            session.add(Role(code=code, name_zh=name_zh, name_en=name_en))
    session.flush()


def create_user(
    session: Session,
    username: str,
    display_name: str,
    *,
    password: str | None = None,
    password_hash: str | None = None,
    roles: Iterable[str] = (),
    manager: str | None = None,
) -> Actor:
    """Add a user with roles and (optionally) a manager.

    :raise InvalidInputError: the username is taken, a role or the manager does not exist.
    """
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInputError(
            "用户名已存在", {"username": [f"用户名 {username} 已存在 / username taken"]}
        )
    manager_id = _user(session, manager).id if manager else None
    user = User(
        username=username,
        display_name=display_name,
        password_hash=password_hash or hash_password(password or ""),
        manager_id=manager_id,
    )
    session.add(user)
    session.flush()
    _grant(session, user.id, roles)
    return get_actor(session, username)


def _grant(session: Session, user_id: int, roles: Iterable[str]) -> None:
    known = set(session.scalars(select(Role.code)))
    for code in roles:
        if code not in known:
            raise InvalidInputError("未知角色", {"roles": [f"未知角色 / unknown role: {code}"]})
        session.add(UserRole(user_id=user_id, role_code=code))
    session.flush()


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"用户不存在 / no such user: {username}")
    return user


def _actor(session: Session, user: User) -> Actor:
    roles = frozenset(
        session.scalars(select(UserRole.role_code).where(UserRole.user_id == user.id))
    )
    return Actor(user.id, user.username, user.display_name, roles)


def get_actor(session: Session, username: str) -> Actor:
    """:raise NotFoundError: no active user of that name."""
    user = _user(session, username)
    if not user.active:
        raise NotFoundError(f"用户已停用 / user is deactivated: {username}")
    return _actor(session, user)


def get_actor_by_id(session: Session, user_id: int) -> Actor:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"用户不存在 / no such user: #{user_id}")
    return _actor(session, user)


def active_actor(session: Session, user_id: int) -> Actor | None:
    """The user as an Actor while their account is active, else None."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return _actor(session, user)


def session_actor(db: Database, secret: str) -> Actor | None:
    """Whose live login session ``secret`` is, while their account is active; else None."""
    with db.read() as session:
        user_id = login_sessions.user_of(session, secret)
        return active_actor(session, user_id) if user_id is not None else None


def log_out(db: Database, secret: str) -> None:
    """End a login session (audited); its cookie, wherever it was copied to, opens nothing again."""
    with db.unit_of_work() as session:
        user_id = login_sessions.end_session(session, secret)
        user = session.get(User, user_id) if user_id is not None else None
        if user is not None:
            audit.record(session, "logout", actor=user.username)


def colleagues(session: Session, role: str, *, besides: int) -> list[Actor]:
    """Active holders of ``role`` other than ``besides``, by name (whom a task may be delegated to)."""
    users = session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_code == role, User.active.is_(True), User.id != besides)
        .order_by(User.username)
    )
    return [_actor(session, user) for user in users]


def manager_of(session: Session, user_id: int) -> Actor | None:
    """The user's manager in the org chart, if any."""
    user = session.get(User, user_id)
    if user is None or user.manager_id is None:
        return None
    return get_actor_by_id(session, user.manager_id)


def usernames(session: Session, user_ids: Iterable[int]) -> dict[int, str]:
    ids = set(user_ids)
    if not ids:
        return {}
    return {
        row.id: row.username
        for row in session.execute(select(User.id, User.username).where(User.id.in_(ids)))
    }


MIN_PASSWORD_LENGTH = 10
LOGIN_REFUSED = (
    f"用户名或密码错误；同一地址连续失败 {login_attempts.MAX_FAILURES} 次后，该账户在此地址锁定 "
    f"{login_attempts.LOCKOUT.seconds // 60} 分钟 / wrong username or password; after "
    f"{login_attempts.MAX_FAILURES} failures in a row from one address the account is locked "
    f"there for {login_attempts.LOCKOUT.seconds // 60} minutes"
)


@dataclass(frozen=True)
class Login:
    """A successful login: who, their new login session's secret, and the failed attempts on
    their account since their previous login (to tell them)."""

    actor: Actor
    session: str
    failures: tuple[login_attempts.FailedAttempts, ...] = ()


def authenticate(db: Database, username: str, password: str, *, address: str = "") -> Login:
    """Check a password from ``address`` (the client's; "" when unknown) and open a login
    session; every outcome is audited. The limits are ``login_attempts``'s: attempts per
    address, and a lock per account and address.

    :raise RateLimitedError: too many attempts from ``address`` just now (nothing checked).
    :raise PermissionDeniedError: unknown user, deactivated user, wrong password or an account
    locked at this address, all with one message and one argon2 check's time (the audit trail
    records which, and until when).
    """
    name, where = username[:64], address[:64]  # the columns; longer names exist nowhere
    now = clock.now()
    with db.unit_of_work() as session:
        login_attempts.admit(session, where, now)
        user = session.scalar(select(User).where(User.username == name))
        until = login_attempts.locked_until(session, name, where, now)
        if until is not None:
            login_attempts.record(session, name, where, login_attempts.LOCKED, now)
            audit.record(session, "login_locked", actor=name, payload=_lock(until, where))
        elif _verify(user.password_hash if user else None, password) and user and user.active:
            return _log_in(session, user, where, now)
        else:
            _count_failure(session, user, name, where, now)
    # one answer for every refusal: it must not tell which accounts exist or are locked
    raise PermissionDeniedError(LOGIN_REFUSED)


def _log_in(session: Session, user: User, address: str, now: datetime) -> Login:
    failures = login_attempts.failures_since_last_login(session, user.username)
    login_attempts.record(session, user.username, address, login_attempts.OK, now)
    failed = {f.address: f.count for f in failures}
    payload = {"address": address, **({"failed_since_last_login": failed} if failed else {})}
    audit.record(session, "login", actor=user.username, payload=payload)
    secret = login_sessions.open_session(session, user.id)
    return Login(_actor(session, user), secret, failures)


def _count_failure(
    session: Session, user: User | None, name: str, address: str, now: datetime
) -> None:
    """One more wrong password; audited, and the lock it starts when it is the last one allowed
    (only for accounts that exist: unknown names are locked alike, but there is no account)."""
    login_attempts.record(session, name, address, login_attempts.FAILED, now)
    audit.record(session, "login_failed", actor=name, payload={"address": address})
    until = login_attempts.locked_until(session, name, address, now)
    if until is not None and user is not None:
        audit.record(session, "account_locked", actor=name, payload=_lock(until, address))


def _lock(until: datetime, address: str) -> dict[str, str]:
    return {"until": until.isoformat(), "address": address}


def change_password(db: Database, actor: Actor, current: str, new: str) -> str:
    """Change the actor's password: every login session and API token made under the old one
    ends; returns the secret of a new login session for the one who changed it.

    :raise PermissionDeniedError: the current password is wrong. :raise InvalidInputError:"""
    problems = []
    if len(new) < MIN_PASSWORD_LENGTH:
        problems.append(
            f"新密码至少 {MIN_PASSWORD_LENGTH} 个字符 / at least {MIN_PASSWORD_LENGTH} characters"
        )
    if new == current:
        problems.append("新密码不能与当前密码相同 / must differ from the current password")
    if problems:
        raise InvalidInputError("新密码不符合要求 / the new password is refused", {"new": problems})
    with db.unit_of_work() as session:
        user = session.get(User, actor.id)
        if user is None or not _verify(user.password_hash, current):
            audit.record(session, "password_change_refused", actor=actor.username)
        else:
            user.password_hash = hash_password(new)
            live = session.scalars(
                select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            ).all()
            for token in live:  # a changed password also ends the API tokens made under it
                token.revoked_at = clock.now()
            ended = login_sessions.end_sessions(session, user.id)
            audit.record(
                session,
                "password_changed",
                actor=actor.username,
                payload={"tokens_revoked": len(live), "sessions_ended": ended},
            )
            return login_sessions.open_session(session, user.id)
    raise PermissionDeniedError("当前密码错误 / the current password is wrong")


def _verify(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches the hash. With no hash (no such user) the same work is done
    against a dummy hash, so an unknown username takes as long as a wrong password."""
    try:
        matches = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None


_DUMMY_HASHES: dict[tuple[object, ...], str] = {}


def _dummy_hash() -> str:
    """A hash of a random password, made with the hasher's parameters (once per parameters)."""
    h = _hasher
    key = (h.time_cost, h.memory_cost, h.parallelism, h.hash_len, h.salt_len, h.type)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = h.hash(secrets.token_hex(16))
    return _DUMMY_HASHES[key]


def load_department(session: Session, path: Path) -> list[Mapping[str, Any]]:
    """Load the demo department (users, roles, reporting lines) from a JSON file; idempotent.

    Returns the users that were created (with their demo passwords) so the caller can print them.
    """
    ensure_roles(session)
    people: list[Mapping[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["users"]
    created = []
    for person in people:  # managers come first in the file
        if session.scalar(select(User.id).where(User.username == person["username"])) is None:
            create_user(
                session,
                person["username"],
                person["display_name"],
                password=person["password"],
                roles=person["roles"],
                manager=person.get("manager"),
            )
            user = session.scalars(select(User).where(User.username == person["username"])).one()
            user.email = person.get("email", f"{person['username']}@opsflow.example")
            created.append(person)
    return created
