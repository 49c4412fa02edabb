"""Notifications: who is told what, in the notification centre and by e-mail; each user's choices.

Notices are written in the transaction of the step that caused them (``engine.storage.
notifications``); the worker sends the e-mail outbox (``send_next_email``) and gives the
deadline reminders (``remind_next_due_soon``). A failed send is tried again later and never
holds up a step. One's own actions never notify oneself.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, select, update

from engine.config import Settings
from engine.errors import InvalidInputError
from engine.storage import deadlines, store
from engine.storage import notifications as sql
from engine.storage.db import Database
from engine.storage.models import (
    HumanTask,
    Notification,
    NotificationPreference,
    TaskReminder,
    User,
)
from engine.storage.notifications import Notice
from engine.storage.txn import Txn, of_session
from engine.timekeeping import clock

__all__ = [
    "KINDS",
    "Item",
    "Mailer",
    "Notice",
    "Preference",
    "list_for",
    "mark_read",
    "notify",
    "preferences",
    "remind_next_due_soon",
    "send_next_email",
    "set_preferences",
    "unread_count",
]

QUEUE, ASSIGNED, DELEGATED, REWORK = "queue", "assigned", "delegated", "rework"
DUE_SOON, OVERDUE, ESCALATED = "due_soon", "overdue", "escalated"
REMINDER, TEAM_REMINDER = sql.REMINDER, sql.TEAM_REMINDER
KINDS = (QUEUE, ASSIGNED, DELEGATED, REWORK, DUE_SOON, OVERDUE, ESCALATED, REMINDER, TEAM_REMINDER)
RETRY_AFTER = timedelta(minutes=5)  # doubled at each failed send, up to MAX_RETRY_AFTER
MAX_RETRY_AFTER = timedelta(hours=1)
MAX_ATTEMPTS = 8
LANGUAGES = ("zh", "en")

# kind -> (中文, English): the notification's text; {task} {case} {due} {by} {holder} from params
TEXTS: dict[str, tuple[str, str]] = {
    QUEUE: (
        "新任务「{task}」进入您的角色队列：{case}",
        "New task “{task}” in your role's queue: {case}",
    ),
    ASSIGNED: ("任务「{task}」已分派给您：{case}", "Task “{task}” was assigned to you: {case}"),
    DELEGATED: (
        "{by} 将任务「{task}」转交给您：{case}",
        "{by} delegated task “{task}” to you: {case}",
    ),
    REWORK: (
        "任务「{task}」退回给您修改：{case}",
        "Task “{task}” was sent back to you for rework: {case}",
    ),
    DUE_SOON: ("任务「{task}」将于 {due} 到期：{case}", "Task “{task}” is due {due}: {case}"),
    OVERDUE: (
        "任务「{task}」已超期（期限 {due}）：{case}",
        "Task “{task}” is overdue (due {due}): {case}",
    ),
    ESCALATED: (
        "超期上报：{holder_zh}的任务「{task}」已超期（期限 {due}）：{case}",
        "Escalation: task “{task}” of {holder_en} is overdue (due {due}): {case}",
    ),
    REMINDER: (
        "催办：任务「{task}」尚未处理：{case}",
        "Reminder: task “{task}” is still waiting: {case}",
    ),
}
# kind -> (中文, English): what the preferences page calls it
KIND_NAMES: dict[str, tuple[str, str]] = {
    QUEUE: ("新任务进入我的角色队列", "A new task in my role's queue"),
    ASSIGNED: ("任务分派给我", "A task assigned to me"),
    DELEGATED: ("任务转交给我", "A task delegated to me"),
    REWORK: ("任务退回我修改", "A task sent back to me for rework"),
    DUE_SOON: ("任务即将到期（提前 24 小时）", "A deadline approaching (24 h before)"),
    OVERDUE: ("任务已超期", "A deadline passed"),
    ESCALATED: ("下属的任务超期上报", "Escalation of an overdue task"),
    REMINDER: ("催办提醒", "A reminder (催办)"),
    TEAM_REMINDER: ("下属任务的催办", "A reminder of my team's task"),
}


local_time = sql.local_time


def text(kind: str, params: Mapping[str, Any], language: str) -> str:
    """The notification's text in ``language`` (zh unless en)."""
    zh, en = TEXTS.get(kind, ("{task}", "{task}"))
    values = dict.fromkeys(("task", "case", "due", "by", "holder_zh", "holder_en"), "")
    values |= dict(params)
    return (en if language == "en" else zh).format(**values)


# --- writing notices (in the caller's transaction) ---


def notify(tx: Txn, notices: list[Notice]) -> None:
    """Write the notices' notifications in one statement, now."""
    sql.insert(tx, notices, clock.now())


