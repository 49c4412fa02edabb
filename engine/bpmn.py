"""The only SpiffWorkflow/lxml user: hardened parsing, spec cache, state (de)serialization, engine steps.

Everything SpiffWorkflow raises is translated here into engine errors that name the BPMN element.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import hashlib
import json
import os
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine import clock, sandbox
from engine.errors import (
    DefinitionProblem,
    InvalidDefinitionError,
    OpsflowError,
    ScriptError,
    ScriptFailedError,
    ScriptRejectedError,
)

MAX_XML_BYTES = 5 * 1024 * 1024
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_pis=True,
)


# --- the clock: SpiffWorkflow's timers read datetime.now(timezone.utc) in their own module ---


class _ClockDatetime(dt.datetime):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> _ClockDatetime:
        current = clock.now()
        current = current.astimezone(tz) if tz is not None else current
        return cls.fromtimestamp(current.timestamp(), tz=current.tzinfo)


spiff_timer.datetime = _ClockDatetime


# --- hardened XML ---


def parse_xml(data: bytes | str, source: str) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network, bounded size.

    :raise InvalidDefinitionError: not well-formed, too large, or carrying a DOCTYPE/ENTITY.
    """
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_XML_BYTES:
        raise _invalid(
            source,
            None,
            f"文件过大 / file too large: {len(raw) / 1048576:.1f} MB, limit {MAX_XML_BYTES // 1048576} MB",
        )
    if _DOCTYPE.search(raw[:65536]) or b"<!ENTITY" in raw:
        raise _invalid(
            source,
            None,
            "不允许 DOCTYPE/ENTITY 声明 / DOCTYPE and ENTITY declarations are not allowed (XXE, entity expansion)",
        )
    try:
        root = etree.fromstring(raw, parser=_SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise _invalid(source, None, f"XML 格式错误 / XML is not well-formed: {exc}") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise _invalid(source, None, "不允许 DTD / a DTD is not allowed")
    return root


def _invalid(source: str, element_id: str | None, message: str) -> InvalidDefinitionError:
    problem = DefinitionProblem(source, element_id, message)
    return InvalidDefinitionError(str(problem), [problem])


# --- the sandboxed script engine ---


class _SandboxEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: dict[str, Any] | None = None,
    ) -> Any:
        if not isinstance(expression, str):
            raise ScriptRejectedError(
                f"表达式必须是文本 / the expression must be text, not {expression!r}"
            )
        scope = {**context, **external_context} if external_context else context
        return sandbox.evaluate(expression, scope)

    def execute(
        self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None
    ) -> bool:
        sandbox.execute(script, context)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise ScriptRejectedError("不支持服务任务 / service tasks are not supported by opsflow")


class _ScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    def call_service(self, task: Any, **kwargs: Any) -> Any:
        # PythonScriptEngine.call_service's own error path refers to an undefined name.
        return self.environment.call_service(task.data, **kwargs)


SCRIPT_ENGINE = _ScriptEngine(environment=_SandboxEnvironment())


# --- parsing and the spec cache ---


@dataclass(frozen=True)
class UserTaskSpec:
    """What the engine needs to know about one user task of a deployed process."""

    bpmn_id: str
    name: str
    lane: str | None
    process_id: str
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledProcess:
    """A parsed, runnable process: SpiffWorkflow specs plus what opsflow reads off them."""

    key: str
    name: str
    spec: Any
    subprocess_specs: Mapping[str, Any]
    user_tasks: Mapping[str, UserTaskSpec]
    called_keys: frozenset[str]
    timer_start: str | None


class _Parser(SpiffBpmnParser):  # type: ignore[misc]
    pass


def bundle_digest(bpmn_xml: str, dmn_files: Mapping[str, str], called: Mapping[str, str]) -> str:
    """The content hash of everything a process version runs on."""
    digest = hashlib.sha256(bpmn_xml.encode())
    for name in sorted(dmn_files):
        digest.update(b"\0dmn\0" + name.encode() + b"\0" + dmn_files[name].encode())
    for key in sorted(called):
        digest.update(b"\0call\0" + key.encode() + b"\0" + called[key].encode())
    return digest.hexdigest()


_CACHE: OrderedDict[str, CompiledProcess] = OrderedDict()
_CACHE_SIZE = 256


