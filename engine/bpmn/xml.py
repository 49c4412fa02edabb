"""Hardened lxml parsing of untrusted XML, and what is read off the raw XML before SpiffWorkflow sees it."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from engine.bpmn.errors import invalid
from engine.errors import DefinitionProblem

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


def parse_xml(data: bytes | str, source: str) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network, bounded size.

    :raise InvalidDefinitionError: not well-formed, too large, or carrying a DOCTYPE/ENTITY.
    """
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_XML_BYTES:
        raise invalid(
            source,
            None,
            f"文件过大 / file too large: {len(raw) / 1048576:.1f} MB, limit {MAX_XML_BYTES // 1048576} MB",
        )
    if _DOCTYPE.search(raw[:65536]) or b"<!ENTITY" in raw:
        raise invalid(
            source,
            None,
            "不允许 DOCTYPE/ENTITY 声明 / DOCTYPE and ENTITY declarations are not allowed (XXE, entity expansion)",
        )
    try:
        root = etree.fromstring(raw, parser=_SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise invalid(source, None, f"XML 格式错误 / XML is not well-formed: {exc}") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise invalid(source, None, "不允许 DTD / a DTD is not allowed")
    return root


BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_NS = {"bpmn": BPMN_NS, "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}


def executable_process_id(root: etree._Element, source: str) -> str:
    """The id of the file's first executable process (the process key)."""
    processes = root.findall("bpmn:process", _NS)
    executable = [p for p in processes if p.get("isExecutable", "true").lower() == "true"]
    if not executable:
        ids = ", ".join(str(p.get("id")) for p in processes) or "none"
        raise invalid(
            source,
            None,
            (
                f"文件中没有可执行流程（isExecutable=false）/ no executable process (isExecutable is false for: {ids}); "
                "the file is a documentation model"
            ),
        )
    return str(executable[0].get("id"))


def process_documentation(root: etree._Element, key: str) -> str:
    """The text of the ``bpmn:documentation`` of process ``key`` ("" when it has none)."""
    for process in root.findall("bpmn:process", _NS):
        if process.get("id") == key:
            node = process.find("bpmn:documentation", _NS)
            return " ".join((node.text or "").split()) if node is not None else ""
    return ""


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
    operator = "bpmn:extensionElements/spiffworkflow:serviceTaskOperator"
    for node in root.iter(f"{{{BPMN_NS}}}serviceTask"):
        if node.find(operator, _NS) is not None:
            continue  # an opsflow operator: the registry checks its name and parameters
        yield (
            node.get("id"),
            (
                "服务任务未指定 opsflow 操作（spiffworkflow:serviceTaskOperator），opsflow 没有外部连接器 / "
                "the service task names no opsflow operator (spiffworkflow:serviceTaskOperator); "
                "opsflow has no other connectors: use an operator, a user task or a script task"
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
