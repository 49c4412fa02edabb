"""P8b archive access, driven through the engine's public services as the demo department.

No access without authorisation (七(二)2): the request goes through the approvers the
``archive_access_authority`` table names, access is granted for the approved period only and
revoked by a timer when it ends; borrowed originals come back through the archivist's return
check, with a reminder when they are due.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engine import audit, forms, runtime
from engine.config import PROJECT_ROOT
from engine.definitions import registry
from engine.errors import PermissionDeniedError
from engine.people import identity
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, history_types, inbox_row, open_task, work

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

KEY = "archive_access"
APPROVE = {"approval_decision": "同意"}
REFUSE = {"approval_decision": "不同意", "approval_comment": "用途说明不足，不予查阅。"}
RETURNED = {"returned_on": "2026-03-05", "return_condition": "完好无缺"}
APPROVAL_TASK = {
    "DDM": "approve_ddm",
    "FIN_ACC": "approve_fin",
    "DM": "approve_dm",
    "GM": "approve_gm",
}
APPROVER = {"DDM": "ddm1", "FIN_ACC": "acc1", "DM": "dm", "GM": "gm"}
# one second before the access period ends (23:59:59 China time on Friday 6 March), in UTC;
# the exact instant is avoided: there the worker and SpiffWorkflow disagree (see the report)
BEFORE_MARCH_6_END = datetime(2026, 3, 6, 15, 59, 58, tzinfo=UTC)


def request(**changes: Any) -> dict[str, Any]:
    """A valid archive_access_request: own team's business file, viewed Monday to Friday."""
    data: dict[str, Any] = {
        "items": [{"archive_no": "YW-2026-0001", "title": "李建国 重疾险保单业务档案"}],
        "archive_category": "业务档案",
        "own_team_files": True,
        "sensitive_personal_info": False,
        "purpose": "投诉处理",
        "purpose_detail": "核实投诉所涉保单的销售过程。",
        "access_mode": "查阅",
        "access_from": "2026-03-02",
        "access_to": "2026-03-06",
    }
    data.update(changes)
    return data


def ask(db: Database, actor: ActorOf, requester: str, data: dict[str, Any]) -> int:
    case = runtime.start_instance(db, actor(requester), KEY)
    work(db, actor(requester), case.id, "request_access", data)
    return case.id


def approve_chain(db: Database, actor: ActorOf, case_id: int, chain: str) -> None:
    for level in chain.split(","):
        work(db, actor(APPROVER[level]), case_id, APPROVAL_TASK[level], APPROVE)


def completed(db: Database, case_id: int) -> list[tuple[str, str]]:
    return [
        (event["actor"], event["task_id"])
        for event in runtime.get_instance(db, case_id).history
        if event["type"] == "task_completed"
    ]


