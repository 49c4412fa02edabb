"""The pages on a 390 px phone: no sideways scrolling, no main blocks on top of each other."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from engine import runtime
from engine.storage.db import Database
from tests.conftest import ActorOf, open_task
from tests.expense_claims import claim_data
from tests.webapp.conftest import NewPage

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("frozen_clock"),
    pytest.mark.parametrize("db", ["sqlite"], indirect=True),  # a threaded server on one file
]

# The main blocks of a page: the header, what main holds, the two columns of a task or case page,
# and the cards of the inbox. Returns the pairs of siblings whose boxes overlap.
OVERLAPS = """
() => {
  const groups = [
    [document.querySelector("header"), document.querySelector("main")],
    [...document.querySelectorAll("main > *")],
    [...document.querySelectorAll(".layout > *")],
    [...document.querySelectorAll("table.tasks tbody tr")],
  ];
  const found = [];
  for (const group of groups) {
    const boxes = group.filter((e) => e && e.offsetParent !== null)
      .map((e) => [e, e.getBoundingClientRect()]);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, r] = boxes[i], [b, s] = boxes[j];
        const x = Math.min(r.right, s.right) - Math.max(r.left, s.left);
        const y = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
        if (x > 1 && y > 1) found.push(`${a.tagName}.${a.className} / ${b.tagName}.${b.className}`);
      }
    }
  }
  return found;
}
"""


def check_phone_layout(page: Page) -> None:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.evaluate("window.innerWidth"), "the page scrolls sideways"
    assert page.evaluate(OVERLAPS) == []


def test_inbox_task_and_case_pages_fit_a_390_px_phone(
    db: Database, actor: ActorOf, new_page: NewPage
) -> None:
    for _ in range(2):
        case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
        runtime.complete_task(
            db, actor("sales1"), open_task(db, case.id, "submit_claim"), claim_data()
        )
    page = new_page("ddm1")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/?tab=claimable")
    expect(page.locator("table.tasks tbody tr")).to_have_count(2)
    check_phone_layout(page)
    assert page.locator("table.tasks thead").is_hidden()  # rows became cards

    task_id = open_task(db, case.id, "approve_ddm")
    runtime.claim_task(db, actor("ddm1"), task_id)
    page.goto(f"/tasks/{task_id}")
    expect(page.locator("#diagram[data-ready=true]")).to_be_attached()
    check_phone_layout(page)
    form, side = page.locator(".layout > section"), page.locator(".layout > aside")
    form_box, side_box = form.bounding_box(), side.bounding_box()
    assert form_box is not None
    assert side_box is not None
    assert side_box["y"] >= form_box["y"] + form_box["height"]  # one column: the panel below

    page.goto(f"/cases/{case.id}")
    expect(page.locator("#diagram[data-ready=true]")).to_be_attached()
    check_phone_layout(page)


def test_a_claim_form_with_its_invoice_table_fits_a_390_px_phone(new_page: NewPage) -> None:
    page = new_page("sales1")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/start")
    check_phone_layout(page)
    page.locator("[data-process=expense_reimbursement]").get_by_role("button", name="发起").click()
    page.get_by_role("button", name="添加一行").click()
    check_phone_layout(page)
