"""Parsing a process with its DMN and called processes, the compiled-spec cache, what is read off the specs."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from engine.bpmn.errors import invalid, translated_parse_errors
from engine.bpmn.xml import executable_process_id, parse_xml, process_documentation


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
    documentation: str = ""  # the process element's bpmn:documentation: what it is for
    # every named element's (name, English name): the English is its ``nameEn`` property, or ""
    element_names: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    name_en: str = ""  # the process's English name: its ``nameEn`` property, or ""


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
    with translated_parse_errors(source):
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
        documentation=process_documentation(root, key),
        element_names=_element_names(specs),
        name_en=_process_english(root, key),
    )


def dmn_tables(dmn_xml: str, source: str) -> list[tuple[str, Any]]:
    """(decision id, SpiffWorkflow decision table) of a DMN file with exactly one decision and table.

    :raise InvalidDefinitionError: not one decision, not one table, or SpiffWorkflow cannot parse it.
    """
    root = parse_xml(dmn_xml, source)
    decisions = root.findall("{*}decision")
    if len(decisions) != 1:
        raise invalid(
            source,
            None,
            (
                f"文件含 {len(decisions)} 个决策，opsflow 每个 DMN 文件只执行一个决策表 / the file has "
                f"{len(decisions)} decisions; the engine runs one decision table per DMN file (split it)"
            ),
        )
    tables = decisions[0].findall("{*}decisionTable")
    if len(tables) != 1:
        raise invalid(
            source,
            decisions[0].get("id"),
            (
                f"决策须恰好有一个决策表（现有 {len(tables)} 个）/ the decision must hold exactly one "
                f"decision table (it has {len(tables)}; literal expressions are not run)"
            ),
        )
    parser = _Parser()
    with translated_parse_errors(source):
        parser.add_dmn_xml(root, filename=source)
        dmn_parser = parser.dmn_parsers[decisions[0].get("id")]
        dmn_parser.parse()
    return [(str(decisions[0].get("id")), table) for table in dmn_parser.decision.decisionTables]


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


def _english(spec: Any) -> str:
    extensions = getattr(spec, "extensions", None) or {}
    return str(dict(extensions.get("properties", {})).get("nameEn", ""))


def _process_english(root: Any, key: str) -> str:
    """The ``nameEn`` property in the executable process's own extension elements."""
    for process in root.iter("{*}process"):
        if process.get("id") != key:
            continue
        for prop in process.findall("{*}extensionElements/{*}properties/{*}property"):
            if prop.get("name") == "nameEn":
                return str(prop.get("value") or "")
    return ""


def _element_names(specs: list[Any]) -> dict[str, tuple[str, str]]:
    return {
        task_spec.bpmn_id: (task_spec.bpmn_name or task_spec.bpmn_id, _english(task_spec))
        for process_spec in specs
        for task_spec in process_spec.task_specs.values()
        if task_spec.bpmn_id
    }


def start_lanes(compiled: CompiledProcess) -> list[str | None]:
    """The lanes of the process's own start events (None: a start event in no lane)."""
    return [
        task_spec.lane
        for task_spec in compiled.spec.task_specs.values()
        if type(task_spec).__name__ == "StartEvent"
    ]


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
    for param in (getattr(task_spec, "operation_params", None) or {}).values():
        if isinstance(param.get("value"), str) and param["value"]:
            yield Expression(element, "parameter", param["value"], "eval")
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


@dataclass(frozen=True)
class ServiceTaskSpec:
    """A service task: the opsflow operator it calls and the parameters it passes."""

    element_id: str
    operator: str
    params: Mapping[str, str]  # name -> expression


def service_tasks(compiled: CompiledProcess) -> Iterator[ServiceTaskSpec]:
    """Every service task of the process and its called processes."""
    for process_spec in [compiled.spec, *compiled.subprocess_specs.values()]:
        for task_spec in process_spec.task_specs.values():
            name = getattr(task_spec, "operation_name", None)
            if name is not None:
                params = getattr(task_spec, "operation_params", None) or {}
                yield ServiceTaskSpec(
                    task_spec.bpmn_id or task_spec.name,
                    str(name),
                    {key: str(value.get("value", "")) for key, value in params.items()},
                )


def decision_tables(compiled: CompiledProcess) -> Iterator[tuple[str, Any]]:
    """(business rule task id, SpiffWorkflow decision table) for every DMN the process uses."""
    for process_spec in [compiled.spec, *compiled.subprocess_specs.values()]:
        for task_spec in process_spec.task_specs.values():
            table = getattr(getattr(task_spec, "dmnEngine", None), "decision_table", None)
            if table is not None:
                yield task_spec.bpmn_id, table
