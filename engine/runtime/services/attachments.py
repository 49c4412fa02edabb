"""Files attached to task forms: checked, stored once by SHA-256, read only by who may see the case.

A file is accepted when its bytes are one of the kinds the department files (PDF, JPEG, PNG,
Office Open XML documents and sheets) — recognised from its first bytes, not from the name or
the browser's word — and no larger than ``MAX_BYTES``. Forms then hold its hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select

from engine.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from engine.people.identity import Actor
from engine.runtime.base import access, unit_of_work
from engine.runtime.services import instance_view
from engine.storage import store
from engine.storage.db import Database
from engine.storage.models import Attachment, AttachmentUse, HumanTask
from engine.storage.txn import Txn
from engine.timekeeping import clock

MAX_BYTES = 10 * 1024 * 1024
_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"PK\x03\x04", "application/zip"),  # .docx / .xlsx
)
_OFFICE = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    filename: str
    content_type: str
    size: int


def kind_of(filename: str, data: bytes) -> str | None:
    """The content type the bytes really are, or None when they are no accepted kind."""
    found = next((kind for magic, kind in _KINDS if data.startswith(magic)), None)
    if found == "application/zip":
        return next((t for ext, t in _OFFICE.items() if filename.lower().endswith(ext)), None)
    return found


def store_file(db: Database, actor: Actor, task_id: int, filename: str, data: bytes) -> StoredFile:
    """Keep an upload for a task the actor may work; the same bytes twice are stored once.

    :raise InvalidInputError: too large, empty or not an accepted kind.
    :raise PermissionDeniedError: (audited) not the actor's task to work.
    """
    name = (filename.replace("\\", "/").rsplit("/", 1)[-1] or "file")[:255]
    if not data:
        raise InvalidInputError(
            "文件为空 / the file is empty", {"file": ["文件为空 / the file is empty"]}
        )
    if len(data) > MAX_BYTES:
        message = f"文件超过 {MAX_BYTES // (1024 * 1024)} MB / the file is larger than {MAX_BYTES // (1024 * 1024)} MB"
        raise InvalidInputError(message, {"file": [message]})
    kind = kind_of(name, data)
    if kind is None:
        message = "只接受 PDF、JPEG、PNG、DOCX、XLSX 文件 / only PDF, JPEG, PNG, DOCX and XLSX files are accepted"
        raise InvalidInputError(message, {"file": [message]})
    digest = hashlib.sha256(data).hexdigest()
    keep = partial(_keep, db, actor, task_id, StoredFile(digest, name, kind, len(data)), data)
    unit_of_work.run(db, actor, keep, lean=False)
    return StoredFile(digest, name, kind, len(data))


def _keep(db: Database, actor: Actor, task_id: int, info: StoredFile, data: bytes, tx: Txn) -> None:
    task, instance = store.task(tx, task_id)
    unit_of_work.note_task(tx, task)
    access.check_may_act(db, tx, actor, task, instance)
    session = unit_of_work.orm_session(tx)
    if session.get(Attachment, info.sha256) is None:
        session.add(
            Attachment(
                sha256=info.sha256, filename=info.filename, content_type=info.content_type,
                size=info.size, data=data, uploaded_by=actor.id, uploaded_at=clock.now(),
                task_id=task_id,
            )
        )  # fmt: skip
        session.flush()
    if session.get(AttachmentUse, (info.sha256, task_id)) is None:
        session.add(AttachmentUse(sha256=info.sha256, task_id=task_id))


def read_file(db: Database, actor: Actor, sha256: str) -> tuple[StoredFile, bytes]:
    """A stored file for its uploader or whoever may read the case it was attached in.

    :raise NotFoundError: :raise PermissionDeniedError: (audited)
    """
    with db.read() as session:
        row = session.get(Attachment, sha256.lower())
        if row is None:
            raise NotFoundError(f"文件不存在 / no file {sha256}")
        info = StoredFile(row.sha256, row.filename, row.content_type, row.size)
        data, uploader = row.data, row.uploaded_by
        cases = sorted(
            set(
                session.scalars(
                    select(HumanTask.instance_id)
                    .join(AttachmentUse, AttachmentUse.task_id == HumanTask.id)
                    .where(AttachmentUse.sha256 == row.sha256)
                )
            )
        )
    if uploader == actor.id:
        return info, data
    if not cases:
        raise NotFoundError(f"文件不存在 / no file {sha256}")
    refusal: PermissionDeniedError | None = None
    for instance_id in cases:  # any case it was attached in that the actor may read
        try:
            instance_view.open_case(db, actor, instance_id)
        except PermissionDeniedError as exc:
            refusal = exc
        else:
            return info, data
    assert refusal is not None  # noqa: S101 - cases is not empty
    raise refusal
