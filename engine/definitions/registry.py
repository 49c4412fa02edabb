"""Validate and deploy BPMN (with DMN and forms) as immutable, numbered, content-hashed versions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit, bpmn, case_files, forms, sandbox
from engine.definitions import dmn_checks, periodic_starts
from engine.errors import (
    DefinitionProblem,
    InvalidDefinitionError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ScriptRejectedError,
)
from engine.people import assignment
from engine.people.assignment import parse_assignee, role_for_lane
from engine.people.identity import Actor
from engine.storage.db import Database
from engine.storage.models import ProcessDefinition
from engine.timekeeping import clock, workdays

_FOREIGN = re.compile(r"[$#]\{")
_BARE_ISO = re.compile(
    r"^\s*(R\d*/)?P(\d|T)[0-9A-Z.]*\s*$|^\s*\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-][\d:]+)?\s*$"
)


@dataclass(frozen=True)
class DeployedVersion:
    """The version a deploy produced (or found: identical content is never deployed twice)."""

    id: int
    key: str
    version: int
    name: str
    sha256: str
    created: bool


@dataclass(frozen=True)
class ProcessFiles:
    """A BPMN file with the DMN files and forms it may use."""

    source: str
    bpmn_xml: str
    dmn_files: Mapping[str, str]
    forms: Mapping[str, forms.FormDefinition]
    # lanes that map to no role are open to anyone (only for the conformance walk)
    open_lanes: bool = False


# --- validation ---


def check(
    session: Session, files: ProcessFiles
) -> tuple[bpmn.CompiledProcess | None, dict[str, str], list[DefinitionProblem]]:
    """Everything deploy checks, without deploying: (compiled process, pinned called XML, problems)."""
    foreign: list[DefinitionProblem] = []
    try:
        foreign = bpmn.foreign_constructs(files.bpmn_xml, files.source)
        called = _called_xml(session, files)
        dmn = _process_dmn(session, files)
        compiled = bpmn.compile_process(files.bpmn_xml, files.source, dmn, called)
    except InvalidDefinitionError as exc:
        # a foreign construct usually explains why the library could not parse the file
        return None, {}, foreign or exc.problems
    foreign_messages = {p.message for p in foreign}
    problems = [
        *foreign,
        *_user_task_problems(compiled, files),
        *_service_task_problems(compiled, files.source),
        *(
            p
            for p in _expression_problems(compiled, files.source)
            if p.message not in foreign_messages
        ),
        *dmn_checks.table_problems(bpmn.decision_tables(compiled), files.source),
    ]
    return compiled, called, problems


def _called_xml(session: Session, files: ProcessFiles) -> dict[str, str]:
    """The XML of every process the file calls, directly or through its callees, as pinned."""
    return _xml_of(session, _pins(session, files))


def _pins(session: Session, files: ProcessFiles) -> dict[str, int]:
    """Each called key → the definition id it runs: the newest version of a direct callee, and
    for the callees' own callees the versions those callees pinned when they were deployed."""
    pins: dict[str, int] = {}
    for key in sorted(bpmn.called_element_ids(files.bpmn_xml, files.source)):
        definition = find_latest(session, key)
        if definition is None:
            raise bpmn_problem(
                files.source, key, f"被调用的流程未部署 / called process '{key}' is not deployed"
            )
        _pin(session, files.source, key, definition.id, pins)
    return pins


def _pin(session: Session, source: str, key: str, definition_id: int, pins: dict[str, int]) -> None:
    if key in pins:
        if pins[key] != definition_id:
            raise bpmn_problem(
                source,
                key,
                (
                    f"流程 '{key}' 会以两个版本运行（#{pins[key]} 与 #{definition_id}）/ called process '{key}' would "
                    "run in two versions in one case; redeploy the processes that call it so they pin the same one"
                ),
            )
        return
    pins[key] = definition_id
    definition = session.get(ProcessDefinition, definition_id)
    if definition is None:
        raise NotFoundError(
            f"被调用流程版本缺失 / pinned called process {key} #{definition_id} is missing"
        )
    for callee, callee_id in sorted(definition.called.items()):
        _pin(session, source, callee, callee_id, pins)


