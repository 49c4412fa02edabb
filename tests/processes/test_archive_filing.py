"""P8a archive filing, driven through the engine's public services as the demo department.

The producer registers the item, the tables decide the retention (every applicable rule,
the longest wins) and the filing checklist, accounting files may stay with the accountants
until the end of the year after their fiscal year (R11 第10条), and the archivist accepts
within 5 working days or returns the item to the producer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import audit, runtime
from engine.errors import InvalidInputError, PermissionDeniedError
from engine.people import identity
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.storage.models import ArchiveItem
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, history_types, inbox_row, open_task, work

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

KEY = "archive_filing"
HASH = "ab" * 32
ACCEPT = {
    "acceptance_decision": "接收",
    "checklist_confirmed": "已按归档清单逐项核对",
    "archive_no": "YW-2026-0001",
    "storage_location": "档案室 A 柜 3 层",
}
RETURN = {
    "acceptance_decision": "退回",
    "return_reason": "缺少佣金收取情况说明，请补充后重新归档。",
}


def item(document_type: str = "保单业务档案", **changes: Any) -> dict[str, Any]:
    """A valid archive_item submission; the category follows the document type."""
    accounting = {
        "佣金收入原始凭证",
        "会计凭证",
        "会计账簿",
        "会计档案移交清册",
        "月度/季度/半年度财务报告",
        "银行存款余额调节表",
        "银行对账单",
        "纳税申报表",
        "年度财务报告",
        "会计档案保管清册",
        "会计档案鉴定意见书",
        "档案销毁清册",
        "固定资产卡片",
    }
    data: dict[str, Any] = {
        "category": "财务/会计档案" if document_type in accounting else "业务档案",
        "document_type": document_type,
        "title": f"{document_type} 样本",
        "related_ref": "P2026000123",
        "media": "纸质",
        "location": "运营部文件柜 2 层",
    }
    if document_type in {"保单业务档案", "客户告知书", "双录及电子销售记录"}:
        data["policy_term_months"] = 240
    if document_type in accounting - {"档案销毁清册", "固定资产卡片"}:
        data["fiscal_year"] = 2025
    data.update(changes)
    return data


def file_item(db: Database, actor: ActorOf, producer: str, data: dict[str, Any]) -> int:
    case = runtime.start_instance(db, actor(producer), KEY, business_key=data.get("related_ref"))
    work(db, actor(producer), case.id, "fill_item", data)
    return case.id


def completed(db: Database, case_id: int) -> list[tuple[str, str]]:
    return [
        (event["actor"], event["task_id"])
        for event in runtime.get_instance(db, case_id).history
        if event["type"] == "task_completed"
    ]


def test_business_file_is_filed_and_accepted_with_its_retention_on_record(
    db: Database, actor: ActorOf
) -> None:
    data = item(contract_end_date="2046-03-01")
    case_id = file_item(db, actor, "sales1", data)
    view = runtime.get_instance(db, case_id)
    assert view.data["retention_until"] == "2056-03-01"  # 10 years after the contract ends
    assert [row["item"] for row in view.data["archive_checklist_items"]][-4:] == [
        "保单基本情况：保险人、投保人、被保险人名称或姓名，险种及产品名称，保险金额，保险费，缴费方式，投保日期，保险期间",
        "保险费代收及交付保险公司情况",
        "佣金金额及收取情况",
        "提供代理服务的保险销售从业人员姓名及执业登记编号",
    ]
    # the archivist's queue, not the producer's, with a 5-working-day deadline
    task = inbox.get_task(db, open_task(db, case_id, "accept_item"))
    assert task is not None
    assert (task.candidate_role, task.assignee_id) == ("ARC", None)
    created = [e for e in view.history if e["type"] == "task_created"]
    assert created[-1]["task_id"] == "accept_item"
    assert created[-1]["payload"]["due_at"].startswith("2026-03-09T23:59:59")

    summary = work(db, actor("arc1"), case_id, "accept_item", ACCEPT)

    assert summary.status == runtime.COMPLETED
    view = runtime.get_instance(db, case_id)
    assert view.data["archived"] is True
    assert view.data["archive_location"] == "档案室 A 柜 3 层"
    assert completed(db, case_id) == [("sales1", "fill_item"), ("arc1", "accept_item")]
    # Audit (P8): the retention rule and the version it came from
    started = next(e for e in view.history if e["type"] == "instance_started")
    assert started["payload"]["version"] >= 1
    assert len(started["payload"]["sha256"]) == 64  # over the BPMN, its DMN tables and forms
    final = next(e for e in view.history if e["type"] == "instance_completed")["payload"]["data"]
    assert final["retention_until"] == "2056-03-01"
    assert final["retention_basis_text"] == "R1 第56条"
    assert final["retention_rules"] == [
        {
            "months": 120,
            "permanent": False,
            "start_event": "保险合同终止",
            "start_date": "2046-03-01",
            "expires_on": "2056-03-01",
            "basis": "R1 第56条",
        }
    ]
    accepted = next(
        e for e in view.history if e["task_id"] == "accept_item" and "data" in e["payload"]
    )
    assert accepted["payload"]["data"]["archive_no"] == "YW-2026-0001"
    assert accepted["payload"]["data"]["checklist_confirmed"] == "已按归档清单逐项核对"
    with db.read() as session:
        assert audit.verify(session).ok


@pytest.mark.parametrize(
    ("data", "until", "longest", "basis"),
    [
        # R1 第56条: policy term up to one year → 5 years, longer → 10 years, from the contract's end
        (
            item(policy_term_months=12, contract_end_date="2026-12-31"),
            "2031-12-31",
            60,
            "R1 第56条",
        ),
        (
            item(policy_term_months=240, contract_end_date="2046-03-01"),
            "2056-03-01",
            120,
            "R1 第56条",
        ),
        # R8 第34条: identity materials 10 years after the relationship ends
        (
            item("客户身份资料", category="客户档案", retention_start_date="2026-02-28"),
            "2036-02-28",
            120,
            "R8 第34条",
        ),
        # R11: vouchers 30 years, bank statements 10 years, from the day after the fiscal year
        (item("会计凭证"), "2056-01-01", 360, "R11 第14条、附表 [V]"),
        (item("银行对账单"), "2036-01-01", 120, "R11 附表 [V]"),
        # commission vouchers: R1 第56条 (contract end) and R11 (30 years): the longer applies
        (
            item("佣金收入原始凭证", contract_end_date="2030-12-31"),
            "2056-01-01",
            360,
            "R1 第56条；R11 第14条、附表 [V]",
        ),
        # R14 第50条: terminated labour contracts 2 years
        (
            item(
                "劳动合同（已解除或终止）", category="人事档案", retention_start_date="2026-01-31"
            ),
            "2028-01-31",
            24,
            "R14 第50条",
        ),
        # R12: system logs 6 months (a month-end start stays at the month's end)
        (
            item("系统日志", category="管理档案", retention_start_date="2025-08-31"),
            "2026-02-28",
            6,
            "R12 [V]、R13 第21条",
        ),
        # R9 第56条: impact assessments 3 years (29 February → 28 February)
        (
            item(
                "个人信息保护影响评估报告及处理记录",
                category="管理档案",
                retention_start_date="2024-02-29",
            ),
            "2027-02-28",
            36,
            "R9 第56条",
        ),
        # R3 第13条: recordings in a complaint are kept 2 years after it ends, if that is later
        (
            item(
                "双录及电子销售记录",
                policy_term_months=12,
                contract_end_date="2026-06-30",
                hold=True,
                hold_type="投诉",
                hold_reason="客户投诉销售误导，处理中。",
                retention_start_date="2031-01-15",
            ),
            "2033-01-15",
            60,
            "R1 第56条；R3 第13条",
        ),
    ],
)
def test_the_retention_is_the_latest_expiry_of_every_rule_that_applies(
    db: Database, actor: ActorOf, data: dict[str, Any], until: str, longest: int, basis: str
) -> None:
    case_id = file_item(db, actor, "ops1", data)
    result = runtime.get_instance(db, case_id).data
    assert result["retention_until"] == until
    assert result["retention_longest_months"] == longest
    assert result["retention_basis_text"] == basis
    assert result["retention_permanent"] is False
    assert result["retention_pending"] == []


@pytest.mark.parametrize(
    "data",
    [
        item("年度财务报告"),
        item("档案销毁清册"),
        item("会计档案鉴定意见书"),
        item("管理文件（永久）", category="管理档案"),
    ],
)
def test_permanent_files_have_no_expiry(db: Database, actor: ActorOf, data: dict[str, Any]) -> None:
    case_id = file_item(db, actor, "acc1", data)
    result = runtime.get_instance(db, case_id).data
    assert result["retention_permanent"] is True
    assert result["retention_until"] is None
    assert result["retention_longest_months"] == 11988


@pytest.mark.parametrize(
    ("data", "pending", "not_before"),
    [
        # the contract has not ended yet: the period cannot start
        (item(), ["保险合同终止"], None),
        # a recording under a complaint that is still open: at least the contract rule's date
        (
            item(
                "双录及电子销售记录",
                policy_term_months=12,
                contract_end_date="2026-06-30",
                hold=True,
                hold_type="诉讼/仲裁",
                hold_reason="客户起诉，案件审理中。",
            ),
            ["争议结束"],
            "2031-06-30",
        ),
    ],
)
def test_retention_stays_open_while_a_start_event_is_unknown(
    db: Database, actor: ActorOf, data: dict[str, Any], pending: list[str], not_before: str | None
) -> None:
    case_id = file_item(db, actor, "sales1", data)
    result = runtime.get_instance(db, case_id).data
    assert result["retention_until"] is None  # never destroyable before the date is known
    assert result["retention_pending"] == pending
    assert result["retention_not_before"] == not_before


def test_returned_item_is_corrected_and_the_tables_run_again(db: Database, actor: ActorOf) -> None:
    case_id = file_item(db, actor, "sales1", item())
    work(db, actor("arc1"), case_id, "accept_item", RETURN)
    revise = inbox.get_task(db, open_task(db, case_id, "revise_item"))
    assert revise is not None
    assert revise.assignee_id == actor("sales1").id  # back to the producer
    # the producer corrects the category: the checklist and retention are recomputed from scratch
    corrected = item(
        "客户身份资料",
        category="客户档案",
        title="李建国 客户身份资料",
        retention_start_date="2026-02-27",
    )
    work(db, actor("sales1"), case_id, "revise_item", corrected)
    data = runtime.get_instance(db, case_id).data
    assert [row["item"] for row in data["archive_checklist_items"]] == [
        "题名",
        "形成日期或所属年度",
        "形成部门",
        "件数或页数",
        "客户基本信息、需求偏好、购买记录",
    ]
    assert [rule["basis"] for rule in data["retention_rules"]] == ["R8 第34条"]
    assert data["retention_until"] == "2036-02-27"
    summary = work(db, actor("arc1"), case_id, "accept_item", ACCEPT)
    assert summary.status == runtime.COMPLETED
    assert completed(db, case_id) == [
        ("sales1", "fill_item"),
        ("arc1", "accept_item"),
        ("sales1", "revise_item"),
        ("arc1", "accept_item"),
    ]
    history = runtime.get_instance(db, case_id).history
    returned = [
        e for e in history if e["type"] == "task_completed" and e["task_id"] == "accept_item"
    ]
    assert returned[0]["payload"]["data"]["return_reason"] == RETURN["return_reason"]


def test_electronic_files_need_their_hashes_and_accepted_ones_are_on_the_checklist(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("ops1"), KEY)
    task_id = open_task(db, case.id, "fill_item")
    with pytest.raises(InvalidInputError) as error:
        runtime.complete_task(db, actor("ops1"), task_id, item(media="电子"))
    assert "electronic_files" in error.value.field_errors
    work(db, actor("ops1"), case.id, "fill_item", item(media="电子", electronic_files=[HASH]))
    data = runtime.get_instance(db, case.id).data
    assert "电子文件内容哈希（SHA-256）" in [row["item"] for row in data["archive_checklist_items"]]
    assert data["electronic_files"] == [HASH]


def test_accounting_files_stay_with_accounting_and_the_end_of_custody_is_reminded(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = file_item(db, actor, "acc1", item("会计凭证", related_ref="记-2025-12-031"))
    transfer_id = open_task(db, case_id, "transfer_accounting")
    assert inbox_row(db, transfer_id).candidate_role == "FIN_ACC"
    # the cashier does not keep accounting archives (R10 第35条)
    with pytest.raises(PermissionDeniedError, match="FIN_ACC"):
        work(db, actor("cash1"), case_id, "transfer_accounting")
    assert "permission_denied" in history_types(db, case_id)
    # one year of custody after fiscal year 2025: reminded at the end of 2026 (China time)
    assert runtime.get_instance(db, case_id).data["custody_ends_at"] == "2026-12-31T23:59:59+08:00"
    frozen_clock.set(datetime(2026, 12, 31, 15, 59, tzinfo=UTC))
    assert timers.run_once(db) == 0
    frozen_clock.advance(timedelta(minutes=1))
    assert timers.run_once(db) == 1
    fired = [e for e in runtime.get_instance(db, case_id).history if e["type"] == "timer_fired"]
    assert [e["task_id"] for e in fired] == ["remind_transfer"]
    assert open_task(db, case_id, "transfer_accounting") == transfer_id  # still to be done
    work(db, actor("acc1"), case_id, "transfer_accounting")
    summary = work(
        db, actor("arc1"), case_id, "accept_item", ACCEPT | {"archive_no": "KJ-2025-0001"}
    )
    assert summary.status == runtime.COMPLETED
    assert completed(db, case_id) == [
        ("acc1", "fill_item"),
        ("acc1", "transfer_accounting"),
        ("arc1", "accept_item"),
    ]


def test_acceptance_overdue_after_five_working_days(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    case_id = file_item(db, actor, "cs1", item("投诉记录", category="业务档案"))
    # Monday 2026-03-02 + 5 working days = end of Monday 2026-03-09 (China time)
    frozen_clock.set(datetime(2026, 3, 9, 15, 59, tzinfo=UTC))
    assert timers.run_once(db) == 0
    frozen_clock.advance(timedelta(minutes=1))
    assert timers.run_once(db) == 1
    overdue = [e for e in runtime.get_instance(db, case_id).history if e["type"] == "task_overdue"]
    assert [(e["task_id"], e["payload"]["role"]) for e in overdue] == [("accept_item", "ARC")]
    work(db, actor("arc1"), case_id, "accept_item", ACCEPT)  # late, but still accepted


def test_the_producer_may_not_accept_their_own_filing(db: Database, actor: ActorOf) -> None:
    with db.unit_of_work() as session:
        identity.create_user(session, "arc2", "第二档案员", password="x", roles=["ARC"])
    case_id = file_item(
        db,
        actor,
        "arc1",
        item("管理文件（10年）", category="管理档案", retention_start_date="2026-03-02"),
    )
    with pytest.raises(PermissionDeniedError, match="申请人不得审批"):
        work(db, actor("arc1"), case_id, "accept_item", ACCEPT)
    denied = [
        e for e in runtime.get_instance(db, case_id).history if e["type"] == "permission_denied"
    ]
    assert [(e["actor"], e["task_id"]) for e in denied] == [("arc1", "accept_item")]
    assert work(db, actor("arc2"), case_id, "accept_item", ACCEPT).status == runtime.COMPLETED


def test_who_hands_accounting_files_over_may_not_accept_them(db: Database, actor: ActorOf) -> None:
    with db.unit_of_work() as session:
        identity.create_user(
            session, "acc_arc", "兼岗会计档案", password="x", roles=["FIN_ACC", "ARC"]
        )
    case_id = file_item(db, actor, "acc1", item("会计账簿"))
    work(db, actor("acc_arc"), case_id, "transfer_accounting")
    with pytest.raises(PermissionDeniedError, match="职责分离"):
        work(db, actor("acc_arc"), case_id, "accept_item", ACCEPT)
    assert "permission_denied" in history_types(db, case_id)
    assert work(db, actor("arc1"), case_id, "accept_item", ACCEPT).status == runtime.COMPLETED


def test_every_step_restores_the_case_from_storage(db: Database, actor: ActorOf) -> None:
    """Dates, the rule list and the checklist survive being written and read back."""
    steps = [
        ("acc1", "fill_item", item("佣金收入原始凭证", contract_end_date="2030-12-31")),
        ("acc1", "transfer_accounting", {}),
        ("arc1", "accept_item", RETURN),
        ("acc1", "revise_item", item("佣金收入原始凭证", contract_end_date="2031-06-30")),
        ("acc1", "transfer_accounting", {}),
        ("arc1", "accept_item", ACCEPT | {"archive_no": "KJ-2025-0002"}),
    ]
    case_id = runtime.start_instance(db, actor("acc1"), KEY).id
    for username, bpmn_id, data in steps:
        handle = Database(db.url)  # no hot workflow: the step starts from the stored state
        summary = work(handle, actor(username), case_id, bpmn_id, data)
        handle.dispose()
    assert summary.status == runtime.COMPLETED
    stored = runtime.get_instance(db, case_id).data
    assert [(r["start_event"], r["expires_on"]) for r in stored["retention_rules"]] == [
        ("保险合同终止", "2041-06-30"),
        ("会计年度终了次日", "2056-01-01"),
    ]
    assert stored["retention_until"] == "2056-01-01"
    assert completed(db, case_id) == [(u, t) for u, t, _ in steps]


def test_accepted_items_enter_the_catalogue_and_come_up_for_destruction_when_due(
    db: Database, actor: ActorOf
) -> None:
    # system logs from 31 August 2025 are kept 6 months: due on 2026-02-28, before "today"
    logs = item("系统日志", category="管理档案", retention_start_date="2025-08-31")
    logs_id = file_item(db, actor, "ops1", logs)
    work(db, actor("arc1"), logs_id, "accept_item", ACCEPT | {"archive_no": "GL-2025-0001"})
    report_id = file_item(db, actor, "acc1", item("年度财务报告"))
    work(db, actor("acc1"), report_id, "transfer_accounting")
    work(db, actor("arc1"), report_id, "accept_item", ACCEPT | {"archive_no": "KJ-2025-0009"})
    assert runtime.get_instance(db, logs_id).data["catalogued"] == {"registered": ["GL-2025-0001"]}
    with db.read() as session:
        logs_row = session.get(ArchiveItem, "GL-2025-0001")
        report_row = session.get(ArchiveItem, "KJ-2025-0009")
        assert logs_row is not None
        assert report_row is not None
        assert (logs_row.retention_until, logs_row.permanent) == ("2026-02-28", False)
        assert (logs_row.category, logs_row.location) == ("管理档案", ACCEPT["storage_location"])
        assert (report_row.retention_until, report_row.permanent) == (None, True)
    called = [
        e for e in runtime.get_instance(db, logs_id).history if e["type"] == "operator_called"
    ]
    assert [(e["task_id"], e["payload"]["operator"]) for e in called] == [
        ("catalogue_item", "archive_register")
    ]
    # the yearly destruction run lists the expired logs, never the permanent report
    run = runtime.start_instance(db, actor("arc1"), "archive_destruction")
    due = [c["archive_no"] for c in runtime.get_instance(db, run.id).data["destruction_candidates"]]
    assert "GL-2025-0001" in due
    assert "KJ-2025-0009" not in due
