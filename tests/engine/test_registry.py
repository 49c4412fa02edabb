"""engine.definitions.registry: content-hashed versions, pinned call activities, deploy-time validation, the deploy audit."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit, forms, runtime
from engine.definitions import registry
from engine.errors import DefinitionProblem, InvalidDefinitionError, NotFoundError
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime.services import inbox
from engine.storage.db import Database
from engine.storage.models import AuditEvent, ProcessDefinition, ProcessInstance
from tests.conftest import ActorOf, work
from tests.diagrams import service_task

DATA = Path(__file__).resolve().parents[1] / "data" / "registry"

NOTE_FORM = forms.load_form(
    json.dumps(
        {
            "key": "review_note",
            "title": {"zh": "复核意见", "en": "Review note"},
            "fields": [
                {"name": "note", "type": "text", "label": {"zh": "意见"}, "max_length": 200}
            ],
        },
        ensure_ascii=False,
    ),
    "review_note.json",
)
FORMS = {"review_note": NOTE_FORM}


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def bundle(
    name: str,
    text: str | None = None,
    dmn: Mapping[str, str] | None = None,
    form_defs: Mapping[str, forms.FormDefinition] | None = None,
) -> registry.ProcessFiles:
    """``name`` from tests/data/registry (or ``text`` under that name) with DMN files and forms."""
    return registry.ProcessFiles(
        name,
        read(name) if text is None else text,
        dict(dmn or {}),
        dict(FORMS if form_defs is None else form_defs),
    )


def deploy(
    db: Database, files: registry.ProcessFiles, who: Actor = identity.SYSTEM
) -> registry.DeployedVersion:
    with db.unit_of_work() as session:
        return registry.deploy(session, who, files)


def refused(db: Database, files: registry.ProcessFiles) -> list[DefinitionProblem]:
    """Deploy must fail; nothing of the file may be left behind. Returns the problems."""
    with pytest.raises(InvalidDefinitionError) as error:
        deploy(db, files)
    assert error.value.problems, "a refusal must list its problems"
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ProcessDefinition)) == 0
        assert _deploy_events(session) == []
    return error.value.problems


def only_problem(problems: Sequence[DefinitionProblem]) -> DefinitionProblem:
    assert len(problems) == 1, problems
    return problems[0]


def open_bpmn_ids(db: Database, instance_id: int) -> list[str]:
    return sorted(row.bpmn_id for row in inbox.open_tasks_of(db, instance_id))


def _deploy_events(session: Session) -> list[dict[str, object]]:
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.type == "definition_deployed").order_by(AuditEvent.seq)
    )
    return [{"actor": row.actor, **json.loads(row.payload)} for row in rows]


# --- a small BPMN builder for the validation cases ---

Node = tuple[str, str]  # (id, XML)
NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
)


def user_task(task_id: str, **properties: str) -> Node:
    props = "".join(
        f'<spiffworkflow:property name="{name}" value="{value}"/>'
        for name, value in properties.items()
    )
    extensions = (
        f"<bpmn:extensionElements><spiffworkflow:properties>{props}"
        "</spiffworkflow:properties></bpmn:extensionElements>"
        if props
        else ""
    )
    return task_id, f'<bpmn:userTask id="{task_id}" name="{task_id}">{extensions}</bpmn:userTask>'


def script_task(task_id: str, script: str) -> Node:
    return (
        task_id,
        f'<bpmn:scriptTask id="{task_id}"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>',
    )


def timer_wait(event_id: str, value: str, kind: str = "timeDuration") -> Node:
    return event_id, (
        f'<bpmn:intermediateCatchEvent id="{event_id}"><bpmn:timerEventDefinition id="{event_id}_def">'
        f"<bpmn:{kind}>{value}</bpmn:{kind}>"
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )


def flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    expression = (
        f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>" if condition else ""
    )
    return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">{expression}</bpmn:sequenceFlow>'


def process(
    *nodes: Node,
    key: str = "checked",
    flows: Sequence[str] | None = None,
    lanes: Mapping[str, Sequence[str]] | None = None,
    executable: str = "true",
) -> str:
    """A process with the nodes between a start and an end event, in a row unless ``flows`` are given."""
    ids = ["start", *(node_id for node_id, _ in nodes), "end"]
    if flows is None:
        flows = [flow(f"f{i}", a, b) for i, (a, b) in enumerate(itertools.pairwise(ids))]
    lane_set = ""
    if lanes:
        lane_set = (
            '<bpmn:laneSet id="lanes">'
            + "".join(
                f'<bpmn:lane id="lane_{i}" name="{name}">'
                + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs)
                + "</bpmn:lane>"
                for i, (name, refs) in enumerate(lanes.items())
            )
            + "</bpmn:laneSet>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<bpmn:definitions {NS} id="Definitions_{key}" targetNamespace="https://opsflow.example/tests">'
        f'<bpmn:process id="{key}" name="{key}" isExecutable="{executable}">{lane_set}'
        '<bpmn:startEvent id="start"/>'
        + "".join(xml for _, xml in nodes)
        + '<bpmn:endEvent id="end"/>'
        + "".join(flows)
        + "</bpmn:process></bpmn:definitions>"
    )


def checked(text: str, dmn: Mapping[str, str] | None = None) -> registry.ProcessFiles:
    return registry.ProcessFiles("checked.bpmn", text, dict(dmn or {}), FORMS)


# --- versioning ---


def test_identical_content_returns_the_existing_version(db: Database) -> None:
    first = deploy(db, bundle("review_v1.bpmn"))
    again = deploy(db, bundle("review_v1.bpmn"))
    assert (first.key, first.version, first.created) == ("review", 1, True)
    assert (again.id, again.version, again.sha256, again.created) == (
        first.id,
        1,
        first.sha256,
        False,
    )
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ProcessDefinition)) == 1


def test_one_changed_character_is_a_new_version_and_new_instances_start_on_it(
    db: Database, actor: ActorOf
) -> None:
    original = read("review_v1.bpmn")
    changed = original.replace('name="复核">', 'name="复查">')
    assert len(changed) == len(original)
    assert sum(a != b for a, b in zip(original, changed, strict=True)) == 1
    first = deploy(db, bundle("review_v1.bpmn"))
    second = deploy(db, bundle("review_v1.bpmn", changed))
    assert (second.version, second.created) == (2, True)
    assert second.sha256 != first.sha256
    with db.read() as session:
        latest = registry.find_latest(session, "review")
        assert latest is not None
        assert (latest.id, latest.version) == (second.id, 2)
    case = runtime.start_instance(db, actor("sales1"), "review")
    assert case.definition_version == 2
    assert [row.name for row in inbox.open_tasks_of(db, case.id)] == ["复查"]


def test_unused_dmn_files_and_forms_do_not_make_a_new_version(db: Database) -> None:
    first = deploy(db, bundle("review_v1.bpmn"))
    extra_form = forms.load_form(
        json.dumps(
            {
                "key": "other",
                "title": {"zh": "其他"},
                "fields": [{"name": "x", "type": "text", "label": {"zh": "x"}}],
            },
            ensure_ascii=False,
        )
    )
    again = deploy(
        db,
        bundle(
            "review_v1.bpmn",
            dmn={"amount_band.dmn": read("amount_band.dmn")},
            form_defs={**FORMS, "other": extra_form},
        ),
    )
    assert (again.id, again.created) == (first.id, False)


def test_a_changed_form_is_a_new_version(db: Database) -> None:
    first = deploy(db, bundle("review_v1.bpmn"))
    stricter = forms.load_form(
        json.dumps(
            {
                "key": "review_note",
                "title": {"zh": "复核意见"},
                "fields": [
                    {"name": "note", "type": "text", "label": {"zh": "意见"}, "required": True}
                ],
            },
            ensure_ascii=False,
        )
    )
    second = deploy(db, bundle("review_v1.bpmn", form_defs={"review_note": stricter}))
    assert (second.version, second.created) == (2, True)
    assert second.sha256 != first.sha256


def test_a_changed_dmn_table_is_a_new_version(db: Database) -> None:
    band = read("amount_band.dmn")
    first = deploy(db, bundle("banding.bpmn", dmn={"amount_band.dmn": band}))
    moved = band.replace("&lt;= 100", "&lt;= 500").replace("&gt; 100", "&gt; 500")
    second = deploy(db, bundle("banding.bpmn", dmn={"amount_band.dmn": moved}))
    assert (first.version, second.version, second.created) == (1, 2, True)


def test_an_instance_keeps_running_on_the_version_it_started_on(
    db: Database, actor: ActorOf
) -> None:
    deploy(db, bundle("review_v1.bpmn"))
    old_case = runtime.start_instance(db, actor("sales1"), "review")
    v2 = deploy(db, bundle("review_v2.bpmn"))
    assert (v2.version, v2.created) == (2, True)
    new_case = runtime.start_instance(db, actor("sales1"), "review")
    assert (old_case.definition_version, new_case.definition_version) == (1, 2)

    # v1: the review is the last step.
    done = work(db, actor("ddm1"), old_case.id, "review_task", {"note": "无误"})
    assert done.status == runtime.COMPLETED
    assert done.definition_version == 1
    assert open_bpmn_ids(db, old_case.id) == []

    # v2: the review is followed by the starter's archiving.
    next_step = work(db, actor("ddm1"), new_case.id, "review_task", {"note": "无误"})
    assert next_step.status == runtime.RUNNING
    assert open_bpmn_ids(db, new_case.id) == ["archive_task"]
    finished = work(db, actor("sales1"), new_case.id, "archive_task")
    assert (finished.status, finished.definition_version) == (runtime.COMPLETED, 2)


# --- call activities ---


def test_a_caller_runs_the_callee_version_pinned_when_it_was_deployed(
    db: Database, actor: ActorOf
) -> None:
    callee_v1 = deploy(db, bundle("callee_v1.bpmn"))
    caller_v1 = deploy(db, bundle("caller.bpmn"))
    callee_v2 = deploy(db, bundle("callee_v2.bpmn"))
    assert (callee_v1.version, callee_v2.version, caller_v1.version) == (1, 2, 1)
    with db.read() as session:
        pinned = registry.find_latest(session, "caller")
        assert pinned is not None
        assert pinned.called == {"callee": callee_v1.id}

    # Started after callee v2 exists, the caller still runs callee v1: one check, then close.
    case = runtime.start_instance(db, actor("sales1"), "caller")
    assert open_bpmn_ids(db, case.id) == ["callee_check"]
    work(db, actor("ddm1"), case.id, "callee_check")
    assert open_bpmn_ids(db, case.id) == ["close_case"]
    assert work(db, actor("sales1"), case.id, "close_case").status == runtime.COMPLETED

    # Deploying the caller again (new content) pins the newest callee: v2's sign-off appears.
    renamed = read("caller.bpmn").replace('name="调用方"', 'name="调用方（新）"')
    caller_v2 = deploy(db, bundle("caller.bpmn", renamed))
    assert (caller_v2.version, caller_v2.created) == (2, True)
    with db.read() as session:
        latest = registry.find_latest(session, "caller")
        assert latest is not None
        assert latest.called == {"callee": callee_v2.id}
    case2 = runtime.start_instance(db, actor("sales1"), "caller")
    assert case2.definition_version == 2
    work(db, actor("ddm1"), case2.id, "callee_check")
    assert open_bpmn_ids(db, case2.id) == ["callee_sign_off"]
    work(db, actor("dm"), case2.id, "callee_sign_off")
    assert open_bpmn_ids(db, case2.id) == ["close_case"]


def test_a_caller_whose_callee_is_not_deployed_is_refused_naming_the_key(db: Database) -> None:
    text = read("caller.bpmn").replace('calledElement="callee"', 'calledElement="credit_check"')
    problem = only_problem(refused(db, bundle("caller.bpmn", text)))
    assert problem.file == "caller.bpmn"
    # The problem points at the call (today the engine names the called key as the element).
    assert problem.element_id in {"call_callee", "credit_check"}
    assert "called process 'credit_check' is not deployed" in problem.message


@pytest.mark.parametrize("caller_first", [True, False], ids=["caller-first", "callee-first"])
def test_deploy_all_deploys_the_callee_before_its_caller(
    db: Database, actor: ActorOf, caller_first: bool
) -> None:
    batch = [bundle("callee_v1.bpmn"), bundle("caller.bpmn")]
    if caller_first:
        batch.reverse()
    with db.unit_of_work() as session:
        deployed = registry.deploy_all(session, identity.SYSTEM, batch)
    assert [d.key for d in deployed] == ["callee", "caller"]
    assert all(d.created and d.version == 1 for d in deployed)
    with db.read() as session:
        caller = registry.find_latest(session, "caller")
        assert caller is not None
        assert caller.called == {"callee": deployed[0].id}
    case = runtime.start_instance(db, actor("sales1"), "caller")
    assert open_bpmn_ids(db, case.id) == ["callee_check"]


def test_deploy_all_reports_every_failing_file_and_rolls_back_with_the_transaction(
    db: Database,
) -> None:
    broken_caller = read("caller.bpmn").replace('calledElement="callee"', 'calledElement="nowhere"')
    broken_review = read("review_v1.bpmn").replace('value="review_note"', 'value="no_such_form"')
    batch = [
        bundle("callee_v1.bpmn"),
        bundle("caller.bpmn", broken_caller),
        bundle("review_v1.bpmn", broken_review),
    ]
    with pytest.raises(InvalidDefinitionError) as error, db.unit_of_work() as session:
        registry.deploy_all(session, identity.SYSTEM, batch)
    assert {(p.file, p.element_id) for p in error.value.problems} == {
        ("caller.bpmn", "nowhere"),
        ("review_v1.bpmn", "review_task"),
    }
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ProcessDefinition)) == 0


# --- validation: each problem names its element ---


def test_a_user_task_whose_lane_maps_to_no_role_and_that_names_no_assignee(db: Database) -> None:
    problem = only_problem(
        refused(db, checked(process(user_task("approve"), lanes={"外包商": ["approve"]})))
    )
    assert problem.element_id == "approve"
    assert "外包商" in problem.message
    assert "maps to no known role" in problem.message
    # The same task is fine in a role's lane, or with an assignee.
    assert deploy(db, checked(process(user_task("approve"), lanes={"副经理": ["approve"]}))).created
    with_assignee = process(user_task("approve", assignee="starter"), lanes={"外包商": ["approve"]})
    assert deploy(db, checked(with_assignee)).version == 2


def test_a_user_task_outside_any_lane_needs_an_assignee(db: Database) -> None:
    problem = only_problem(refused(db, checked(process(user_task("approve")))))
    assert problem.element_id == "approve"
    assert "no known role" in problem.message


def test_a_form_key_with_no_form(db: Database) -> None:
    problem = only_problem(
        refused(db, checked(process(user_task("fill", assignee="starter", formKey="claim_form"))))
    )
    assert problem.element_id == "fill"
    assert "no form 'claim_form'" in problem.message


def test_an_unknown_assignee_expression(db: Database) -> None:
    problem = only_problem(
        refused(db, checked(process(user_task("fill", assignee="boss_of(starter)"))))
    )
    assert problem.element_id == "fill"
    assert "unknown assignee expression" in problem.message
    assert "boss_of(starter)" in problem.message


@pytest.mark.parametrize("deadline", ["5 fortnights", "soon", "-3 days"])
def test_an_unrecognised_deadline_is_named_with_its_task(db: Database, deadline: str) -> None:
    problem = only_problem(
        refused(db, checked(process(user_task("fill", assignee="starter", deadline=deadline))))
    )
    assert problem.element_id == "fill"
    assert f"unrecognised deadline {deadline!r}" in problem.message


def test_a_gateway_condition_the_sandbox_rejects_is_refused_and_never_runs(
    db: Database, actor: ActorOf, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile = f"__import__('os').mkdir('{marker}') is None"
    text = process(
        ("gw", '<bpmn:exclusiveGateway id="gw" default="f_no"/>'),
        user_task("fill", assignee="starter"),
        flows=[
            flow("f_start", "start", "gw"),
            flow("f_yes", "gw", "fill", hostile),
            flow("f_no", "gw", "end"),
            flow("f_fill", "fill", "end"),
        ],
    )
    problem = only_problem(refused(db, checked(text)))
    assert problem.element_id == "gw"
    assert "__import__" in problem.message
    assert "not allowed" in problem.message
    assert not marker.exists()
    with pytest.raises(NotFoundError):
        runtime.start_instance(db, actor("sales1"), "checked")
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0
    assert not marker.exists()


def test_a_script_task_that_imports(db: Database) -> None:
    problem = only_problem(
        refused(db, checked(process(script_task("prepare", "import os\nx = 1"))))
    )
    assert problem.element_id == "prepare"
    assert "imports are not allowed" in problem.message


@pytest.mark.parametrize("juel", ["${amount &gt; 1000}", "#{amount &gt; 1000}"])
def test_a_juel_condition_is_named_as_juel_with_its_flow(db: Database, juel: str) -> None:
    text = process(
        ("gw", '<bpmn:exclusiveGateway id="gw"/>'),
        flows=[
            flow("f_start", "start", "gw"),
            flow("f_big", "gw", "end", juel),
            flow("f_small", "gw", "end", "amount &lt;= 1000"),
        ],
    )
    problem = only_problem(refused(db, checked(text)))
    assert problem.element_id == "f_big"
    assert juel.replace("&gt;", ">") in problem.message
    assert "JUEL/EL" in problem.message


@pytest.mark.parametrize(
    ("kind", "value"),
    [("timeDuration", "PT10M"), ("timeDuration", "P3D"), ("timeDate", "2026-03-09T09:00:00Z")],
)
def test_an_unquoted_timer_value(db: Database, kind: str, value: str) -> None:
    problem = only_problem(refused(db, checked(process(timer_wait("wait", value, kind)))))
    assert problem.element_id == "wait"
    assert value in problem.message
    assert "must be a quoted Python string" in problem.message
    quoted = process(timer_wait("wait", f"&quot;{value}&quot;", kind))
    assert deploy(db, checked(quoted)).created


def test_a_dmn_hit_policy_the_engine_does_not_run(db: Database) -> None:
    first = read("amount_band_first.dmn")
    problem = only_problem(refused(db, bundle("banding.bpmn", dmn={"amount_band.dmn": first})))
    assert problem.element_id == "classify"
    assert "hit policy FIRST" in problem.message
    assert "UNIQUE, COLLECT only" in problem.message
    dmn_problem = only_problem(registry.check_dmn(first, "amount_band.dmn"))
    assert (dmn_problem.file, dmn_problem.element_id) == ("amount_band.dmn", "amount_band")
    assert "hit policy FIRST" in dmn_problem.message


def test_overlapping_unique_rules_name_both_rules(db: Database) -> None:
    overlap = read("amount_band_overlap.dmn")
    problem = only_problem(refused(db, bundle("banding.bpmn", dmn={"amount_band.dmn": overlap})))
    assert problem.element_id == "classify"
    assert "UNIQUE rules 2 and 3" in problem.message
    assert "rule_large" in problem.message
    assert "rule_huge" in problem.message
    dmn_problem = only_problem(registry.check_dmn(overlap, "amount_band.dmn"))
    assert "UNIQUE rules 2 and 3" in dmn_problem.message


def test_non_overlapping_unique_rules_deploy_and_decide(db: Database, actor: ActorOf) -> None:
    band = read("amount_band.dmn")
    assert registry.check_dmn(band, "amount_band.dmn") == []
    version = deploy(db, bundle("banding.bpmn", dmn={"amount_band.dmn": band}))
    assert (version.key, version.created) == ("banding", True)
    for amount, expected in ((100, "small"), (101, "large")):
        case = runtime.start_instance(db, actor("sales1"), "banding", {"amount": amount})
        assert runtime.get_instance(db, case.id).data["band"] == expected
        assert open_bpmn_ids(db, case.id) == ["confirm"]


def test_overlapping_rules_are_allowed_under_collect(db: Database, actor: ActorOf) -> None:
    collect = read("amount_band_overlap.dmn").replace('hitPolicy="UNIQUE"', 'hitPolicy="COLLECT"')
    assert registry.check_dmn(collect, "amount_band.dmn") == []
    deploy(db, bundle("banding.bpmn", dmn={"amount_band.dmn": collect}))
    case = runtime.start_instance(db, actor("sales1"), "banding", {"amount": 250})
    assert runtime.get_instance(db, case.id).data["band"] == ["large", "huge"]


def test_a_dmn_file_with_two_decisions(db: Database) -> None:
    two = read("two_decisions.dmn")
    dmn_problem = only_problem(registry.check_dmn(two, "two_decisions.dmn"))
    assert dmn_problem.file == "two_decisions.dmn"
    assert "2 decisions" in dmn_problem.message
    assert "one decision table per DMN file" in dmn_problem.message
    problem = only_problem(refused(db, bundle("banding.bpmn", dmn={"two_decisions.dmn": two})))
    assert problem.file == "two_decisions.dmn"
    assert "2 decisions" in problem.message


def test_a_business_rule_task_in_camunda_dialect(db: Database) -> None:
    text = process(
        (
            "classify",
            '<bpmn:businessRuleTask id="classify" camunda:decisionRef="amount_band"/>',
        )
    )
    problem = only_problem(refused(db, checked(text, {"amount_band.dmn": read("amount_band.dmn")})))
    assert problem.element_id == "classify"
    assert "calledDecisionId" in problem.message
    assert "decisionRef" in problem.message


def test_a_service_task_without_an_opsflow_operator(db: Database) -> None:
    text = process(("notify", '<bpmn:serviceTask id="notify" name="发送通知"/>'))
    problem = only_problem(refused(db, checked(text)))
    assert problem.element_id == "notify"
    assert "names no opsflow operator" in problem.message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["operator policy_lookup needs parameter 'policy_no'"]),
        (
            {"policy_no": "policy_no", "insurer": "insurer"},
            ["operator policy_lookup has no parameter 'insurer'"],
        ),
    ],
)
def test_an_operator_called_with_the_wrong_parameters(
    db: Database, params: dict[str, str], expected: list[str]
) -> None:
    task = service_task("lookup", "查询保单", "policy_lookup", "policy", **params)
    problems = refused(db, checked(process(("lookup", task))))
    assert [p.element_id for p in problems] == ["lookup"]
    assert [p.message.split(" / ")[1] for p in problems] == expected


def test_an_unknown_operator_names_the_known_ones(db: Database) -> None:
    task = service_task("send", "发短信", "send_sms", "sent", mobile="mobile")
    problem = only_problem(refused(db, checked(process(("send", task)))))
    assert "unknown operator 'send_sms'" in problem.message
    assert "policy_lookup" in problem.message


def test_an_operator_parameter_is_checked_by_the_sandbox(db: Database) -> None:
    task = service_task(
        "lookup", "查询保单", "policy_lookup", "policy", policy_no="__import__('os')"
    )
    problem = only_problem(refused(db, checked(process(("lookup", task)))))
    assert problem.element_id == "lookup"
    assert "parameter" in problem.message


def test_a_file_with_no_executable_process(db: Database) -> None:
    text = process(user_task("fill", assignee="starter"), executable="false")
    problem = only_problem(refused(db, checked(text)))
    assert problem.file == "checked.bpmn"
    assert "no executable process" in problem.message
    assert "checked" in problem.message  # names the process that is not executable


def test_several_problems_in_one_file_are_reported_at_once(db: Database) -> None:
    text = process(
        user_task("approve"),  # no lane, no assignee
        user_task("fill", assignee="starter", formKey="claim_form"),
        user_task("sign", assignee="starter", deadline="someday"),
        script_task("prepare", "import os"),
        timer_wait("wait", "P3D"),
    )
    problems = refused(db, checked(text))
    found = {problem.element_id: problem.message for problem in problems}
    assert set(found) == {"approve", "fill", "sign", "prepare", "wait"}
    assert "no known role" in found["approve"]
    assert "claim_form" in found["fill"]
    assert "someday" in found["sign"]
    assert "imports are not allowed" in found["prepare"]
    assert "must be a quoted Python string" in found["wait"]
    # check() reports the same list without deploying.
    with db.read() as session:
        _compiled, _called, problems_checked = registry.check(session, checked(text))
    assert problems_checked == problems


# --- the deploy audit ---


def test_a_deploy_is_audited_with_key_version_and_sha256(db: Database, actor: ActorOf) -> None:
    po = actor("po1")
    first = deploy(db, bundle("review_v1.bpmn"), po)
    deploy(db, bundle("review_v1.bpmn"), po)  # identical: nothing new, nothing audited
    second = deploy(db, bundle("review_v2.bpmn"), po)
    with db.read() as session:
        events = _deploy_events(session)
        report = audit.verify(session)
    assert [(e["actor"], e["key"], e["version"], e["sha256"]) for e in events] == [
        ("po1", "review", 1, first.sha256),
        ("po1", "review", 2, second.sha256),
    ]
    assert events[0]["forms"] == ["review_note"]
    assert events[0]["called"] == {}
    assert report.ok


def test_the_deploy_audit_records_the_pinned_callee(db: Database) -> None:
    callee = deploy(db, bundle("callee_v1.bpmn"))
    caller = deploy(db, bundle("caller.bpmn"))
    with db.read() as session:
        events = _deploy_events(session)
    assert [(e["key"], e["version"]) for e in events] == [("callee", 1), ("caller", 1)]
    assert events[1]["called"] == {"callee": callee.id}
    assert events[1]["sha256"] == caller.sha256


def test_a_callee_of_a_callee_runs_the_version_its_own_caller_pinned(
    db: Database, actor: ActorOf
) -> None:
    callee_v1 = deploy(db, bundle("callee_v1.bpmn"))
    middle = read("caller.bpmn").replace('id="caller" name="调用方"', 'id="middle" name="中间流程"')
    middle = middle.replace("close_case", "middle_close")
    deploy(db, bundle("middle.bpmn", middle))
    deploy(db, bundle("callee_v2.bpmn"))
    top = (
        read("caller.bpmn")
        .replace('calledElement="callee"', 'calledElement="middle"')
        .replace('id="caller" name="调用方"', 'id="top" name="上层流程"')
    )
    deploy(db, bundle("top.bpmn", top))
    with db.read() as session:
        pinned = registry.find_latest(session, "top")
        assert pinned is not None
        assert pinned.called["callee"] == callee_v1.id  # middle's own pin, not the newest callee
    case = runtime.start_instance(db, actor("sales1"), "top")
    work(db, actor("ddm1"), case.id, "callee_check")
    assert open_bpmn_ids(db, case.id) == ["middle_close"]  # callee v1 has no sign-off step


def test_a_process_calling_two_versions_of_one_callee_is_refused(db: Database) -> None:
    deploy(db, bundle("callee_v1.bpmn"))
    middle = read("caller.bpmn").replace('id="caller" name="调用方"', 'id="middle" name="中间流程"')
    deploy(db, bundle("middle.bpmn", middle))
    deploy(db, bundle("callee_v2.bpmn"))
    both = read("caller.bpmn").replace(
        '<bpmn:callActivity id="call_callee" name="调用核对" calledElement="callee"/>',
        '<bpmn:callActivity id="call_callee" name="调用核对" calledElement="callee"/>'
        '<bpmn:callActivity id="call_middle" name="调用中间" calledElement="middle"/>',
    )
    with pytest.raises(InvalidDefinitionError) as error:
        deploy(db, bundle("both.bpmn", both))
    assert "two versions" in only_problem(error.value.problems).message


def test_a_foreign_construct_does_not_hide_the_other_problems_of_the_file(db: Database) -> None:
    text = process(
        user_task("approve"),
        ("gw", '<bpmn:exclusiveGateway id="gw"/>'),
        flows=[
            flow("f0", "start", "approve"),
            flow("f1", "approve", "gw"),
            flow("f_big", "gw", "end", "${amount &gt; 1}"),
            flow("f_small", "gw", "end", "amount &lt;= 1"),
        ],
    )
    problems = refused(db, checked(text))
    assert {p.element_id for p in problems} == {"approve", "f_big"}


def test_a_bad_assignee_does_not_hide_a_bad_deadline(db: Database) -> None:
    problems = refused(db, checked(process(user_task("fill", assignee="boss", deadline="someday"))))
    messages = sorted(p.message for p in problems)
    assert len(messages) == 2
    assert messages[0].startswith("assignee: ")
    assert messages[1].startswith("deadline: ")
    assert "{" not in messages[0]  # plain text, not a printed dict


BANDS_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="bands" namespace="https://opsflow.test">
  <decision id="bands" name="bands">
    <decisionTable id="t" hitPolicy="UNIQUE">
      <input id="i" label="x"><inputExpression id="ie" typeRef="integer"><text>x</text></inputExpression></input>
      <output id="o" label="band" name="band" typeRef="string"/>
      <rule id="r1"><inputEntry id="r1i"><text>&lt; 10</text></inputEntry><outputEntry id="r1o"><text>"small"</text></outputEntry></rule>
      <rule id="r2"><inputEntry id="r2i"><text>&gt;= 10</text></inputEntry><outputEntry id="r2o"><text>"large"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_a_called_process_runs_its_decision_table_inside_the_caller(
    db: Database, actor: ActorOf
) -> None:
    callee = process(
        ("classify", '<bpmn:businessRuleTask id="classify"><bpmn:extensionElements>'
         "<spiffworkflow:calledDecisionId>bands</spiffworkflow:calledDecisionId>"
         "</bpmn:extensionElements></bpmn:businessRuleTask>"),
        key="banding",
    )  # fmt: skip
    caller = process(
        ("call", '<bpmn:callActivity id="call" calledElement="banding"/>'),
        user_task("look", role="OPS"),
        key="caller",
    )
    deploy(db, registry.ProcessFiles("banding.bpmn", callee, {"bands.dmn": BANDS_DMN}, FORMS))
    version = deploy(db, registry.ProcessFiles("caller.bpmn", caller, {}, FORMS))
    assert version.key == "caller"
    case = runtime.start_instance(db, actor("ops1"), "caller", data={"x": 12})
    assert runtime.get_instance(db, case.id).data["band"] == "large"