def compile_process(
    bpmn_xml: str,
    source: str,
    dmn_files: Mapping[str, str] | None = None,
    called: Mapping[str, str] | None = None,
) -> CompiledProcess:
    """Parse a BPMN file with its DMN tables and called processes; cached by content hash.

    :raise InvalidDefinitionError: naming the file and element of each problem.
    """
    dmn_files, called = dmn_files or {}, called or {}
    digest = bundle_digest(bpmn_xml, dmn_files, called)
    cached = _CACHE.get(digest)
    if cached is not None:
        _CACHE.move_to_end(digest)
        return cached
    compiled = _compile(bpmn_xml, source, dmn_files, called)
    _CACHE[digest] = compiled
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def _compile(
    bpmn_xml: str, source: str, dmn_files: Mapping[str, str], called: Mapping[str, str]
) -> CompiledProcess:
    parser = _Parser()
    root = parse_xml(bpmn_xml, source)
    key = executable_process_id(root, source)
    for name, xml in dmn_files.items():
        dmn_tables(xml, name)
    with _translated_parse_errors(source):
        for name, xml in dmn_files.items():
            parser.add_dmn_xml(parse_xml(xml, name), filename=name)
        for called_key, xml in called.items():
            parser.add_bpmn_xml(parse_xml(xml, f"{called_key}.bpmn"), filename=f"{called_key}.bpmn")
        parser.add_bpmn_xml(root, filename=source)
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    specs = [spec, *subprocess_specs.values()]
    return CompiledProcess(
        key=key,
        name=spec.description or key,
        spec=spec,
        subprocess_specs=subprocess_specs,
        user_tasks=_user_tasks(specs),
        called_keys=frozenset(_called_keys(specs)),
        timer_start=_timer_start(spec),
    )


BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_NS = {"bpmn": BPMN_NS, "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}


def executable_process_id(root: etree._Element, source: str) -> str:
    """The id of the file's first executable process (the process key)."""
    processes = root.findall("bpmn:process", _NS)
    executable = [p for p in processes if p.get("isExecutable", "true").lower() == "true"]
    if not executable:
        ids = ", ".join(str(p.get("id")) for p in processes) or "none"
        raise _invalid(
            source,
            None,
            (
                f"文件中没有可执行流程（isExecutable=false）/ no executable process (isExecutable is false for: {ids}); "
                "the file is a documentation model"
            ),
        )
    return str(executable[0].get("id"))


def foreign_constructs(bpmn_xml: str, source: str) -> list[DefinitionProblem]:
    """Constructs of other engines' dialects, found in the XML before SpiffWorkflow sees it.

    Each would otherwise fail at run time or with a raw library error.
    """
    root = parse_xml(bpmn_xml, source)
    problems: list[DefinitionProblem] = []
    for check in (
        _business_rule_refs,
        _service_tasks,
        _compensation,
        _link_events,
        _ad_hoc_conditions,
        _foreign_expressions,
    ):
        problems.extend(
            DefinitionProblem(source, element_id, message) for element_id, message in check(root)
        )
    return problems


def _business_rule_refs(root: etree._Element) -> Iterator[tuple[str | None, str]]:
    for node in root.iter(f"{{{BPMN_NS}}}businessRuleTask"):
        if node.find("bpmn:extensionElements/spiffworkflow:calledDecisionId", _NS) is not None:
            continue
        dialect = next(
            (str(k) for k in node.attrib if str(k).endswith(("}decisionRef", "}ruleFlowGroup"))),
            None,
        )
        name = etree.QName(dialect).localname if dialect else ""
        hint = (
            f"（{name} 是其他引擎的写法 / {name} is another engine's attribute）" if dialect else ""
        )
        yield (
            node.get("id"),
            (
                f"业务规则任务未指定 DMN 决策{hint} / the business rule task names no DMN decision: "
                "add spiffworkflow:calledDecisionId"
            ),
        )


def _service_tasks(root: etree._Element) -> Iterator[tuple[str | None, str]]:
    for node in root.iter(f"{{{BPMN_NS}}}serviceTask"):
        yield (
            node.get("id"),
            (
                "不支持服务任务（opsflow 没有外部连接器）/ service tasks are not supported: opsflow has no "
                "connectors; model the work as a user task or a script task"
            ),
        )


def _compensation(root: etree._Element) -> Iterator[tuple[str | None, str]]:
    for node in root.iter(f"{{{BPMN_NS}}}compensateEventDefinition"):
        parent = node.getparent()
        if parent is not None and etree.QName(parent).localname in (
            "boundaryEvent",
            "startEvent",
            "intermediateCatchEvent",
        ):
            yield (
                parent.get("id"),
                (
                    "不支持补偿事件 / compensation events are not supported by the engine (SpiffWorkflow 3.2)"
                ),
            )


def _link_events(root: etree._Element) -> Iterator[tuple[str | None, str]]:
    for node in root.iter(f"{{{BPMN_NS}}}linkEventDefinition"):
        parent = node.getparent()
        yield (
            (parent.get("id") if parent is not None else None),
            (
                "不支持链接事件 / link events are not supported: the engine treats them as plain events and "
                "the flow would silently stop; connect the parts with sequence flows"
            ),
        )


def _ad_hoc_conditions(root: etree._Element) -> Iterator[tuple[str | None, str]]:
    for node in root.iter(f"{{{BPMN_NS}}}adHocSubProcess"):
        condition = node.find("bpmn:completionCondition", _NS)
        if condition is None or not (condition.text or "").strip():
            yield (
                node.get("id"),
                (
                    "临时子流程缺少完成条件 / the ad-hoc sub-process has no completionCondition (a Python "
                    "expression); the engine cannot tell when it is done"
                ),
            )


_EXPRESSION_TAGS = (
    "conditionExpression",
    "completionCondition",
    "loopCardinality",
    "timeDate",
    "timeDuration",
    "timeCycle",
    "condition",
    "loopCondition",
)


def _foreign_expressions(root: etree._Element) -> Iterator[tuple[str | None, str]]:
    for tag in _EXPRESSION_TAGS:
        for node in root.iter(f"{{{BPMN_NS}}}{tag}"):
            text = (node.text or "").strip()
            if "${" in text or "#{" in text:
                yield (
                    _owner_id(node),
                    (
                        f"表达式 '{text}' 使用了 JUEL/EL 语法，opsflow 只执行 Python 表达式 / "
                        f"'{text}' is a JUEL/EL expression; opsflow runs Python expressions only"
                    ),
                )


def _owner_id(node: etree._Element) -> str | None:
    owner: etree._Element | None = node
    while owner is not None and owner.get("id") is None:
        owner = owner.getparent()
    return owner.get("id") if owner is not None else None


def dmn_tables(dmn_xml: str, source: str) -> list[tuple[str, Any]]:
    """(decision id, SpiffWorkflow decision table) of a DMN file with exactly one decision and table.

    :raise InvalidDefinitionError: not one decision, not one table, or SpiffWorkflow cannot parse it.
    """
    root = parse_xml(dmn_xml, source)
    decisions = root.findall("{*}decision")
    if len(decisions) != 1:
        raise _invalid(
            source,
            None,
            (
                f"文件含 {len(decisions)} 个决策，opsflow 每个 DMN 文件只执行一个决策表 / the file has "
                f"{len(decisions)} decisions; the engine runs one decision table per DMN file (split it)"
            ),
        )
    tables = decisions[0].findall("{*}decisionTable")
    if len(tables) != 1:
        raise _invalid(
            source,
            decisions[0].get("id"),
            (
                f"决策须恰好有一个决策表（现有 {len(tables)} 个）/ the decision must hold exactly one "
                f"decision table (it has {len(tables)}; literal expressions are not run)"
            ),
        )
    parser = _Parser()
    with _translated_parse_errors(source):
        parser.add_dmn_xml(root, filename=source)
        dmn_parser = parser.dmn_parsers[decisions[0].get("id")]
        dmn_parser.parse()
    return [(str(decisions[0].get("id")), table) for table in dmn_parser.decision.decisionTables]


@contextmanager
def _translated_parse_errors(source: str) -> Iterator[None]:
    """SpiffWorkflow's parse errors as InvalidDefinitionError naming file, element and line."""
    try:
        yield
    except OpsflowError:
        raise
    except ValidationException as exc:
        where = exc.file_name or source
        message = f"{exc.args[0] if exc.args else exc} ({exc.tag}, line {exc.line_number})"
        raise _invalid(where, exc.id or None, message) from exc
    except Exception as exc:  # SpiffWorkflow raises bare KeyError/AttributeError on odd files
        raise _invalid(
            source, None, f"无法解析 / cannot parse: {type(exc).__name__}: {exc}"
        ) from exc


def _user_tasks(specs: list[Any]) -> dict[str, UserTaskSpec]:
    tasks: dict[str, UserTaskSpec] = {}
    for process_spec in specs:
        for task_spec in process_spec.task_specs.values():
            if not getattr(task_spec, "manual", False) or not task_spec.bpmn_id:
                continue
            extensions = getattr(task_spec, "extensions", None) or {}
            tasks[task_spec.bpmn_id] = UserTaskSpec(
                bpmn_id=task_spec.bpmn_id,
                name=task_spec.bpmn_name or task_spec.bpmn_id,
                lane=task_spec.lane,
                process_id=process_spec.name,
                properties=dict(extensions.get("properties", {})),
            )
    return tasks


def _called_keys(specs: list[Any]) -> set[str]:
    keys: set[str] = set()
    for process_spec in specs:
        for task_spec in process_spec.task_specs.values():
            if type(task_spec).__name__ == "CallActivity":
                keys.add(task_spec.spec)
    return keys


def _timer_start(spec: Any) -> str | None:
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if type(task_spec).__name__ == "StartEvent" and isinstance(
            definition, spiff_timer.CycleTimerEventDefinition
        ):
            return str(definition.expression)
    return None


def message_names(bpmn_xml: str, source: str) -> set[str]:
    """The names of the messages a file declares (a form of the same key validates their payload)."""
    root = parse_xml(bpmn_xml, source)
    return {
        str(node.get("name")) for node in root.iter(f"{{{BPMN_NS}}}message") if node.get("name")
    }


def called_element_ids(bpmn_xml: str, source: str) -> set[str]:
    """The process keys a file's call activities call (read before deploy, to pin them)."""
    root = parse_xml(bpmn_xml, source)
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    own = {p.get("id") for p in root.findall("bpmn:process", ns)}
    called = {
        str(node.get("calledElement"))
        for node in root.iter("{*}callActivity")
        if node.get("calledElement")
    }
    return called - own


# --- expressions found in a compiled process (for deploy-time checks) ---


@dataclass(frozen=True)
class Expression:
    """One piece of code written in a diagram: where it is and how it runs."""

    element_id: str
    kind: (
        str  # condition | script | timer | loop | dmn (output or input column) | dmn_input (entry)
    )
    text: str
    mode: str  # "eval" or "exec"


def expressions(compiled: CompiledProcess) -> Iterator[Expression]:
    """Every condition, script, timer and DMN entry of the process and its called processes."""
    for process_spec in [compiled.spec, *compiled.subprocess_specs.values()]:
        for task_spec in process_spec.task_specs.values():
            yield from _task_expressions(task_spec)


def _task_expressions(task_spec: Any) -> Iterator[Expression]:
    element = task_spec.bpmn_id or task_spec.name
    for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
        text = condition.args[0] if hasattr(condition, "args") and condition.args else condition
        if isinstance(text, str) and text:
            yield Expression(element, "condition", text, "eval")
    for attr in ("script", "prescript", "postscript"):
        text = getattr(task_spec, attr, None)
        if text:
            yield Expression(element, "script", text, "exec")
    for attr in ("cardinality", "condition"):
        text = getattr(task_spec, attr, None)
        if isinstance(text, str) and text:
            yield Expression(element, "loop", text, "eval")
    definition = getattr(task_spec, "event_definition", None)
    expression = getattr(definition, "expression", None)
    if expression is not None:
        kind = "timer" if isinstance(definition, spiff_timer.TimerEventDefinition) else "condition"
        yield Expression(element, kind, expression, "eval")
    yield from _dmn_expressions(task_spec, element)


def _dmn_expressions(task_spec: Any, element: str) -> Iterator[Expression]:
    table = getattr(getattr(task_spec, "dmnEngine", None), "decision_table", None)
    if table is None:
        return
    for column in table.inputs:
        if column.expression:
            yield Expression(element, "dmn", column.expression, "eval")
    for rule in table.rules:
        for kind, entries in (("dmn_input", rule.inputEntries), ("dmn", rule.outputEntries)):
            for entry in entries:
                text = (getattr(entry, "text", None) or "").strip()
                if text and text != "-":
                    yield Expression(element, kind, text, "eval")


def decision_tables(compiled: CompiledProcess) -> Iterator[tuple[str, Any]]:
    """(business rule task id, SpiffWorkflow decision table) for every DMN the process uses."""
    for process_spec in [compiled.spec, *compiled.subprocess_specs.values()]:
        for task_spec in process_spec.task_specs.values():
            table = getattr(getattr(task_spec, "dmnEngine", None), "decision_table", None)
            if table is not None:
                yield task_spec.bpmn_id, table


# --- running workflows ---


@dataclass(frozen=True)
class ReadyTask:
    """A user task waiting for a person."""

    task_id: str
    bpmn_id: str
    name: str
    lane: str | None


def new_workflow(compiled: CompiledProcess, data: Mapping[str, Any] | None = None) -> Any:
    """A new instance of the process with its start data; ``run_steps`` takes it to its first wait."""
    workflow = BpmnWorkflow(
        compiled.spec, dict(compiled.subprocess_specs), script_engine=SCRIPT_ENGINE
    )
    _start_timers_fire_now(workflow)
    if data:
        workflow.task_tree.data.update(data)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(data)
    return workflow


def _start_timers_fire_now(workflow: Any) -> None:
    """An instance starts when it is started: its timer start event fires once, now.

    Periodic starts are the worker's job (one new instance per occurrence, by calendar
    arithmetic); left alone, SpiffWorkflow would keep cycling inside the first instance.
    """
    past = (clock.now() - dt.timedelta(seconds=1)).isoformat()
    for task in workflow.get_tasks():
        definition = getattr(task.task_spec, "event_definition", None)
        if type(task.task_spec).__name__ != "StartEvent" or not isinstance(
            definition, spiff_timer.TimerEventDefinition
        ):
            continue
        if isinstance(definition, spiff_timer.CycleTimerEventDefinition):
            task.internal_data["event_value"] = {"cycles": 1, "next": past, "duration": 0}
        else:
            task.internal_data["event_value"] = past


def run_steps(workflow: Any) -> None:
    """Run every automatic task until people, messages or timers are awaited."""
    with _translated_run_errors():
        workflow.do_engine_steps()


def ready_user_tasks(workflow: Any) -> list[ReadyTask]:
    return [_ready(task) for task in workflow.get_tasks(state=TaskState.READY, manual=True)]


def complete_user_task(workflow: Any, task_id: str, data: Mapping[str, Any]) -> None:
    """Complete a READY user task with the submitted data and run the engine on.

    :raise ScriptError: a script or condition after the task failed.
    """
    task = workflow.get_task_from_id(UUID(task_id))
    if task is None or task.state != TaskState.READY or not task.task_spec.manual:
        raise OpsflowError(f"task {task_id} is not a ready user task")
    task.data.update(data)
    with _translated_run_errors():
        task.run()
    run_steps(workflow)


def fire_due_timers(workflow: Any) -> None:
    """Let timers whose time has come (by the engine clock) fire, and run the engine on."""
    with _translated_run_errors():
        workflow.refresh_timers()
    run_steps(workflow)


def retry_failed(workflow: Any, data: Mapping[str, Any] | None = None) -> None:
    """Put tasks that failed back to READY (with corrected data) and run them again."""
    for task in workflow.get_tasks(state=TaskState.ERROR):
        task.data.update(data or {})
        task._set_state(TaskState.READY)
    run_steps(workflow)


def catch_message(workflow: Any, message_name: str, payload: Mapping[str, Any]) -> bool:
    """Deliver a message to the instance; True when a waiting event caught it."""
    found = _waiting_for_message(workflow, message_name)
    if found is None:
        return False
    waiting, definition = found
    with _translated_run_errors():
        # the waiting event's own definition: the dialect's class must match for it to catch
        workflow.catch(BpmnEvent(definition, dict(payload)))
        if getattr(definition, "message_var", None) is None:
            # no spiffworkflow:messageVariable: the answer's fields join the case data
            waiting.data.update(payload)
    run_steps(workflow)
    return True


def _event_definitions(task: Any) -> list[Any]:
    """A waiting task's event definitions (an event-based gateway waits on several at once)."""
    definition = getattr(task.task_spec, "event_definition", None)
    if definition is None:
        return []
    return list(getattr(definition, "event_definitions", None) or [definition])


def _waiting_for_message(workflow: Any, message_name: str) -> tuple[Any, Any] | None:
    for task in workflow.get_tasks(state=TaskState.WAITING):
        for definition in _event_definitions(task):
            if isinstance(definition, MessageEventDefinition) and definition.name == message_name:
                return task, definition
    return None


def waiting_messages(workflow: Any) -> list[str]:
    return sorted(
        {
            definition.name
            for task in workflow.get_tasks(state=TaskState.WAITING)
            for definition in _event_definitions(task)
            if isinstance(definition, MessageEventDefinition)
        }
    )


def waiting_timers(workflow: Any) -> list[tuple[str, dt.datetime]]:
    """(BPMN id, due time) of every timer event the instance waits on."""
    timers = []
    for task in workflow.get_tasks(state=TaskState.WAITING):
        timers.extend(_waiting_timer(task))
    return timers


@dataclass(frozen=True)
class Mirror:
    """What the database mirrors of a workflow: ready user tasks (tree order), waiting timers,
    and whether the workflow is completed (``is_completed``)."""

    ready: tuple[ReadyTask, ...]
    timers: frozenset[tuple[str, dt.datetime]]
    completed: bool


def mirror(workflow: Any) -> Mirror:
    """``ready_user_tasks`` and ``waiting_timers`` in one pass over the task dictionaries.

    SpiffWorkflow's tree iterator costs ~20 µs per query on a 15-task instance; the
    dictionaries hold the same tasks (subprocesses included). Tree order matters only when
    several user tasks are ready at once, and is then taken from the iterator.
    """
    ready: list[Any] = []
    timers: set[tuple[str, dt.datetime]] = set()
    for each in (workflow, *workflow.subprocesses.values()):
        for task in each.tasks.values():
            state = task._state
            if state == TaskState.READY:
                if task.task_spec.manual:
                    ready.append(task)
            elif state == TaskState.WAITING:
                timers.update(_waiting_timer(task))
    found = tuple(ready_user_tasks(workflow)) if len(ready) > 1 else tuple(map(_ready, ready))
    return Mirror(found, frozenset(timers), _completed(workflow))


def _completed(workflow: Any) -> bool:
    """``Workflow.is_completed`` (flag included) without its tree iterator: no unfinished task."""
    if not workflow.completed and not any(
        task._state & TaskState.NOT_FINISHED_MASK for task in workflow.tasks.values()
    ):
        workflow.completed = True
    return bool(workflow.completed)


def _ready(task: Any) -> ReadyTask:
    spec = task.task_spec
    return ReadyTask(str(task.id), spec.bpmn_id, spec.bpmn_name or spec.bpmn_id, spec.lane)


def _waiting_timer(task: Any) -> list[tuple[str, dt.datetime]]:
    """The (BPMN id, due time) a WAITING task waits for, if it waits on a timer."""
    definition = next(
        (d for d in _event_definitions(task) if isinstance(d, spiff_timer.TimerEventDefinition)),
        None,
    )
    if definition is None:
        return []
    due = _timer_due(task, definition)
    return [] if due is None else [(task.task_spec.bpmn_id or task.task_spec.name, due)]


def _timer_due(task: Any, definition: Any) -> dt.datetime | None:
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):
        value = value.get("next")
    if not isinstance(value, str):
        return None
    try:
        due = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return due if due.tzinfo else due.replace(tzinfo=dt.UTC)


