"""A case as a document: what each finished task entered, in the forms' own words, and its history.

The document is built from the completed tasks (``human_task.data`` holds what each submitted,
``completed_by`` who), read with the labels, choices and types of the form the task used: one
section per task, in the order they were completed, with who entered it (name and role) and
when. Amounts (``decimal`` fields, whose labels name the currency: CNY) keep their places,
choices show their labels, tables stay tables, attachments are file entries read from the
attachment table. Case variables that no form entered (operator results, flags, counters) are
not shown unless the diagram lists them in a task's ``displayFields`` property
(docs/diagrams.md). The history is the audit trail in words, in both languages, from the one
table of texts below (``EVENT_TEXTS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import forms
from engine.forms import FieldDefinition, FormDefinition
from engine.runtime.base import caches
from engine.runtime.base.caches import Definition
from engine.storage.db import Database
from engine.storage.models import Attachment, HumanTask, Role, User, UserRole
from engine.storage.store import OPEN


@dataclass(frozen=True)
class Words:
    """One text in both languages."""

    zh: str
    en: str

    def text(self, language: str) -> str:
        return self.en if language == "en" and self.en else self.zh


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    filename: str
    content_type: str
    size: int

    @property
    def previewable(self) -> bool:
        """PDF and images are shown in the page; other kinds are downloaded."""
        return self.content_type == "application/pdf" or self.content_type.startswith("image/")


@dataclass(frozen=True)
class Value:
    """A value as the form defines it.

    ``kind`` is one of text, amount (``text`` holds the decimal, ``currency`` its currency),
    number, date, datetime, yes / no (``text`` "true" / "false"), choice (``labels``), table
    (``columns`` and ``rows``) and files (``files``).
    """

    kind: str
    text: str = ""
    currency: str = ""
    labels: tuple[Words, ...] = ()
    columns: tuple[Words, ...] = ()
    rows: tuple[tuple[Value, ...], ...] = ()
    files: tuple[FileEntry, ...] = ()


@dataclass(frozen=True)
class Entry:
    label: Words
    value: Value


@dataclass(frozen=True)
class Person:
    """Who did something: their name and the role they did it in (None for the system)."""

    username: str
    name: str
    role: Words | None

    def text(self, language: str) -> str:
        if self.role is None:
            return self.name
        role = self.role.text(language)
        return f"{self.name} ({role})" if language == "en" else f"{self.name}（{role}）"


@dataclass(frozen=True)
class Section:
    """What one finished task entered."""

    task_id: int
    task: Words
    by: Person | None
    at: datetime | None
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    type: str
    by: Person
    words: Words  # the whole sentence, who included


@dataclass(frozen=True)
class CaseDocument:
    process: Words  # the process's name, English from the diagram's ``nameEn``
    sections: tuple[Section, ...]
    history: tuple[HistoryLine, ...]
    names: Mapping[str, Words]  # every element's name by BPMN id

    def name_of(self, bpmn_id: str, fallback: str) -> Words:
        """A task's name in both languages (``fallback``, as stored, when the diagram has none)."""
        return self.names.get(bpmn_id, Words(fallback, fallback))


CURRENCY = "CNY"  # the department's forms are in yuan; their decimal fields' labels say so
SYSTEM_WORDS = Words("系统", "System")

