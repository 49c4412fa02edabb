"""The inbox's lists: tabs, order (soonest due first, undated last; or by creation), filters, counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from engine import runtime
from engine.definitions import registry
from engine.people import identity
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.storage.models import HumanTask
from engine.timekeeping.clock import FrozenClock
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


def test_overdue_is_one_rule_a_paused_clock_is_never_overdue(
    db: Database, actor: ActorOf, three_tasks: int, frozen_clock: FrozenClock
) -> None:
    ops2 = actor("ops2")
    frozen_clock.advance(timedelta(days=3))  # "fast" (1 day) is past due, "slow" (10 days) is not
    rows = {row.bpmn_id: row for row in inbox.list_tasks(db, ops2, inbox.CLAIMABLE)}
    assert (rows["fast"].overdue, rows["slow"].overdue, rows["undated"].overdue) == (
        True,
        False,
        False,
    )
    overdue = inbox.Filters(due="overdue")
    assert names(inbox.list_tasks(db, ops2, inbox.CLAIMABLE, filters=overdue)) == ["fast"]
    with db.unit_of_work() as session:  # the case's clock is paused (as mediation pauses it)
        session.execute(
            update(HumanTask)
            .where(HumanTask.instance_id == three_tasks)
            .values(paused_at=frozen_clock() - timedelta(days=1))
        )
    paused = inbox.list_tasks(db, ops2, inbox.CLAIMABLE)
    assert [row.overdue for row in paused] == [False, False, False]
    assert inbox.list_tasks(db, ops2, inbox.CLAIMABLE, filters=overdue) == []
    assert timers.run_once(db) == 0  # and the worker escalates nothing
    frozen_clock.advance(timedelta(days=30))
    assert inbox.counts(db, ops2, overdue)["claimable"] == 0
