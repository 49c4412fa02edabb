"""HTML form fields → the data a task form expects (parsing only; the engine validates).

Names follow the form definition: ``amount``; a table's cells ``invoices-0-amount``; several
values (multi choice, attachments) repeat the name; a checkbox sends ``true`` when ticked.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.datastructures import MultiDict

from engine.forms import FieldDefinition, FormDefinition

# A bound on what is read from one request; the definition's max_rows is checked by the engine.
MAX_ROWS = 2000


def parse(form: FormDefinition | None, submitted: MultiDict[str, str]) -> dict[str, Any]:
    if form is None:
        return {}
    data: dict[str, Any] = {}
    for field in form.fields:
        value = _value(field, field.name, submitted)
        if value is not None:
            data[field.name] = value
    return data


def _value(field: FieldDefinition, name: str, submitted: MultiDict[str, str]) -> Any:
    if field.type == "table":
        return _rows(field, name, submitted)
    if field.type in ("multi_choice", "attachments"):
        values = [v for v in submitted.getlist(name) if v.strip()]
        return values if values or name in submitted else None
    if field.type == "boolean":
        raw = submitted.get(name)
        if raw is None:  # an unticked checkbox sends nothing
            return False if f"{name}.present" in submitted else None
        return raw
    raw = submitted.get(name)
    return None if raw is None else raw.strip()


def _rows(
    field: FieldDefinition, name: str, submitted: MultiDict[str, str]
) -> list[dict[str, Any]]:
    """Every row the page sent, in row-number order (numbers may have gaps: a row was removed)."""
    pattern = re.compile(rf"{re.escape(name)}-([0-9]{{1,6}})-")
    indices = sorted({int(m.group(1)) for key in submitted if (m := pattern.match(key))})
    rows = []
    for index in indices[:MAX_ROWS]:
        prefix = f"{name}-{index}-"
        row = {}
        for column in field.columns:
            value = _value(column, prefix + column.name, submitted)
            if value not in (None, ""):
                row[column.name] = value
        if any(value is not False for value in row.values()):  # a blank row is no row
            rows.append(row)
    return rows
