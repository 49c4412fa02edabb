"""Service-task operators through the runtime: case files, the archive catalogue and holds, the
paused deadline clock; and the task rules that go with them (``dueAt``, ``excludeUsers``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from engine import runtime
from engine.definitions import registry
from engine.errors import PermissionDeniedError
from engine.people import identity
from engine.runtime.services import inbox, instance_view, timers
from engine.storage.db import Database
from engine.storage.models import (
    ArchiveHold,
    ArchiveItem,
    AuditEvent,
    Customer,
    HumanTask,
    Policy,
    Timer,
    User,
)
from engine.timekeeping.clock import FrozenClock
from tests.conftest import START, ActorOf, inbox_row, open_task, work
from tests.diagrams import files, flow, process, sequence, service_task, user_task

pytestmark = pytest.mark.usefixtures("frozen_clock")


MEDIATION_FORM = (
    '{"key": "mediation", "title": {"zh": "调查"}, "fields": [{"name": "mediation",'
    ' "type": "boolean", "required": true, "label": {"zh": "需要调解"}}]}'
)


def deploy(db: Database, xml: str) -> None:
    with db.unit_of_work() as session:
        registry.deploy(
            session, identity.SYSTEM, files("ops.bpmn", xml, {"mediation": MEDIATION_FORM})
        )


def events(db: Database, instance_id: int, type_: str) -> list[dict[str, Any]]:
    with db.read() as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.instance_id == instance_id, AuditEvent.type == type_)
            .order_by(AuditEvent.seq)
        )
        return [json.loads(row.payload) | {"task_id": row.task_id} for row in rows]


def chain(*nodes: str) -> str:
    """start -> nodes... -> end, each node given as its XML; ids are read off the XML."""
    ids = [node.split('id="', 1)[1].split('"', 1)[0] for node in nodes]
    body = '<bpmn:startEvent id="start"/>' + "".join(nodes) + '<bpmn:endEvent id="end"/>'
    return body + sequence("start", *ids, "end")


# --- customer files and policies ---

NEW_CUSTOMER = "{'name': name, 'id_type': '居民身份证', 'id_no': id_no, 'mobile': '13812345678'}"
NEW_POLICY = (
    "{'policy_no': policy_no, 'customer_no': filed['customer_no'], 'insurer': '平安人寿',"
    " 'product_code': 'PA-1', 'category': '分红', 'term_years': 10, 'seller': starter}"
)


def sale_diagram() -> str:
    return process(
        "sale",
        chain(
            service_task("file", "建立客户档案", "customer_file", "filed", customer=NEW_CUSTOMER),
            service_task("record", "登记保单", "policy_record", "recorded", policy=NEW_POLICY),
            service_task("lookup", "查询保单", "policy_lookup", "found", policy_no="policy_no"),
            user_task("look", "查看", role="SALES"),
        ),
    )


def test_a_sale_files_the_customer_records_the_policy_and_looks_it_up(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, sale_diagram())
    data = {"name": "赵敏", "id_no": "110105199001011237", "policy_no": "P-NEW-1"}
    case = runtime.start_instance(db, actor("sales1"), "sale", data=data)
    found = runtime.get_instance(db, case.id).data["found"]
    assert found == {
        "found": True, "policy_no": "P-NEW-1", "customer_no": found["customer_no"],
        "customer_name": "赵敏", "insured_name": "赵敏", "insurer": "平安人寿",
        "product_code": "PA-1", "category": "分红", "life": True, "term_years": 10,
        "seller": "sales1", "effective_date": None,
    }  # fmt: skip
    with db.read() as session:
        customer = session.scalar(select(Customer).where(Customer.id_no == data["id_no"]))
        assert customer is not None
        assert customer.customer_no == found["customer_no"]
    calls = events(db, case.id, "operator_called")
    assert [(c["task_id"], c["operator"]) for c in calls] == [
        ("file", "customer_file"), ("record", "policy_record"), ("lookup", "policy_lookup"),
    ]  # fmt: skip
    filed = events(db, case.id, "customer_filed")[0]
    assert filed["id_no"] == "110105********1237"  # masked in the audit trail
    # a second sale to the same person updates the file instead of creating another one
    case2 = runtime.start_instance(
        db, actor("sales2"), "sale", data=data | {"policy_no": "P-NEW-2"}
    )
    assert runtime.get_instance(db, case2.id).data["filed"] == {
        "customer_no": found["customer_no"],
        "created": False,
    }


def test_a_failing_operator_puts_the_case_in_error_and_writes_nothing(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, sale_diagram())
    # P2026000001 is a demo policy: recording it again is refused after the customer was filed
    data = {"name": "赵敏", "id_no": "110105199001011237", "policy_no": "P2026000001"}
    case = runtime.start_instance(db, actor("sales1"), "sale", data=data)
    assert (case.status, case.error_element) == ("error", "record")
    assert "P2026000001" in (case.error or "")
    with db.read() as session:
        # the customer filed by the task before the failing one stays (its task completed) ...
        assert session.scalar(select(Customer).where(Customer.id_no == data["id_no"])) is not None
        # ... the failing call left nothing: the demo policy is unchanged
        policy = session.get(Policy, "P2026000001")
        assert policy is not None
        assert policy.instance_id is None
    fixed = runtime.retry_instance(db, actor("po1"), case.id, {"policy_no": "P-NEW-3"})
    assert fixed.status == "running"
    assert runtime.get_instance(db, case.id).data["found"]["policy_no"] == "P-NEW-3"


def test_looking_up_an_unknown_policy_says_so(db: Database, actor: ActorOf) -> None:
    deploy(db, process("look", chain(
        service_task("lookup", "查询保单", "policy_lookup", "found", policy_no="policy_no"),
        user_task("look", "查看", role="CS"),
    )))  # fmt: skip
    case = runtime.start_instance(db, actor("cs1"), "look", data={"policy_no": "NOPE"})
    found = runtime.get_instance(db, case.id).data["found"]
    assert found["found"] is False
    assert found["seller"] is None


# --- the archive catalogue and holds ---


def archive_diagram() -> str:
    items = (
        "[{'archive_no': 'T-1', 'category': '业务档案', 'title': '保单档案', 'related_ref': 'P-9',"
        " 'retention_until': '2025-12-31'},"
        " {'archive_no': 'T-2', 'category': '业务档案', 'title': '回访录音', 'related_ref': 'P-9',"
        " 'retention_until': '2026-01-31'},"
        " {'archive_no': 'T-3', 'category': '财务/会计档案', 'title': '年报', 'permanent': True}]"
    )
    return process(
        "arch",
        chain(
            service_task("register", "登记档案", "archive_register", "registered", items=items),
            service_task("before", "候选", "archive_destruction_candidates", "before", as_of="'2026-03-01'"),
            service_task("hold", "冻结", "archive_hold", "held", related_ref="'P-9'",
                         reason="'投诉处理中'", case_ref="'TS-1'"),
            service_task("during", "候选", "archive_destruction_candidates", "during", as_of="'2026-03-01'"),
            service_task("check", "复核冻结", "archive_held", "blocked", archive_nos="['T-1', 'T-3']"),
            user_task("wait", "等待投诉结案", role="ARC"),
            service_task("release", "解冻", "archive_release", "released", related_ref="'P-9'",
                         case_ref="'TS-1'", keep_years="2"),
            service_task("after", "候选", "archive_destruction_candidates", "after", as_of="'2028-03-03'"),
            service_task("destroy", "销毁", "archive_destroy", "destroyed",
                         archive_nos="[i['archive_no'] for i in after]", list_ref="'XH-1'"),
        ),
    )  # fmt: skip


def test_a_hold_keeps_items_off_the_destruction_list_and_their_retention_runs_on(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, archive_diagram())
    case = runtime.start_instance(db, actor("arc1"), "arch")
    data = runtime.get_instance(db, case.id).data
    demo_candidate = "YW-2019-0007"  # a demo item whose retention ended in 2025
    assert [i["archive_no"] for i in data["before"]] == ["T-1", "T-2", demo_candidate]
    assert data["held"] == {"held": ["T-1", "T-2"]}
    assert [i["archive_no"] for i in data["during"]] == [demo_candidate]
    assert data["blocked"] == ["T-1"]
    work(db, actor("arc1"), case.id, "wait")
    data = runtime.get_instance(db, case.id).data
    # released on 2 March 2026, kept at least two more years (R3 第13条)
    assert data["released"] == {"released": ["T-1", "T-2"], "kept_until": "2028-03-02"}
    assert [i["archive_no"] for i in data["after"]] == ["T-1", "T-2", demo_candidate]
    assert data["destroyed"]["destroyed"] == ["T-1", "T-2", demo_candidate]
    with db.read() as session:
        kept, destroyed = session.get(ArchiveItem, "T-3"), session.get(ArchiveItem, "T-1")
        assert kept is not None
        assert kept.destroyed_at is None
        assert destroyed is not None
        assert destroyed.destroyed_at is not None
        hold = session.scalar(select(ArchiveHold).where(ArchiveHold.case_ref == "TS-1"))
        assert hold is not None
        assert hold.released_at is not None
    assert events(db, case.id, "archive_destroyed")[0]["items"] == ["T-1", "T-2", demo_candidate]


@pytest.mark.parametrize(
    ("archive_nos", "reason"),
    [
        ("['KJ-2020-0099']", "kept permanently"),
        ("['YW-2025-0012']", "under a complaint or legal hold"),
        ("['NOPE-1']", "not in the catalogue"),
    ],
)
def test_destruction_refuses_permanent_held_and_unknown_items(
    db: Database, actor: ActorOf, archive_nos: str, reason: str
) -> None:
    deploy(db, process("destroy", chain(
        service_task("hold", "冻结", "archive_hold", "held", related_ref="'P2026000001'",
                     reason="'诉讼'", case_ref="'LAW-1'"),
        service_task("destroy", "销毁", "archive_destroy", "destroyed", archive_nos=archive_nos,
                     list_ref="'XH-2'"),
    )))  # fmt: skip
    case = runtime.start_instance(db, actor("arc1"), "destroy")
    assert (case.status, case.error_element) == ("error", "destroy")
    assert reason in (case.error or "")
    with db.read() as session:
        assert (
            session.scalars(
                select(ArchiveItem.archive_no).where(ArchiveItem.destroyed_at.is_not(None))
            ).all()
            == []
        )


# --- the paused clock ---


def paused_clock_diagram() -> str:
    """A complaint-like case: a 15-day deadline on the handling stage, with a reminder 3 days
    before it; handling may stop for mediation, which pauses the clock."""
    body = (
        '<bpmn:startEvent id="start"/>'
        '<bpmn:scriptTask id="set_due"><bpmn:script>due_at = deadline(received_at, "15 days")\n'
        "remind_at = deadline(received_at, \"12 days\")</bpmn:script></bpmn:scriptTask>"
        '<bpmn:subProcess id="handling" name="处理">'
        '<bpmn:startEvent id="h_start"/>'
        + user_task("investigate", "调查", role="CS", dueAt="due_at", formKey="mediation")
        + '<bpmn:exclusiveGateway id="gw" default="f_decide"/>'
        + service_task("pause", "暂停计时", "clock_pause", "paused", reason="'调解'")
        + user_task("mediation_done", "调解结束", role="CS")
        + service_task("resume", "恢复计时", "clock_resume", "resumed",
                       deadlines="['due_at', 'remind_at']")
        + user_task("decide", "决定", role="CS", dueAt="due_at")
        + '<bpmn:endEvent id="h_end"/>'
        + sequence("h_start", "investigate", "gw")
        + flow("gw", "pause", "mediation")
        + sequence("pause", "mediation_done", "resume", "investigate")
        + flow("gw", "decide", flow_id="f_decide")
        + sequence("decide", "h_end")
        + "</bpmn:subProcess>"
        '<bpmn:boundaryEvent id="reminder" attachedToRef="handling" cancelActivity="false">'
        '<bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">remind_at'
        "</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        + user_task("remind", "提醒", role="DDM")
        + '<bpmn:endEvent id="r_end"/>'
        '<bpmn:boundaryEvent id="overdue" attachedToRef="handling">'
        '<bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">due_at'
        "</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        + user_task("escalated", "超期处理", role="DDM")
        + '<bpmn:endEvent id="end"/>'
        + sequence("start", "set_due", "handling", "end")
        + sequence("reminder", "remind", "r_end")
        + sequence("overdue", "escalated", "end")
    )  # fmt: skip
    return process("paused", body)


def waiting_timers(db: Database, instance_id: int) -> dict[str, datetime]:
    with db.read() as session:
        rows = session.scalars(
            select(Timer).where(Timer.instance_id == instance_id, Timer.status == "waiting")
        )
        return {row.bpmn_id: row.fire_at for row in rows}


def due_of(db: Database, instance_id: int, bpmn_id: str) -> datetime | None:
    with db.read() as session:
        task = session.get(HumanTask, open_task(db, instance_id, bpmn_id))
        assert task is not None
        return task.due_at


def test_a_pause_moves_every_deadline_by_exactly_the_paused_time(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    deploy(db, paused_clock_diagram())
    case = runtime.start_instance(db, actor("cs1"), "paused", data={"received_at": "2026-03-02"})
    due = datetime(2026, 3, 17, 15, 59, 59, 999999, tzinfo=UTC)  # 17 March 23:59:59.999999 +08:00
    assert waiting_timers(db, case.id) == {"overdue": due, "reminder": due - timedelta(days=3)}
    assert due_of(db, case.id, "investigate") == due
    frozen_clock.set(START + timedelta(days=2, hours=3))
    work(db, actor("cs1"), case.id, "investigate", {"mediation": True})  # gateway reads it
    # paused: the timers wait for a date no clock reaches, and do not fire
    assert all(t.year == 9999 for t in waiting_timers(db, case.id).values())
    frozen_clock.set(START + timedelta(days=30))
    assert timers.run_once(db) == 0
    paused_for = timedelta(days=28, hours=-3)
    work(db, actor("cs1"), case.id, "mediation_done")
    assert waiting_timers(db, case.id) == {
        "overdue": due + paused_for,
        "reminder": due - timedelta(days=3) + paused_for,
    }
    data = runtime.get_instance(db, case.id).data
    assert datetime.fromisoformat(data["due_at"]) == due + paused_for
    assert data["resumed"]["paused_seconds"] == paused_for.total_seconds()
    assert due_of(db, case.id, "investigate") == due + paused_for  # the task comes back with it
    resumed = events(db, case.id, "clock_resumed")[0]
    assert resumed["deadlines"]["due_at"][1] == data["due_at"]
    assert sorted(t[0] for t in resumed["timers"]) == ["overdue", "reminder"]
    assert events(db, case.id, "clock_paused")[0]["reason"] == "调解"
    # the moved deadline still fires, just later
    work(db, actor("cs1"), case.id, "investigate", {"mediation": False})
    assert due_of(db, case.id, "decide") == due + paused_for
    frozen_clock.set(due + paused_for + timedelta(seconds=1))
    timers.run_once(db)
    assert {row.bpmn_id for row in inbox.open_tasks_of(db, case.id)} == {"escalated", "remind"}


# --- recusal (excludeUsers) ---


def recusal_diagram() -> str:
    rule = "data.respondent, manager_of(data.respondent)"
    return process("recuse", chain(
        user_task("handle", "处理投诉", role="CS", excludeUsers=rule),
        user_task("review", "复核", role="DDM", excludeUsers=rule),
    ))  # fmt: skip


def test_the_person_complained_about_and_their_lead_may_not_handle_the_case(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, recusal_diagram())
    # the complaint is about cs2, whose lead is ddm2
    case = runtime.start_instance(db, actor("cs1"), "recuse", data={"respondent": "cs2"})
    handle = open_task(db, case.id, "handle")
    with pytest.raises(PermissionDeniedError, match="recuse"):
        runtime.claim_task(db, actor("cs2"), handle)
    with pytest.raises(PermissionDeniedError, match="recuse"):
        runtime.delegate_task(db, actor("cs1"), handle, "cs2")
    work(db, actor("cs1"), case.id, "handle")
    review = open_task(db, case.id, "review")
    with pytest.raises(PermissionDeniedError, match="recuse"):
        runtime.claim_task(db, actor("ddm2"), review)
    refusals = events(db, case.id, "permission_denied")
    assert len(refusals) == 3
    assert all("recuse" in str(refusal) for refusal in refusals)
    work(db, actor("ddm1"), case.id, "review")
    assert runtime.get_instance(db, case.id).summary.status == "completed"
    # the respondent sees none of it: not in their queue, not the case
    assert inbox.list_tasks(db, actor("cs2"), inbox.CLAIMABLE) == []
    with pytest.raises(PermissionDeniedError):
        instance_view.open_case(db, actor("cs2"), case.id)


def test_a_person_named_to_handle_a_case_they_must_recuse_from_is_not_handed_it(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, process("named", chain(
        user_task("handle", "处理投诉", role="CS", assignee="data.handler",
                  excludeUsers="data.respondent"),
    )))  # fmt: skip
    case = runtime.start_instance(
        db, actor("cs1"), "named", data={"handler": "cs2", "respondent": "cs2"}
    )
    task = inbox_row(db, open_task(db, case.id, "handle"))
    assert task.assignee_id is None  # back in the queue
    with pytest.raises(PermissionDeniedError, match="recuse"):  # nor may cs2 pick the handler
        runtime.delegate_task(db, actor("cs2"), task.id, "cs1")
    runtime.claim_task(db, actor("cs1"), task.id)


def test_a_deactivated_person_named_in_the_data_leaves_the_task_to_the_queue(
    db: Database, actor: ActorOf
) -> None:
    deploy(
        db, process("gone", chain(user_task("handle", "处理", role="CS", assignee="data.handler")))
    )
    with db.unit_of_work() as session:
        session.execute(update(User).where(User.username == "cs2").values(active=False))
    case = runtime.start_instance(db, actor("cs1"), "gone", data={"handler": "cs2"})
    assert case.status == "running"
    assert inbox_row(db, open_task(db, case.id, "handle")).assignee_id is None


# --- failures leave nothing behind ---


def test_a_call_that_fails_half_way_leaves_no_row_and_the_retry_starts_clean(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, process("half", chain(
        service_task("register", "登记档案", "archive_register", "registered", items="items"),
        user_task("look", "查看", role="ARC"),
    )))  # fmt: skip
    good = {"archive_no": "H-1", "category": "业务档案", "title": "半途"}
    case = runtime.start_instance(db, actor("arc1"), "half", data={"items": [good, "oops"]})
    assert (case.status, case.error_element) == ("error", "register")
    with db.read() as session:
        assert session.get(ArchiveItem, "H-1") is None  # the first item's row was undone too
    fixed = runtime.retry_instance(db, actor("po1"), case.id, {"items": [good]})
    assert fixed.status == "running"
    assert runtime.get_instance(db, case.id).data["registered"] == {"registered": ["H-1"]}


def test_a_resume_that_fails_moves_nothing_and_its_retry_moves_once(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    deploy(db, process("resume_twice", chain(
        '<bpmn:scriptTask id="set_due"><bpmn:script>due_at = deadline(today(), "15 days")'
        "</bpmn:script></bpmn:scriptTask>",
        service_task("pause", "暂停", "clock_pause", "paused", reason="'鉴定'"),
        user_task("wait", "等待鉴定", role="CS"),
        service_task("resume", "恢复", "clock_resume", "resumed", deadlines="names"),
        user_task("decide", "决定", role="CS", dueAt="due_at"),
    )))  # fmt: skip
    case = runtime.start_instance(
        db, actor("cs1"), "resume_twice", data={"names": ["due_at", "note"], "note": "not a date"}
    )
    due = runtime.get_instance(db, case.id).data["due_at"]
    frozen_clock.advance(timedelta(days=3))
    failed = work(db, actor("cs1"), case.id, "wait")
    assert (failed.status, failed.error_element) == ("error", "resume")
    assert runtime.get_instance(db, case.id).data["due_at"] == due  # nothing moved
    runtime.retry_instance(db, actor("po1"), case.id, {"names": ["due_at"]})
    moved = datetime.fromisoformat(runtime.get_instance(db, case.id).data["due_at"])
    assert moved - datetime.fromisoformat(due) == timedelta(days=3)  # once, not twice


def test_while_paused_new_timers_and_due_times_wait_too(
    db: Database, actor: ActorOf, frozen_clock: FrozenClock
) -> None:
    body = (
        '<bpmn:startEvent id="start"/>'
        + service_task("pause", "暂停", "clock_pause", "paused", reason="'调解'")
        + '<bpmn:scriptTask id="set_due"><bpmn:script>due_at = deadline(today(), "2 days")'
        "</bpmn:script></bpmn:scriptTask>"
        + '<bpmn:parallelGateway id="split"/><bpmn:parallelGateway id="join"/>'
        + user_task("investigate", "调查", role="CS", dueAt="due_at")
        + '<bpmn:boundaryEvent id="late" attachedToRef="investigate" cancelActivity="false">'
        '<bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">due_at'
        "</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        + user_task("chase", "催办", role="DDM")
        + user_task("mediated", "调解结束", role="CS")
        + service_task("resume", "恢复", "clock_resume", "resumed", deadlines="[]")
        + '<bpmn:endEvent id="end"/><bpmn:endEvent id="chased"/>'
        + sequence("start", "pause", "set_due", "split")
        + sequence("split", "investigate", "join")
        + sequence("split", "mediated", "resume", "join")
        + sequence("join", "end")
        + sequence("late", "chase", "chased")
    )  # fmt: skip
    deploy(db, process("armed_while_paused", body))
    case = runtime.start_instance(db, actor("cs1"), "armed_while_paused")
    due = due_of(db, case.id, "investigate")
    assert due is not None
    frozen_clock.advance(timedelta(days=10))  # far past the 2-day due time, still paused
    assert timers.run_once(db) == 0  # neither the boundary timer nor an overdue escalation
    assert {row.bpmn_id for row in inbox.open_tasks_of(db, case.id)} == {"investigate", "mediated"}
    work(db, actor("cs1"), case.id, "mediated")
    moved = events(db, case.id, "clock_resumed")[0]
    assert [t[0] for t in moved["timers"]] == ["late"]  # armed during the pause, moved on resume
    assert due_of(db, case.id, "investigate") == due + timedelta(days=10)
    assert waiting_timers(db, case.id) == {"late": due + timedelta(days=10)}


def test_identity_numbers_are_masked_in_the_operator_audit(db: Database, actor: ActorOf) -> None:
    deploy(db, sale_diagram())
    data = {"name": "赵敏", "id_no": "110105199001011237", "policy_no": "P-MASK-1"}
    case = runtime.start_instance(db, actor("sales1"), "sale", data=data)
    filed = events(db, case.id, "operator_called")[0]
    assert filed["params"]["customer"]["id_no"] == "110105********1237"
