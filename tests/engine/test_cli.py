"""The ``opsflow`` command through click's CliRunner (and the real console script in a subprocess):
init, validate, deploy, start/tasks/claim/complete/instance, one-line errors, worker, audit verify,
``--as`` refused what the engine refuses that user, and hostile input as one bilingual line.

The CLI runs on real time, so the claim dates are computed from today."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select, table

from engine import audit, runtime
from engine.config import PROJECT_ROOT
from engine.definitions.registry import DeployedVersion
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime.services import catalogue
from engine.storage.db import Database
from engine.storage.models import AuditEvent
from tests import expense_claims
from tests.conftest import DEMO, ActorOf, Opsflow, open_task, work

PROCESSES = PROJECT_ROOT / "processes"
EXPENSE_BPMN = PROCESSES / "expense_reimbursement.bpmn"
OPSFLOW = Path(sys.executable).parent / "opsflow"
DEMO_USERS = json.loads(DEMO.read_text(encoding="utf-8"))["users"]


def claim_data(**changes: str) -> dict[str, Any]:
    """A valid expense claim for the real today (the CLI runs on the real clock)."""
    day = (dt.date.today() - dt.timedelta(days=10)).isoformat()  # noqa: DTZ011 - the CLI's real today
    return expense_claims.claim_data(day=day, **changes)


def ok(result: Result) -> list[str]:
    """The stdout lines of a command that must have succeeded."""
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert result.stderr == ""
    return result.stdout.splitlines()


def one_error_line(result: Result) -> str:
    """A handled failure: non-zero exit, exactly one ``error:`` line on stderr, nothing else."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # handled by the CLI, not a crash
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def count(db: Database, name: str) -> int:
    with db.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table(name))).scalar_one()


# --- init ---


def test_init_creates_a_fresh_database_and_running_it_again_changes_nothing(
    tmp_path: Path, opsflow: Opsflow
) -> None:
    url = f"sqlite:///{tmp_path / 'instance' / 'opsflow.sqlite'}"
    first = ok(opsflow("--database", url, "init"))
    assert "deployed: expense_reimbursement v1 (费用报销)" in first
    assert "demo user: ddm1 / ddm1-demo-2026  (DDM)" in first
    demo_lines = [line for line in first if line.startswith("demo user: ")]
    assert len(demo_lines) == len(DEMO_USERS)
    assert first[-1] == f"database ready: {url}"

    db = Database(url)
    try:
        users, definitions, events = count(db, "user"), count(db, "process_definition"), 0
        assert users == len(DEMO_USERS)
        assert definitions == len(list(PROCESSES.glob("*.bpmn")))
        assert count(db, "role") == len(identity.ROLES)
        with db.read() as session:
            report = audit.verify(session)
            events = report.checked
        assert report.ok
        assert events == len(list(PROCESSES.glob("*.bpmn")))  # one per deploy
        # the printed demo password logs in
        assert identity.authenticate(db, "ddm1", "ddm1-demo-2026").actor.roles == {"DDM"}

        second = ok(opsflow("--database", url, "init"))
        assert "unchanged: expense_reimbursement v1 (费用报销)" in second
        assert not [line for line in second if line.startswith(("demo user:", "deployed:"))]
        assert count(db, "user") == users
        assert count(db, "process_definition") == definitions
        assert count(db, "audit_event") == events + 1  # only the login above
    finally:
        db.dispose()


def test_init_on_a_database_that_already_has_the_department_only_deploys(
    db: Database, opsflow: Opsflow
) -> None:
    users = count(db, "user")
    lines = ok(opsflow("--database", db.url, "init"))
    assert "deployed: expense_reimbursement v1 (费用报销)" in lines
    assert not [line for line in lines if line.startswith("demo user:")]
    assert count(db, "user") == users
    again = ok(opsflow("--database", db.url, "init"))
    assert "unchanged: expense_reimbursement v1 (费用报销)" in again
    assert count(db, "process_definition") == len(list(PROCESSES.glob("*.bpmn")))


# --- validate ---


def test_validate_the_shipped_processes_finds_no_problem(opsflow: Opsflow) -> None:
    lines = ok(opsflow("validate", PROCESSES))
    assert lines == ["0 problem(s)"]