def _xml_of(session: Session, pins: Mapping[str, int]) -> dict[str, str]:
    called = {}
    for key, definition_id in pins.items():
        definition = session.get(ProcessDefinition, definition_id)
        if definition is None:
            raise NotFoundError(
                f"被调用流程版本缺失 / pinned called process {key} #{definition_id} is missing"
            )
        called[key] = definition.bpmn_xml
    return called


def bpmn_problem(source: str, element_id: str | None, message: str) -> InvalidDefinitionError:
    problem = DefinitionProblem(source, element_id, message)
    return InvalidDefinitionError(str(problem), [problem])


def _process_dmn(session: Session, files: ProcessFiles) -> dict[str, str]:
    """The DMN files the process runs: its own decisions' and those its called processes pinned.

    A called process's business rule tasks run inside the caller's workflow, so the caller's
    version carries their tables too (as the callees were deployed). Two different tables under
    one file name cannot both run: that is refused.
    """
    own = _referenced_dmn(files)
    merged = dict(own)
    for key, definition_id in _pins(session, files).items():
        definition = session.get(ProcessDefinition, definition_id)
        for name, xml in (definition.dmn_files if definition else {}).items():
            if merged.setdefault(name, xml) != xml:
                raise bpmn_problem(
                    files.source,
                    key,
                    (
                        f"被调用流程 {key} 使用的 {name} 与本流程的不同，请先重新部署 {key} / the called "
                        f"process {key} runs another version of {name}: deploy {key} again first"
                    ),
                )
    return merged


def _referenced_dmn(files: ProcessFiles) -> dict[str, str]:
    wanted = set(re.findall(r"calledDecisionId>\s*([^<\s]+)\s*<", files.bpmn_xml))
    if not wanted:
        return {}
    chosen: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name, xml in files.dmn_files.items():
        for decision_id in (
            set(re.findall(r"<(?:\w+:)?decision\b[^>]*\bid=\"([^\"]+)\"", xml)) & wanted
        ):
            if decision_id in owner:
                raise bpmn_problem(
                    files.source,
                    decision_id,
                    (
                        f"决策 {decision_id} 同时定义于 {owner[decision_id]} 和 {name} / decision {decision_id} is "
                        f"defined in both {owner[decision_id]} and {name}: which one runs would be an accident"
                    ),
                )
            owner[decision_id] = name
            chosen[name] = xml
    return chosen


def _user_task_problems(
    compiled: bpmn.CompiledProcess, files: ProcessFiles
) -> list[DefinitionProblem]:
    problems = []
    for task in compiled.user_tasks.values():
        props = task.properties
        if (
            role_for_lane(task.lane, props) is None
            and not props.get("assignee")
            and not files.open_lanes
        ):
            problems.append(
                DefinitionProblem(
                    files.source,
                    task.bpmn_id,
                    f"泳道 '{task.lane}' 没有对应的角色，也没有指定处理人 / lane '{task.lane}' maps to no known role and the task names no assignee",
                )
            )
        form_key = props.get("formKey")
        if form_key and form_key not in files.forms:
            problems.append(
                DefinitionProblem(
                    files.source,
                    task.bpmn_id,
                    f"表单 '{form_key}' 不存在 / no form '{form_key}' in forms/",
                )
            )
        problems.extend(_property_problems(files.source, task.bpmn_id, props))
    return problems


