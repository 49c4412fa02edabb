"""Cleaned form data to JSON-safe values: Decimal, date and datetime as text (audit payloads)."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any


def to_json_data(cleaned: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of cleaned data: Decimal -> "12.50", date/datetime -> ISO 8601 text."""
    return {str(key): _json_value(value) for key, value in cleaned.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # keeps the places: Decimal("12.50") -> "12.50"
    if isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, Mapping):
        return to_json_data(value)
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value
