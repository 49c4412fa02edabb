"""How a benchmark reports: its figures one a line, one JSON line when asked, and its verdict."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping


def report(figures: Mapping[str, float], *, as_json: bool, problems: Iterable[str] = ()) -> None:
    """Print the figures; exit non-zero on a problem or a figure that is not a positive number."""
    for key, value in figures.items():
        print(f"{key:28} {value}")
    if as_json:
        print(json.dumps(dict(figures)))
    missing = [key for key, value in figures.items() if not (math.isfinite(value) and value > 0)]
    failures = [*problems, *([f"figures missing: {', '.join(missing)}"] if missing else [])]
    if failures:
        sys.exit("; ".join(failures))