def _property_problems(
    source: str, bpmn_id: str, props: Mapping[str, str]
) -> list[DefinitionProblem]:
    problems: list[DefinitionProblem] = []
    checks: tuple[tuple[str, Callable[[str], object]], ...] = (
        ("assignee", parse_assignee),
        ("deadline", workdays.parse_deadline_spec),
        ("excludeUsers", assignment.parse_exclusions),
        ("sameLevelAssignee", assignment.parse_same_level),
        ("dueAt", _data_field),
    )
    for name, check in checks:
        if not props.get(name):
            continue
        try:
            check(props[name])
        except InvalidInputError as exc:
            messages = [m for ms in exc.field_errors.values() for m in ms] or [str(exc)]
            problems.extend(DefinitionProblem(source, bpmn_id, f"{name}: {m}") for m in messages)
    return problems


def _data_field(name: str) -> None:
    if not name.isidentifier():
        raise InvalidInputError(
            "dueAt 须为数据字段名",
            {"dueAt": [f"须为数据字段名 / must name a data field: {name!r}"]},
        )


def _service_task_problems(compiled: bpmn.CompiledProcess, source: str) -> list[DefinitionProblem]:
    return [
        DefinitionProblem(source, task.element_id, message)
        for task in bpmn.service_tasks(compiled)
        for message in case_files.problems(task)
    ]


def _expression_problems(compiled: bpmn.CompiledProcess, source: str) -> list[DefinitionProblem]:
    problems = []
    for expression in bpmn.expressions(compiled):
        message = _expression_problem(expression)
        if message:
            problems.append(DefinitionProblem(source, expression.element_id, message))
    return problems


def _expression_problem(expression: bpmn.Expression) -> str | None:
    text = expression.text
    if _FOREIGN.search(text):
        return (
            f"表达式 '{text.strip()}' 使用了 JUEL/EL 语法，opsflow 只执行 Python 表达式 / "
            f"'{text.strip()}' is a JUEL/EL expression; opsflow runs Python expressions only"
        )
    if expression.kind == "timer" and _BARE_ISO.match(text):
        return (
            f"计时器值 {text.strip()} 需要加引号 / timer value {text.strip()} must be a quoted "
            f'Python string, e.g. "{text.strip()}"'
        )
    if expression.kind == "dmn_input":
        text = dmn_checks.entry_expression(text)
    try:
        sandbox.check(text, "exec" if expression.mode == "exec" else "eval")
    except ScriptRejectedError as exc:
        return f"{expression.kind}: {exc}"
    return None


def check_dmn(dmn_xml: str, source: str) -> list[DefinitionProblem]:
    """A DMN file on its own: parses, one decision with one table, supported hit policy, no overlaps."""
    try:
        tables = bpmn.dmn_tables(dmn_xml, source)
    except InvalidDefinitionError as exc:
        return exc.problems
    return dmn_checks.table_problems(tables, source)


# --- deploying ---

DEPLOYER_ROLES = ("PO", "ADMIN")  # process owners and administrators deploy (the system is ADMIN)


def check_deployer(actor: Actor) -> None:
    """:raise PermissionDeniedError: ``actor`` may not deploy (neither a process owner nor an administrator)."""
    if not actor.has_role(*DEPLOYER_ROLES):
        raise PermissionDeniedError(
            "只有流程负责人或系统管理员可以部署流程 / only a process owner (PO) or an "
            "administrator (ADMIN) may deploy processes"
        )


def deploy_files(db: Database, actor: Actor, batch: list[ProcessFiles]) -> list[DeployedVersion]:
    """``deploy_all`` in a transaction of its own; a refused deploy is audited in another.

    :raise PermissionDeniedError: see ``check_deployer``. :raise InvalidDefinitionError: as ``deploy_all``.
    """
    try:
        with db.unit_of_work() as session:
            return deploy_all(session, actor, batch)
    except PermissionDeniedError as exc:
        with db.unit_of_work() as session:
            audit.record(
                session,
                "permission_denied",
                actor=actor.username,
                payload={
                    "reason": str(exc),
                    "roles": sorted(actor.roles),
                    "files": [f.source for f in batch],
                },
            )
        raise