# The history in words, one text per audit event type: {who} did it, {task} is the element.
EVENT_TEXTS: Mapping[str, Words] = {
    "instance_started": Words("{who}发起了案件", "{who} started the case"),
    "task_created": Words("任务「{task}」已生成，待办理", "Task “{task}” is waiting to be done"),
    "task_completed": Words("{who}完成了「{task}」", "{who} completed “{task}”"),
    "task_claimed": Words("{who}认领了「{task}」", "{who} claimed “{task}”"),
    "task_unclaimed": Words("{who}将「{task}」退回待认领", "{who} returned “{task}” to the queue"),
    "task_delegated": Words("{who}将「{task}」转交给{to}", "{who} delegated “{task}” to {to}"),
    "task_withdrawn": Words("「{task}」已撤销", "“{task}” was withdrawn"),
    "task_overdue": Words("「{task}」已超期", "“{task}” is overdue"),
    "message_received": Words("收到消息「{message}」", "Message “{message}” received"),
    "decision_made": Words("按决策表作出判定「{task}」", "Decision “{task}” made by its table"),
    "gateway_taken": Words("在「{task}」处确定了下一步", "The way on was chosen at “{task}”"),
    "operator_called": Words("「{task}」已自动完成", "“{task}” was done automatically"),
    "timer_fired": Words("定时「{task}」已到期", "Timer “{task}” fired"),
    "timer_failed": Words("定时「{task}」执行失败", "Timer “{task}” failed"),
    "comment_added": Words("{who}添加了评论", "{who} added a comment"),
    "clock_paused": Words("{who}暂停了计时", "{who} paused the clock"),
    "clock_resumed": Words("{who}恢复了计时", "{who} resumed the clock"),
    "instance_completed": Words("案件办结", "The case was completed"),
    "instance_cancelled": Words("{who}取消了案件", "{who} cancelled the case"),
    "instance_failed": Words("案件出错，等待处理", "The case failed and waits for a fix"),
    "instance_retried": Words("{who}重试了案件", "{who} retried the case"),
    "permission_denied": Words("{who}的操作被拒绝", "An action by {who} was refused"),
}
OTHER_EVENT = Words("{who}：{type}", "{who}: {type}")


def document_of(
    db: Database, session: Session, definition: Definition, instance_id: int, data: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
) -> CaseDocument:  # fmt: skip
    """The case's document inside the caller's read transaction."""
    tasks = session.scalars(
        select(HumanTask)
        .where(HumanTask.instance_id == instance_id, HumanTask.status != OPEN)
        .order_by(HumanTask.completed_at, HumanTask.id)
    ).all()
    done = [t for t in tasks if t.completed_by is not None and t.data is not None]
    actors: list[str | int | None] = [e["actor"] for e in history] + [t.completed_by for t in done]
    actors += [
        str((e.get("payload") or {}).get("to")) for e in history if e["type"] == "task_delegated"
    ]
    people = _People(session, actors)
    names = task_names(definition)
    files = _files(session, done, definition, db)
    sections = tuple(_section(db, definition, task, people, names, files, data) for task in done)
    role_of_task = {t.bpmn_id: t.candidate_role for t in tasks}
    lines = tuple(_line(event, people, names, role_of_task) for event in history)
    process = Words(definition.name, definition.compiled.name_en or definition.name)
    return CaseDocument(process, sections, lines, names)


def task_names(definition: Definition) -> dict[str, Words]:
    """Every element's name by BPMN id, with the English ``nameEn`` where the diagram gives one."""
    names = {
        bpmn_id: Words(name, english or name) for bpmn_id, (name, english) in
        definition.compiled.element_names.items()
    }  # fmt: skip
    for bpmn_id, rules in definition.tasks.items():
        english = rules.properties.get("nameEn")
        if english and bpmn_id in names:
            names[bpmn_id] = Words(names[bpmn_id].zh, english)
    return names


def shown_extras(properties: Mapping[str, str]) -> list[tuple[str, Words]]:
    """A task's ``displayFields``: ``name`` or ``name=中文标签/English label``, comma-separated."""
    shown: list[tuple[str, Words]] = []
    for item in properties.get("displayFields", "").split(","):
        name, _eq, label = item.strip().partition("=")
        if not name:
            continue
        zh, _slash, en = label.partition("/")
        shown.append(
            (
                name.strip(),
                Words(zh.strip() or name.strip(), en.strip() or zh.strip() or name.strip()),
            )
        )
    return shown


