"""Every diagram in processes/ deploys cleanly and draws legibly: a shape for every element, no
two shapes on top of each other, edges that start and end at their elements."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from engine.config import PROJECT_ROOT
from engine.definitions import registry
from engine.people import identity
from engine.storage.db import Database

PROCESSES = PROJECT_ROOT / "processes"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
FLOW_NODES = (
    "startEvent",
    "endEvent",
    "userTask",
    "scriptTask",
    "businessRuleTask",
    "serviceTask",
    "task",
    "manualTask",
    "sendTask",
    "receiveTask",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "callActivity",
    "subProcess",
)
DIAGRAMS = sorted(PROCESSES.glob("*.bpmn"))


@dataclass(frozen=True)
class Box:
    element: str
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: Box) -> bool:
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and other.y < self.y + self.h
        )

    def touches(self, px: float, py: float, slack: float = 2) -> bool:
        return (
            self.x - slack <= px <= self.x + self.w + slack
            and self.y - slack <= py <= self.y + self.h + slack
        )


def _shapes(root: etree._Element) -> dict[str, Box]:
    boxes = {}
    for shape in root.iterfind(".//bpmndi:BPMNShape", NS):
        bounds = shape.find("dc:Bounds", NS)
        assert bounds is not None, shape.get("id")
        element = str(shape.get("bpmnElement"))
        boxes[element] = Box(
            element, *(float(bounds.get(k, 0)) for k in ("x", "y", "width", "height"))
        )
    return boxes


def _flow_nodes(root: etree._Element) -> dict[str, str]:
    nodes = {}
    for tag in FLOW_NODES:
        for node in root.iterfind(f".//bpmn:process//bpmn:{tag}", NS):
            nodes[str(node.get("id"))] = tag
    return nodes


def _attached(root: etree._Element) -> dict[str, str]:
    return {
        str(b.get("id")): str(b.get("attachedToRef"))
        for b in root.iterfind(".//bpmn:boundaryEvent", NS)
    }


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_every_element_has_a_shape_and_no_two_shapes_overlap(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    shapes, nodes, attached = _shapes(root), _flow_nodes(root), _attached(root)
    assert set(nodes) <= set(shapes), f"elements without a shape: {set(nodes) - set(shapes)}"
    overlapping = [
        (a.element, b.element)
        for a, b in itertools.combinations([shapes[n] for n in nodes], 2)
        if a.overlaps(b)
        and attached.get(a.element) != b.element
        and attached.get(b.element) != a.element
    ]
    assert overlapping == []


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_every_flow_is_drawn_from_its_source_to_its_target(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    shapes = _shapes(root)
    edges = {str(e.get("bpmnElement")): e for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    for flow in root.iterfind(".//bpmn:sequenceFlow", NS):
        edge = edges.get(str(flow.get("id")))
        assert edge is not None, f"flow {flow.get('id')} is not drawn"
        points = [
            (float(p.get("x", 0)), float(p.get("y", 0))) for p in edge.iterfind("di:waypoint", NS)
        ]
        assert len(points) >= 2
        assert shapes[str(flow.get("sourceRef"))].touches(*points[0]), flow.get("id")
        assert shapes[str(flow.get("targetRef"))].touches(*points[-1]), flow.get("id")


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_every_element_is_named_in_chinese_and_sits_in_a_lane(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    nodes = _flow_nodes(root)
    in_lanes = {ref.text for ref in root.iterfind(".//bpmn:lane/bpmn:flowNodeRef", NS)}
    assert set(nodes) <= in_lanes, f"outside every lane: {set(nodes) - in_lanes}"
    for node_id, tag in nodes.items():
        if tag.endswith("Task") or tag in ("callActivity", "subProcess"):
            node = root.find(f".//bpmn:{tag}[@id='{node_id}']", NS)
            assert node is not None
            name = node.get("name", "")
            assert any("\u4e00" <= ch <= "\u9fff" for ch in name), f"{node_id} needs a Chinese name"


def test_every_process_deploys_without_a_problem(db: Database) -> None:
    batch = registry.read_directory(PROCESSES)
    assert {f.source for f in batch} == {p.name for p in DIAGRAMS}
    with db.unit_of_work() as session:
        deployed = registry.deploy_all(session, identity.SYSTEM, batch)
    assert all(version.created for version in deployed)
    for dmn in sorted(PROCESSES.glob("*.dmn")):
        assert registry.check_dmn(dmn.read_text(encoding="utf-8"), dmn.name) == []
