"""The tables: SQLAlchemy 2 ``Mapped[]`` classes; ``process_instance.version`` guards every change."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

BUSINESS_KEY_LENGTH = 128  # process_instance.business_key: the start service refuses longer keys
MAX_ROW_ID = 2**63 - 1  # row ids are 64-bit signed integers on both databases; none is larger


class InstanceStatus(StrEnum):
    """``process_instance.status``."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"


class TaskStatus(StrEnum):
    """``human_task.status``."""

    OPEN = "open"
    DONE = "completed"
    WITHDRAWN = "cancelled"


class TimerStatus(StrEnum):
    """``timer.status``."""

    WAITING = "waiting"
    DONE = "done"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC; SQLite would otherwise drop the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NEVER = datetime(9999, 12, 31, tzinfo=UTC)
"""The sort key of a task that has no due time."""


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime()}


class Role(Base):
    __tablename__ = "role"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(255))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    active: Mapped[bool] = mapped_column(default=True)
    email: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(8), default="zh")  # notifications' language


class UserRole(Base):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    role_code: Mapped[str] = mapped_column(ForeignKey("role.code"), primary_key=True)


class ProcessDefinition(Base):
    """One immutable, numbered version of a process key with everything it needs to run."""

    __tablename__ = "process_definition"
    __table_args__ = (
        UniqueConstraint("key", "version"),
        UniqueConstraint("key", "sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(255))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    # {file name: DMN XML} deployed with this version
    dmn_files: Mapped[dict[str, Any]]
    # {form key: form definition JSON} as deployed with this version
    forms: Mapped[dict[str, Any]]
    # {called process key: process_definition.id} pinned at deploy time
    called: Mapped[dict[str, Any]]
    # per user task: lane, role, form key, properties (derived at deploy time)
    user_tasks: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    deployed_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    deployed_at: Mapped[datetime]


class ProcessInstance(Base):
    __tablename__ = "process_instance"

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    business_key: Mapped[str | None] = mapped_column(String(BUSINESS_KEY_LENGTH), index=True)
    title: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    state: Mapped[str] = mapped_column(Text)
    error_element: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class HumanTask(Base):
    """An open (or finished) user task, mirrored from the workflow so the inbox never loads one."""

    __tablename__ = "human_task"
    __table_args__ = (
        # the inbox tabs, soonest due first, read in index order (see sort_due_at)
        Index(
            "ix_human_task_open_role",
            "status",
            "candidate_role",
            "sort_due_at",
            "assignee_id",
            "excluded_user_ids",
        ),
        Index("ix_human_task_open_assignee", "status", "assignee_id", "sort_due_at"),
        Index("ix_human_task_done", "completed_by", "status", "completed_at"),
        # the worker's overdue scan
        Index("ix_human_task_due", "status", "sort_due_at"),
        Index("ix_human_task_instance", "instance_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    spiff_task_id: Mapped[str] = mapped_column(String(36), unique=True)
    bpmn_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    lane: Mapped[str | None] = mapped_column(String(255))
    candidate_role: Mapped[str | None] = mapped_column(ForeignKey("role.code"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    form_key: Mapped[str | None] = mapped_column(String(128))
    is_approval: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime | None]
    # due_at, or NEVER for a task without one: NOT NULL, so "soonest due first, undated last"
    # is plain index order on SQLite and PostgreSQL alike
    sort_due_at: Mapped[datetime]
    paused_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    data: Mapped[dict[str, Any] | None]
    # comma-separated ids of users the task's excludeUsers rule keeps away from it (回避)
    excluded_user_ids: Mapped[str | None] = mapped_column(String(255))


class Timer(Base):
    """A waiting timer event of an instance, due at ``fire_at``; the worker fires it."""

    __tablename__ = "timer"
    __table_args__ = (Index("ix_timer_due", "status", "fire_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    bpmn_id: Mapped[str] = mapped_column(String(255))
    fire_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))


class PeriodicStart(Base):
    """A timer start event: the worker starts a new instance of ``process_key`` at ``next_at``."""

    __tablename__ = "periodic_start"

    process_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    cycle: Mapped[str] = mapped_column(String(255))
    anchor: Mapped[datetime]
    fired: Mapped[int] = mapped_column(default=0)
    runs_left: Mapped[int | None]
    next_at: Mapped[datetime]


class AuditEvent(Base):
    """Append-only and hash-chained; database triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(64))
    instance_id: Mapped[int | None] = mapped_column(index=True)
    task_id: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last link: one row, locked by every writer so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))


# --- case files shared across instances (written by service-task operators, engine.case_files) ---
# Dates are ISO strings (YYYY-MM-DD) and amounts decimal text: the operators write them with plain
# DBAPI statements on both databases, and ISO dates compare correctly as text.


class Customer(Base):
    """A customer file (三(一)3), one per identity document."""

    __tablename__ = "customer"
    __table_args__ = (UniqueConstraint("id_type", "id_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_no: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    id_type: Mapped[str] = mapped_column(String(32))
    id_no: Mapped[str] = mapped_column(String(64))
    mobile: Mapped[str | None] = mapped_column(String(20))
    occupation: Mapped[str | None] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class Policy(Base):
    """An issued policy the agency placed, as the sales case recorded it."""

    __tablename__ = "policy"

    policy_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    insured_name: Mapped[str | None] = mapped_column(String(64))
    insurer: Mapped[str] = mapped_column(String(128))
    product_code: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    life: Mapped[bool]
    term_years: Mapped[int | None]
    sum_insured: Mapped[str | None] = mapped_column(String(24))
    premium: Mapped[str | None] = mapped_column(String(24))
    effective_date: Mapped[str | None] = mapped_column(String(10))
    receipt_signed_date: Mapped[str | None] = mapped_column(String(10))
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    instance_id: Mapped[int | None]
    recorded_at: Mapped[datetime]


class ArchiveItem(Base):
    """A filed archive item in the catalogue (七(二)); destroyed items stay, marked."""

    __tablename__ = "archive_item"

    archive_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(255))
    related_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    retention_until: Mapped[str | None] = mapped_column(String(10), index=True)
    permanent: Mapped[bool]
    media: Mapped[str | None] = mapped_column(String(16))
    location: Mapped[str | None] = mapped_column(String(255))
    filed_by_instance: Mapped[int | None]
    registered_at: Mapped[datetime]
    destroyed_at: Mapped[datetime | None]
    destroyed_by_instance: Mapped[int | None]


class ArchiveHold(Base):
    """A complaint or legal hold on every archive item of one reference (R3 第13条)."""

    __tablename__ = "archive_hold"

    id: Mapped[int] = mapped_column(primary_key=True)
    related_ref: Mapped[str] = mapped_column(String(64), index=True)
    case_ref: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(255))
    placed_at: Mapped[datetime]
    placed_by_instance: Mapped[int | None]
    released_at: Mapped[datetime | None]


class BudgetLine(Base):
    """One budget line: year × cost centre × category; amounts are decimal text."""

    __tablename__ = "budget_line"
    __table_args__ = (UniqueConstraint("year", "cost_center", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int]
    cost_center: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    amount: Mapped[str] = mapped_column(String(24))
    committed: Mapped[str] = mapped_column(String(24))
    spent: Mapped[str] = mapped_column(String(24))
    updated_at: Mapped[datetime]


class BudgetEntry(Base):
    """A movement on a budget line: commit, release or spend, by an expense claim."""

    __tablename__ = "budget_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("budget_line.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[str] = mapped_column(String(24))
    claim_ref: Mapped[str] = mapped_column(String(128))
    instance_id: Mapped[int | None]
    at: Mapped[datetime]


class ApiToken(Base):
    """A REST API token: shown once when created, stored as its SHA-256, revocable."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginSession(Base):
    """A login in a browser: its cookie carries the secret, the table keeps only its SHA-256;
    logout and a password change end it (``ended_at``), and an ended session opens nothing."""

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoginAttempt(Base):
    """One login attempt: from where, for which username (existing or not), and how it ended
    (``ok``, ``failed``, or ``locked``: refused unchecked). The login limits count these rows."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_address_at", "address", "at"),
        Index("ix_login_attempt_username_at", "username", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    address: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(8))


class Attachment(Base):
    """An uploaded file, stored once by its SHA-256 (forms hold the hash)."""

    __tablename__ = "attachment"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("user.id"))
    uploaded_at: Mapped[datetime]
    task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id"), index=True)


class AttachmentUse(Base):
    """A task an attachment was uploaded with: the same bytes may serve several cases."""

    __tablename__ = "attachment_use"

    sha256: Mapped[str] = mapped_column(ForeignKey("attachment.sha256"), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id"), primary_key=True)


class TaskDraft(Base):
    """A task form saved unfinished by the person working it (not validated, not in the case)."""

    __tablename__ = "task_draft"

    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    data: Mapped[dict[str, Any]]
    saved_at: Mapped[datetime]


class SavedFilter(Base):
    """An inbox filter a user saved under a name; it follows them to any device."""

    __tablename__ = "saved_filter"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    name: Mapped[str] = mapped_column(String(64))
    query: Mapped[dict[str, Any]]  # tab, process, q, due
    created_at: Mapped[datetime]


class InvoiceRegister(Base):
    """Every invoice number an expense claim has used, system-wide (P6: no invoice twice)."""

    __tablename__ = "invoice_register"

    invoice_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[int] = mapped_column(index=True)
    registered_at: Mapped[datetime]


class Notification(Base):
    """Something a user is told: in the notification centre (``shown``) and/or by e-mail.

    ``email_status`` is the outbox: ``pending`` until the worker sent it (``sent``), None when
    the user does not want this kind by e-mail or has no address.
    """

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user", "user_id", "shown", "read_at", "id"),
        Index("ix_notification_outbox", "email_status", "email_next_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(String(32))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id"))
    params: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    shown: Mapped[bool] = mapped_column(default=True)
    email_status: Mapped[str | None] = mapped_column(String(16))
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_next_at: Mapped[datetime | None]
    email_error: Mapped[str | None] = mapped_column(Text)


class NotificationPreference(Base):
    """A user's choice for one kind of notification; no row means both in-app and e-mail."""

    __tablename__ = "notification_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    in_app: Mapped[bool] = mapped_column(default=True)
    email: Mapped[bool] = mapped_column(default=True)


class TaskReminder(Base):
    """A reminder already given for a task (``due_soon``), so the worker gives it once."""

    __tablename__ = "task_reminder"

    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime]
