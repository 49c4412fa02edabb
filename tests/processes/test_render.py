"""Every diagram in processes/ opens in bpmn-js (dmn-js for DMN tables) in a real Chromium and
draws legibly there: no import warning, a drawing for every flow node and sequence flow, no two
shapes on top of each other, no label over a shape or another label, everything inside its pool.

Needs Debian's chromium, a CJK font (labels are measured as drawn) and node_modules/ (npm ci);
`make setup` installs all three. Playwright never downloads a browser here."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from engine.config import PROJECT_ROOT

pytestmark = pytest.mark.browser

PROCESSES = PROJECT_ROOT / "processes"
DIAGRAMS = sorted(PROCESSES.glob("*.bpmn"))
TABLES = sorted(PROCESSES.glob("*.dmn"))
BPMN_VIEWER = PROJECT_ROOT / "node_modules/bpmn-js/dist/bpmn-viewer.production.min.js"
DMN_VIEWER = PROJECT_ROOT / "node_modules/dmn-js/dist/dmn-viewer.production.min.js"
# Overlaps of a pixel or less are borders touching (and glyph boxes' rounding), not a clash.
SLACK = 1.0

# Runs in the page: imports one BPMN file and reports what bpmn-js drew, without judging it.
# Labels are measured as rendered (their text's box), shapes by their diagram bounds.
DRAW_BPMN = """async (xml) => {
  const container = document.createElement('div');
  container.style.cssText = 'width: 1600px; height: 1000px';
  document.body.appendChild(container);
  const viewer = new BpmnJS({ container });
  try {
    let warnings;
    try {
      warnings = (await viewer.importXML(xml)).warnings;
    } catch (error) {
      return { error: String(error.message), warnings: (error.warnings || []).map((w) => w.message) };
    }
    const registry = viewer.get('elementRegistry');
    const canvas = viewer.get('canvas');
    const chain = (e) => { const ids = []; for (let p = e.parent; p; p = p.parent) ids.push(p.id); return ids; };
    const rootOf = (e) => { while (e.parent) e = e.parent; return e; };
    const kindOf = (e) => {
      if (e.type === 'label') return 'label';
      if (e.waypoints) return 'connection';
      if (['bpmn:Participant', 'bpmn:Lane'].includes(e.type)) return 'container';
      const bo = e.businessObject;
      const solid = ['bpmn:FlowNode', 'bpmn:DataObjectReference', 'bpmn:DataStoreReference', 'bpmn:TextAnnotation'];
      return e.parent && solid.some((t) => bo.$instanceOf(t)) ? 'node' : 'other';
    };
    const measure = (e) => {
      const visual = registry.getGraphics(e)?.querySelector('.djs-visual');
      if (!visual) return { rendered: 0 };
      if (e.waypoints) {
        const path = visual.querySelector('path');
        return { rendered: path ? path.getTotalLength() : 0 };
      }
      const b = visual.getBBox();
      return { rendered: b.width * b.height, text: [e.x + b.x, e.y + b.y, b.width, b.height] };
    };
    const drawn = [];
    for (const root of canvas.getRootElements()) {
      canvas.setRootElement(root);  // a collapsed subprocess's plane is only laid out when shown
      for (const e of registry.filter((x) => x !== root && rootOf(x) === root)) {
        const target = e.labelTarget;
        const ancestors = chain(target || e);
        const pool = ancestors.find((id) => registry.get(id).type === 'bpmn:Participant') || null;
        const { rendered, text } = measure(e);
        drawn.push({
          id: e.id, kind: kindOf(e), root: root.id, ancestors, pool, rendered,
          host: e.host?.id || null, target: target?.id || null,
          box: e.type === 'label' ? text : e.waypoints ? null : [e.x, e.y, e.width, e.height],
        });
      }
    }
    const model = [];
    const walk = (parent) => {
      for (const el of parent.flowElements || []) {
        if (el.$instanceOf('bpmn:FlowNode') || el.$instanceOf('bpmn:SequenceFlow')) model.push(el.id);
        walk(el);
      }
    };
    viewer.getDefinitions().rootElements.filter((r) => r.$instanceOf('bpmn:Process')).forEach(walk);
    return { error: null, warnings: warnings.map((w) => w.message), drawn, model };
  } finally {
    viewer.destroy();
    container.remove();
  }
}"""

# Runs in the page: imports one DMN file and opens each of its views (DRD, decision tables).
OPEN_DMN = """async (xml) => {
  const container = document.createElement('div');
  container.style.cssText = 'width: 1600px; height: 1000px';
  document.body.appendChild(container);
  const viewer = new DmnJS({ container });
  const problems = [];
  try {
    try {
      (await viewer.importXML(xml)).warnings.forEach((w) => problems.push(w.message));
    } catch (error) {
      return [String(error.message), ...(error.warnings || []).map((w) => w.message)];
    }
    const first = viewer.getActiveView();  // importXML opened it; opening it again re-imports it
    for (const view of viewer.getViews().filter((v) => v !== first)) {
      try {
        (await viewer.open(view)).warnings.forEach((w) => problems.push(`${view.id}: ${w.message}`));
      } catch (error) {
        problems.push(`${view.id}: ${error.message}`);
      }
    }
    return problems;
  } finally {
    viewer.destroy();
    container.remove();
  }
}"""


@dataclass(frozen=True)
class Drawn:
    """One element as bpmn-js drew it; `box` is x, y, width, height in diagram coordinates."""

    id: str
    kind: str  # node, label, container, connection, other
    root: str  # the canvas plane (the collaboration, or a collapsed subprocess's own plane)
    ancestors: tuple[str, ...]  # for a label: its element's
    pool: str | None
    rendered: float
    host: str | None
    target: str | None
    box: tuple[float, float, float, float] | None

    def related(self, other: Drawn) -> bool:
        """Allowed to overlap: a boundary event and its host, a container and what it holds, a
        label and its own element."""
        return bool(
            {self.host, self.target} & {other.id}
            or {other.host, other.target} & {self.id}
            or self.id in other.ancestors
            or other.id in self.ancestors
        )


@dataclass(frozen=True)
class Drawing:
    error: str | None
    warnings: list[str]
    page_errors: list[str]
    model: list[str]
    elements: dict[str, Drawn]

    def of_kind(self, *kinds: str) -> list[Drawn]:
        return [e for e in self.elements.values() if e.kind in kinds and e.box is not None]


def _overlaps(a: Drawn, b: Drawn) -> bool:
    (ax, ay, aw, ah), (bx, by, bw, bh) = a.box or (0, 0, 0, 0), b.box or (0, 0, 0, 0)
    return (
        a.root == b.root
        and min(ax + aw, bx + bw) - max(ax, bx) > SLACK
        and min(ay + ah, by + bh) - max(ay, by) > SLACK
    )


def _inside(inner: Drawn, outer: Drawn) -> bool:
    (ix, iy, iw, ih), (ox, oy, ow, oh) = inner.box or (0, 0, 0, 0), outer.box or (0, 0, 0, 0)
    return (
        ix >= ox - SLACK
        and iy >= oy - SLACK
        and ix + iw <= ox + ow + SLACK
        and iy + ih <= oy + oh + SLACK
    )


def _clashes(elements: list[Drawn], others: list[Drawn] | None = None) -> list[str]:
    pairs = (
        itertools.combinations(elements, 2)
        if others is None
        else itertools.product(elements, others)
    )
    return sorted(
        f"{a.id} ↔ {b.id}" for a, b in pairs if a is not b and not a.related(b) and _overlaps(a, b)
    )


def _viewer_page(browser: Browser, bundle: Path) -> tuple[Page, list[str]]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_content("<!doctype html><meta charset='utf-8'><body></body>")
    page.add_script_tag(path=bundle)
    # Chinese labels are measured as drawn: without a CJK font they would be tofu of another width.
    width = page.evaluate(
        "() => { const c = document.createElement('canvas').getContext('2d');"
        " c.font = '12px Arial, sans-serif'; return c.measureText('审批通过').width; }"
    )
    if width < 44:
        pytest.fail(f"no CJK font in Chromium ({width:.0f}px for 4 characters): run `make setup`")
    return page, errors


@pytest.fixture(scope="session")
def draw(browser: Browser) -> Callable[[Path], Drawing]:
    """Draws a diagram once per session; the five checks below share the drawing."""
    page, errors = _viewer_page(browser, BPMN_VIEWER)
    drawings: dict[Path, Drawing] = {}

    def _draw(path: Path) -> Drawing:
        if path not in drawings:
            errors.clear()
            raw: dict[str, Any] = page.evaluate(DRAW_BPMN, path.read_text(encoding="utf-8"))
            elements = {
                d["id"]: Drawn(
                    **{**d, "ancestors": tuple(d["ancestors"]), "box": d["box"] and tuple(d["box"])}
                )
                for d in raw.get("drawn", [])
            }
            drawings[path] = Drawing(
                raw["error"], raw["warnings"], list(errors), raw.get("model", []), elements
            )
        return drawings[path]

    return _draw


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_bpmn_imports_without_a_warning(draw: Callable[[Path], Drawing], path: Path) -> None:
    drawing = draw(path)
    assert drawing.error is None, drawing.error
    problems = drawing.warnings + drawing.page_errors
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_every_flow_node_and_sequence_flow_is_drawn(
    draw: Callable[[Path], Drawing], path: Path
) -> None:
    drawing = draw(path)
    assert drawing.model, "nothing imported"
    undrawn = [
        i for i in drawing.model if i not in drawing.elements or not drawing.elements[i].rendered
    ]
    assert not undrawn, f"not drawn: {', '.join(undrawn)}"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_no_two_shapes_overlap(draw: Callable[[Path], Drawing], path: Path) -> None:
    clashes = _clashes(draw(path).of_kind("node"))
    assert not clashes, f"overlapping shapes: {', '.join(clashes)}"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_no_label_covers_a_shape_or_another_label(
    draw: Callable[[Path], Drawing], path: Path
) -> None:
    drawing = draw(path)
    labels = drawing.of_kind("label")
    clashes = _clashes(labels, drawing.of_kind("node")) + _clashes(labels)
    assert not clashes, f"label overlaps: {', '.join(clashes)}"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_every_shape_and_label_lies_inside_its_pool(
    draw: Callable[[Path], Drawing], path: Path
) -> None:
    drawing = draw(path)
    outside = [
        f"{e.id} outside {e.pool}"
        for e in drawing.of_kind("node", "label", "container")
        if e.pool and not _inside(e, drawing.elements[e.pool])
    ]
    assert not outside, ", ".join(outside)


@pytest.fixture(scope="session")
def dmn_page(browser: Browser) -> tuple[Page, list[str]]:
    return _viewer_page(browser, DMN_VIEWER)


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.name)
def test_dmn_opens_every_view_without_a_warning(
    dmn_page: tuple[Page, list[str]], path: Path
) -> None:
    page, errors = dmn_page
    errors.clear()
    problems: list[str] = page.evaluate(OPEN_DMN, path.read_text(encoding="utf-8")) + errors
    assert not problems, "\n".join(problems)
