"""Every benchmark in bench/ has a smoke mode (``--smoke``): its own code path on tiny sizes, in a
few seconds, exiting 0 only when every step worked and every figure came out."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from engine.config import PROJECT_ROOT

ENGINE_FIGURES = (
    "memory_step_us",
    "persisted_step_us",
    "completions_per_s",
    "instances_per_s",
    "state_bytes_per_instance",
    "persisted_over_memory",
)
HTTP_FIGURES = (
    "inbox_rps",
    "inbox_p50_ms",
    "inbox_p99_ms",
    "task_page_rps",
    "task_page_p99_ms",
    "complete_rps",
    "complete_p99_ms",
)


@pytest.mark.parametrize(
    ("script", "figures"), [("engine.py", ENGINE_FIGURES), ("http.py", HTTP_FIGURES)]
)
def test_a_benchmark_smoke_run_exits_0_and_prints_every_figure(
    script: str, figures: tuple[str, ...]
) -> None:
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / script), "--smoke", "--json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    for figure in figures:
        assert figure in done.stdout
        value = result[figure]
        assert isinstance(value, int | float), figure
        assert math.isfinite(value), figure
        assert value > 0, figure
    assert result.get("errors", 0) == 0