def deploy(session: Session, actor: Actor, files: ProcessFiles) -> DeployedVersion:
    """Deploy a BPMN file as the next version of its process key; identical content returns the existing one.

    :raise PermissionDeniedError: see ``check_deployer``.
    :raise InvalidDefinitionError: listing every problem, each naming its element.
    """
    check_deployer(actor)
    compiled, called, problems = check(session, files)
    if problems or compiled is None:
        raise InvalidDefinitionError(
            f"{files.source}: {len(problems)} 个问题 / problem(s)", problems
        )
    dmn = _process_dmn(session, files)
    used_forms = _used_forms(compiled, files)
    pins = _pins(session, files)
    digest = bpmn.bundle_digest(
        files.bpmn_xml, dmn, {**called, "__forms__": json.dumps(used_forms, sort_keys=True)}
    )
    existing = session.scalar(
        select(ProcessDefinition).where(
            ProcessDefinition.key == compiled.key, ProcessDefinition.sha256 == digest
        )
    )
    if existing is not None:
        return _deployed(existing, created=False)
    definition = _new_version(session, actor, compiled, files, dmn, used_forms, pins, digest)
    _schedule_periodic(session, compiled)
    audit.record(
        session,
        "definition_deployed",
        actor=actor.username,
        payload={
            "key": definition.key,
            "version": definition.version,
            "sha256": digest,
            "called": pins,
            "dmn_files": sorted(dmn),
            "forms": sorted(used_forms),
        },
    )
    return _deployed(definition, created=True)


def _used_forms(compiled: bpmn.CompiledProcess, files: ProcessFiles) -> dict[str, Any]:
    """The forms the process's user tasks name, and those named like its messages (payload checks)."""
    keys = {
        t.properties["formKey"] for t in compiled.user_tasks.values() if t.properties.get("formKey")
    }
    keys |= bpmn.message_names(files.bpmn_xml, files.source) & set(files.forms)
    return {key: forms.to_document(files.forms[key]) for key in sorted(keys)}


def _new_version(
    session: Session,
    actor: Actor,
    compiled: bpmn.CompiledProcess,
    files: ProcessFiles,
    dmn: dict[str, str],
    used_forms: dict[str, Any],
    pins: dict[str, int],
    digest: str,
) -> ProcessDefinition:
    latest = session.scalar(
        select(func.max(ProcessDefinition.version)).where(ProcessDefinition.key == compiled.key)
    )
    definition = ProcessDefinition(
        key=compiled.key,
        version=(latest or 0) + 1,
        name=compiled.name,
        bpmn_xml=files.bpmn_xml,
        dmn_files=dmn,
        forms=used_forms,
        called=pins,
        user_tasks={
            t.bpmn_id: {"name": t.name, "lane": t.lane, "properties": dict(t.properties)}
            for t in compiled.user_tasks.values()
        },
        sha256=digest,
        deployed_by=actor.id or None,
        deployed_at=clock.now(),
    )
    session.add(definition)
    session.flush()
    return definition


def _schedule_periodic(session: Session, compiled: bpmn.CompiledProcess) -> None:
    if compiled.timer_start is None:
        return
    periodic_starts.schedule(session, compiled.key, compiled.timer_start)


def _deployed(definition: ProcessDefinition, *, created: bool) -> DeployedVersion:
    return DeployedVersion(
        definition.id,
        definition.key,
        definition.version,
        definition.name,
        definition.sha256,
        created,
    )


# --- reading versions ---


def find_latest(session: Session, key: str) -> ProcessDefinition | None:
    return session.scalar(
        select(ProcessDefinition)
        .where(ProcessDefinition.key == key)
        .order_by(ProcessDefinition.version.desc())
        .limit(1)
    )


def get_latest(session: Session, key: str) -> ProcessDefinition:
    """:raise NotFoundError: nothing deployed under that key."""
    definition = find_latest(session, key)
    if definition is None:
        raise NotFoundError(f"流程不存在 / no process '{key}'")
    return definition


