"""The API starts cases with their data (checked) and stores files for a task's attachment fields."""

from __future__ import annotations

import hashlib
import io

import pytest
from flask import Flask

from engine.people import api_tokens
from engine.runtime.services import attachments
from engine.storage.db import Database
from tests.conftest import ActorOf

pytestmark = pytest.mark.usefixtures("frozen_clock")

PDF = b"%PDF-1.4\n% a scanned invoice\n%%EOF\n"


def bearer(db: Database, actor: ActorOf, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_tokens.create(db, actor(username), 'test')}"}


def test_the_openapi_document_lists_starting_a_case_and_uploading_a_file(app: Flask) -> None:
    paths = app.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/api/v1/cases"]
    assert "multipart/form-data" in str(paths["/api/v1/tasks/{task_id}/attachments"])


def test_a_case_started_with_data_of_its_forms_opens_its_first_task(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    started = app.test_client().post(
        "/api/v1/cases", json={"key": "expense_reimbursement", "business_key": "API-C1", "data": {"purpose": "培训差旅"}},
        headers=bearer(db, actor, "sales1"),
    )  # fmt: skip
    assert started.status_code == 201
    assert started.get_json()["business_key"] == "API-C1"
    assert len(started.get_json()["open_task_ids"]) == 1


def test_start_data_no_form_of_the_process_has_is_refused_field_by_field(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    refused = app.test_client().post(
        "/api/v1/cases", json={"key": "expense_reimbursement", "data": {"amount": "1", "x": 2, "y": 3}},
        headers=bearer(db, actor, "sales1"),
    )  # fmt: skip
    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"x", "y"}
    assert (
        app.test_client().get("/api/v1/tasks", headers=bearer(db, actor, "sales1")).get_json() == []
    )


def test_a_process_the_caller_may_not_start_is_refused(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    refused = app.test_client().post(
        "/api/v1/cases", json={"key": "complaint"}, headers=bearer(db, actor, "sales1")
    )
    assert refused.status_code == 403


def _first_task(app: Flask, headers: dict[str, str]) -> int:
    case = app.test_client().post(
        "/api/v1/cases", json={"key": "expense_reimbursement"}, headers=headers
    )
    task_id: int = case.get_json()["open_task_ids"][0]
    return task_id


def test_an_uploaded_pdf_answers_its_sha256_and_can_be_read_back(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    headers = bearer(db, actor, "sales1")
    task_id = _first_task(app, headers)
    client = app.test_client()
    stored = client.post(
        f"/api/v1/tasks/{task_id}/attachments",
        data={"file": (io.BytesIO(PDF), "发票.pdf")},
        headers=headers, content_type="multipart/form-data",
    )  # fmt: skip
    assert stored.status_code == 201
    body = stored.get_json()
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert body == {
        **body,
        "filename": "发票.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
    }


@pytest.mark.parametrize(
    ("content", "name"),
    [(b"", "empty.pdf"), (b"MZ\x90\x00 not a document", "invoice.pdf"), (PDF + b"0", "big.pdf")],
)
def test_an_upload_the_web_form_would_refuse_is_refused_with_a_field_error(
    app: Flask,
    db: Database,
    actor: ActorOf,
    content: bytes,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attachments, "MAX_BYTES", len(PDF))  # the limit, without 10 MB requests
    headers = bearer(db, actor, "sales1")
    task_id = _first_task(app, headers)
    refused = app.test_client().post(
        f"/api/v1/tasks/{task_id}/attachments",
        data={"file": (io.BytesIO(content), name)},
        headers=headers, content_type="multipart/form-data",
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["file"]


def test_an_upload_for_another_persons_task_is_refused(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    task_id = _first_task(app, bearer(db, actor, "sales1"))
    refused = app.test_client().post(
        f"/api/v1/tasks/{task_id}/attachments",
        data={"file": (io.BytesIO(PDF), "x.pdf")},
        headers=bearer(db, actor, "sales2"), content_type="multipart/form-data",
    )  # fmt: skip
    assert refused.status_code == 403
