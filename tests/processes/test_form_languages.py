"""Every form in forms/ speaks Chinese and English: titles, labels, help texts and choices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import PROJECT_ROOT

FORMS = sorted((PROJECT_ROOT / "forms").glob("*.json"))


def texts(fields: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, str]]]:
    for field in fields:
        yield f"{field['name']}.label", field["label"]
        if "help" in field:
            yield f"{field['name']}.help", field["help"]
        for choice in field.get("choices", []):
            yield f"{field['name']}={choice['value']}", choice["label"]
        yield from texts(field.get("columns", []))


@pytest.mark.parametrize("path", FORMS, ids=[p.name for p in FORMS])
def test_every_text_has_chinese_and_english(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    untranslated = [
        where
        for where, text in [("title", document["title"]), *texts(document["fields"])]
        if not text.get("zh") or not text.get("en")
    ]
    assert untranslated == []