def compiled_version(session: Session, definition: ProcessDefinition) -> bpmn.CompiledProcess:
    """The runnable process of a deployed version, with its pinned called processes (cached)."""
    called = _pinned_xml(session, definition)
    return bpmn.compile_process(
        definition.bpmn_xml, f"{definition.key}.bpmn", definition.dmn_files, called
    )


def _pinned_xml(session: Session, definition: ProcessDefinition) -> dict[str, str]:
    """A version's called processes, as pinned at its deploy (the whole closure is stored)."""
    return _xml_of(session, definition.called)


# --- files on disk ---


def read_directory(path: Path) -> list[ProcessFiles]:
    """Every BPMN file of a folder with the folder's DMN files and the forms folder's forms.

    :raise InvalidDefinitionError: a form or file that cannot be read (every one of them).
    """
    texts: dict[Path, str] = {}
    problems: list[DefinitionProblem] = []
    for file in sorted(path.iterdir()):
        if file.suffix == ".dmn" or _is_bpmn(file):
            try:
                texts[file] = read_source(file)
            except InvalidDefinitionError as exc:
                problems.extend(exc.problems)
    if problems:
        raise InvalidDefinitionError(f"{len(problems)} 个问题 / problem(s)", problems)
    dmn_files = {file.name: text for file, text in texts.items() if file.suffix == ".dmn"}
    form_defs = (
        forms.load_forms_dir(path.parent / "forms") if (path.parent / "forms").is_dir() else {}
    )
    return [
        ProcessFiles(file.name, text, dmn_files, form_defs)
        for file, text in texts.items()
        if _is_bpmn(file)
    ]


def read_source(path: Path) -> str:
    """A BPMN or DMN file's text.

    :raise InvalidDefinitionError: the file is not UTF-8 text.
    """
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = f"0x{exc.object[exc.start]:02x}"
        problem = DefinitionProblem(
            path.name,
            None,
            f"文件不是 UTF-8 文本（第 {exc.start} 字节为 {byte}）/ the file is not UTF-8 text "
            f"(byte {byte} at offset {exc.start})",
        )
        raise InvalidDefinitionError(str(problem), [problem]) from exc


def _is_bpmn(path: Path) -> bool:
    return path.name.endswith((".bpmn", ".bpmn20.xml", ".bpmn2"))


def deploy_all(session: Session, actor: Actor, batch: list[ProcessFiles]) -> list[DeployedVersion]:
    """Deploy several files, callees before their callers.

    :raise PermissionDeniedError: see ``check_deployer``.
    :raise InvalidDefinitionError: with the problems of every file that failed.
    """
    check_deployer(actor)
    order = callee_first(batch)
    deployed, problems = [], []
    for files in order:
        try:
            deployed.append(deploy(session, actor, files))
        except InvalidDefinitionError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidDefinitionError(f"{len(problems)} 个问题 / problem(s)", problems)
    return deployed


def callee_first(batch: list[ProcessFiles]) -> list[ProcessFiles]:
    """The batch ordered so that every called process comes before its callers."""
    keys = {}
    for files in batch:
        try:
            keys[files.source] = bpmn.executable_process_id(
                bpmn.parse_xml(files.bpmn_xml, files.source), files.source
            )
        except InvalidDefinitionError:
            keys[files.source] = files.source
    done: set[str] = set()
    ordered: list[ProcessFiles] = []

    def visit(files: ProcessFiles, path: frozenset[str]) -> None:
        if files.source in done or files.source in path:
            return
        for callee in _safe_called(files):
            for other in batch:
                if keys[other.source] == callee:
                    visit(other, path | {files.source})
        done.add(files.source)
        ordered.append(files)

    for files in batch:
        visit(files, frozenset())
    return ordered


def _safe_called(files: ProcessFiles) -> set[str]:
    try:
        return bpmn.called_element_ids(files.bpmn_xml, files.source)
    except InvalidDefinitionError:
        return set()
