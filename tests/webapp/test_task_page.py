"""The task page's extras: drafts, attached files, comments."""

from __future__ import annotations

import hashlib
import io

import pytest

from engine import runtime
from engine.storage.db import Database
from tests.conftest import ActorOf, history_types, open_task
from tests.expense_claims import claim_data
from tests.webapp.conftest import Login
from tests.webapp.test_pages import form_of

pytestmark = pytest.mark.usefixtures("frozen_clock")

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def started(db: Database, actor: ActorOf) -> tuple[int, int]:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    return case.id, open_task(db, case.id, "submit_claim")


def test_a_draft_keeps_what_was_typed_for_its_author_only(
    db: Database, actor: ActorOf, login: Login
) -> None:
    _case, task_id = started(db, actor)
    client = login("sales1")
    saved = client.post(
        f"/tasks/{task_id}",
        data={
            "action": "draft",
            "purpose": "半填的用途",
            "amount": "12",
            "csrf_token": client.csrf,
        },
    )
    assert saved.status_code == 302
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "半填的用途" in page
    assert open_task(db, _case, "submit_claim") == task_id  # still open: a draft completes nothing


def test_files_are_uploaded_with_the_form_and_read_back_by_the_case(
    db: Database, actor: ActorOf, login: Login
) -> None:
    case_id, task_id = started(db, actor)
    client = login("sales1")
    data = form_of(claim_data())
    data.pop("attachments")
    data["csrf_token"] = client.csrf
    data["attachments"] = (io.BytesIO(PDF), "发票.pdf")
    done = client.post(f"/tasks/{task_id}", data=data, content_type="multipart/form-data")
    assert done.status_code == 302, done.get_data(as_text=True)
    digest = hashlib.sha256(PDF).hexdigest()
    assert runtime.get_instance(db, case_id).data["attachments"] == [digest]
    approver = login("ddm1")
    approver.post(
        f"/tasks/{open_task(db, case_id, 'approve_ddm')}/claim", data={"csrf_token": approver.csrf}
    )
    file = approver.get(f"/files/{digest}")
    assert (file.status_code, file.data, file.mimetype) == (200, PDF, "application/pdf")
    assert login("cs1").get(f"/files/{digest}").status_code == 403


def test_a_file_that_is_not_what_it_claims_is_refused_and_the_input_kept(
    db: Database, actor: ActorOf, login: Login
) -> None:
    _case_id, task_id = started(db, actor)
    client = login("sales1")
    data = form_of(claim_data())
    data.pop("attachments")
    data["csrf_token"] = client.csrf
    data["attachments"] = (io.BytesIO(b"MZ\x90\x00 not a pdf"), "invoice.pdf")
    refused = client.post(f"/tasks/{task_id}", data=data, content_type="multipart/form-data")
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "只接受 PDF" in html
    assert "6222020200112233445" in html


def test_a_comment_goes_into_the_case_history(db: Database, actor: ActorOf, login: Login) -> None:
    case_id, _task_id = started(db, actor)
    client = login("sales1")
    client.post(
        f"/cases/{case_id}/comments", data={"text": "发票原件已寄出", "csrf_token": client.csrf}
    )
    assert "发票原件已寄出" in client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert history_types(db, case_id)[-1] == "comment_added"
    outsider = login("cs1")
    refused = outsider.post(
        f"/cases/{case_id}/comments", data={"text": "x", "csrf_token": outsider.csrf}
    )
    assert refused.status_code == 403


def test_the_same_file_attached_to_two_cases_opens_from_either(
    db: Database, actor: ActorOf, login: Login
) -> None:
    digest = hashlib.sha256(PDF).hexdigest()
    cases = []
    for seller in ("sales1", "sales2"):
        case_id, task_id = (
            started(db, actor) if seller == "sales1" else _start_as(db, actor, seller)
        )
        client = login(seller)
        data = form_of(claim_data())
        data.pop("attachments")
        data["csrf_token"] = client.csrf
        data["attachments"] = (io.BytesIO(PDF), "发票.pdf")
        client.post(f"/tasks/{task_id}", data=data, content_type="multipart/form-data")
        cases.append(case_id)
    # the first claim is approved by ddm1 and moves on to finance: ddm2 has no part in it
    first = open_task(db, cases[0], "approve_ddm")
    runtime.claim_task(db, actor("ddm1"), first)
    runtime.complete_task(db, actor("ddm1"), first, {"decision": "同意"})
    approver = login("ddm2")
    assert approver.get(f"/cases/{cases[0]}").status_code == 403
    # ... but the second one waits for a 副经理, and it holds the same file
    assert approver.get(f"/files/{digest}").status_code == 200


def _start_as(db: Database, actor: ActorOf, seller: str) -> tuple[int, int]:
    case = runtime.start_instance(db, actor(seller), "expense_reimbursement")
    return case.id, open_task(db, case.id, "submit_claim")