def test_own_team_file_is_viewed_for_the_approved_week_then_revoked(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = ask(db, actor, "sales1", request())
    task = inbox.get_task(db, open_task(db, case_id, "approve_ddm"))
    assert task is not None
    assert task.candidate_role == "DDM"
    work(db, actor("ddm1"), case_id, "approve_ddm", APPROVE)

    view = runtime.get_instance(db, case_id)
    assert view.data["access_approval_chain"] == "DDM"
    assert view.data["access_granted"] is True
    assert view.data["access_ends_at"] == "2026-03-06T23:59:59+08:00"
    assert [bpmn_id for bpmn_id, _ in view.waiting_timers] == ["wait_access_end"]
    frozen_clock.set(BEFORE_MARCH_6_END)
    assert timers.run_once(db) == 0
    frozen_clock.advance(timedelta(seconds=2))
    assert timers.run_once(db) == 1

    view = runtime.get_instance(db, case_id)
    assert view.summary.status == runtime.COMPLETED
    assert view.data["access_granted"] is False
    assert view.data["access_revoked"] is True
    assert view.data["access_revoke_reason"] == "访问期限届满，自动收回"
    # Audit (P8): who asked for which files, why and how; the approval; the revocation
    events = {e["type"]: e for e in view.history}
    asked = next(
        e
        for e in view.history
        if e["task_id"] == "request_access" and e["type"] == "task_completed"
    )
    assert asked["actor"] == "sales1"
    assert asked["payload"]["data"]["items"][0]["archive_no"] == "YW-2026-0001"
    assert (asked["payload"]["data"]["purpose"], asked["payload"]["data"]["access_mode"]) == (
        "投诉处理",
        "查阅",
    )
    assert events["timer_fired"]["task_id"] == "wait_access_end"
    assert events["timer_fired"]["payload"]["due"] == "2026-03-06T23:59:59+08:00"
    final = events["instance_completed"]["payload"]["data"]
    assert (final["access_from"], final["access_until"]) == ("2026-03-02", "2026-03-06")
    assert completed(db, case_id) == [("sales1", "request_access"), ("ddm1", "approve_ddm")]
    with db.read() as session:
        assert audit.verify(session).ok


@pytest.mark.parametrize(
    ("changes", "chain", "exceptional"),
    [
        ({}, "DDM", False),
        ({"sensitive_personal_info": True}, "DM", False),
        ({"own_team_files": False}, "DM", False),
        ({"archive_category": "人事档案", "own_team_files": False}, "DM", False),
        ({"archive_category": "财务/会计档案", "own_team_files": False}, "FIN_ACC,DM", False),
        ({"access_mode": "借出", "lend_outside_unit": True}, "DM,GM", True),
        (
            {"archive_category": "财务/会计档案", "access_mode": "借出", "lend_outside_unit": True},
            "FIN_ACC,DM,GM",
            True,
        ),
    ],
)
def test_the_authority_table_decides_who_approves_in_turn(
    db: Database, actor: ActorOf, changes: dict[str, Any], chain: str, exceptional: bool
) -> None:
    case_id = ask(db, actor, "sales1", request(**changes))
    data = runtime.get_instance(db, case_id).data
    assert (data["access_approval_chain"], data["access_exceptional"]) == (chain, exceptional)
    approve_chain(db, actor, case_id, chain)
    assert completed(db, case_id)[1:] == [
        (APPROVER[level], APPROVAL_TASK[level]) for level in chain.split(",")
    ]
    assert runtime.get_instance(db, case_id).data["access_granted"] is True
    # borrowed originals wait for the archivist's return check, the rest for the period's end
    if changes.get("access_mode") == "借出":
        open_task(db, case_id, "return_check")
    else:
        assert [t for t, _ in runtime.get_instance(db, case_id).waiting_timers] == [
            "wait_access_end"
        ]


@pytest.mark.parametrize(
    ("changes", "approved_before", "refuser"),
    [
        ({}, "", "DDM"),
        ({"archive_category": "财务/会计档案"}, "", "FIN_ACC"),
        ({"archive_category": "财务/会计档案"}, "FIN_ACC", "DM"),
        ({"access_mode": "借出", "lend_outside_unit": True}, "DM", "GM"),
    ],
)
def test_a_refusal_at_any_level_ends_the_request_without_access(
    db: Database, actor: ActorOf, changes: dict[str, Any], approved_before: str, refuser: str
) -> None:
    case_id = ask(db, actor, "cs1", request(**changes))
    if approved_before:
        approve_chain(db, actor, case_id, approved_before)
    summary = work(db, actor(APPROVER[refuser]), case_id, APPROVAL_TASK[refuser], REFUSE)
    assert summary.status == runtime.COMPLETED
    view = runtime.get_instance(db, case_id)
    assert "access_granted" not in view.data
    assert view.waiting_timers == ()
    refusal = [e for e in view.history if e["type"] == "task_completed"][-1]
    assert refusal["payload"]["data"]["approval_comment"] == REFUSE["approval_comment"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        # Monday to the next Monday: 6 working days, over the table's 5
        ({"access_to": "2026-03-09"}, "申请访问 6 个工作日，超过最长 5 个工作日"),
        ({"access_from": "2026-03-06", "access_to": "2026-03-05"}, "访问截止日期早于开始日期"),
        ({"lend_outside_unit": True}, "只有借出原件时才能选择借出至本单位以外"),
    ],
)
def test_an_invalid_request_goes_back_to_the_applicant_until_it_is_fixed(
    db: Database, actor: ActorOf, changes: dict[str, Any], problem: str
) -> None:
    case_id = ask(db, actor, "sales1", request(**changes))
    view = runtime.get_instance(db, case_id)
    assert view.data["request_problem"] == problem
    revise = inbox.get_task(db, open_task(db, case_id, "revise_request"))
    assert revise is not None
    assert revise.assignee_id == actor("sales1").id
    # Thursday to the next Wednesday: 7 calendar days, 5 working days
    work(
        db,
        actor("sales1"),
        case_id,
        "revise_request",
        request(access_from="2026-03-05", access_to="2026-03-11"),
    )
    data = runtime.get_instance(db, case_id).data
    assert (data["request_problem"], data["access_working_days"]) == ("", 5)
    open_task(db, case_id, "approve_ddm")


