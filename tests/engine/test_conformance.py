"""The conformance walk over ../shared/conformance: real BPMN/DMN files from public test suites.

No file may crash the engine; what would fail at run time because of a foreign expression
language or an unsupported construct is refused at deploy time with the element and reason;
the committed report docs/conformance.md is what the walk produces today.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import conformance
from engine.cli import main
from engine.config import PROJECT_ROOT
from tests.conftest import SHARED

CORPUS = SHARED / "conformance"
REPORT = PROJECT_ROOT / "docs" / "conformance.md"


@pytest.fixture(scope="module")
def results() -> dict[str, conformance.FileResult]:
    return {r.file: r for r in conformance.walk(CORPUS)}


def test_every_file_of_the_corpus_gets_one_outcome_and_none_crashes(
    results: dict[str, conformance.FileResult],
) -> None:
    files = {
        p.name
        for p in CORPUS.iterdir()
        if p.name.endswith((".bpmn", ".bpmn20.xml", ".bpmn2", ".dmn"))
    }
    assert set(results) == files
    assert len(files) == 64
    crashed = [r.line() for r in results.values() if r.outcome == conformance.CRASHED]
    assert crashed == []


def test_every_refusal_and_failure_names_a_reason(
    results: dict[str, conformance.FileResult],
) -> None:
    for result in results.values():
        if result.outcome in (conformance.REJECTED, conformance.FAILED):
            assert result.detail.strip(), result.file
            assert "Traceback" not in result.detail


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        ("flowable__reviewSalesLead.bpmn20.xml", "JUEL"),
        ("flowable__Flowable6Test.testInclusiveTrickyMerge.bpmn20.xml", "JUEL"),
        (
            "camunda__BoundaryTimerNonInterruptingEventTest.testTimerOnEmbeddedSubprocess.bpmn20.xml",
            'quoted Python string, e.g. "PT3S"',
        ),
        ("miwg__C.9.1.bpmn", "R6/P1D must be a quoted"),
        ("camunda__invoice.v2.bpmn", "calledDecisionId"),
        ("spiff__ExclusiveGatewayIfElseAndDecision.bpmn", "decisionRef"),
        ("jbpm__BPMN2-AdHocSubProcess.bpmn2", "completionCondition"),
        (
            "flowable__RuntimeServiceChangeStateTest.adhocSubProcess.bpmn20.xml",
            "completionCondition",
        ),
        ("tokensim__compensation.bpmn", "compensation"),
        ("tokensim__links.bpmn", "link events"),
        ("cbexamples__dinnerDecisions.dmn", "2 decisions"),
        ("dmnjs__di.dmn", "3 decisions"),
        ("miwg__A.1.0.bpmn", "isExecutable"),
        ("miwg__C.1.0.bpmn", "names no opsflow operator"),
        ("spiff__ScriptTest.bpmn", "defining functions"),
        ("spiff__business_rules.dmn", "can match the same input"),
    ],
)
def test_foreign_and_unsupported_constructs_are_refused_at_deploy_with_the_element(
    results: dict[str, conformance.FileResult], file: str, reason: str
) -> None:
    assert results[file].outcome == conformance.REJECTED
    assert reason in results[file].detail


@pytest.mark.parametrize(
    "file",
    [
        "flowable__chinese.bpmn",
        "spiff__timer.bpmn",
        "spiff__boundary_timer_on_task.bpmn",
        "spiff__event-gateway.bpmn",
        "spiff__event-subprocess.bpmn",
        "spiff__ParallelOrder.bpmn",
        "spiff__Multi-Instance.bpmn20.xml",
        "camunda__TaskServiceTest.handleUserTaskEscalation.bpmn20.xml",
        "camunda__reviewInvoice.bpmn",
        "tokensim__Simulator.error-catch-all-boundary-ref.bpmn",
    ],
)
def test_what_spiffworkflow_runs_opsflow_runs_too(
    results: dict[str, conformance.FileResult], file: str
) -> None:
    assert results[file].outcome == conformance.COMPLETED


def test_a_collaboration_waits_for_its_partners_message(
    results: dict[str, conformance.FileResult],
) -> None:
    result = results["spiff__collaboration.bpmn"]
    assert result.outcome == conformance.WAITING_MESSAGE
    assert "Love Letter Response" in result.detail


def test_the_committed_report_is_current(results: dict[str, conformance.FileResult]) -> None:
    produced = conformance.markdown(sorted(results.values(), key=lambda r: r.file), CORPUS)
    assert REPORT.read_text(encoding="utf-8") == produced, (
        "run `make conformance` and commit docs/conformance.md"
    )


def test_the_command_prints_one_line_per_file_and_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["conformance", str(CORPUS), "--report", str(tmp_path / "r.md")]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 65
    assert lines[-1].startswith("64 files:")
    assert (tmp_path / "r.md").read_text(encoding="utf-8").startswith("# Conformance walk")
