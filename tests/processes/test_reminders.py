"""Every reminder timer (催办) in processes/ tells the people the regulation names, with a moved clock."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from engine import case_files, notifications, runtime
from engine.config import Settings
from engine.runtime.services import timers
from engine.storage.db import Database
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, open_task, work
from tests.expense_claims import claim_data
from tests.processes import test_archive_access as access
from tests.processes import test_archive_filing as filing

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")
APPROVE = {"decision": "同意"}
Reach = Callable[[Database, ActorOf, FrozenClock], int]


def _claim(
    db: Database, actor: ActorOf, amount: str, category: str, levels: list[tuple[str, str]]
) -> int:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data(amount, category))
    for approver, task in levels:
        work(db, actor(approver), case.id, task, APPROVE)
    return case.id


def ddm(db: Database, actor: ActorOf, clock: FrozenClock) -> int:
    case_id = _claim(db, actor, "800.00", "办公", [])
    clock.advance(timedelta(days=3, minutes=1))
    return case_id


def dm(db: Database, actor: ActorOf, clock: FrozenClock) -> int:
    case_id = _claim(db, actor, "12000.00", "差旅", [("ddm1", "approve_ddm")])
    clock.advance(timedelta(days=3, minutes=1))
    return case_id


def gm(db: Database, actor: ActorOf, clock: FrozenClock) -> int:
    with db.unit_of_work() as session:
        case_files.budget.set_line(
            session, 2026, "运营部", "市场推广", "50000.00", spent="41000.00"
        )
    levels = [("ddm1", "approve_ddm"), ("dm", "approve_dm")]
    case_id = _claim(db, actor, "12000.00", "市场推广", levels)
    clock.advance(timedelta(days=3, minutes=1))
    return case_id


def due_back(db: Database, actor: ActorOf, clock: FrozenClock) -> int:
    case_id = access.ask(db, actor, "sales1", access.request(access_mode="借出"))
    work(db, actor("ddm1"), case_id, "approve_ddm", access.APPROVE)
    assert open_task(db, case_id, "return_check")
    clock.set(access.BEFORE_MARCH_6_END + timedelta(seconds=2))
    return case_id


def custody(db: Database, actor: ActorOf, clock: FrozenClock) -> int:
    data = filing.item("会计凭证", related_ref="记-2025-12-031")
    case_id = filing.file_item(db, actor, "acc1", data)
    clock.set(datetime(2026, 12, 31, 16, 0, tzinfo=UTC))
    return case_id


# boundary timer -> how to reach it, who is reminded, whose managers are told (the regulation)
REMINDERS: dict[str, tuple[Reach, set[str], set[str]]] = {
    # P6: an approval waiting 3 days is reminded to its approver (escalation at 5 is the deadline's)
    "remind_ddm": (ddm, {"ddm1", "ddm2"}, set()),
    "remind_dm": (dm, {"dm"}, set()),
    "remind_gm": (gm, {"gm"}, set()),
    # P8: borrowed originals due back: the archivist who checks them back in
    "remind_return": (due_back, {"arc1"}, set()),
    # P8: accounting files at the end of custody: accounting, and its head (the GM) is told
    "remind_transfer": (custody, {"acc1", "fin_head"}, {"gm"}),
}


def test_every_reminder_timer_in_the_processes_is_walked_here() -> None:
    found = set()
    for path in sorted(Settings().processes_dir.glob("*.bpmn")):
        text = path.read_text(encoding="utf-8")
        for service in re.findall(
            r'<bpmn:serviceTask id="([^"]+)"[^>]*>.*?</bpmn:serviceTask>', text
        ):
            block = re.search(rf'<bpmn:serviceTask id="{service}".*?</bpmn:serviceTask>', text)
            assert block is not None
            if 'serviceTaskOperator id="notify"' not in block.group(0):
                continue
            incoming = re.findall(r"<bpmn:incoming>([^<]+)</bpmn:incoming>", block.group(0))
            for flow in incoming:
                source = re.search(rf'<bpmn:sequenceFlow id="{flow}" sourceRef="([^"]+)"', text)
                assert source is not None
                found.add(source.group(1))
    # and no reminder timer still leads straight to an empty end
    for path in sorted(Settings().processes_dir.glob("*.bpmn")):
        text = path.read_text(encoding="utf-8")
        for boundary in re.findall(
            r'<bpmn:boundaryEvent id="([^"]+)"[^>]*cancelActivity="false"', text
        ):
            flow = re.search(rf'sourceRef="{boundary}" targetRef="([^"]+)"', text)
            assert flow is not None
            assert f'<bpmn:endEvent id="{flow.group(1)}"' not in text, f"{boundary} reminds nobody"
    assert found == set(REMINDERS)


@pytest.mark.parametrize("timer", sorted(REMINDERS))
def test_a_reminder_timer_notifies_the_holder_and_where_named_their_manager(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock, timer: str
) -> None:
    reach, holders, managers = REMINDERS[timer]
    case_id = reach(db, actor, frozen_clock)
    assert _told(db, actor, notifications.REMINDER) == set()
    timers.run_once(db)
    history = runtime.get_instance(db, case_id).history
    assert timer in [e["task_id"] for e in history if e["type"] == "timer_fired"]
    assert _told(db, actor, notifications.REMINDER) == holders
    assert _told(db, actor, notifications.TEAM_REMINDER) == managers


USERS = ("gm", "dm", "ddm1", "ddm2", "ops1", "sales1", "acc1", "fin_head", "cash1", "arc1")


def _told(db: Database, actor: ActorOf, kind: str) -> set[str]:
    """Who of the department has a notification of this kind."""
    return {
        user
        for user in USERS
        if any(item.kind == kind for item in notifications.list_for(db, actor(user).id))
    }
