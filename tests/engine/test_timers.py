"""Timer events, periodic starts and working-day deadlines, fired by the worker with a moved clock."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from engine import runtime
from engine.definitions import registry
from engine.people import identity
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.storage.models import AuditEvent, PeriodicStart
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, history_types, inbox_row, open_task
from tests.diagrams import files, process, sequence, user_task

OPS = "运营管理组"


def timer_definition(kind: str, value: str) -> str:
    return f'<bpmn:timerEventDefinition id="td"><bpmn:{kind} xsi:type="bpmn:tFormalExpression">{value}</bpmn:{kind}></bpmn:timerEventDefinition>'


def deploy(db: Database, key: str, xml: str) -> None:
    with db.unit_of_work() as session:
        registry.deploy(session, identity.SYSTEM, files(f"{key}.bpmn", xml))


WAIT_THEN_WORK = process(
    "wait_then_work",
    '<bpmn:startEvent id="start"/>'
    f'<bpmn:intermediateCatchEvent id="wait" name="等待两小时">{timer_definition("timeDuration", chr(34) + "PT2H" + chr(34))}</bpmn:intermediateCatchEvent>'
    + user_task("work", "处理")
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "wait", "work", "end"),
    lanes={OPS: ["start", "wait", "work", "end"]},
)

ESCALATE = process(
    "escalate",
    '<bpmn:startEvent id="start"/>'
    + user_task("answer", "答复客户")
    + f'<bpmn:boundaryEvent id="too_late" name="两天未答复" attachedToRef="answer" cancelActivity="true">{timer_definition("timeDuration", chr(34) + "P2D" + chr(34))}</bpmn:boundaryEvent>'
    + user_task("escalated", "主管跟进")
    + '<bpmn:endEvent id="end"/><bpmn:endEvent id="end2"/>'
    + sequence("start", "answer", "end")
    + sequence("too_late", "escalated", "end2"),
    lanes={OPS: ["start", "answer", "too_late", "escalated", "end", "end2"]},
)

ON_DATE = process(
    "on_date",
    '<bpmn:startEvent id="start"/>'
    f'<bpmn:intermediateCatchEvent id="until">{timer_definition("timeDate", chr(34) + "2026-03-05T09:00:00+08:00" + chr(34))}</bpmn:intermediateCatchEvent>'
    + user_task("work", "处理")
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "until", "work", "end"),
    lanes={OPS: ["start", "until", "work", "end"]},
)

MONTHLY = process(
    "monthly_report",
    f'<bpmn:startEvent id="start" name="每月末">{timer_definition("timeCycle", chr(34) + "R/2026-01-31T09:00:00+08:00/P1M" + chr(34))}</bpmn:startEvent>'
    + user_task("report", "编制月报")
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "report", "end"),
    lanes={OPS: ["start", "report", "end"]},
)

WITH_DEADLINE = process(
    "with_deadline",
    '<bpmn:startEvent id="start"/>'
    + user_task("reply", "回复", deadline="3 workdays")
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "reply", "end"),
    lanes={OPS: ["start", "reply", "end"]},
)


def test_an_intermediate_timer_fires_when_the_clock_passes_it(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    deploy(db, "wait_then_work", WAIT_THEN_WORK)
    case = runtime.start_instance(db, actor("ops1"), "wait_then_work")
    assert case.open_task_ids == ()
    assert runtime.get_instance(db, case.id).waiting_timers == (
        ("wait", frozen_clock.at + timedelta(hours=2)),
    )
    frozen_clock.advance(timedelta(hours=1, minutes=59))
    assert timers.run_once(db) == 0
    frozen_clock.advance(timedelta(minutes=2))
    assert timers.run_once(db) == 1
    open_task(db, case.id, "work")
    assert "timer_fired" in history_types(db, case.id)


def test_an_interrupting_boundary_timer_withdraws_the_task_and_escalates(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    deploy(db, "escalate", ESCALATE)
    case = runtime.start_instance(db, actor("ops1"), "escalate")
    answer = open_task(db, case.id, "answer")
    frozen_clock.advance(timedelta(days=2, seconds=1))
    timers.run_once(db)
    assert [row.bpmn_id for row in inbox.open_tasks_of(db, case.id)] == ["escalated"]
    assert inbox_row(db, answer).status == "cancelled"
    assert "task_withdrawn" in history_types(db, case.id)


def test_a_timer_date_waits_for_that_moment(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    deploy(db, "on_date", ON_DATE)
    case = runtime.start_instance(db, actor("ops1"), "on_date")
    frozen_clock.set(datetime(2026, 3, 5, 0, 59, tzinfo=UTC))
    assert timers.run_once(db) == 0
    frozen_clock.set(datetime(2026, 3, 5, 1, 0, 1, tzinfo=UTC))
    assert timers.run_once(db) == 1
    open_task(db, case.id, "work")


def test_periodic_starts_follow_the_calendar_month(db: Database, frozen_clock: FrozenClock) -> None:
    frozen_clock.set(datetime(2026, 1, 20, tzinfo=UTC))
    deploy(db, "monthly_report", MONTHLY)
    with db.read() as session:
        periodic = session.get(PeriodicStart, "monthly_report")
        assert periodic is not None
        assert periodic.next_at == datetime(2026, 1, 31, 1, 0, tzinfo=UTC)
    assert timers.run_once(db) == 0
    expected = [
        datetime(2026, 1, 31, 1, tzinfo=UTC),
        datetime(2026, 2, 28, 1, tzinfo=UTC),
        datetime(2026, 3, 31, 1, tzinfo=UTC),
    ]
    for when in expected:
        frozen_clock.set(when + timedelta(minutes=1))
        assert timers.run_once(db) == 1
        assert timers.run_once(db) == 0  # one instance per occurrence, not one per worker pass
    with db.read() as session:
        row = session.get(PeriodicStart, "monthly_report")
        assert row is not None
        assert row.fired == 3
        assert row.next_at == datetime(2026, 4, 30, 1, tzinfo=UTC)
        starts = session.scalars(
            select(AuditEvent).where(AuditEvent.type == "instance_started")
        ).all()
    assert len(starts) == 3
    # each started instance waits for its report, not for its own start timer
    for event in starts:
        assert event.instance_id is not None
        view = runtime.get_instance(db, event.instance_id)
        assert view.waiting_timers == ()
        open_task(db, view.summary.id, "report")


def test_a_working_day_deadline_skips_the_national_day_holiday(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    deploy(db, "with_deadline", WITH_DEADLINE)
    frozen_clock.set(datetime(2026, 9, 30, 2, tzinfo=UTC))  # Wednesday before the golden week
    case = runtime.start_instance(db, actor("ops1"), "with_deadline")
    row = inbox.get_task(db, open_task(db, case.id, "reply"))
    assert row is not None
    # Oct 1-7 off; Oct 8 (Thu) 1, Oct 9 (Fri) 2, Sat Oct 10 is a make-up working day: 3
    assert row.due_at == datetime(2026, 10, 10, 15, 59, 59, 999999, tzinfo=UTC)
    frozen_clock.set(datetime(2026, 10, 10, 15, 59, tzinfo=UTC))
    assert timers.run_once(db) == 0
    frozen_clock.set(datetime(2026, 10, 10, 16, 0, tzinfo=UTC))
    assert timers.run_once(db) == 1
    assert "task_overdue" in history_types(db, case.id)
    assert timers.run_once(db) == 0  # escalated once


def test_two_workers_fire_each_due_timer_exactly_once(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    deploy(db, "wait_then_work", WAIT_THEN_WORK)
    cases = [runtime.start_instance(db, actor("ops1"), "wait_then_work").id for _ in range(24)]
    frozen_clock.advance(timedelta(hours=3))
    barrier = threading.Barrier(2)
    fired: list[int] = []

    def worker() -> None:
        handle = Database(db.url)
        barrier.wait()
        try:
            fired.append(timers.run_once(handle))
        finally:
            handle.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(fired) == len(cases)
    with db.read() as session:
        per_instance = Counter(
            session.scalars(select(AuditEvent.instance_id).where(AuditEvent.type == "timer_fired"))
        )
    assert per_instance == Counter(dict.fromkeys(cases, 1))
    for case_id in cases:
        open_task(db, case_id, "work")


REMIND_TWICE = process(
    "remind_twice",
    '<bpmn:startEvent id="start"/>'
    + user_task("answer", "答复客户")
    + f'<bpmn:boundaryEvent id="remind" name="每小时催办" attachedToRef="answer" cancelActivity="false">{timer_definition("timeCycle", chr(34) + "R2/PT1H" + chr(34))}</bpmn:boundaryEvent>'
    + '<bpmn:scriptTask id="note_reminder" name="记录催办"><bpmn:script>reminded = True</bpmn:script></bpmn:scriptTask>'
    + '<bpmn:endEvent id="end"/><bpmn:endEvent id="reminded_end"/>'
    + sequence("start", "answer", "end")
    + sequence("remind", "note_reminder", "reminded_end"),
    lanes={OPS: ["start", "answer", "remind", "note_reminder", "end", "reminded_end"]},
)


def test_a_non_interrupting_cycle_reminds_as_often_as_it_says_and_the_task_stays(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    deploy(db, "remind_twice", REMIND_TWICE)
    case = runtime.start_instance(db, actor("ops1"), "remind_twice")
    task_id = open_task(db, case.id, "answer")
    for _ in range(3):
        frozen_clock.advance(timedelta(hours=1, seconds=1))
        timers.run_once(db)
    assert history_types(db, case.id).count("timer_fired") == 2
    assert runtime.get_instance(db, case.id).waiting_timers == ()
    assert open_task(db, case.id, "answer") == task_id
    runtime.complete_task(db, actor("ops1"), task_id, {})
    assert runtime.get_instance(db, case.id).summary.status == runtime.COMPLETED


PAST_DATE = process(
    "past_date",
    '<bpmn:startEvent id="start"/>'
    + '<bpmn:intermediateCatchEvent id="wait" name="等到约定日">'
    + timer_definition("timeDate", '"2026-03-01T00:00:00+08:00"')
    + "</bpmn:intermediateCatchEvent>"
    + user_task("answer", "答复客户")
    + '<bpmn:endEvent id="end"/>'
    + sequence("start", "wait", "answer", "end"),
    lanes={OPS: ["start", "wait", "answer", "end"]},
)


def test_a_timer_already_due_when_armed_fires_at_once_and_is_audited(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, "past_date", PAST_DATE)
    case = runtime.start_instance(db, actor("ops1"), "past_date")
    open_task(db, case.id, "answer")
    fired = [e for e in runtime.get_instance(db, case.id).history if e["type"] == "timer_fired"]
    assert [(e["task_id"], e["payload"]["due"]) for e in fired] == [
        ("wait", "2026-03-01T00:00:00+08:00")
    ]