_BAD_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Definitions_{key}"
    targetNamespace="https://opsflow.example/bpmn">
  <bpmn:process id="{key}" name="有问题的流程" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_1" name="{lane}"><bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef><bpmn:flowNodeRef>gw</bpmn:flowNodeRef><bpmn:flowNodeRef>end_big</bpmn:flowNodeRef><bpmn:flowNodeRef>end_small</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="审核"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:exclusiveGateway id="gw"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f_big</bpmn:outgoing><bpmn:outgoing>f_small</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:endEvent id="end_big"><bpmn:incoming>f_big</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_small"><bpmn:incoming>f_small</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="gw"/>
    <bpmn:sequenceFlow id="f_big" sourceRef="gw" targetRef="end_big"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{big}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_small" sourceRef="gw" targetRef="end_small"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">amount &lt;= 100</bpmn:conditionExpression></bpmn:sequenceFlow>
  </bpmn:process>
</bpmn:definitions>
"""


def test_validate_prints_one_line_per_problem_with_file_element_and_message(
    tmp_path: Path, opsflow: Opsflow
) -> None:
    (tmp_path / "juel.bpmn").write_text(
        _BAD_BPMN.format(key="juel_process", lane="副经理", big="${amount &gt; 100}"),
        encoding="utf-8",
    )
    (tmp_path / "lane.bpmn").write_text(
        _BAD_BPMN.format(key="lane_process", lane="路人甲", big="amount &gt; 100"),
        encoding="utf-8",
    )
    result = opsflow("validate", tmp_path / "juel.bpmn", tmp_path / "lane.bpmn")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "2 problem(s)"
    problems = sorted(lines[:-1])
    assert len(problems) == 2
    assert problems[0].startswith("juel.bpmn: f_big: ")
    assert "'${amount > 100}' is a JUEL/EL expression" in problems[0]
    assert problems[1].startswith("lane.bpmn: review: ")
    assert "lane '路人甲' maps to no known role" in problems[1]


# --- a case worked end to end through the command ---


def test_deploy_start_tasks_claim_complete_and_instance(db: Database, opsflow: Opsflow) -> None:
    def run(*args: object) -> list[str]:
        return ok(opsflow("--database", db.url, *args))

    assert run("deploy", EXPENSE_BPMN) == ["deployed: expense_reimbursement v1"]
    assert "unchanged: expense_reimbursement v1" in run("deploy", PROCESSES)

    (started,) = run(
        "start",
        "expense_reimbursement",
        "--as",
        "sales1",
        "--data",
        json.dumps({"voucher_no": "电话"}),
        "--business-key",
        "EXP-CLI-1",
    )
    found = re.fullmatch(r"instance (\d+): running; open tasks: \[(\d+)\]", started)
    assert found, started
    case_id, claim_task = int(found[1]), int(found[2])
    assert claim_task == open_task(db, case_id, "submit_claim")

    mine = run("tasks", "--as", "sales1")
    assert len(mine) == 1
    assert mine[0].startswith(
        f"[mine] task {claim_task}: 填写报销单 (expense_reimbursement #{case_id}, role "
    )
    assert run("tasks", "--as", "ddm1") == []

    (completed,) = run("complete", claim_task, "--as", "sales1", "--data", json.dumps(claim_data()))
    found = re.fullmatch(
        rf"task {claim_task} completed; instance {case_id}: running; open tasks: \[(\d+)\]",
        completed,
    )
    assert found, completed
    approval = int(found[1])
    assert approval == open_task(db, case_id, "approve_ddm")

    for deputy in ("ddm1", "ddm2"):
        (queued,) = run("tasks", "--as", deputy)
        assert queued.startswith(
            f"[claimable] task {approval}: 副经理审批 (expense_reimbursement #{case_id}, role DDM) due "
        )
    assert run("claim", approval, "--as", "ddm1") == [f"task {approval} claimed by ddm1"]
    (claimed,) = run("tasks", "--as", "ddm1")
    assert claimed.startswith(f"[mine] task {approval}: 副经理审批")
    assert run("tasks", "--as", "ddm2") == []

    (approved,) = run(
        "complete", approval, "--as", "ddm1", "--data", json.dumps({"decision": "同意"})
    )
    found = re.fullmatch(
        rf"task {approval} completed; instance {case_id}: running; open tasks: \[(\d+)\]",
        approved,
    )
    assert found, approved
    review = int(found[1])
    (done,) = run("tasks", "--as", "ddm1", "--tab", "done")
    assert done.startswith(f"[done] task {approval}: 副经理审批")

    shown = run("instance", case_id)
    assert (
        shown[0] == f"instance {case_id}: expense_reimbursement v1 [running] 费用报销 · 办公 800.00"
    )
    assert shown[1] == f"  open task {review}: 财务审核 (role FIN_ACC, assignee None)"
    history = [re.sub(r"^  #\d+ \S+ ", "", line).rstrip() for line in shown[2:]]
    assert history[0] == "sales1 instance_started"
    assert "sales1 task_completed submit_claim" in history
    assert "ddm1 task_claimed approve_ddm" in history
    assert "ddm1 task_completed approve_ddm" in history
    assert len(history) == len(runtime.get_instance(db, case_id).history)

    view = runtime.get_instance(db, case_id)
    assert view.summary.business_key == "EXP-CLI-1"
    assert view.data["voucher_no"] == "电话"
    assert view.data["amount"] == "800.00"

    (intact,) = run("audit", "verify")
    assert intact == f"audit chain intact: {count(db, 'audit_event')} events"


# --- errors: one line, no traceback ---


@pytest.fixture
def case(db: Database, deployed: list[DeployedVersion], actor: ActorOf) -> dict[str, int]:
    """An expense case whose claim is submitted and whose deputy approval ddm1 completed."""
    summary = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    claim = open_task(db, summary.id, "submit_claim")
    work(db, actor("sales1"), summary.id, "submit_claim", claim_data())
    approval = open_task(db, summary.id, "approve_ddm")
    work(db, actor("ddm1"), summary.id, "approve_ddm", {"decision": "同意"})
    return {"instance": summary.id, "claim": claim, "approval": approval}


ERRORS: list[tuple[str, Callable[[dict[str, int]], list[object]], list[str]]] = [
    ("unknown user", lambda c: ["tasks", "--as", "nobody"], ["no such user: nobody"]),
    (
        "unknown user completing",
        lambda c: ["complete", c["approval"], "--as", "nobody"],
        ["no such user: nobody"],
    ),
    ("unknown task", lambda c: ["complete", 9999, "--as", "ddm1"], ["no task #9999"]),
    ("unknown task claimed", lambda c: ["claim", 9999, "--as", "ddm1"], ["no task #9999"]),
    ("unknown instance", lambda c: ["instance", 9999], ["no case #9999"]),
    (
        "unknown process",
        lambda c: ["start", "no_such_process", "--as", "sales1"],
        ["no process 'no_such_process'"],
    ),
    (
        "invalid JSON",
        lambda c: ["start", "expense_reimbursement", "--as", "sales1", "--data", "{bad"],
        ["--data is not valid JSON"],
    ),
    (
        "JSON that is not an object",
        lambda c: ["start", "expense_reimbursement", "--as", "sales1", "--data", "[1, 2]"],
        ["--data must be a JSON object"],
    ),
    (
        "already completed by someone else",
        lambda c: ["complete", c["approval"], "--as", "ddm2", "--data", '{"decision": "同意"}'],
        ["already completed by ddm1"],
    ),
]


@pytest.mark.parametrize(
    ("args", "fragments"), [(a, f) for _, a, f in ERRORS], ids=[n for n, _, _ in ERRORS]
)
def test_errors_print_exactly_one_line(
    db: Database,
    case: dict[str, int],
    opsflow: Opsflow,
    args: Callable[[dict[str, int]], list[object]],
    fragments: list[str],
) -> None:
    before = count(db, "audit_event")
    line = one_error_line(opsflow("--database", db.url, *args(case)))
    for fragment in fragments:
        assert fragment in line
    assert count(db, "audit_event") == before  # a refused command changes nothing


def test_invalid_form_data_lists_the_field_errors_in_the_one_line(
    db: Database, deployed: list[DeployedVersion], actor: ActorOf, opsflow: Opsflow
) -> None:
    summary = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    claim = open_task(db, summary.id, "submit_claim")
    bad = claim_data(amount="12.345", purpose="太短")
    line = one_error_line(
        opsflow(
            "--database", db.url, "complete", claim, "--as", "sales1", "--data", json.dumps(bad)
        )
    )
    listed = re.search(r"\((.*)\)$", line)
    assert listed is not None, line
    fields = {name: text for name, _, text in (p.partition(": ") for p in listed[1].split("; "))}
    assert {"amount", "purpose"} <= set(fields)
    assert all(messages for messages in fields.values())
    assert open_task(db, summary.id, "submit_claim") == claim  # nothing was saved


def _console(
    db: Database, *args: object, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPSFLOW_DATABASE_URL": url or db.url}
    return subprocess.run(
        [str(OPSFLOW), *(a if isinstance(a, bytes) else str(a) for a in args)],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["complete", 9999, "--as", "ddm1"], "no task #9999"),
        (["tasks", "--as", "nobody"], "no such user: nobody"),
        (["start", "expense_reimbursement", "--as", "sales1", "--data", "{bad"], "not valid JSON"),
    ],
    ids=["unknown task", "unknown user", "invalid JSON"],
)
def test_the_console_script_prints_one_error_line_and_no_traceback(
    db: Database, deployed: list[DeployedVersion], args: list[object], fragment: str
) -> None:
    assert OPSFLOW.exists()
    done = _console(db, *args)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_the_console_script_reads_the_database_from_the_environment(
    db: Database, deployed: list[DeployedVersion]
) -> None:
    done = _console(db, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"audit chain intact: {count(db, 'audit_event')} events\n"


# --- worker and audit ---


def test_worker_once_on_a_fresh_database_fires_nothing(db: Database, opsflow: Opsflow) -> None:
    assert ok(opsflow("--database", db.url, "worker", "--once")) == ["fired: 0"]


def test_worker_once_with_a_waiting_case_fires_nothing_yet(
    db: Database, case: dict[str, int], opsflow: Opsflow
) -> None:
    assert ok(opsflow("--database", db.url, "worker", "--once")) == ["fired: 0"]
    assert open_task(db, case["instance"], "finance_review")


def test_audit_verify_reports_an_intact_chain(
    db: Database, case: dict[str, int], opsflow: Opsflow
) -> None:
    lines = ok(opsflow("--database", db.url, "audit", "verify"))
    assert lines == [f"audit chain intact: {count(db, 'audit_event')} events"]


# --- --as is an impersonation: the engine refuses what it would refuse that user ---


def _events(db: Database, kind: str) -> list[dict[str, Any]]:
    with db.read() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.type == kind).order_by(AuditEvent.seq)
        )
        return [{"actor": row.actor, **json.loads(row.payload)} for row in rows]


def test_the_help_calls_as_an_impersonation_for_the_operator(opsflow: Opsflow) -> None:
    overview = " ".join(ok(opsflow("--help")))
    assert "operator's tool" in overview
    assert "shell access" in overview
    assert "impersonation" in overview
    for command in ("start", "tasks", "claim", "complete", "deploy"):
        assert "impersonation" in " ".join(ok(opsflow(command, "--help"))), command


def test_deploy_as_a_user_without_the_po_or_admin_role_is_refused_and_audited(
    db: Database, opsflow: Opsflow
) -> None:
    line = one_error_line(opsflow("--database", db.url, "deploy", EXPENSE_BPMN, "--as", "sales1"))
    assert "only a process owner (PO) or an administrator (ADMIN) may deploy" in line
    assert count(db, "process_definition") == 0
    (refusal,) = _events(db, "permission_denied")
    assert refusal["actor"] == "sales1"
    assert refusal["files"] == [EXPENSE_BPMN.name]
    assert refusal["roles"] == ["SALES"]


def test_deploy_as_a_process_owner_deploys_in_their_name(db: Database, opsflow: Opsflow) -> None:
    assert ok(opsflow("--database", db.url, "deploy", EXPENSE_BPMN, "--as", "po1")) == [
        "deployed: expense_reimbursement v1"
    ]
    assert [e["actor"] for e in _events(db, "definition_deployed")] == ["po1"]


def test_starting_a_process_the_users_role_may_not_start_is_refused_and_audited(
    db: Database, deployed: object, opsflow: Opsflow
) -> None:
    line = one_error_line(opsflow("--database", db.url, "start", "complaint", "--as", "sales1"))
    assert "you may not start this process (it needs the role CS)" in line
    assert count(db, "process_instance") == 0
    assert [e["actor"] for e in _events(db, "permission_denied")] == ["sales1"]
    (started,) = ok(opsflow("--database", db.url, "start", "complaint", "--as", "cs1"))
    assert started.startswith("instance ")


def test_starting_a_process_only_its_caller_starts_is_refused(
    db: Database, deployed: object, opsflow: Opsflow
) -> None:
    line = one_error_line(
        opsflow("--database", db.url, "start", "new_business_callback", "--as", "cs1")
    )
    assert "new_business_callback is started by the process that calls it" in line
    assert count(db, "process_instance") == 0


@pytest.fixture
def waiting_approval(
    db: Database, deployed: object, actor: Callable[[str], Actor]
) -> dict[str, int]:
    """The deputy approval of a submitted expense claim, waiting in the DDM queue."""
    summary = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), summary.id, "submit_claim", claim_data())
    return {"case": summary.id, "task": open_task(db, summary.id, "approve_ddm")}


DECISION = json.dumps({"decision": "同意"})
REFUSED: list[tuple[str, list[str], list[str], str]] = [
    ("claiming another role's task", [], ["claim", "TASK", "--as", "sales1"], "DDM"),
    (
        "completing another role's task",
        [],
        ["complete", "TASK", "--as", "sales1", "--data", DECISION],
        "DDM",
    ),
    (
        "completing a task someone else claimed",
        ["ddm1"],
        ["complete", "TASK", "--as", "ddm2", "--data", DECISION],
        "this task is assigned to someone else",
    ),
]


@pytest.mark.parametrize(
    ("claimed_by", "args", "fragment"),
    [(c, a, f) for _, c, a, f in REFUSED],
    ids=[n for n, _, _, _ in REFUSED],
)
def test_claiming_or_completing_what_the_engine_refuses_that_user_is_refused(
    db: Database,
    waiting_approval: dict[str, int],
    actor: Callable[[str], Actor],
    opsflow: Opsflow,
    claimed_by: list[str],
    args: list[str],
    fragment: str,
) -> None:
    task = waiting_approval["task"]
    for username in claimed_by:
        runtime.claim_task(db, actor(username), task)
    refusals, events = len(_events(db, "permission_denied")), count(db, "audit_event")
    line = one_error_line(
        opsflow("--database", db.url, *(task if a == "TASK" else a for a in args))
    )
    assert fragment in line
    assert len(_events(db, "permission_denied")) == refusals + 1  # audited, as on the web
    assert count(db, "audit_event") == events + 1  # and nothing else happened
    assert task in runtime.get_instance(db, waiting_approval["case"]).summary.open_task_ids


def test_a_business_key_is_capped_at_the_engines_limit(
    db: Database, deployed: object, opsflow: Opsflow
) -> None:
    def start(business_key: str) -> Result:
        return opsflow(
            "--database", db.url, "start", "expense_reimbursement", "--as", "sales1",
            "--business-key", business_key,
        )  # fmt: skip

    line = one_error_line(start("K" * (catalogue.BUSINESS_KEY_LENGTH + 1)))
    assert "business_key: " in line
    assert f"at most {catalogue.BUSINESS_KEY_LENGTH} characters" in line
    assert count(db, "process_instance") == 0
    (started,) = ok(start("K" * catalogue.BUSINESS_KEY_LENGTH))
    case_id = int(re.findall(r"instance (\d+)", started)[0])
    assert runtime.get_instance(db, case_id).summary.business_key == "K" * 128


# --- hostile input: one bilingual line on stderr, exit status 1, nothing changed ---

NOT_UTF8 = b'<?xml version="1.0" encoding="UTF-8"?>\n<definitions name="\xff\xfe"/>\n'
HUGE_ID = "99999999999999999999"  # above 2**63


def _nested(levels: int) -> str:
    """A JSON object whose deepest value is ``levels`` lists and objects down."""
    return '{"purpose": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


def _hostile_file(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.bpmn"
    path.write_bytes(NOT_UTF8)
    return path


HOSTILE: list[tuple[str, Callable[[Path], list[object]], str]] = [
    (
        "a file that is not UTF-8",
        lambda tmp: ["deploy", _hostile_file(tmp)],
        "latin1.bpmn: 文件不是 UTF-8 文本（第 58 字节为 0xff）/ the file is not UTF-8 text (byte 0xff at offset 58)",
    ),
    (
        "a missing file deployed",
        lambda tmp: ["deploy", tmp / "missing.bpmn"],
        "文件或文件夹不存在 / no such file or folder: ",
    ),
    (
        "a missing file validated",
        lambda tmp: ["validate", tmp / "missing.bpmn"],
        "no such file or folder: ",
    ),
    (
        "a file where a folder is needed",
        lambda tmp: ["conformance", _hostile_file(tmp)],
        "不是文件夹 / not a folder: ",
    ),
    (
        "a task id above 2**63 claimed",
        lambda tmp: ["claim", HUGE_ID, "--as", "ddm1"],
        f"TASK_ID must be a whole number from 1 to {2**63 - 1}: {HUGE_ID}",
    ),
    (
        "a task id above 2**63 completed",
        lambda tmp: ["complete", HUGE_ID, "--as", "ddm1"],
        "TASK_ID 必须是 1 到 9223372036854775807 之间的整数",
    ),
    (
        "a case id above 2**63",
        lambda tmp: ["instance", HUGE_ID],
        "INSTANCE_ID must be a whole number",
    ),
    ("a case id that is no number", lambda tmp: ["instance", "abc"], "INSTANCE_ID must be"),
    (
        "an integer of 5,000 digits in --data",
        lambda tmp: ["start", "expense_reimbursement", "--as", "sales1", "--data", '{"a": ' + "9" * 5000 + "}"],
        "--data 中有超过 4300 位的整数 / --data holds an integer of more than 4300 digits",
    ),
    (
        "--data nested 5,000 levels",
        lambda tmp: ["start", "expense_reimbursement", "--as", "sales1", "--data", _nested(5000)],
        "--data is nested deeper than 32 levels",
    ),
    (
        "--data nested 33 levels",
        lambda tmp: ["start", "expense_reimbursement", "--as", "sales1", "--data", _nested(33)],
        "--data 嵌套超过 32 层",
    ),
    (
        "an unpaired surrogate in --data",
        lambda tmp: ["start", "expense_reimbursement", "--as", "sales1", "--data", '{"a": "\\udcff"}'],
        "--data holds text that is not Unicode",
    ),
    (
        "an infinite number in --data",
        lambda tmp: ["start", "expense_reimbursement", "--as", "sales1", "--data", '{"a": 1e400}'],
        "--data holds 1e400, beyond any floating-point number",
    ),
    (
        "NaN in --data",
        lambda tmp: ["start", "expense_reimbursement", "--as", "sales1", "--data", '{"a": NaN}'],
        "--data holds NaN, which is not a number",
    ),
    (
        "a business key that is not UTF-8",
        lambda tmp: ["start", "expense_reimbursement", "--as", "sales1", "--business-key", "EXP-\udcff"],
        "参数不是 UTF-8 文本 / an argument is not UTF-8 text: EXP-\\xff",
    ),
    (
        "a user name that is not UTF-8",
        lambda tmp: ["tasks", "--as", "\udcff\udcfe"],
        "an argument is not UTF-8 text: \\xff\\xfe",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "fragment"), [(a, f) for _, a, f in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_hostile_input_is_one_bilingual_line_and_changes_nothing(
    db: Database,
    deployed: object,
    tmp_path: Path,
    opsflow: Opsflow,
    args: Callable[[Path], list[object]],
    fragment: str,
) -> None:
    before = count(db, "audit_event"), count(db, "process_instance")
    line = one_error_line(opsflow("--database", db.url, *args(tmp_path)))
    assert fragment in line
    assert re.search(r"[\u4e00-\u9fff].*/ [A-Za-z-]", line), line  # Chinese, then English
    assert (count(db, "audit_event"), count(db, "process_instance")) == before


def test_data_nested_32_levels_is_accepted(
    db: Database, deployed: object, opsflow: Opsflow
) -> None:
    command = ["start", "expense_reimbursement", "--as", "sales1", "--data", _nested(32)]
    (started,) = ok(opsflow("--database", db.url, *command))
    assert started.startswith("instance ")


def test_validating_a_file_that_is_not_utf8_reports_it_as_a_problem(
    tmp_path: Path, opsflow: Opsflow
) -> None:
    result = opsflow("validate", _hostile_file(tmp_path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stdout.splitlines() == [
        "latin1.bpmn: 文件不是 UTF-8 文本（第 58 字节为 0xff）/ the file is not UTF-8 text "
        "(byte 0xff at offset 58)",
        "1 problem(s)",
    ]


BAD_DATABASES: list[tuple[str, Callable[[Path], str], str]] = [
    (
        "an unknown kind of database",
        lambda tmp: "nonsense://x",
        "数据库地址无效（--database 或 OPSFLOW_DATABASE_URL）/ the database URL is not valid: ",
    ),
    (
        "an unreachable PostgreSQL",
        lambda tmp: "postgresql+psycopg://opsflow:secret@127.0.0.1:1/opsflow",
        "数据库不可用 / the database cannot be used: connection failed: ",
    ),
    (
        "a SQLite file under a plain file",
        lambda tmp: f"sqlite:///{_hostile_file(tmp)}/opsflow.sqlite",
        "latin1.bpmn",
    ),
    (
        "a database without the tables",
        lambda tmp: f"sqlite:///{tmp / 'empty.sqlite'}",
        "the database cannot be used: no such table: user",
    ),
]


@pytest.mark.parametrize(
    ("url", "fragment"), [(u, f) for _, u, f in BAD_DATABASES], ids=[n for n, _, _ in BAD_DATABASES]
)
def test_a_database_that_cannot_be_used_is_one_line(
    tmp_path: Path, opsflow: Opsflow, url: Callable[[Path], str], fragment: str
) -> None:
    line = one_error_line(opsflow("--database", url(tmp_path), "tasks", "--as", "sales1"))
    assert fragment in line
    assert "secret" not in line


CONSOLE_HOSTILE: list[tuple[str, list[object], str | None, str]] = [
    (
        "a business key that is not UTF-8",
        ["start", "expense_reimbursement", "--as", "sales1", "--business-key", b"EXP-\xff"],
        None,
        "an argument is not UTF-8 text: EXP-\\xff",
    ),
    ("a task id above 2**63", ["claim", HUGE_ID, "--as", "ddm1"], None, "TASK_ID must be"),
    (
        "an integer of 5,000 digits in --data",
        ["start", "expense_reimbursement", "--as", "sales1", "--data", '{"a": ' + "9" * 5000 + "}"],
        None,
        "more than 4300 digits",
    ),
    ("a bad database URL", ["tasks", "--as", "sales1"], "nonsense://x", "URL is not valid"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "url", "fragment"),
    [(a, u, f) for _, a, u, f in CONSOLE_HOSTILE],
    ids=[n for n, _, _, _ in CONSOLE_HOSTILE],
)
def test_the_console_script_turns_hostile_input_into_one_line(
    db: Database,
    deployed: object,
    tmp_path: Path,
    args: list[object],
    url: str | None,
    fragment: str,
) -> None:
    done = _console(db, *args, url=url)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert count(db, "process_instance") == 0


def test_the_console_script_refuses_a_file_that_is_not_utf8(db: Database, tmp_path: Path) -> None:
    done = _console(db, "deploy", _hostile_file(tmp_path))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: latin1.bpmn: 文件不是 UTF-8 文本（第 58 字节为 0xff）/ the file is not UTF-8 text "
        "(byte 0xff at offset 58)"
    ]