def is_completed(workflow: Any) -> bool:
    return bool(workflow.is_completed())


def failed_task(workflow: Any) -> str | None:
    """The BPMN id of a task in ERROR, if any."""
    for task in workflow.get_tasks(state=TaskState.ERROR):
        return str(task.task_spec.bpmn_id or task.task_spec.name)
    return None


def workflow_data(workflow: Any) -> dict[str, Any]:
    """The data of the most recently completed task (the instance's current case data)."""
    last = workflow.last_task
    return dict(last.data) if last is not None else dict(workflow.data)


def task_data(workflow: Any, task_id: str) -> dict[str, Any]:
    task = workflow.get_task_from_id(UUID(task_id))
    return dict(task.data) if task is not None else {}


def completed_bpmn_ids(workflow: Any) -> set[str]:
    return {
        task.task_spec.bpmn_id
        for task in workflow.get_tasks(state=TaskState.COMPLETED)
        if task.task_spec.bpmn_id
    }


@contextmanager
def _translated_run_errors() -> Iterator[None]:
    """Anything a running workflow raises becomes a ScriptError naming the element."""
    try:
        yield
    except OpsflowError:
        raise
    except Exception as exc:
        raise _script_error(exc) from exc


def _script_error(exc: BaseException) -> ScriptError:
    task = getattr(exc, "task", None)
    element = None
    if task is not None:
        element = task.task_spec.bpmn_id or task.task_spec.name
    cause = _sandbox_cause(exc)
    if isinstance(cause, ScriptError):
        return type(cause)(str(cause), element)
    if isinstance(exc, WorkflowException | SpiffWorkflowException):
        return ScriptFailedError(_spiff_message(exc), element)
    return ScriptFailedError(f"{type(exc).__name__}: {exc}", element)


