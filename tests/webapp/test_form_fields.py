"""Task forms over HTTP: table rows however many and however numbered, every cell labelled."""

from __future__ import annotations

import re

import pytest

from engine import runtime
from engine.storage.db import Database
from tests.conftest import ActorOf, open_task
from tests.expense_claims import claim_data
from tests.webapp.conftest import Login

pytestmark = pytest.mark.usefixtures("frozen_clock")


def test_table_rows_with_gaps_in_their_numbers_are_all_read_in_order(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    task_id = open_task(db, case.id, "submit_claim")
    form: dict[str, object] = {
        k: v for k, v in claim_data("600.00").items() if k not in ("invoices",)
    }
    for position, index in enumerate((0, 3, 17)):  # rows 1, 2 and 4..16 were removed in the page
        form[f"invoices-{index}-invoice_no"] = f"INV-7{position:04d}"
        form[f"invoices-{index}-date"] = "2026-02-26"
        form[f"invoices-{index}-amount"] = "200.00"
    form["invoices-5-invoice_no"] = ""  # a blank row left in the page is no row
    sales = login("sales1")
    form["csrf_token"] = sales.csrf
    done = sales.post(f"/tasks/{task_id}", data=form)
    assert done.status_code == 302, done.get_data(as_text=True)
    invoices = runtime.get_instance(db, case.id).data["invoices"]
    assert [row["invoice_no"] for row in invoices] == ["INV-70000", "INV-70001", "INV-70002"]


def test_every_table_cell_is_labelled_with_its_column_and_row(
    db: Database, login: Login, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    html = (
        login("sales1")
        .get(f"/tasks/{open_task(db, case.id, 'submit_claim')}")
        .get_data(as_text=True)
    )
    assert 'aria-label="发票号码 第1行"' in html
    assert 'data-min-rows="1"' in html
    assert 'data-max-rows="100"' in html
    # every input, select and textarea has a <label for> or an aria-label
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' in tag or "__row__" in tag:
            continue
        name = re.search(r'id="([^"]+)"', tag)
        assert "aria-label=" in tag or (name and name.group(1) in labelled), tag
