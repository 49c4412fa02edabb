"""The process catalogue: what each process is for, the clauses it serves, a search."""

from __future__ import annotations

import re

import pytest

from engine.runtime.services import catalogue
from engine.storage.db import Database
from tests.conftest import ActorOf
from tests.webapp.conftest import Login

pytestmark = pytest.mark.usefixtures("frozen_clock", "deployed")


def entries(html: str) -> list[str]:
    return re.findall(r'data-process="(\w+)"', html)


def test_every_process_describes_itself_and_names_the_clauses_it_serves(
    actor: ActorOf, db: Database
) -> None:
    offered = catalogue.catalogue(db, actor("arc1"))
    assert offered
    for entry in offered:
        assert len(entry.description) > 20, entry.key
        assert entry.clauses, entry.key
    claims = next(e for e in offered if e.key == "expense_reimbursement")
    assert "审批" in claims.description
    assert "六(二)1" in [clause.number for clause in claims.clauses]


def test_the_catalogue_page_shows_description_and_clauses(login: Login) -> None:
    html = login("sales1").get("/start").get_data(as_text=True)
    assert "expense_reimbursement" in entries(html)
    assert "财务会计审核后由出纳付款" in html  # the diagram's documentation
    assert "六(二)1" in html  # a clause of docs/regulation.md


def test_the_catalogue_is_searched_by_name_description_and_clause(login: Login) -> None:
    archivist = login("arc1")
    everything = entries(archivist.get("/start").get_data(as_text=True))
    assert len(everything) == 4
    assert entries(archivist.get("/start?q=报销").get_data(as_text=True)) == [
        "expense_reimbursement"
    ]
    assert entries(archivist.get("/start?q=出纳").get_data(as_text=True)) == [
        "expense_reimbursement"
    ]
    by_clause = entries(archivist.get("/start?q=七(三)").get_data(as_text=True))
    assert by_clause == ["archive_destruction"]
    nothing = archivist.get("/start?q=不存在的流程").get_data(as_text=True)
    assert entries(nothing) == []
    assert "没有符合条件的流程" in nothing
