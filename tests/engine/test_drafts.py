"""Task drafts: kept as typed for the person working the task; refused whole when too large."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine import runtime
from engine.errors import InvalidInputError
from engine.people.identity import Actor
from engine.runtime.services import drafts
from engine.storage.db import Database
from tests.conftest import open_task

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")


def test_a_draft_over_the_limit_is_refused_and_the_saved_one_kept(
    db: Database, actor: Callable[[str], Actor]
) -> None:
    sales1 = actor("sales1")
    case = runtime.start_instance(db, sales1, "expense_reimbursement")
    task = open_task(db, case.id, "submit_claim")
    drafts.save(db, sales1, task, {"purpose": "差旅"})
    with pytest.raises(InvalidInputError, match="草稿"):
        drafts.save(db, sales1, task, {"purpose": "x" * (drafts.MAX_DRAFT_CHARS + 1)})
    assert drafts.load(db, sales1, task) == {"purpose": "差旅"}  # not silently emptied
