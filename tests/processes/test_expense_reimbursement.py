"""P6 expense reimbursement, driven through the engine's public services as the demo department."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from engine import audit, case_files, runtime
from engine.errors import InvalidInputError, PermissionDeniedError
from engine.runtime.services import timers
from engine.storage.db import Database
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, history_types, inbox_row, open_task, work
from tests.expense_claims import claim_data

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")


APPROVE = {"decision": "同意"}


def reloaded(db: Database) -> Database:
    """The same database through a new handle: no hot workflow, every step restores from storage."""
    return Database(db.url)


def test_within_budget_rejected_revised_and_paid_with_restore_at_every_step(
    db: Database, actor: ActorOf
) -> None:
    # Acceptance scenario 4: 12,000 within budget → DDM → DM; DM rejects; revision 2; both approve; paid.
    start = runtime.start_instance(
        db, actor("sales1"), "expense_reimbursement", business_key="EXP-2026-0001"
    )
    steps = [
        ("sales1", "submit_claim", claim_data("12000.00", "差旅")),
        ("ddm1", "approve_ddm", APPROVE),
        ("dm", "approve_dm", {"decision": "驳回", "comment": "缺少会议议程"}),
        (
            "sales1",
            "revise_claim",
            claim_data(
                "12000.00", "差旅", purpose="赴上海参加保险公司产品培训的差旅费用，附会议议程"
            ),
        ),
        ("ddm1", "approve_ddm", APPROVE),
        ("dm", "approve_dm", APPROVE),
        (
            "acc1",
            "finance_review",
            {"voucher_no": "记-2026-03-001", "account_code": "6601.02", "decision": "通过"},
        ),
        ("cash1", "pay", {"payment_reference": "PAY-778899", "paid_on": "2026-03-02"}),
    ]
    for username, bpmn_id, data in steps:
        handle = reloaded(
            db
        )  # a fresh handle: the step restores the instance from its stored state
        summary = work(handle, actor(username), start.id, bpmn_id, data)
        handle.dispose()
    assert summary.status == runtime.COMPLETED
    view = runtime.get_instance(db, start.id)
    assert view.data["approval_chain"] == "DDM,DM"
    assert view.data["revision"] == 2
    assert view.data["paid"] is True
    completed = [e for e in view.history if e["type"] == "task_completed"]
    assert [(e["actor"], e["task_id"]) for e in completed] == [(u, t) for u, t, _ in steps]
    assert completed[2]["payload"]["data"]["comment"] == "缺少会议议程"


@pytest.mark.parametrize(("budget", "chain"), [("50000.00", "DDM,DM,GM"), ("60000.00", "DDM,DM")])
def test_the_budget_ledger_decides_whether_the_claim_is_within_budget(
    db: Database, actor: ActorOf, budget: str, chain: str
) -> None:
    # Acceptance scenario 4, variant: 市场推广 2026 with 41,000 spent; 12,000 needs 12,000 available
    with db.unit_of_work() as session:
        case_files.budget.set_line(session, 2026, "运营部", "市场推广", budget, spent="41000.00")
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data("12000.00", "市场推广"))
    data = runtime.get_instance(db, case.id).data
    assert data["approval_chain"] == chain
    assert data["budget"]["available"] == str(Decimal(budget) - 41000)
    for level in chain.split(","):
        work(
            db,
            actor({"DDM": "ddm2", "DM": "dm", "GM": "gm"}[level]),
            case.id,
            f"approve_{level.lower()}",
            APPROVE,
        )
    assert open_task(db, case.id, "finance_review")


def ledger(db: Database, category: str) -> tuple[str, str]:
    with db.read() as session:
        line = case_files.budget.line_of(session, 2026, "运营部", category)
        return line.committed, line.spent


def test_a_claim_commits_its_amount_until_it_is_paid_or_withdrawn(
    db: Database, actor: ActorOf
) -> None:
    paid = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), paid.id, "submit_claim", claim_data("800.00", "培训"))
    assert ledger(db, "培训") == ("800.00", "0.00")
    work(db, actor("ddm1"), paid.id, "approve_ddm", {"decision": "驳回", "comment": "请补发票"})
    work(db, actor("sales1"), paid.id, "revise_claim", claim_data("600.00", "培训"))
    assert ledger(db, "培训") == ("600.00", "0.00")  # the revision replaces the commitment
    withdrawn = runtime.start_instance(db, actor("sales2"), "expense_reimbursement")
    work(db, actor("sales2"), withdrawn.id, "submit_claim", claim_data("300.00", "培训"))
    assert ledger(db, "培训") == ("900.00", "0.00")
    work(
        db, actor("ddm1"), withdrawn.id, "approve_ddm", {"decision": "驳回", "comment": "不予报销"}
    )
    work(
        db,
        actor("sales2"),
        withdrawn.id,
        "revise_claim",
        claim_data("300.00", "培训", action="撤回"),
    )
    assert ledger(db, "培训") == ("600.00", "0.00")
    work(db, actor("ddm1"), paid.id, "approve_ddm", APPROVE)
    finance = {"voucher_no": "记-2026-03-002", "account_code": "6601.05", "decision": "通过"}
    work(db, actor("acc1"), paid.id, "finance_review", finance)
    work(
        db, actor("cash1"), paid.id, "pay", {"payment_reference": "PAY-1", "paid_on": "2026-03-02"}
    )
    assert ledger(db, "培训") == ("0.00", "600.00")
    budget_calls = [
        (e["task_id"], e["payload"]["operator"])
        for e in runtime.get_instance(db, paid.id).history
        if e["type"] == "operator_called" and e["payload"]["operator"].startswith("budget_")
    ]
    assert budget_calls == [
        ("check_budget", "budget_check"), ("check_budget", "budget_check"),
        ("commit_spend", "budget_spend"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "category", "chain"),
    [
        ("800.00", "办公", "DDM"),
        ("800.00", "业务招待", "DDM,DM"),
        ("5000.00", "差旅", "DDM"),
        ("5000.01", "差旅", "DDM,DM"),
        ("20000.00", "差旅", "DDM,DM"),
        ("20000.01", "差旅", "DDM,DM,GM"),
    ],
)
def test_the_dmn_approval_authority_decides_the_chain(
    db: Database, actor: ActorOf, amount: str, category: str, chain: str
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data(amount, category))
    assert runtime.get_instance(db, case.id).data["approval_chain"] == chain


def test_invalid_claim_is_refused_with_field_errors_and_nothing_is_saved(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    task_id = open_task(db, case.id, "submit_claim")
    before = runtime.get_instance(db, case.id)
    with pytest.raises(InvalidInputError) as error:
        runtime.complete_task(
            db, actor("sales1"), task_id, claim_data(amount="12.345", purpose="太短")
        )
    assert set(error.value.field_errors) >= {"amount", "purpose"}
    after = runtime.get_instance(db, case.id)
    assert after.summary.version == before.summary.version
    assert after.history == before.history
    assert open_task(db, case.id, "submit_claim") == task_id


def test_invoice_total_mismatch_sends_the_claim_back_to_the_applicant(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    data = claim_data(invoices=[{"invoice_no": "A-1", "date": "2026-02-26", "amount": "100.00"}])
    work(db, actor("sales1"), case.id, "submit_claim", data)
    assert "不一致" in runtime.get_instance(db, case.id).data["claim_problem"]
    work(db, actor("sales1"), case.id, "revise_claim", claim_data(action="撤回"))
    assert runtime.get_instance(db, case.id).summary.status == runtime.COMPLETED


def test_the_submitter_may_not_approve_their_own_claim_and_the_attempt_is_audited(
    db: Database, actor: ActorOf
) -> None:
    # the claim is the general manager's own: no one above, so the GM level stays a role queue
    case = runtime.start_instance(db, actor("gm"), "expense_reimbursement")
    work(db, actor("gm"), case.id, "submit_claim", claim_data("12000.00", "市场推广"))
    for approver in ("ddm1", "dm"):
        work(db, actor(approver), case.id, f"approve_{approver.rstrip('1')}", APPROVE)
    with pytest.raises(PermissionDeniedError, match="申请人不得审批"):
        work(db, actor("gm"), case.id, "approve_gm", APPROVE)
    assert "permission_denied" in history_types(db, case.id)


def test_a_level_the_applicant_holds_moves_up_to_their_manager(
    db: Database, actor: ActorOf
) -> None:
    # 副经理 ddm1 claims 800: the DDM level goes to ddm1's manager, not to the peer ddm2
    case = runtime.start_instance(db, actor("ddm1"), "expense_reimbursement")
    work(db, actor("ddm1"), case.id, "submit_claim", claim_data("800.00", "办公"))
    task = open_task(db, case.id, "approve_ddm")
    assert inbox_row(db, task).assignee_id == actor("dm").id
    for colleague in ("ddm1", "ddm2"):
        with pytest.raises(PermissionDeniedError):
            runtime.complete_task(db, actor(colleague), task, APPROVE)
    runtime.complete_task(db, actor("dm"), task, APPROVE)
    open_task(db, case.id, "finance_review")
    # 部门经理 dm claims 12,000: DDM approves, then the DM level goes to dm's manager, gm
    case = runtime.start_instance(db, actor("dm"), "expense_reimbursement")
    work(db, actor("dm"), case.id, "submit_claim", claim_data("12000.00", "差旅"))
    work(db, actor("ddm2"), case.id, "approve_ddm", APPROVE)
    task = open_task(db, case.id, "approve_dm")
    assert inbox_row(db, task).assignee_id == actor("gm").id
    runtime.complete_task(db, actor("gm"), task, APPROVE)
    open_task(db, case.id, "finance_review")


def test_the_cashier_cannot_review_and_a_reviewer_cannot_pay(db: Database, actor: ActorOf) -> None:
    from engine.people import identity

    with db.unit_of_work() as session:
        identity.create_user(
            session, "fin_both", "兼岗财务", password="x", roles=["FIN_ACC", "FIN_CASH"]
        )
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data("800.00", "办公"))
    work(db, actor("ddm1"), case.id, "approve_ddm", APPROVE)
    with pytest.raises(PermissionDeniedError, match="FIN_ACC"):
        work(
            db,
            actor("cash1"),
            case.id,
            "finance_review",
            {"voucher_no": "V1", "account_code": "6601", "decision": "通过"},
        )
    work(
        db,
        actor("fin_both"),
        case.id,
        "finance_review",
        {"voucher_no": "V1", "account_code": "6601", "decision": "通过"},
    )
    with pytest.raises(PermissionDeniedError, match="职责分离"):
        work(
            db,
            actor("fin_both"),
            case.id,
            "pay",
            {"payment_reference": "P1", "paid_on": "2026-03-02"},
        )
    assert history_types(db, case.id).count("permission_denied") == 2
    work(db, actor("cash1"), case.id, "pay", {"payment_reference": "P1", "paid_on": "2026-03-02"})


def test_reminder_timer_and_working_day_deadline_fire_with_a_moved_clock(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data("800.00", "办公"))
    task_id = open_task(db, case.id, "approve_ddm")
    frozen_clock.advance(timedelta(days=2, hours=23))
    assert timers.run_once(db) == 0
    frozen_clock.advance(timedelta(hours=2))  # 3 days after the task arrived: the reminder
    assert timers.run_once(db) == 1
    assert "timer_fired" in history_types(db, case.id)
    assert open_task(db, case.id, "approve_ddm") == task_id  # non-interrupting: the task stays
    # Monday 2026-03-02 + 5 working days = end of Monday 2026-03-09 (China time)
    frozen_clock.set(frozen_clock.at.replace(day=9, hour=15))
    assert timers.run_once(db) == 0
    frozen_clock.advance(timedelta(hours=1))
    assert timers.run_once(db) == 1
    assert "task_overdue" in history_types(db, case.id)


def test_the_audit_chain_of_a_full_case_verifies(db: Database, actor: ActorOf) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data("800.00", "办公"))
    with db.read() as session:
        report = audit.verify(session)
    assert report.ok
    assert report.checked >= 5


def test_the_audit_holds_the_decision_with_its_inputs_and_the_path_taken(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data("12000.00", "差旅"))
    history = runtime.get_instance(db, case.id).history
    decision = next(e for e in history if e["type"] == "decision_made")
    assert decision["task_id"] == "decide_chain"
    assert decision["payload"] == {
        "decision": "expense_approval",
        "inputs": {"预算内": True, "金额（元）": "12000.00", "费用类别": "差旅"},
        "outputs": {"approval_chain": "DDM,DM"},
        "version": 1,
    }
    paths = [(e["task_id"], e["payload"]["to"]) for e in history if e["type"] == "gateway_taken"]
    assert paths == [("gw_claim_ok", ["check_budget"])]
    budget = next(
        e
        for e in history
        if e["type"] == "operator_called" and e["payload"]["operator"] == "budget_check"
    )
    assert budget["payload"]["result"]["available"] == "80000.00"  # the budget snapshot


def test_an_invoice_serves_one_claim_until_that_claim_is_withdrawn(
    db: Database, actor: ActorOf
) -> None:
    invoice = [{"invoice_no": "FP-2026-777", "date": "2026-02-26", "amount": "800.00"}]
    first = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), first.id, "submit_claim", claim_data(invoices=invoice))
    open_task(db, first.id, "approve_ddm")
    second = runtime.start_instance(db, actor("sales2"), "expense_reimbursement")
    work(db, actor("sales2"), second.id, "submit_claim", claim_data(invoices=invoice))
    # the same invoice in a second claim: back to its applicant, saying why
    assert (
        "FP-2026-777 已在其他报销申请中使用"
        in runtime.get_instance(db, second.id).data["claim_problem"]
    )
    open_task(db, second.id, "revise_claim")
    # the first claim is rejected and withdrawn: its invoice is free again
    work(
        db,
        actor("ddm1"),
        first.id,
        "approve_ddm",
        {"decision": "驳回", "comment": "发票应由本人报销"},
    )
    work(db, actor("sales1"), first.id, "revise_claim", claim_data(action="撤回"))
    work(db, actor("sales2"), second.id, "revise_claim", claim_data(invoices=invoice))
    open_task(db, second.id, "approve_ddm")
