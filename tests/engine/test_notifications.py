"""Notifications: who is told of a new, assigned, delegated, returned or late task, in the app and by e-mail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from engine import notifications, runtime
from engine.runtime.services import timers
from engine.storage.db import MIGRATIONS_DIR, Database
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, open_task, work
from tests.expense_claims import claim_data
from tests.mailbox import Server

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")
APPROVE = {"decision": "同意"}


def told(db: Database, actor: ActorOf, username: str) -> list[tuple[str, str]]:
    """(kind, Chinese text) of the user's notifications, oldest first."""
    items = notifications.list_for(db, actor(username).id)
    return [(item.kind, item.zh) for item in reversed(items)]


def deadline_kinds(db: Database, actor: ActorOf, username: str) -> list[str]:
    """The kinds of the user's notifications, less the diagram's 3-day reminder (催办)."""
    return [kind for kind, _ in told(db, actor, username) if kind != notifications.REMINDER]


def submitted_claim(db: Database, actor: ActorOf) -> int:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data("800.00", "办公"))
    return case.id


def test_a_submitted_claim_tells_the_deputy_managers_it_waits_in_their_queue(
    db: Database, actor: ActorOf
) -> None:
    submitted_claim(db, actor)
    [(kind, text)] = told(db, actor, "ddm1")
    assert kind == notifications.QUEUE
    assert "新任务「副经理审批」进入您的角色队列" in text
    assert [kind for kind, _ in told(db, actor, "ddm2")] == [notifications.QUEUE]
    assert told(db, actor, "dm") == []
    assert told(db, actor, "sales1") == []  # one's own step never notifies oneself
    assert notifications.unread_count(db, actor("ddm1").id) == 1


def test_a_task_in_a_role_queue_tells_every_holder_of_the_role(
    db: Database, actor: ActorOf
) -> None:
    case_id = submitted_claim(db, actor)
    work(db, actor("ddm1"), case_id, "approve_ddm", APPROVE)
    for accountant in ("acc1", "fin_head"):
        assert [kind for kind, _text in told(db, actor, accountant)] == [notifications.QUEUE]
    assert told(db, actor, "cash1") == []


def test_a_rejected_claim_goes_back_to_its_starter_as_rework(db: Database, actor: ActorOf) -> None:
    case_id = submitted_claim(db, actor)
    work(db, actor("ddm1"), case_id, "approve_ddm", {"decision": "驳回", "comment": "缺发票"})
    [(kind, text)] = told(db, actor, "sales1")
    assert kind == notifications.REWORK
    assert "退回给您修改" in text


def test_a_delegated_task_tells_the_colleague_who_delegated_it(
    db: Database, actor: ActorOf
) -> None:
    case_id = submitted_claim(db, actor)
    work(db, actor("ddm1"), case_id, "approve_ddm", APPROVE)
    task_id = open_task(db, case_id, "finance_review")
    runtime.claim_task(db, actor("acc1"), task_id)
    runtime.delegate_task(db, actor("acc1"), task_id, "fin_head")
    kind, text = told(db, actor, "fin_head")[-1]
    assert kind == notifications.DELEGATED
    assert text.startswith(actor("acc1").display_name)