def task_label(tx: Txn, task_id: int) -> tuple[str, datetime | None]:
    """A task's name and deadline."""
    return sql.task_label(tx, task_id)


def task_params(
    task: str, case: str, due_at: datetime | None = None, **more: str
) -> dict[str, Any]:
    return {"task": task, "case": case, "due": local_time(due_at), **more}


def for_new_task(
    tx: Txn,
    *,
    instance_id: int,
    task_id: int,
    params: dict[str, Any],
    role: str | None,
    assignee: int | None,
    excluded: tuple[int, ...],
    starter: int | None,
    actor_id: int,
) -> Notice | None:
    """Who a new task concerns: its assignee, or every holder of its role not recused.

    A task the diagram gives the case's starter after they worked on the case is rework
    (``revise_claim`` after a rejection).
    """
    if assignee is not None:
        if assignee == actor_id:
            return None
        rework = assignee == starter and sql.worked_on(tx, instance_id, assignee)
        return Notice(REWORK if rework else ASSIGNED, instance_id, task_id, params, (assignee,))
    if role is None:
        return None
    return Notice(QUEUE, instance_id, task_id, params, role=role, excluded=(*excluded, actor_id))


def for_overdue(tx: Txn, task: HumanTask, case: str) -> list[Notice]:
    """An overdue task: its holder (or its queue) is told, and their managers (escalation)."""
    params = task_params(task.name, case, task.due_at)
    excluded = store.decode_user_ids(task.excluded_user_ids)
    if task.assignee_id is not None:
        holders: tuple[int, ...] = (task.assignee_id,)
        told = Notice(OVERDUE, task.instance_id, task.id, params, holders)
    elif task.candidate_role is not None:
        holders = sql.role_holders(tx, task.candidate_role, excluded)
        told = Notice(
            OVERDUE, task.instance_id, task.id, params, role=task.candidate_role, excluded=excluded
        )
    else:
        return []
    holder_zh, holder_en = _holder_names(tx, task)
    managers = tuple(m for m in sql.managers_of(tx, holders) if m not in holders)
    escalated = Notice(
        ESCALATED,
        task.instance_id,
        task.id,
        params | {"holder_zh": holder_zh, "holder_en": holder_en},
        managers,
    )
    return [told, escalated]


def _holder_names(tx: Txn, task: HumanTask) -> tuple[str, str]:
    """Whose task it is, in Chinese and English: the assignee, or the role's queue."""
    if task.assignee_id is not None:
        name = sql.display_name(tx, task.assignee_id)
        return name, name
    zh, en = sql.role_names(tx, task.candidate_role or "")
    return f"{zh}队列", f"the {en} queue"


# --- the notification centre ---


@dataclass(frozen=True)
class Item:
    """One notification as the centre shows it."""

    id: int
    kind: str
    instance_id: int | None
    task_id: int | None
    created_at: datetime
    read: bool
    zh: str
    en: str

    def text(self, language: str) -> str:
        return self.en if language == "en" else self.zh


def list_for(db: Database, user_id: int, limit: int = 50) -> list[Item]:
    """The user's newest notifications (those they chose to see in the app)."""
    with db.read() as session:
        rows = session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id, Notification.shown.is_(True))
            .order_by(Notification.id.desc())
            .limit(limit)
        ).all()
        return [
            Item(
                row.id,
                row.kind,
                row.instance_id,
                row.task_id,
                row.created_at,
                row.read_at is not None,
                text(row.kind, row.params, "zh"),
                text(row.kind, row.params, "en"),
            )
            for row in rows
        ]


def unread_count(db: Database, user_id: int) -> int:
    with db.read() as session:
        return int(
            session.scalar(
                select(func.count(Notification.id)).where(
                    Notification.user_id == user_id,
                    Notification.shown.is_(True),
                    Notification.read_at.is_(None),
                )
            )
            or 0
        )