def _sandbox_cause(exc: BaseException) -> BaseException | None:
    """What the sandbox raised, found down the chain SpiffWorkflow wraps it in (implicitly chained)."""
    seen: BaseException | None = exc
    for _ in range(10):
        seen = (seen.__cause__ or seen.__context__) if seen is not None else None
        if seen is None or isinstance(seen, ScriptError):
            return seen
    return None


def _spiff_message(exc: BaseException) -> str:
    notes = "; ".join(getattr(exc, "__notes__", []))
    base = str(exc.args[0]) if exc.args else str(exc)
    return f"{base} ({notes})" if notes else base


# --- state (de)serialization without the spec ---


class _StateOnlyConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Writes the instance's state without its spec, which lives once per process version."""

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], compiled: CompiledProcess | None = None) -> Any:
        if compiled is None:
            raise OpsflowError("state restored without its process version")
        workflow = self.target_class(
            compiled.spec, dict(compiled.subprocess_specs), deserializing=True
        )
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _StateOnlyConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(
        decimal.Decimal, lambda v: {"value": str(v)}, lambda v: decimal.Decimal(v["value"])
    )
    registry.register(
        dt.date, lambda v: {"value": v.isoformat()}, lambda v: dt.date.fromisoformat(v["value"])
    )
    return BpmnWorkflowSerializer(registry)