def test_a_deadline_is_announced_a_day_before_and_when_passed_with_the_manager_told(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = submitted_claim(db, actor)
    runtime.claim_task(db, actor("ddm1"), open_task(db, case_id, "approve_ddm"))
    # approve_ddm is due at the end of Monday 2026-03-09 (5 working days), China time;
    # at 23:00 on Sunday the 8th, 24 h + 1 h before it, nothing is said of the deadline yet
    frozen_clock.set(frozen_clock.at.replace(day=8, hour=15))
    timers.run_once(db)
    assert deadline_kinds(db, actor, "ddm1") == [notifications.QUEUE]
    frozen_clock.advance(timedelta(hours=2))
    timers.run_once(db)
    timers.run_once(db)  # given once
    assert deadline_kinds(db, actor, "ddm1") == [notifications.QUEUE, notifications.DUE_SOON]
    frozen_clock.advance(timedelta(days=1))
    timers.run_once(db)
    assert deadline_kinds(db, actor, "ddm1")[-1] == notifications.OVERDUE
    [(kind, text)] = told(db, actor, "dm")
    assert kind == notifications.ESCALATED
    assert f"超期上报：{actor('ddm1').display_name}的任务「副经理审批」已超期" in text


def test_an_overdue_task_nobody_took_is_escalated_as_its_queues(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    submitted_claim(db, actor)
    frozen_clock.set(frozen_clock.at.replace(day=10))
    timers.run_once(db)
    assert deadline_kinds(db, actor, "ddm1")[-1] == notifications.OVERDUE
    assert deadline_kinds(db, actor, "ddm2")[-1] == notifications.OVERDUE
    [(kind, text)] = told(db, actor, "dm")  # the manager of both, told once
    assert kind == notifications.ESCALATED
    assert text.startswith("超期上报：副经理队列的任务")


def test_notifications_are_emailed_in_the_recipients_language(
    db: Database, actor: ActorOf, mailbox: Server
) -> None:
    ddm1 = actor("ddm1").id
    submitted_claim(db, actor)
    timers.run_once(db, mailer=mailbox.mailer)
    [mail] = mailbox.box.to("ddm1@opsflow.example")
    assert "副经理审批" in mail["Subject"]
    assert "in your role's queue" in mail.get_content()  # the other language follows
    prefs, _language = notifications.preferences(db, ddm1)
    every = {p.kind for p in prefs}
    notifications.set_preferences(db, ddm1, every, every, "en")
    submitted_claim(db, actor)
    timers.run_once(db, mailer=mailbox.mailer)
    assert mailbox.box.to("ddm1@opsflow.example")[-1]["Subject"].startswith(
        "[opsflow] New task “副经理审批” in your role's queue"
    )
    timers.run_once(db, mailer=mailbox.mailer)
    assert len(mailbox.box.to("ddm1@opsflow.example")) == 2  # each sent once


def test_each_user_chooses_what_they_see_and_what_is_mailed(
    db: Database, actor: ActorOf, mailbox: Server
) -> None:
    ddm1 = actor("ddm1").id
    notifications.set_preferences(db, ddm1, set(), {notifications.QUEUE}, "zh")
    submitted_claim(db, actor)
    timers.run_once(db, mailer=mailbox.mailer)
    assert told(db, actor, "ddm1") == []  # not in the centre
    assert len(mailbox.box.to("ddm1@opsflow.example")) == 1  # but mailed
    notifications.set_preferences(db, ddm1, set(), set(), "zh")
    submitted_claim(db, actor)
    timers.run_once(db, mailer=mailbox.mailer)
    assert len(mailbox.box.to("ddm1@opsflow.example")) == 1
    prefs, language = notifications.preferences(db, ddm1)
    assert language == "zh"
    assert not any(p.in_app or p.email for p in prefs)


def test_a_failed_send_is_tried_again_later_and_never_holds_up_a_step(
    db: Database, actor: ActorOf, mailbox: Server, frozen_clock: FrozenClock
) -> None:
    mailbox.box.refuse = True
    case_id = submitted_claim(db, actor)
    timers.run_once(db, mailer=mailbox.mailer)
    assert mailbox.box.messages == []
    mailbox.box.refuse = False
    timers.run_once(db, mailer=mailbox.mailer)
    assert mailbox.box.messages == []  # not before its retry time
    frozen_clock.advance(notifications.RETRY_AFTER)
    timers.run_once(db, mailer=mailbox.mailer)
    assert len(mailbox.box.to("ddm1@opsflow.example")) == 1
    # no server at all: the step still goes through and the mail waits
    down = notifications.Mailer("127.0.0.1", 1, timeout=1)
    work(db, actor("ddm1"), case_id, "approve_ddm", APPROVE)
    timers.run_once(db, mailer=down)
    assert len(told(db, actor, "acc1")) == 1


def test_marking_read_lowers_the_unread_count(db: Database, actor: ActorOf) -> None:
    ddm1 = actor("ddm1").id
    submitted_claim(db, actor)
    submitted_claim(db, actor)
    first, _second = notifications.list_for(db, ddm1)
    assert notifications.mark_read(db, ddm1, first.id) == 1
    assert notifications.unread_count(db, ddm1) == 1
    assert notifications.mark_read(db, actor("ddm2").id, _second.id) == 0  # not theirs
    assert notifications.mark_read(db, ddm1) == 1
    assert notifications.unread_count(db, ddm1) == 0
    assert all(item.read for item in notifications.list_for(db, ddm1))


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_migration_gives_existing_users_their_demo_address_and_chinese(
    tmp_path: Path,
) -> None:
    old = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with old.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            text(
                'INSERT INTO "user" (id, username, display_name, password_hash, active)'
                " VALUES (1, 'sales1', 'S', 'x', 1)"
            )
        )
    old.upgrade()
    with old.engine.connect() as connection:
        row = connection.execute(text('SELECT email, language FROM "user"')).one()
    assert tuple(row) == ("sales1@opsflow.example", "zh")
    old.dispose()