def _section(
    db: Database, definition: Definition, task: HumanTask, people: _People,
    names: Mapping[str, Words], files: Mapping[str, FileEntry], data: Mapping[str, Any],
) -> Section:  # fmt: skip
    submitted = task.data or {}
    entries: list[Entry] = []
    if task.form_key is not None and task.form_key in definition.forms:
        form = caches.of(db).form(definition, task.form_key)
        entries = [
            Entry(_words(field.label), _value(field, submitted[field.name], files))
            for field in form.fields
            if not _empty(submitted.get(field.name))
        ]
    for name, label in shown_extras(
        definition.tasks[task.bpmn_id].properties if task.bpmn_id in definition.tasks else {}
    ):
        if not _empty(data.get(name)):
            entries.append(Entry(label, _plain(data[name])))
    return Section(
        task.id,
        names.get(task.bpmn_id, Words(task.name, task.name)),
        people.person(task.completed_by, task.candidate_role),
        task.completed_at,
        tuple(entries),
    )


def submitted_entries(
    db: Database, session: Session, definition: Definition, form: FormDefinition,
    submitted: Mapping[str, Any],
) -> tuple[Entry, ...]:  # fmt: skip
    """A finished task's form as it was submitted: its labels and values."""
    files = _file_rows(session, _hashes_in(form, submitted))
    return tuple(
        Entry(_words(field.label), _value(field, submitted[field.name], files))
        for field in form.fields
        if not _empty(submitted.get(field.name))
    )


def _value(field: FieldDefinition, raw: Any, files: Mapping[str, FileEntry]) -> Value:
    kind = field.type
    if kind == "decimal":
        return Value("amount", str(raw), currency=CURRENCY)
    if kind == "integer":
        return Value("number", str(raw))
    if kind in ("date", "datetime"):
        return Value(kind, str(raw))
    if kind == "boolean":
        return Value("yesno", "true" if raw else "false")
    if kind in ("choice", "multi_choice"):
        chosen = raw if isinstance(raw, list) else [raw]
        labels = {c.value: _words(c.label) for c in field.choices}
        return Value(
            "choice", labels=tuple(labels.get(str(v), Words(str(v), str(v))) for v in chosen)
        )
    if kind in ("attachment", "attachments"):
        hashes = raw if isinstance(raw, list) else [raw]
        return Value(
            "files",
            files=tuple(
                files.get(str(h), FileEntry(str(h), str(h)[:12], "application/octet-stream", 0))
                for h in hashes
            ),
        )
    if kind == "table":
        rows = raw if isinstance(raw, list) else []
        return Value(
            "table",
            columns=tuple(_words(c.label) for c in field.columns),
            rows=tuple(
                tuple(
                    _value(c, row.get(c.name), files)
                    if not _empty(row.get(c.name))
                    else Value("text")
                    for c in field.columns
                )
                for row in rows
                if isinstance(row, Mapping)
            ),
        )
    return Value("text", str(raw))


def _plain(raw: Any) -> Value:
    """A case variable a diagram shows, without a form to describe it."""
    if isinstance(raw, bool):
        return Value("yesno", "true" if raw else "false")
    if isinstance(raw, list | tuple):
        return Value("text", "、".join(str(v) for v in raw))
    return Value("text", str(forms.to_json_data({"v": raw})["v"]))


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _words(label: Mapping[str, str] | None) -> Words:
    label = label or {}
    zh = label.get("zh") or label.get("en") or ""
    return Words(zh, label.get("en") or zh)


