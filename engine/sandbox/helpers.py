"""``SAFE_HELPERS``: the builtins diagram code sees, in place of Python's ``__builtins__``.

Some are size-checked stand-ins (``int``, ``str``, ``range``, ``zip``, ``round``, ``sum``,
``isinstance``); the dates, deadlines and money helpers come from ``engine.sandbox.script_helpers``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from engine.sandbox import script_helpers
from engine.sandbox.guards import (
    _CONTAINERS,
    MAX_EXPONENT,
    MAX_LOOP_STEPS,
    MAX_RANGE,
    MAX_ZIP_ITEMS,
    _Args,
    _check_decimal_magnitude,
    _check_size,
    _GuardedType,
    _limit,
    _real_type,
    _text_size,
)


def _check_int_call(args: _Args, kwargs: dict[str, Any]) -> None:
    _check_decimal_magnitude(args[0] if args else kwargs.get("x"))


def _check_str_call(args: _Args, kwargs: dict[str, Any]) -> None:
    value = args[0] if args else kwargs.get("object")
    if isinstance(value, _CONTAINERS):
        _text_size(value)


def _safe_isinstance(obj: object, classinfo: Any, /) -> bool:
    return isinstance(obj, _real_type(classinfo))


def _safe_range(*args: Any) -> range:
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        raise _limit(f"range 超过 {MAX_RANGE:,} 项", f"range() is limited to {MAX_RANGE:,} items")
    return numbers


def _safe_zip(*iterables: Any, **kwargs: Any) -> zip[Any]:
    """``zip``; refuses to build a million tuples of a million items (``zip(*[l] * 10**6)``)."""
    sizes = [len(iterable) for iterable in iterables if isinstance(iterable, Sized)]
    rows = min(sizes, default=MAX_LOOP_STEPS)  # zip stops at the shortest
    if len(iterables) > 1 and len(iterables) * rows > MAX_ZIP_ITEMS:
        raise _limit(
            f"zip 的结果超过 {MAX_ZIP_ITEMS:,} 项",
            f"zip() would produce over {MAX_ZIP_ITEMS:,} items",
        )
    strict = kwargs.pop("strict", False)
    return zip(*iterables, strict=strict, **kwargs)


def _safe_round(*args: Any, **kwargs: Any) -> Any:
    _check_decimal_magnitude(args[0] if args else kwargs.get("number"))
    ndigits = args[1] if len(args) > 1 else kwargs.get("ndigits")
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise _limit(f"ndigits 超过 {MAX_EXPONENT:,}", f"round() ndigits beyond {MAX_EXPONENT:,}")
    return round(*args, **kwargs)


def _safe_sum(*args: Any, **kwargs: Any) -> Any:
    """``sum``; adding up lists or tuples is size-checked and linear, not quadratic."""
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    if len(args) not in (1, 2) or set(kwargs) - {"start"} or not isinstance(start, list | tuple):
        return sum(*args, **kwargs)
    parts = list(start)
    for item in args[0]:
        if not isinstance(item, type(start)):
            raise TypeError(
                f'can only concatenate {type(start).__name__} (not "{type(item).__name__}")'
                f" to {type(start).__name__}"
            )
        _check_size(len(parts) + len(item))
        parts.extend(item)
    return parts if isinstance(start, list) else tuple(parts)


SAFE_HELPERS: Mapping[str, Any] = MappingProxyType(
    {
        "Decimal": Decimal,
        "date": date,
        "datetime": datetime,
        "timedelta": timedelta,
        "timezone": timezone,
        "round": _safe_round,
        "len": len,
        "min": min,
        "max": max,
        "sum": _safe_sum,
        "abs": abs,
        "int": _GuardedType(int, _check_int_call),
        "float": float,
        "str": _GuardedType(str, _check_str_call),
        "bool": bool,
        "list": list,
        "dict": dict,
        "set": set,
        "tuple": tuple,
        "sorted": sorted,
        "any": any,
        "all": all,
        "range": _safe_range,
        "enumerate": enumerate,
        "zip": _safe_zip,
        "isinstance": _safe_isinstance,
        "quantize2": script_helpers.quantize2,
        "days_between": script_helpers.days_between,
        "add_days": script_helpers.add_days,
        "add_workdays": script_helpers.add_workdays,
        "deadline": script_helpers.deadline,
        "now": script_helpers.now,
        "sha256_json": script_helpers.sha256_json,
        "today": script_helpers.today,
    }
)
