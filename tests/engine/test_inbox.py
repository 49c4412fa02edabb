"""The inbox's lists: tabs, order (soonest due first, undated last; or by creation), filters, counts."""

from __future__ import annotations

import pytest

from engine import runtime
from engine.definitions import registry
from engine.people import identity
from engine.runtime.services import inbox
from engine.storage.db import Database
from tests.conftest import ActorOf
from tests.diagrams import files, process, sequence, user_task

pytestmark = pytest.mark.usefixtures("frozen_clock")

# three tasks at once, created in this order: no deadline, in 10 days, in 1 day
PARALLEL = process(
    "parallel",
    '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>'
    + user_task("undated", "无期限", role="OPS")
    + user_task("slow", "十日内", role="OPS", deadline="10 days")
    + user_task("fast", "一日内", role="OPS", deadline="1 days")
    + '<bpmn:parallelGateway id="join"/><bpmn:endEvent id="end"/>'
    + sequence("start", "split")
    + "".join(sequence("split", t, "join") for t in ("undated", "slow", "fast"))
    + sequence("join", "end"),
)


@pytest.fixture
def three_tasks(db: Database, actor: ActorOf) -> int:
    with db.unit_of_work() as session:
        registry.deploy(session, identity.SYSTEM, files("parallel.bpmn", PARALLEL))
    return runtime.start_instance(db, actor("ops1"), "parallel", business_key="PAR-1").id


def names(rows: list[inbox.TaskRow]) -> list[str]:
    return [row.bpmn_id for row in rows]


def test_open_tasks_come_soonest_due_first_and_undated_last(
    db: Database, actor: ActorOf, three_tasks: int
) -> None:
    rows = inbox.list_tasks(db, actor("ops2"), inbox.CLAIMABLE)
    assert names(rows) == ["fast", "slow", "undated"]
    by_creation = inbox.list_tasks(
        db, actor("ops2"), inbox.CLAIMABLE, filters=inbox.Filters(sort="created")
    )
    assert names(by_creation) == ["undated", "slow", "fast"]


def test_filters_and_counts_agree(db: Database, actor: ActorOf, three_tasks: int) -> None:
    ops2 = actor("ops2")
    runtime.claim_task(db, ops2, inbox.list_tasks(db, ops2, inbox.CLAIMABLE)[0].id)
    assert inbox.counts(db, ops2) == {"mine": 1, "claimable": 2, "done": 0}
    # Monday 2 March: "fast" (claimed) is due this week, "slow" on 12 March is not
    week = inbox.counts(db, ops2, inbox.Filters(due="week"))
    assert week == {"mine": 1, "claimable": 0, "done": 0}
    assert inbox.counts(db, ops2, inbox.Filters(due="today"))["mine"] == 0  # due tomorrow
    found = inbox.list_tasks(db, ops2, inbox.CLAIMABLE, filters=inbox.Filters(search="PAR"))
    assert names(found) == ["slow", "undated"]
    assert inbox.list_tasks(db, ops2, inbox.CLAIMABLE, filters=inbox.Filters(search="NOPE")) == []
    assert inbox.counts(db, actor("sales1"))["claimable"] == 0  # not their role
