"""engine.audit: the hash chain from real engine activity, append-only triggers, tamper
detection (also through ``opsflow audit verify``), canonical JSON, concurrent appends, logins."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DatabaseError

from engine import audit, runtime
from engine.errors import InvalidInputError, PermissionDeniedError
from engine.people import identity
from engine.storage.db import Database
from tests.conftest import ActorOf, Opsflow, open_task, work
from tests.expense_claims import claim_data

pytestmark = pytest.mark.usefixtures("deployed", "frozen_clock")

_PG_TRIGGER = "audit_event_append_only"


def events(db: Database) -> list[dict[str, Any]]:
    """Every stored audit row, oldest first, straight from the table."""
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT seq, actor, instance_id, task_id, type, payload, prev_hash, hash "
                "FROM audit_event ORDER BY seq"
            )
        )
        return [dict(row._mapping) for row in rows]


def head(db: Database) -> tuple[int, str]:
    with db.engine.connect() as connection:
        row = connection.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
        return row.seq, row.hash


def verify(db: Database) -> audit.ChainReport:
    with db.read() as session:
        return audit.verify(session)


def a_case(db: Database, actor: ActorOf) -> int:
    """Real engine activity: an expense claim started, submitted and approved once."""
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data())
    work(db, actor("ddm1"), case.id, "approve_ddm", {"decision": "同意"})
    return case.id


@contextmanager
def triggers_out_of_the_way(db: Database) -> Iterator[Connection]:
    """One transaction in which audit_event's append-only triggers are off; they are back when it ends.

    DDL is transactional on both databases, so other connections never see the table
    unprotected; on PostgreSQL the trigger is re-enabled in a finally as well.
    """
    if db.is_sqlite:
        with db.engine.begin() as connection:
            saved = connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name = 'audit_event'"
                )
            ).all()
            assert {name for name, _sql in saved} == {
                "audit_event_no_update",
                "audit_event_no_delete",
            }
            for name, _sql in saved:
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
            yield connection
            for _name, sql in saved:
                connection.exec_driver_sql(sql)
        return
    try:
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"ALTER TABLE audit_event DISABLE TRIGGER {_PG_TRIGGER}")
            yield connection
            connection.exec_driver_sql(f"ALTER TABLE audit_event ENABLE TRIGGER {_PG_TRIGGER}")
    finally:
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"ALTER TABLE audit_event ENABLE TRIGGER {_PG_TRIGGER}")


def assert_triggers_in_force(db: Database) -> None:
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET actor = 'x' WHERE seq = 1"))


# --- the chain from real activity ---


def test_real_engine_activity_builds_a_chain_that_verifies_and_counts_match(
    db: Database, actor: ActorOf
) -> None:
    case_id = a_case(db, actor)
    stored = events(db)
    report = verify(db)
    assert report.ok
    assert report.reason is None
    assert report.checked == len(stored)
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    assert head(db) == (len(stored), stored[-1]["hash"])
    # every link points at the previous event's hash, the first at the genesis value
    assert [e["prev_hash"] for e in stored] == [audit.GENESIS] + [e["hash"] for e in stored[:-1]]
    types = [e["type"] for e in stored]
    assert types[0] == "definition_deployed"
    assert "instance_started" in types
    assert types.count("task_completed") == 2
    assert types.count("task_claimed") == 1
    # the instance's history is exactly its events of the chain, in order
    history = runtime.get_instance(db, case_id).history
    assert [e["seq"] for e in history] == [e["seq"] for e in stored if e["instance_id"] == case_id]
    completed = [e for e in history if e["type"] == "task_completed"]
    assert [(e["actor"], e["task_id"]) for e in completed] == [
        ("sales1", "submit_claim"),
        ("ddm1", "approve_ddm"),
    ]
    assert completed[0]["payload"]["data"]["amount"] == "800.00"


def test_a_refused_step_writes_nothing_and_a_permission_refusal_is_appended(
    db: Database, actor: ActorOf
) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    task_id = open_task(db, case.id, "submit_claim")
    before = events(db)
    with pytest.raises(InvalidInputError):
        runtime.complete_task(db, actor("sales1"), task_id, claim_data(amount="-1"))
    assert events(db) == before  # rolled back with the step: no event, no gap
    with pytest.raises(PermissionDeniedError):
        runtime.complete_task(db, actor("sales2"), task_id, claim_data())
    after = events(db)
    assert after[: len(before)] == before
    assert [e["type"] for e in after[len(before) :]] == ["permission_denied"]
    assert after[-1]["actor"] == "sales2"
    report = verify(db)
    assert report.ok
    assert report.checked == len(after)


# --- the database refuses changes ---


def test_the_database_refuses_update_and_delete_on_audit_events(
    db: Database, actor: ActorOf
) -> None:
    a_case(db, actor)
    before = events(db)
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_event SET payload = :p WHERE seq = 2"), {"p": '{"forged":true}'}
        )
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq = 2"))
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_event"))
    assert events(db) == before
    assert verify(db).ok


# --- tamper detection, with the triggers out of the way ---


def test_an_altered_payload_is_named_by_verify_and_by_the_cli(
    db: Database, actor: ActorOf, opsflow: Opsflow
) -> None:
    a_case(db, actor)
    stored = events(db)
    target = next(e for e in stored if e["type"] == "task_completed")
    forged = json.loads(target["payload"])
    forged["data"]["amount"] = "8000.00"
    with triggers_out_of_the_way(db) as connection:
        connection.execute(
            text("UPDATE audit_event SET payload = :p WHERE seq = :seq"),
            {"p": audit.canonical_json(forged), "seq": target["seq"]},
        )
    assert_triggers_in_force(db)

    report = verify(db)
    assert not report.ok
    assert report.first_broken_seq == target["seq"]
    assert report.checked == target["seq"] - 1
    assert "altered" in (report.reason or "")

    result = opsflow("--database", db.url, "audit", "verify")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"BROKEN at event {target['seq']}:" in result.stderr
    assert "altered" in result.stderr
    assert "Traceback" not in result.output


def test_an_altered_prev_hash_is_detected(db: Database, actor: ActorOf) -> None:
    a_case(db, actor)
    stored = events(db)
    seq = len(stored) // 2
    with triggers_out_of_the_way(db) as connection:
        connection.execute(
            text("UPDATE audit_event SET prev_hash = :h WHERE seq = :seq"),
            {"h": "f" * 64, "seq": seq},
        )
    report = verify(db)
    assert report.first_broken_seq == seq
    assert "prev_hash" in (report.reason or "")


def test_a_deleted_last_event_is_detected(db: Database, actor: ActorOf, opsflow: Opsflow) -> None:
    a_case(db, actor)
    last = len(events(db))
    with triggers_out_of_the_way(db) as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq = :seq"), {"seq": last})
    assert len(events(db)) == last - 1
    report = verify(db)
    assert report.first_broken_seq == last
    assert report.checked == last - 1
    assert "deleted" in (report.reason or "")
    result = opsflow("--database", db.url, "audit", "verify")
    assert result.exit_code == 1
    assert f"BROKEN at event {last}:" in result.stderr


def test_a_deleted_middle_event_is_detected(db: Database, actor: ActorOf) -> None:
    a_case(db, actor)
    with triggers_out_of_the_way(db) as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    report = verify(db)
    # the first stored event whose link does not hold is 4; the reason names the gap
    assert report.first_broken_seq == 4
    assert report.checked == 2
    assert report.reason == "event 3 is missing (next is 4)"


def test_a_consistently_rewritten_event_still_breaks_the_next_link(
    db: Database, actor: ActorOf
) -> None:
    # A forger who recomputes the altered event's own hash still breaks its successor.
    a_case(db, actor)
    stored = events(db)
    target = stored[1]
    body = {
        "seq": target["seq"],
        "actor": "mallory",
        "instance_id": target["instance_id"],
        "task_id": target["task_id"],
        "type": target["type"],
        "payload": target["payload"],
    }
    with db.engine.connect() as connection:
        body["at"] = connection.execute(
            text("SELECT at FROM audit_event WHERE seq = :seq"), {"seq": target["seq"]}
        ).scalar_one()
    rehashed = hashlib.sha256(
        (target["prev_hash"] + audit.canonical_json(body)).encode()
    ).hexdigest()
    with triggers_out_of_the_way(db) as connection:
        connection.execute(
            text("UPDATE audit_event SET actor = 'mallory', hash = :h WHERE seq = :seq"),
            {"h": rehashed, "seq": target["seq"]},
        )
    report = verify(db)
    assert report.first_broken_seq == target["seq"] + 1
    assert "prev_hash" in (report.reason or "")


# --- canonical JSON ---


def test_canonical_json_is_sorted_compact_utf8_and_encodes_decimals_and_dates_as_strings() -> None:
    value = {
        "b": [Decimal("12000.00"), dt.date(2026, 3, 2)],
        "a": {"z": 1, "y": dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)},
        "申请人": "郑销售",
        "tags": {"乙", "甲"},
    }
    expected = (
        '{"a":{"y":"2026-03-02T09:00:00+00:00","z":1},'
        '"b":["12000.00","2026-03-02"],"tags":["乙","甲"],"申请人":"郑销售"}'
    )
    assert audit.canonical_json(value) == expected
    reordered = {key: value[key] for key in reversed(list(value))}
    assert audit.canonical_json(reordered) == expected
    assert "郑销售".encode() in audit.canonical_json(value).encode("utf-8")
    assert "\\u" not in audit.canonical_json(value)
    assert " " not in audit.canonical_json(value)


def test_canonical_json_refuses_values_it_cannot_encode_stably() -> None:
    with pytest.raises(TypeError, match="object"):
        audit.canonical_json({"x": object()})


# --- concurrency ---


def test_concurrent_appends_from_two_handles_do_not_fork_the_chain(
    db: Database, actor: ActorOf
) -> None:
    starters = [actor("sales1"), actor("sales2")]
    handles = [Database(db.url) for _ in starters]
    barrier = threading.Barrier(len(starters))
    failures: list[BaseException] = []
    started: list[int] = []
    lock = threading.Lock()

    def run(handle: Database, who: identity.Actor) -> None:
        try:
            barrier.wait()
            for n in range(20):
                summary = runtime.start_instance(
                    handle, who, "expense_reimbursement", business_key=f"{who.username}-{n}"
                )
                with lock:
                    started.append(summary.id)
        except BaseException as exc:  # re-raised in the test's thread below
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(h, w)) for h, w in zip(handles, starters, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for handle in handles:
        handle.dispose()
    assert not failures, failures
    assert len(set(started)) == 40

    stored = events(db)
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    assert sum(e["type"] == "instance_started" for e in stored) == 40
    assert head(db) == (len(stored), stored[-1]["hash"])
    report = verify(db)
    assert report.ok
    assert report.checked == len(stored)


# --- logins ---


def _authenticate(db: Database, username: str, password: str) -> identity.Actor | Exception:
    try:
        return identity.authenticate(db, username, password).actor
    except PermissionDeniedError as exc:
        return exc


def test_logins_succeed_and_fail_with_one_message_and_both_are_audited(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(
            text('UPDATE "user" SET active = :off WHERE username = :u'), {"off": False, "u": "ops2"}
        )
    before = len(events(db))

    who = _authenticate(db, "ddm1", "ddm1-demo-2026")
    assert isinstance(who, identity.Actor)
    assert (who.username, who.roles) == ("ddm1", frozenset({"DDM"}))

    refusals = [
        _authenticate(db, "ddm1", "wrong-password"),
        _authenticate(db, "nobody", "ddm1-demo-2026"),
        _authenticate(db, "ops2", "ops2-demo-2026"),  # deactivated
    ]
    assert all(isinstance(r, PermissionDeniedError) for r in refusals)
    assert len({str(r) for r in refusals}) == 1
    assert "wrong username or password" in str(refusals[0])

    new = events(db)[before:]
    assert [(e["type"], e["actor"]) for e in new] == [
        ("login", "ddm1"),
        ("login_failed", "ddm1"),
        ("login_failed", "nobody"),
        ("login_failed", "ops2"),
    ]
    assert all(e["instance_id"] is None and e["task_id"] is None for e in new)
    assert all("demo-2026" not in e["payload"] for e in new)  # no password in the trail
    assert verify(db).ok


def test_an_overlong_username_is_refused_and_audited_not_crashed(db: Database) -> None:
    refusal = _authenticate(db, "x" * 100, "wrong")
    assert isinstance(refusal, PermissionDeniedError)
    assert events(db)[-1]["type"] == "login_failed"