def mark_read(db: Database, user_id: int, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications read (all of them when no id); how many changed."""
    with db.unit_of_work() as session:
        statement = update(Notification).where(
            Notification.user_id == user_id, Notification.read_at.is_(None)
        )
        if notification_id is not None:
            statement = statement.where(Notification.id == notification_id)
        result = session.execute(statement.values(read_at=clock.now()))
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Preference:
    kind: str
    zh: str
    en: str
    in_app: bool
    email: bool

    def name(self, language: str) -> str:
        return self.en if language == "en" else self.zh


def preferences(db: Database, user_id: int) -> tuple[list[Preference], str]:
    """Every kind with the user's choice (both channels unless they said otherwise), and their language."""
    with db.read() as session:
        chosen = {
            row.kind: row
            for row in session.scalars(
                select(NotificationPreference).where(NotificationPreference.user_id == user_id)
            )
        }
        language = session.scalar(select(User.language).where(User.id == user_id)) or "zh"
    found = []
    for kind in KINDS:
        row = chosen.get(kind)
        zh, en = KIND_NAMES[kind]
        found.append(
            Preference(kind, zh, en, row.in_app if row else True, row.email if row else True)
        )
    return found, language


def set_preferences(
    db: Database, user_id: int, in_app: set[str], email: set[str], language: str
) -> None:
    """Keep the user's choice: the kinds they see in the app, those e-mailed, the mails' language."""
    if language not in LANGUAGES or not (in_app | email) <= set(KINDS):
        raise InvalidInputError("选项无效 / invalid choice", {})
    with db.unit_of_work() as session:
        chosen = {
            row.kind: row
            for row in session.scalars(
                select(NotificationPreference).where(NotificationPreference.user_id == user_id)
            )
        }
        for kind in KINDS:
            row = chosen.get(kind)
            if row is None:
                row = NotificationPreference(user_id=user_id, kind=kind)
                session.add(row)
            row.in_app, row.email = kind in in_app, kind in email
        user = session.get(User, user_id)
        if user is not None:
            user.language = language


# --- the worker: deadline reminders and the e-mail outbox ---


def remind_next_due_soon(db: Database) -> int | None:
    """Tell the holder(s) of one open task due within 24 hours, once; its id or None."""
    now = clock.now()
    with db.unit_of_work() as session:
        task = session.scalar(
            select(HumanTask)
            .where(
                deadlines.due_soon(now),
                ~select(TaskReminder.task_id)
                .where(TaskReminder.task_id == HumanTask.id, TaskReminder.kind == DUE_SOON)
                .exists(),
            )
            .order_by(HumanTask.sort_due_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if task is None:
            return None
        session.add(TaskReminder(task_id=task.id, kind=DUE_SOON, at=now))
        tx = of_session(session)
        params = task_params(task.name, _case_title(tx, task.instance_id), task.due_at)
        if task.assignee_id is not None:
            notice = Notice(DUE_SOON, task.instance_id, task.id, params, (task.assignee_id,))
        else:
            excluded = store.decode_user_ids(task.excluded_user_ids)
            notice = Notice(
                DUE_SOON,
                task.instance_id,
                task.id,
                params,
                role=task.candidate_role,
                excluded=excluded,
            )
        notify(tx, [notice])
        return task.id


def _case_title(tx: Txn, instance_id: int) -> str:
    return sql.case_title(tx, instance_id)


def case_title(tx: Txn, instance_id: int) -> str:
    """The case's title, as notifications name it."""
    return _case_title(tx, instance_id)


@dataclass(frozen=True)
class Mailer:
    """The SMTP server the outbox is sent through (``OPSFLOW_SMTP_*``)."""

    host: str
    port: int = 25
    user: str | None = None
    password: str | None = None
    sender: str = "opsflow@localhost"
    starttls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer | None:
        """The settings' mailer, or None when no SMTP host is set (the outbox then waits)."""
        if not settings.smtp_host:
            return None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_user,
            settings.smtp_password,
            settings.smtp_from,
            settings.smtp_starttls,
        )

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


def send_next_email(db: Database, mailer: Mailer) -> int | None:
    """Send one waiting e-mail of the outbox; its notification id, or None when none waits.

    A failed send is tried again later (``RETRY_AFTER``, doubling), at most ``MAX_ATTEMPTS`` times.
    """
    now = clock.now()
    with db.unit_of_work() as session:
        row = session.execute(
            select(Notification, User.email, User.language)
            .join(User, User.id == Notification.user_id)
            .where(Notification.email_status == sql.PENDING, Notification.email_next_at <= now)
            .order_by(Notification.email_next_at, Notification.id)
            .limit(1)
            .with_for_update(of=Notification, skip_locked=True)
        ).first()
        if row is None:
            return None
        notification, address, language = row
        subject = text(notification.kind, notification.params, language)
        body = subject + "\n\n" + text(notification.kind, notification.params, _other(language))
        if notification.task_id is not None:
            body += f"\n\n/tasks/{notification.task_id}"
        try:
            if not address:
                raise OSError("no e-mail address")
            mailer.send(address, "[opsflow] " + subject, body)
        except (smtplib.SMTPException, OSError) as exc:
            notification.email_attempts += 1
            notification.email_error = str(exc)[:1000]
            if notification.email_attempts >= MAX_ATTEMPTS:
                notification.email_status = sql.FAILED
            else:
                delay = min(RETRY_AFTER * 2 ** (notification.email_attempts - 1), MAX_RETRY_AFTER)
                notification.email_next_at = now + delay
        else:
            notification.email_status, notification.email_error = sql.SENT, None
        return notification.id


def _other(language: str) -> str:
    return "zh" if language == "en" else "en"