def _hashes_in(form: FormDefinition, submitted: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for field in form.fields:
        raw = submitted.get(field.name)
        if field.type in ("attachment", "attachments") and raw:
            found.update(str(h) for h in (raw if isinstance(raw, list) else [raw]))
        if field.type == "table" and isinstance(raw, list):
            for column in field.columns:
                if column.type in ("attachment", "attachments"):
                    for row in raw:
                        cell = row.get(column.name) if isinstance(row, Mapping) else None
                        if cell:
                            found.update(
                                str(h) for h in (cell if isinstance(cell, list) else [cell])
                            )
    return found


def _files(
    session: Session, tasks: Iterable[HumanTask], definition: Definition, db: Database
) -> dict[str, FileEntry]:
    hashes: set[str] = set()
    for task in tasks:
        if task.form_key is not None and task.form_key in definition.forms:
            hashes |= _hashes_in(caches.of(db).form(definition, task.form_key), task.data or {})
    return _file_rows(session, hashes)


def _file_rows(session: Session, hashes: set[str]) -> dict[str, FileEntry]:
    if not hashes:
        return {}
    rows = session.execute(
        select(
            Attachment.sha256, Attachment.filename, Attachment.content_type, Attachment.size
        ).where(Attachment.sha256.in_(sorted(hashes)))
    ).all()
    return {r.sha256: FileEntry(r.sha256, r.filename, r.content_type, r.size) for r in rows}


class _People:
    """Names and roles of everyone the document mentions, read at once."""

    def __init__(self, session: Session, who: Iterable[str | int | None]):
        keys = [w for w in who if w is not None]
        usernames = {w for w in keys if isinstance(w, str)}
        ids = {w for w in keys if isinstance(w, int)}
        users = session.execute(
            select(User.id, User.username, User.display_name).where(
                User.username.in_(sorted(usernames)) | User.id.in_(sorted(ids))
            )
        ).all()
        self.by_name = {u.username: (u.id, u.display_name) for u in users}
        self.by_id = {u.id: (u.username, u.display_name) for u in users}
        self.roles: dict[str, Words] = {
            r.code: Words(r.name_zh, r.name_en) for r in session.scalars(select(Role))
        }
        self.held: dict[int, list[str]] = {}
        for user_id, code in session.execute(
            select(UserRole.user_id, UserRole.role_code)
            .where(UserRole.user_id.in_(sorted(self.by_id)))
            .order_by(UserRole.role_code)
        ):
            self.held.setdefault(user_id, []).append(code)

    def person(self, user: str | int | None, role: str | None = None) -> Person:
        if isinstance(user, int):
            username, name = self.by_id.get(user, (str(user), str(user)))
            user_id: int | None = user
        else:
            username = user or ""
            user_id, name = self.by_name.get(username, (None, username))
        if user_id is None:
            return Person(
                username, SYSTEM_WORDS.zh if not username or username == "system" else name, None
            )
        held = self.held.get(user_id, [])
        code = role if role in held else (held[0] if held else None)
        return Person(username, name, self.roles.get(code) if code else None)


def _line(
    event: Mapping[str, Any], people: _People, names: Mapping[str, Words],
    role_of_task: Mapping[str, str | None],
) -> HistoryLine:  # fmt: skip
    element = event.get("task_id")
    by = people.person(event.get("actor"), role_of_task.get(element or ""))
    task = names.get(element or "", Words(element or "", element or ""))
    payload = event.get("payload") or {}
    delegated = payload.get("to") if event["type"] == "task_delegated" else None
    to = people.person(str(delegated)).name if delegated else ""
    template = EVENT_TEXTS.get(event["type"], OTHER_EVENT)
    values = {
        "task": task,
        "to": Words(to, to),
        "message": Words(str(payload.get("message", "")), str(payload.get("message", ""))),
        "type": Words(event["type"], event["type"]),
    }

    def said(language: str) -> str:
        who = (
            by.text(language)
            if by.role is not None or by.name != SYSTEM_WORDS.zh
            else SYSTEM_WORDS.text(language)
        )
        fields = {k: v.text(language) for k, v in values.items()}
        return (template.en if language == "en" else template.zh).format(who=who, **fields)

    return HistoryLine(event["at"], event["type"], by, Words(said("zh"), said("en")))