def test_the_applicant_may_withdraw_a_returned_request(db: Database, actor: ActorOf) -> None:
    case_id = ask(db, actor, "sales1", request(access_to="2026-03-10"))
    open_task(db, case_id, "revise_request")
    summary = runtime.cancel_instance(db, actor("sales1"), case_id, "不再需要查阅")
    assert summary.status == runtime.CANCELLED
    assert "instance_cancelled" in history_types(db, case_id)


def test_approvers_may_shorten_the_period_and_a_higher_level_cannot_lengthen_it(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = ask(db, actor, "ops1", request(archive_category="财务/会计档案"))
    work(db, actor("acc1"), case_id, "approve_fin", APPROVE | {"approved_access_to": "2026-03-04"})
    work(db, actor("dm"), case_id, "approve_dm", APPROVE)  # leaves the date empty
    data = runtime.get_instance(db, case_id).data
    assert data["access_until"] == "2026-03-04"
    assert data["access_ends_at"] == "2026-03-04T23:59:59+08:00"
    frozen_clock.set(datetime(2026, 3, 4, 16, 0, tzinfo=UTC))
    assert timers.run_once(db) == 1
    assert runtime.get_instance(db, case_id).summary.status == runtime.COMPLETED


def test_borrowed_originals_are_reminded_when_due_and_checked_back_in(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = ask(db, actor, "sales1", request(access_mode="借出"))
    work(db, actor("ddm1"), case_id, "approve_ddm", APPROVE)
    check_id = open_task(db, case_id, "return_check")
    assert inbox_row(db, check_id).candidate_role == "ARC"
    frozen_clock.set(BEFORE_MARCH_6_END)
    assert timers.run_once(db) == 0
    frozen_clock.advance(timedelta(seconds=2))
    assert timers.run_once(db) == 1  # due back: the reminder
    fired = [e for e in runtime.get_instance(db, case_id).history if e["type"] == "timer_fired"]
    assert [e["task_id"] for e in fired] == ["remind_return"]
    assert open_task(db, case_id, "return_check") == check_id  # the loan stays open
    assert runtime.get_instance(db, case_id).data["access_granted"] is True
    # part comes back: the check opens again for the rest
    partly = {
        "returned_on": "2026-03-09",
        "return_condition": "部分未归还",
        "return_issue": "第 2 册尚未归还。",
    }
    frozen_clock.set(datetime(2026, 3, 9, 2, 0, tzinfo=UTC))
    work(db, actor("arc1"), case_id, "return_check", partly)
    assert runtime.get_instance(db, case_id).data["access_granted"] is True
    work(db, actor("arc1"), case_id, "return_check", RETURNED | {"returned_on": "2026-03-09"})
    view = runtime.get_instance(db, case_id)
    assert view.summary.status == runtime.COMPLETED
    assert view.data["access_revoke_reason"] == "借出档案已归还"
    assert view.data["return_problem"] is False
    assert completed(db, case_id)[-2:] == [("arc1", "return_check"), ("arc1", "return_check")]


def test_a_damaged_return_is_recorded(db: Database, actor: ActorOf) -> None:
    case_id = ask(db, actor, "sales1", request(access_mode="借出"))
    work(db, actor("ddm2"), case_id, "approve_ddm", APPROVE)
    damaged = {
        "returned_on": "2026-03-02",
        "return_condition": "缺损或缺页",
        "return_issue": "第 12 页缺失。",
    }
    work(db, actor("arc1"), case_id, "return_check", damaged)
    view = runtime.get_instance(db, case_id)
    assert view.summary.status == runtime.COMPLETED
    assert view.data["return_problem"] is True
    check = [e for e in view.history if e["type"] == "task_completed"][-1]
    assert check["payload"]["data"]["return_issue"] == "第 12 页缺失。"


def test_the_requester_may_not_approve_their_own_request(db: Database, actor: ActorOf) -> None:
    case_id = ask(db, actor, "ddm1", request())
    with pytest.raises(PermissionDeniedError, match="申请人不得审批"):
        work(db, actor("ddm1"), case_id, "approve_ddm", APPROVE)
    denied = [
        e for e in runtime.get_instance(db, case_id).history if e["type"] == "permission_denied"
    ]
    assert [(e["actor"], e["task_id"]) for e in denied] == [("ddm1", "approve_ddm")]
    work(db, actor("ddm2"), case_id, "approve_ddm", APPROVE)
    assert runtime.get_instance(db, case_id).data["access_granted"] is True


def test_the_cashier_cannot_approve_access_to_accounting_archives(
    db: Database, actor: ActorOf
) -> None:
    case_id = ask(db, actor, "ops1", request(archive_category="财务/会计档案"))
    with pytest.raises(PermissionDeniedError, match="FIN_ACC"):
        work(db, actor("cash1"), case_id, "approve_fin", APPROVE)
    assert "permission_denied" in history_types(db, case_id)


def test_two_levels_are_two_people(db: Database, actor: ActorOf) -> None:
    with db.unit_of_work() as session:
        identity.create_user(
            session, "fin_dm", "兼岗财务经理", password="x", roles=["FIN_ACC", "DM"]
        )
    case_id = ask(db, actor, "ops1", request(archive_category="财务/会计档案"))
    work(db, actor("fin_dm"), case_id, "approve_fin", APPROVE)
    with pytest.raises(PermissionDeniedError, match="职责分离"):
        work(db, actor("fin_dm"), case_id, "approve_dm", APPROVE)
    assert "permission_denied" in history_types(db, case_id)
    work(db, actor("dm"), case_id, "approve_dm", APPROVE)


def test_the_archivist_checking_a_return_is_neither_an_approver_nor_the_borrower(
    db: Database, actor: ActorOf
) -> None:
    with db.unit_of_work() as session:
        identity.create_user(
            session, "ddm_arc", "兼岗副经理档案", password="x", roles=["DDM", "ARC"]
        )
        identity.create_user(session, "arc2", "第二档案员", password="x", roles=["ARC"])
    # an approver may not check the return of what they approved
    case_id = ask(db, actor, "sales1", request(access_mode="借出"))
    work(db, actor("ddm_arc"), case_id, "approve_ddm", APPROVE)
    with pytest.raises(PermissionDeniedError, match="职责分离"):
        work(
            db, actor("ddm_arc"), case_id, "return_check", RETURNED | {"returned_on": "2026-03-02"}
        )
    work(db, actor("arc1"), case_id, "return_check", RETURNED | {"returned_on": "2026-03-02"})
    # the archivist who borrowed may not check their own return
    own = ask(db, actor, "arc1", request(access_mode="借出", own_team_files=False))
    work(db, actor("dm"), own, "approve_dm", APPROVE)
    with pytest.raises(PermissionDeniedError, match="申请人不得审批"):
        work(db, actor("arc1"), own, "return_check", RETURNED | {"returned_on": "2026-03-02"})
    work(db, actor("arc2"), own, "return_check", RETURNED | {"returned_on": "2026-03-02"})
    for case in (case_id, own):
        assert "permission_denied" in history_types(db, case)
        assert runtime.get_instance(db, case).summary.status == runtime.COMPLETED


def _deploy_with_chains(db: Database, chains: dict[str, str]) -> None:
    """Redeploy the process with the authority table's chains changed (process owners may)."""
    table = (PROJECT_ROOT / "processes" / "archive_access_authority.dmn").read_text(
        encoding="utf-8"
    )
    for rule, chain in chains.items():
        before, rest = table.split(
            f'<outputEntry id="archive_access_authority_{rule}_o0"><text>', 1
        )
        _old, after = rest.split("</text>", 1)
        entry = (
            f'<outputEntry id="archive_access_authority_{rule}_o0"><text>&quot;{chain}&quot;</text>'
        )
        table = before + entry + after
    files = registry.ProcessFiles(
        "archive_access.bpmn",
        (PROJECT_ROOT / "processes" / "archive_access.bpmn").read_text(encoding="utf-8"),
        {"archive_access_authority.dmn": table},
        forms.load_forms_dir(PROJECT_ROOT / "forms"),
    )
    with db.unit_of_work() as session:
        assert registry.deploy(session, identity.SYSTEM, files).version == 2


def test_chains_the_shipped_table_does_not_produce_still_route_upwards(
    db: Database, actor: ActorOf
) -> None:
    _deploy_with_chains(db, {"r1": "DDM,DM", "r5": "FIN_ACC"})
    up = ask(db, actor, "sales1", request())
    approve_chain(db, actor, up, "DDM,DM")
    assert completed(db, up)[1:] == [("ddm1", "approve_ddm"), ("dm", "approve_dm")]
    alone = ask(db, actor, "sales1", request(archive_category="财务/会计档案"))
    approve_chain(db, actor, alone, "FIN_ACC")
    for case in (up, alone):
        assert runtime.get_instance(db, case).data["access_granted"] is True


def test_working_days_exclude_weekends(db: Database, actor: ActorOf) -> None:
    # Saturday 7 March to Friday 13 March: 5 working days
    case_id = ask(db, actor, "sales1", request(access_from="2026-03-07", access_to="2026-03-13"))
    data = runtime.get_instance(db, case_id).data
    assert (data["access_working_days"], data["request_problem"]) == (5, "")
    assert date.fromisoformat(data["access_until"]) == date(2026, 3, 13)


def test_every_step_restores_the_case_from_storage(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    """The dates compared in scripts and the timer survive being written and read back."""
    case_id = runtime.start_instance(db, actor("ops1"), KEY).id
    steps = [
        ("ops1", "request_access", request(access_to="2026-03-09")),
        ("ops1", "revise_request", request(archive_category="财务/会计档案", access_mode="借出")),
        ("acc1", "approve_fin", APPROVE | {"approved_access_to": "2026-03-05"}),
        ("dm", "approve_dm", APPROVE | {"approved_access_to": "2026-03-06"}),
    ]
    for username, bpmn_id, data in steps:
        handle = Database(db.url)
        work(handle, actor(username), case_id, bpmn_id, data)
        handle.dispose()
    assert runtime.get_instance(db, case_id).data["access_until"] == "2026-03-05"
    frozen_clock.set(datetime(2026, 3, 5, 16, 0, 1, tzinfo=UTC))
    handle = Database(db.url)
    assert timers.run_once(handle) == 1
    work(handle, actor("arc1"), case_id, "return_check", RETURNED | {"returned_on": "2026-03-05"})
    handle.dispose()
    view = runtime.get_instance(db, case_id)
    assert view.summary.status == runtime.COMPLETED
    assert [e["task_id"] for e in view.history if e["type"] == "timer_fired"] == ["remind_return"]
