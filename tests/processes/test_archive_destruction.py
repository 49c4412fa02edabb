"""P8d archive destruction, driven through the engine's public services as the demo department.

Once a year (or by the archivist's hand) the catalogue lists the files whose retention has ended;
the archivist appraises them with finance and compliance countersigning, compiles the
destruction list, five people sign it in turn, two or three supervisors count the files, the
holds are checked again at that moment, the files still free are destroyed, the supervisors sign
after, and the list itself is filed for good (七(三); R11 第16–19条 by analogy; R3 第13条).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine import audit, runtime
from engine.definitions import registry
from engine.definitions.registry import DeployedVersion
from engine.errors import PermissionDeniedError
from engine.people import identity
from engine.runtime.services import catalogue, inbox, timers
from engine.sandbox import script_helpers
from engine.storage.db import Database
from engine.storage.models import ArchiveItem
from engine.timekeeping.clock import FrozenClock
from tests.conftest import ActorOf, history_types, open_task, work
from tests.diagrams import files, process, sequence, service_task

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock", "catalogued")

KEY = "archive_destruction"
HASH = "ab" * 32
TODAY = "2026-03-02"  # the frozen clock's date (China time)
# (archive_no, category, title, related_ref, retention_until, media); YW-2019-0007 is demo data
SEEDED = [
    ("DZ-2018-0002", "业务档案", "2018 年电子投保记录", "P2018000002", "2024-12-31", "电子"),
    ("KJ-2014-0003", "财务/会计档案", "2014 年度会计凭证（7-12 月）", "FY2014", "2025-01-01", "纸质"),
    ("KJ-2014-0004", "财务/会计档案", "2014 年应收佣金记账凭证", "记-2014-12-088", "2025-01-01", "纸质"),
    ("YW-2015-0021", "业务档案", "2015 年团体意外险保单业务档案", "P2015000021", "2025-12-31", "纸质"),
]  # fmt: skip
DUE = ["DZ-2018-0002", "KJ-2014-0003", "KJ-2014-0004", "YW-2015-0021", "YW-2019-0007"]
RESULTS = {
    "DZ-2018-0002": {"appraisal_result": "同意销毁"},
    "KJ-2014-0003": {"appraisal_result": "同意销毁"},
    "KJ-2014-0004": {
        "appraisal_result": "未结清债权债务单独保管",
        "appraisal_reason": "应收佣金尚未结清（R11 第19条）。",
    },
    "YW-2015-0021": {
        "appraisal_result": "继续保管",
        "new_retention_until": "2030-12-31",
        "appraisal_reason": "团体客户诉讼时效未届满。",
    },
    "YW-2019-0007": {"appraisal_result": "同意销毁"},
}
VOLUMES = {"DZ-2018-0002": 1, "KJ-2014-0003": 6, "YW-2019-0007": 2}
SIGNERS = [
    ("arc1", "sign_arc_handler"),
    ("acc1", "sign_fin_handler"),
    ("dm", "sign_arc_head"),
    ("fin_head", "sign_fin_head"),
    ("gm", "sign_unit_head"),
]
AGREE = {"signoff_opinion": "同意"}
PAPER = {"destruction_method": "粉碎"}
ERASED = {"destruction_method": "电子擦除", "backup_removal": "随备份轮换周期删除"}


def appraisal(results: dict[str, dict[str, Any]] = RESULTS) -> dict[str, Any]:
    return {
        "appraised_on": TODAY,
        "appraisal_participants": [
            {"participant_name": "蒋档案", "participant_department": "档案管理"},
            {"participant_name": "褚会计", "participant_department": "财务"},
            {"participant_name": "沈合规", "participant_department": "审计/合规"},
            {"participant_name": "韩纪检", "participant_department": "纪检监察"},
        ],
        "appraisal_items": [{"archive_no": no, **result} for no, result in results.items()],
        "appraisal_opinion": "除继续保管和未结清债权债务的凭证外，均已到期且无保存价值，同意销毁。",
        "appraisal_report": [HASH],
    }


def destruction_list(volumes: dict[str, int] = VOLUMES) -> dict[str, Any]:
    rows = [
        {
            "item_name": f"档案 {no}",
            "volume_no": f"卷-{no}",
            "volume_count": count,
            "start_year": int(no[3:7]),
            "end_year": int(no[3:7]),
            "archive_no": no,
            "retention_period": "10年",
            "kept_period": "11年",
            "destruction_date": "2026-03-20",
        }
        for no, count in volumes.items()
    ]
    return {"list_no": "XH-2026-01", "prepared_on": TODAY, "destruction_items": rows}


def counted(count: int) -> dict[str, Any]:
    return {"pre_destruction_check": "销毁前已按清册逐项清点核对", "count_checked": count}


def signed(method: dict[str, str]) -> dict[str, Any]:
    return {
        "supervisors": [
            {"supervisor_name": "蒋档案", "supervisor_unit": "档案管理"},
            {"supervisor_name": "褚会计", "supervisor_unit": "财务"},
        ],
        "pre_destruction_check": "销毁前已按清册逐项清点核对",
        "count_checked": 9,
        "signed_at": TODAY,
        "signed_list": [HASH],
        **method,
    }


# --- the catalogue: items registered and holds placed through tiny test-only processes ---


def _deploy(db: Database, key: str, body: str) -> None:
    with db.unit_of_work() as session:
        registry.deploy(session, identity.SYSTEM, files(f"{key}.bpmn", process(key, body)))


def _chain(node: str) -> str:
    return f'<bpmn:startEvent id="start"/>{node}<bpmn:endEvent id="end"/>' + sequence(
        "start", "op", "end"
    )


@pytest.fixture
def catalogued(db: Database, deployed: list[DeployedVersion]) -> None:
    """The seeded due files and the place_hold test process."""
    _deploy(db, "seed", _chain(service_task("op", "登记", "archive_register", "r", items="items")))
    hold = service_task(
        "op", "冻结", "archive_hold", "r", related_ref="ref", reason="reason", case_ref="case"
    )
    _deploy(db, "place_hold", _chain(hold))
    fields = ("archive_no", "category", "title", "related_ref", "retention_until", "media")
    items = [dict(zip(fields, row, strict=True)) | {"location": "档案室"} for row in SEEDED]
    runtime.start_instance(db, identity.SYSTEM, "seed", {"items": items})


def place_hold(db: Database, actor: ActorOf, ref: str, case: str = "TS-2026-0001") -> None:
    data = {"ref": ref, "reason": "客户投诉处理中", "case": case}
    assert runtime.start_instance(db, actor("cs1"), "place_hold", data).status == runtime.COMPLETED


# --- driving the procedure ---


def start(db: Database, actor: ActorOf) -> int:
    return catalogue.start(db, actor("arc1"), KEY).id


def appraised(db: Database, actor: ActorOf, results: dict[str, dict[str, Any]] = RESULTS) -> int:
    case_id = start(db, actor)
    work(db, actor("arc1"), case_id, "appraise", appraisal(results))
    work(db, actor("acc1"), case_id, "review_fin", {"review_opinion": "同意"})
    work(db, actor("cmp1"), case_id, "review_cmp", {"review_opinion": "同意"})
    return case_id


def sign_all(db: Database, actor: ActorOf, case_id: int) -> None:
    for username, bpmn_id in SIGNERS:
        work(db, actor(username), case_id, bpmn_id, AGREE)


def listed_and_signed(db: Database, actor: ActorOf) -> int:
    case_id = appraised(db, actor)
    work(db, actor("arc1"), case_id, "compile_list", destruction_list())
    sign_all(db, actor, case_id)
    return case_id


def counted_by_all(db: Database, actor: ActorOf, case_id: int, count: int = 9) -> None:
    work(db, actor("arc1"), case_id, "check_arc", counted(count))
    work(db, actor("acc1"), case_id, "check_fin", counted(count))
    if runtime.get_instance(db, case_id).data["list_has_electronic"]:
        work(db, actor("admin"), case_id, "check_it", counted(count))


def open_ids(db: Database, case_id: int) -> list[str]:
    return sorted(row.bpmn_id for row in inbox.open_tasks_of(db, case_id))


def completed(db: Database, case_id: int) -> list[tuple[str, str]]:
    return [
        (e["actor"], e["task_id"])
        for e in runtime.get_instance(db, case_id).history
        if e["type"] == "task_completed"
    ]


def operator_calls(db: Database, case_id: int) -> dict[str, list[dict[str, Any]]]:
    calls: dict[str, list[dict[str, Any]]] = {}
    for e in runtime.get_instance(db, case_id).history:
        if e["type"] == "operator_called":
            calls.setdefault(e["payload"]["operator"], []).append(e["payload"])
    return calls


def catalogue_state(db: Database) -> dict[str, tuple[bool, bool]]:
    """archive_no -> (destroyed, permanent)."""
    with db.read() as session:
        rows = session.scalars(select(ArchiveItem).order_by(ArchiveItem.archive_no)).all()
        return {r.archive_no: (r.destroyed_at is not None, bool(r.permanent)) for r in rows}


# --- tests ---


def test_due_files_are_appraised_listed_signed_counted_destroyed_and_the_list_filed(
    db: Database, actor: ActorOf
) -> None:
    case_id = start(db, actor)
    data = runtime.get_instance(db, case_id).data
    assert [c["archive_no"] for c in data["destruction_candidates"]] == DUE
    assert open_ids(db, case_id) == ["appraise"]
    work(db, actor("arc1"), case_id, "appraise", appraisal())
    work(db, actor("acc1"), case_id, "review_fin", {"review_opinion": "同意"})
    work(db, actor("cmp1"), case_id, "review_cmp", {"review_opinion": "同意"})
    data = runtime.get_instance(db, case_id).data
    assert data["approved_nos"] == ["DZ-2018-0002", "KJ-2014-0003", "YW-2019-0007"]
    assert [k["archive_no"] for k in data["kept_items"]] == ["YW-2015-0021"]
    assert [u["archive_no"] for u in data["unsettled_items"]] == ["KJ-2014-0004"]
    work(db, actor("arc1"), case_id, "compile_list", destruction_list())
    for username, bpmn_id in SIGNERS:
        task = inbox.get_task(db, open_task(db, case_id, bpmn_id))
        assert task is not None
        assert task.candidate_role == {"arc1": "ARC", "dm": "DM", "gm": "GM"}.get(
            username, "FIN_ACC"
        )
        work(db, actor(username), case_id, bpmn_id, AGREE)
    data = runtime.get_instance(db, case_id).data
    assert (data["list_volume_total"], data["list_has_electronic"]) == (9, True)
    counted_by_all(db, actor, case_id)  # archives, finance and IT (an electronic file)
    assert catalogue_state(db)["KJ-2014-0003"] == (True, False)  # destroyed right after the count
    assert open_ids(db, case_id) == ["sign_after_arc", "sign_after_fin", "sign_after_it"]
    work(db, actor("arc1"), case_id, "sign_after_arc", signed(PAPER))
    work(db, actor("admin"), case_id, "sign_after_it", signed(ERASED))
    summary = work(db, actor("acc1"), case_id, "sign_after_fin", signed(PAPER))

    assert summary.status == runtime.COMPLETED
    state = catalogue_state(db)
    assert [no for no, (gone, _p) in state.items() if gone] == sorted(VOLUMES)
    assert state["KJ-2014-0004"] == state["YW-2015-0021"] == (False, False)
    assert state["XH-2026-01"] == (False, True)  # the list itself, kept permanently
    view = runtime.get_instance(db, case_id)
    record = view.data["destruction_record"]
    assert record | {"destroyed_at": None, "list_sha256": None} == {
        "list_no": "XH-2026-01", "list_version": 1, "destroyed": sorted(VOLUMES),
        "destroyed_at": None, "volume_total": 9, "blocked_by_hold": [],
        "kept_by_appraisal": ["YW-2015-0021"], "unsettled_kept_apart": ["KJ-2014-0004"],
        "refusals": 0, "list_sha256": None,
    }  # fmt: skip
    # the fingerprint of the final list as signed: any copy of the list can be checked against it
    assert record["list_sha256"] == script_helpers.sha256_json(view.data["destruction_items"])
    # Audit (P8d): the rule and version, the opinions, each signature, the supervisors, the list
    started = next(e for e in view.history if e["type"] == "instance_started")["payload"]
    assert started["version"] >= 1
    assert len(started["sha256"]) == 64
    calls = operator_calls(db, case_id)
    assert calls["archive_destruction_candidates"][0]["params"] == {"as_of": TODAY}
    due = {c["archive_no"]: c for c in calls["archive_destruction_candidates"][0]["result"]}
    assert due["KJ-2014-0003"]["retention_until"] == "2025-01-01"
    assert calls["archive_held"][0]["result"] == []
    assert calls["archive_destroy"][0]["params"] == {
        "archive_nos": sorted(VOLUMES),
        "list_ref": "XH-2026-01",
    }
    assert calls["archive_register"][0]["result"] == {"registered": ["XH-2026-01"]}
    destroyed = next(e for e in view.history if e["type"] == "archive_destroyed")
    assert (destroyed["payload"]["list_ref"], destroyed["payload"]["items"]) == (
        "XH-2026-01",
        sorted(VOLUMES),
    )
    assert completed(db, case_id) == [
        ("arc1", "appraise"), ("acc1", "review_fin"), ("cmp1", "review_cmp"),
        ("arc1", "compile_list"), *SIGNERS, ("arc1", "check_arc"), ("acc1", "check_fin"),
        ("admin", "check_it"), ("arc1", "sign_after_arc"), ("admin", "sign_after_it"),
        ("acc1", "sign_after_fin"),
    ]  # fmt: skip
    by_task = {e["task_id"]: e for e in view.history if e["type"] == "task_completed"}
    opinions = by_task["appraise"]["payload"]["data"]["appraisal_items"]
    assert {row["archive_no"]: row["appraisal_result"] for row in opinions}["KJ-2014-0004"] == (
        "未结清债权债务单独保管"
    )
    assert by_task["sign_unit_head"]["payload"]["data"]["signoff_opinion"] == "同意"
    final_list = by_task["compile_list"]["payload"]["data"]["destruction_items"]
    assert [row["archive_no"] for row in final_list] == list(VOLUMES)
    assert len(by_task["compile_list"]["hash"]) == 64  # the chained hash covers the final list
    with db.read() as session:
        assert audit.verify(session).ok


@pytest.mark.parametrize(
    ("held_refs", "destroyed"),
    [
        (["P2018000002"], ["KJ-2014-0003", "YW-2019-0007"]),
        (["P2019000007", "FY2014", "P2018000002"], []),
    ],
)
def test_a_hold_placed_after_signing_blocks_destruction_of_those_files(
    db: Database, actor: ActorOf, held_refs: list[str], destroyed: list[str]
) -> None:
    case_id = listed_and_signed(db, actor)
    work(db, actor("arc1"), case_id, "check_arc", counted(9))
    work(db, actor("acc1"), case_id, "check_fin", counted(9))
    for ref in held_refs:  # a complaint arrives while the supervisors are counting
        place_hold(db, actor, ref)
    summary = work(db, actor("admin"), case_id, "check_it", counted(9))

    data = runtime.get_instance(db, case_id).data
    blocked = sorted(set(VOLUMES) - set(destroyed))
    assert data["destruction_blocked"] is True
    assert data["blocking_record"]["blocked"] == blocked
    assert "R3 第13条" in data["blocking_record"]["rule"]
    assert operator_calls(db, case_id)["archive_held"][0]["result"] == blocked
    state = catalogue_state(db)
    assert [no for no in sorted(VOLUMES) if state[no][0]] == destroyed
    if destroyed:  # the electronic file is held: no IT signature is needed after destruction
        assert open_ids(db, case_id) == ["sign_after_arc", "sign_after_fin"]
        work(db, actor("arc1"), case_id, "sign_after_arc", signed(PAPER))
        summary = work(db, actor("acc1"), case_id, "sign_after_fin", signed(PAPER))
    else:
        assert "archive_destroy" not in operator_calls(db, case_id)
    assert summary.status == runtime.COMPLETED
    record = runtime.get_instance(db, case_id).data["destruction_record"]
    assert (record["destroyed"], record["blocked_by_hold"]) == (destroyed, blocked)
    assert catalogue_state(db)["XH-2026-01"] == (False, True)
    # the next run does not offer the held files either
    next_run = start(db, actor)
    due = runtime.get_instance(db, next_run).data["destruction_candidates"]
    assert not {c["archive_no"] for c in due} & set(blocked)


def test_a_refusal_returns_the_list_with_comments_and_everyone_signs_again(
    db: Database, actor: ActorOf
) -> None:
    case_id = appraised(db, actor)
    work(db, actor("arc1"), case_id, "compile_list", destruction_list())
    for username, bpmn_id in SIGNERS[:3]:
        work(db, actor(username), case_id, bpmn_id, AGREE)
    refusal = {"signoff_opinion": "不同意", "signoff_comment": "KJ-2014-0003 册数应为 7 册。"}
    work(db, actor("fin_head"), case_id, "sign_fin_head", refusal)
    assert open_ids(db, case_id) == ["compile_list"]
    data = runtime.get_instance(db, case_id).data
    assert data["list_return_comment"].endswith("KJ-2014-0003 册数应为 7 册。")
    assert data["list_refusals"] == 1
    revised = destruction_list(VOLUMES | {"KJ-2014-0003": 7}) | {"revision_note": "册数已更正"}
    work(db, actor("arc1"), case_id, "compile_list", revised)
    assert open_ids(db, case_id) == ["sign_arc_handler"]  # the chain starts again from the top
    sign_all(db, actor, case_id)
    counted_by_all(db, actor, case_id, 10)
    assert runtime.get_instance(db, case_id).data["list_version"] == 2
    signers = [who for who, task in completed(db, case_id) if task.startswith("sign_")]
    assert signers == ["arc1", "acc1", "dm", "fin_head"] + [u for u, _t in SIGNERS]


@pytest.mark.parametrize(
    ("done", "intruder", "task"),
    [
        (SIGNERS[:3], "acc1", "sign_fin_head"),  # the finance handler may not sign as head
        ([("arc_acc", "sign_arc_handler")], "arc_acc", "sign_fin_handler"),  # one person, two roles
    ],
)
def test_the_same_person_never_signs_twice(
    db: Database, actor: ActorOf, done: list[tuple[str, str]], intruder: str, task: str
) -> None:
    with db.unit_of_work() as session:
        identity.create_user(session, "arc_acc", "兼岗", password="x", roles=["ARC", "FIN_ACC"])
    case_id = appraised(db, actor)
    work(db, actor("arc1"), case_id, "compile_list", destruction_list())
    for username, bpmn_id in done:
        work(db, actor(username), case_id, bpmn_id, AGREE)
    with pytest.raises(PermissionDeniedError, match="职责分离"):
        work(db, actor(intruder), case_id, task, AGREE)
    history = runtime.get_instance(db, case_id).history
    denied = [(e["actor"], e["task_id"]) for e in history if e["type"] == "permission_denied"]
    assert denied == [(intruder, task)]
    assert open_ids(db, case_id) == [task]  # still waiting for someone else


def test_one_person_may_not_supervise_for_two_units(db: Database, actor: ActorOf) -> None:
    with db.unit_of_work() as session:
        identity.create_user(session, "arc_acc", "兼岗", password="x", roles=["ARC", "FIN_ACC"])
    case_id = listed_and_signed(db, actor)
    work(db, actor("arc_acc"), case_id, "check_arc", counted(9))
    with pytest.raises(PermissionDeniedError, match="职责分离"):
        work(db, actor("arc_acc"), case_id, "check_fin", counted(9))
    assert "permission_denied" in history_types(db, case_id)
    work(db, actor("acc1"), case_id, "check_fin", counted(9))
    assert open_ids(db, case_id) == ["check_it"]


def test_a_miscount_before_destruction_returns_the_list_and_destroys_nothing(
    db: Database, actor: ActorOf
) -> None:
    case_id = listed_and_signed(db, actor)
    work(db, actor("arc1"), case_id, "check_arc", counted(9))
    work(db, actor("acc1"), case_id, "check_fin", counted(8))
    assert open_ids(db, case_id) == ["compile_list"]
    comment = runtime.get_instance(db, case_id).data["list_return_comment"]
    assert comment.startswith("监销清点 8 册，与清册合计 9 册不符")
    assert not any(gone for gone, _p in catalogue_state(db).values())
    work(
        db, actor("arc1"), case_id, "compile_list", destruction_list(VOLUMES | {"YW-2019-0007": 1})
    )
    sign_all(db, actor, case_id)
    counted_by_all(db, actor, case_id, 8)
    assert open_ids(db, case_id) == ["sign_after_arc", "sign_after_fin", "sign_after_it"]


def test_appraisal_covers_every_due_file_and_finance_and_compliance_countersign(
    db: Database, actor: ActorOf
) -> None:
    case_id = start(db, actor)
    partial = {no: r for no, r in RESULTS.items() if no != "KJ-2014-0004"}
    work(db, actor("arc1"), case_id, "appraise", appraisal(partial))
    assert open_ids(db, case_id) == ["appraise"]
    assert "KJ-2014-0004" in runtime.get_instance(db, case_id).data["appraisal_problem"]
    work(db, actor("arc1"), case_id, "appraise", appraisal())
    work(db, actor("acc1"), case_id, "review_fin", {"review_opinion": "同意"})
    objection = {"review_opinion": "不同意", "review_comment": "YW-2019-0007 仍在理赔追偿中。"}
    work(db, actor("cmp1"), case_id, "review_cmp", objection)
    assert open_ids(db, case_id) == ["appraise"]
    assert runtime.get_instance(db, case_id).data["review_comment"] == objection["review_comment"]
    kept = RESULTS | {
        "YW-2019-0007": {
            "appraisal_result": "继续保管",
            "new_retention_until": "2028-12-31",
            "appraisal_reason": "理赔追偿未结束。",
        }
    }
    work(db, actor("arc1"), case_id, "appraise", appraisal(kept))
    with pytest.raises(PermissionDeniedError, match="FIN_ACC"):
        work(db, actor("cmp1"), case_id, "review_fin", {"review_opinion": "同意"})
    work(db, actor("acc1"), case_id, "review_fin", {"review_opinion": "同意"})
    work(db, actor("cmp1"), case_id, "review_cmp", {"review_opinion": "同意"})
    assert runtime.get_instance(db, case_id).data["approved_nos"] == [
        "DZ-2018-0002",
        "KJ-2014-0003",
    ]
    # a file kept by the appraisal may not be put on the list
    work(db, actor("arc1"), case_id, "compile_list", destruction_list())
    assert open_ids(db, case_id) == ["compile_list"]
    assert "YW-2019-0007" in runtime.get_instance(db, case_id).data["list_problem"]


def test_nothing_approved_ends_without_a_list(db: Database, actor: ActorOf) -> None:
    keep = {"appraisal_result": "继续保管", "new_retention_until": "2030-12-31"}
    results = {no: keep | {"appraisal_reason": "仍需保存。"} for no in DUE}
    case_id = appraised(db, actor, results)
    view = runtime.get_instance(db, case_id)
    assert view.summary.status == runtime.COMPLETED
    assert len(view.data["kept_items"]) == 5
    assert "archive_destroy" not in operator_calls(db, case_id)
    assert "compile_list" not in [task for _who, task in completed(db, case_id)]


def test_nothing_due_ends_at_once(db: Database, actor: ActorOf) -> None:
    for ref in ("P2019000007", "P2018000002", "FY2014", "记-2014-12-088", "P2015000021"):
        place_hold(db, actor, ref)  # every due file is held: nothing may even be appraised
    view = runtime.get_instance(db, start(db, actor))
    assert view.summary.status == runtime.COMPLETED
    assert view.data["destruction_candidates"] == []
    assert [e["payload"]["to"] for e in view.history if e["type"] == "gateway_taken"] == [
        ["end_none_due"]
    ]


def test_the_annual_timer_starts_the_run_and_only_the_archivist_starts_it_by_hand(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    with pytest.raises(PermissionDeniedError):
        catalogue.start(db, actor("acc1"), KEY)
    # 15 January 2027, 09:00 China time: the yearly run starts by itself, as the system
    frozen_clock.set(datetime(2027, 1, 15, 0, 59, tzinfo=UTC))
    assert timers.start_next_periodic(db) is None
    frozen_clock.advance(timedelta(minutes=1))
    case_id = timers.start_next_periodic(db)
    assert case_id is not None
    view = runtime.get_instance(db, case_id)
    assert view.data["starter"] == "system"
    assert [c["archive_no"] for c in view.data["destruction_candidates"]] == DUE
    calls = operator_calls(db, case_id)["archive_destruction_candidates"]
    assert calls[0]["params"] == {"as_of": "2027-01-15"}
    task = inbox.get_task(db, open_task(db, case_id, "appraise"))
    assert task is not None
    assert task.candidate_role == "ARC"
    # the next run is a year later
    frozen_clock.advance(timedelta(days=1))
    assert timers.start_next_periodic(db) is None