_SERIALIZER = _make_serializer()


def dump_state(workflow: Any) -> str:
    """The instance's state as JSON, without the spec."""
    return str(_SERIALIZER.serialize_json(workflow))


def load_state(compiled: CompiledProcess, state: str) -> Any:
    """Restore an instance from ``dump_state`` output onto its process version's spec."""
    dct = json.loads(state)
    _SERIALIZER.migrate(dct)
    workflow = _SERIALIZER.registry.restore(dct, compiled=compiled)
    workflow.script_engine = (
        SCRIPT_ENGINE  # not serialized: the unsafe default must never come back
    )
    return workflow


# --- incremental dumps: only the tasks a step changed are serialized again ---

_ENCODER = _SERIALIZER._encoder_cls()
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), decimal.Decimal, dt.date, dt.datetime, dt.time, UUID}
)
# OPSFLOW_VERIFY_STATE=1: compare every incremental dump with a full dump (tests, debugging)
VERIFY_STATE = os.environ.get("OPSFLOW_VERIFY_STATE") == "1"


def _snapshot(value: Any) -> Any:
    """A copy of task data deep enough that later changes to the original are noticed."""
    kind = type(value)
    if kind is dict:
        return {key: _snapshot(item) for key, item in value.items()}
    if kind is list:
        return [_snapshot(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


class _Piece:
    """One task's JSON with a snapshot of everything that JSON was made from."""

    __slots__ = ("changed_at", "children", "data", "internal", "json", "state", "task", "triggered")

    def __init__(self, task: Any, json_text: str):
        self.json = json_text
        self.task = task  # also keeps the object alive while the piece stands for it
        self.state = task._state
        self.changed_at = task.last_state_change
        self.triggered = task.triggered
        self.children = list(task._children)
        self.data = _snapshot(task.data)
        self.internal = _snapshot(task.internal_data)

    def holds(self, task: Any) -> bool:
        """Whether the task still has exactly what this piece was made from (data aside)."""
        return bool(
            self.state == task._state
            and self.changed_at == task.last_state_change
            and self.triggered == task.triggered
            and self.children == task._children
            and self.internal == task.internal_data
        )


_NO_DELTA = '{"updates":{},"deletions":[]}'


def _encoded(value: Any) -> str:
    return "{}" if value == {} else str(_ENCODER.encode(value))


class StateWriter:
    """``dump_state`` for one live workflow that re-serializes only the tasks that changed.

    The document is the one ``dump_state`` writes (``load_state`` reads either), assembled
    from per-task JSON pieces. A piece is made again when its task's state, last state
    change, triggered flag, children, internal data or data differ from its snapshot, or
    when its parent's data changed (SpiffWorkflow stores a task's data as a delta to its
    parent's). Values are compared with ``==``, as SpiffWorkflow's own delta encoding does.
    Pieces are keyed by the UUID's integer: ``UUID.__hash__`` is Python code.
    """

    def __init__(self) -> None:
        self._pieces: dict[int, _Piece] = {}
        self._heads: dict[int, str] = {}  # the part of a task's JSON that never changes

    def dump(self, workflow: Any) -> str:
        registry = _SERIALIZER.registry
        registry._encoder_mode = True
        try:
            seen: set[int] = set()
            subprocesses = ",".join(
                f'"{task_id}":{self._workflow_json(sub, seen, _subprocess_header(sub))}'
                for task_id, sub in workflow.subprocesses.items()
            )
            text = self._workflow_json(
                workflow, seen, _top_header(workflow), f',"subprocesses":{{{subprocesses}}}'
            )
        finally:
            registry._encoder_mode = False
        if len(self._pieces) > len(seen):
            self._pieces = {key: self._pieces[key] for key in seen}
            self._heads = {key: self._heads[key] for key in seen}
        if VERIFY_STATE and json.loads(text) != json.loads(dump_state(workflow)):
            raise OpsflowError("incremental state dump differs from the full dump")
        return text

    def _workflow_json(
        self, workflow: Any, seen: set[int], header: dict[str, Any], extra: str = ""
    ) -> str:
        pieces = self._pieces
        entries = []
        data_changed = set()
        for task_id, task in workflow.tasks.items():
            key = task_id.int
            piece = pieces.get(key)
            if piece is None or piece.task is not task or piece.data != task.data:
                data_changed.add(key)
                piece = None
            entries.append((key, task, piece))
        parts = []
        for key, task, known in entries:
            parent = task._parent
            piece = known
            if (
                piece is None
                or (parent is not None and parent.int in data_changed)
                or not piece.holds(task)
            ):
                piece = pieces[key] = _Piece(task, self._task_json(key, task))
            parts.append(piece.json)
            seen.add(key)
        head = _ENCODER.encode(header)
        return f'{{"tasks":{{{",".join(parts)}}}{extra},{head[1:]}'

    def _task_json(self, key: int, task: Any) -> str:
        """``"<id>":<JSON>`` of what SpiffWorkflow 3.2's ``TaskConverter.to_dict`` returns.

        Written out because the converter runs every field through the registry and encodes
        the constant fields again each time (about twice the time); ``OPSFLOW_VERIFY_STATE``
        and tests/engine/test_state_storage.py compare the two.
        """
        parent = task.parent
        head = self._heads.get(key)
        if head is None:
            task_id = str(task.id)
            parent_id = f'"{task._parent}"' if parent is not None else "null"
            name = _ENCODER.encode(task.task_spec.name)
            typename = _SERIALIZER.registry.typenames[type(task)]
            head = self._heads[key] = (
                f'"{task_id}":{{"id":"{task_id}","parent":{parent_id},"task_spec":{name},'
                f'"typename":"{typename}",'
            )
        if parent is None:
            data, delta = _encoded(task.data), "{}"
        else:
            data, delta = "{}", _delta(task.data, parent.data)
        children = ",".join(f'"{child}"' for child in task._children)
        changed_at = task.last_state_change
        internal = _SERIALIZER.registry.convert(task.internal_data)
        return (
            f'{head}"children":[{children}],'
            f'"last_state_change":{_ENCODER.encode(changed_at)},"state":{task._state},'
            f'"triggered":{"true" if task.triggered else "false"},'
            f'"internal_data":{_encoded(internal)},"data":{data},"delta":{delta}}}'
        )


def _delta(mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    """``DeepMerge.get_updated_keys`` / ``get_deleted_keys`` of a task's data against its parent's."""
    updates = {k: v for k, v in mine.items() if k not in theirs or v != theirs[k]}
    deletions = [k for k in theirs if k not in mine]
    if not updates and not deletions:
        return _NO_DELTA
    return str(_ENCODER.encode({"updates": updates, "deletions": deletions}))


def _common_header(workflow: Any) -> dict[str, Any]:
    """``WorkflowConverter.to_dict`` without the tasks (which are assembled from pieces)."""
    registry = _SERIALIZER.registry
    last = workflow.last_task
    return {
        "data": registry.convert(registry.clean(workflow.data)),
        "correlations": workflow.correlations,
        "last_task": str(last.id) if last is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "root": str(workflow.task_tree.id),
    }


def _top_header(workflow: Any) -> dict[str, Any]:
    registry = _SERIALIZER.registry
    return {
        **_common_header(workflow),
        "bpmn_events": registry.convert(workflow.bpmn_events),
        "typename": registry.typenames[type(workflow)],
        _SERIALIZER.VERSION_KEY: _SERIALIZER.VERSION,
    }


def _subprocess_header(workflow: Any) -> dict[str, Any]:
    return {
        **_common_header(workflow),
        "parent_task_id": str(workflow.parent_task_id),
        "spec": workflow.spec.name,
        "typename": _SERIALIZER.registry.typenames[type(workflow)],
    }
