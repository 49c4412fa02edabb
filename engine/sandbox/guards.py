"""Layer 2: the transformer that routes risky operations through size-checking guards,
the guards it calls at run time, and the per-run budget of loop steps, wall time and memory.

Every guard's name starts with ``_``: a script cannot write it, only the transformer can,
after the check (``checks``).
"""

from __future__ import annotations

import ast
import operator
import re
import sys
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Sized, ValuesView
from datetime import date
from decimal import Decimal
from typing import Any, Final, TypeVar

from engine.errors import ScriptRejectedError

_T = TypeVar("_T")

# --------------------------------------------------------------------------- limits

MAX_RANGE: Final = 100_000  # items one range() may produce
MAX_EXPONENT: Final = 10_000  # largest |exponent| for **
MAX_INT_BITS: Final = 100_000  # largest int * ** << may produce (about 30,000 digits)
MAX_INT_DIGITS: Final = 4_300  # largest Decimal exponent turned into an int or formatted
MAX_SEQUENCE: Final = 1_000_000  # items/characters of a string, list or tuple built by a guard
MAX_ZIP_ITEMS: Final = 10 * MAX_SEQUENCE  # items (rows x columns) one zip() may produce
MAX_FORMAT_WIDTH: Final = 10_000  # largest width/precision in a format spec
MAX_LOOP_STEPS: Final = 1_000_000  # loop and comprehension steps per run
MAX_SECONDS: Final = 2.0  # wall time per run, checked at every loop step
MAX_MEMORY_GROWTH: Final = 256 * 1024 * 1024  # growth of the process's peak RSS per run

# --------------------------------------------------------------------------- errors


class _LimitExceededError(ScriptRejectedError):
    """A resource guard tripped while the code ran; the runner adds the line number."""


def _limit(zh: str, en: str) -> _LimitExceededError:
    return _LimitExceededError(f"超出资源限制：{zh} / resource limit exceeded: {en}")


def _check_size(size: int) -> None:
    if size > MAX_SEQUENCE:
        raise _limit(
            f"结果长度超过 {MAX_SEQUENCE:,}", f"the result would exceed {MAX_SEQUENCE:,} items"
        )


def _check_decimal_magnitude(value: object) -> None:
    """Refuse Decimals whose integer or fixed-point form would have thousands of digits."""
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) > MAX_INT_DIGITS:
        raise _limit(
            f"Decimal 的指数超过 {MAX_INT_DIGITS}",
            f"a Decimal with an exponent beyond {MAX_INT_DIGITS} cannot be converted or formatted",
        )


def _int_too_big() -> _LimitExceededError:
    return _limit(
        f"整数超过 {MAX_INT_BITS:,} 位", f"the integer would exceed {MAX_INT_BITS:,} bits"
    )


# --------------------------------------------------------------------------- operator guards

_SEQUENCES: Final = (str, bytes, list, tuple)
_CONTAINERS: Final = (dict, list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)


def _check_add(a: Any, b: Any) -> None:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_size(len(a) + len(b))


def _check_mul(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise _int_too_big()
        return
    sequence, count = (a, b) if isinstance(b, int) else (b, a)
    if isinstance(sequence, _SEQUENCES) and isinstance(count, int):
        _check_size(len(sequence) * count)


def _check_pow(base: Any, exponent: Any) -> None:
    if isinstance(exponent, int | float | Decimal) and not (
        -MAX_EXPONENT <= exponent <= MAX_EXPONENT
    ):
        raise _limit(f"指数超过 {MAX_EXPONENT:,}", f"the exponent is larger than {MAX_EXPONENT:,}")
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and base.bit_length() * exponent > MAX_INT_BITS
    ):
        raise _int_too_big()


def _check_lshift(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() + b > MAX_INT_BITS:
        raise _int_too_big()


# A %-format field: optional (key), flags, width, .precision.
_PERCENT_FIELD: Final = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_mod(a: Any, b: Any) -> None:
    """``text % args``: bound field widths and the size of what gets pasted in."""
    if not isinstance(a, str | bytes):
        return
    template = a if isinstance(a, str) else a.decode("latin-1")
    size, fields = len(template), 0
    for match in _PERCENT_FIELD.finditer(template):
        fields += 1
        for number in match.groups():
            size += _format_number(number)
    values = list(b.values()) if isinstance(b, dict) else list(b) if isinstance(b, tuple) else [b]
    for value in values:
        _check_decimal_magnitude(value)
    if isinstance(b, dict):  # '%s' prints the whole dict, '%(k)s' a value, maybe often
        longest = max((_text_size(value) for value in values), default=0)
        size += max(fields * longest, _text_size(b))
    else:
        size += sum(_text_size(value) for value in values)
    _check_size(size)


def _format_number(number: str | None) -> int:
    if number is None:
        return 0
    if number == "*" or len(number) > 6 or int(number) > MAX_FORMAT_WIDTH:
        raise _limit(
            f"格式宽度或精度超过 {MAX_FORMAT_WIDTH:,}（也不支持 '*'）",
            f"a format width or precision beyond {MAX_FORMAT_WIDTH:,} (or '*') is not allowed",
        )
    return int(number)


def _text_size(value: object) -> int:
    """Roughly how long ``str(value)`` is; stops with a limit error past MAX_SEQUENCE.

    Walks shared sub-containers once per reference, like repr does, so a list
    holding the same big list a million times is measured, not printed.
    """
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        total += _own_text_size(item)
        _check_size(total)
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, _CONTAINERS):
            pending.extend(item)
    return total


def _own_text_size(item: object) -> int:
    if isinstance(item, str | bytes):
        return len(item) + 2
    if isinstance(item, dict):
        return 2 + 4 * len(item)  # ": " and ", "
    if isinstance(item, _CONTAINERS):
        return 2 + 2 * len(item)
    if isinstance(item, int):
        return item.bit_length() * 3 // 10 + 2
    return 24


def _add(a: Any, b: Any) -> Any:
    _check_add(a, b)
    return a + b


def _mul(a: Any, b: Any) -> Any:
    _check_mul(a, b)
    return a * b


def _pow(a: Any, b: Any) -> Any:
    _check_pow(a, b)
    return a**b


def _lshift(a: Any, b: Any) -> Any:
    _check_lshift(a, b)
    return a << b


def _mod(a: Any, b: Any) -> Any:
    _check_mod(a, b)
    return a % b


_IN_PLACE: Final[dict[str, tuple[Callable[[Any, Any], None], Callable[[Any, Any], Any]]]] = {
    "_add": (_check_add, operator.iadd),
    "_mul": (_check_mul, operator.imul),
    "_pow": (_check_pow, operator.ipow),
    "_lshift": (_check_lshift, operator.ilshift),
    "_mod": (_check_mod, operator.imod),
}


def _inplace(op: str, a: Any, b: Any) -> Any:
    """``a op= b`` for a plain name, guarded; lists are still extended in place."""
    check, apply = _IN_PLACE[op]
    check(a, b)
    return apply(a, b)


def _inplace_item(op: str, container: Any, key: Any, value: Any) -> None:
    """``container[key] op= value``, guarded, evaluating container and key once."""
    container[key] = _inplace(op, container[key], value)


# --------------------------------------------------------------------------- f-string guard

_CONVERSIONS: Final[dict[int, Callable[[object], str]]] = {
    ord("s"): str,
    ord("r"): repr,
    ord("a"): ascii,
}


def _format(value: Any, conversion: int, spec: str) -> str:
    """One f-string field ``{value!conversion:spec}`` with its size bounded."""
    if isinstance(value, _CONTAINERS):
        _text_size(value)
    if conversion in _CONVERSIONS:
        value = _CONVERSIONS[conversion](value)
    _format_number(str(len(spec)))  # a date's strftime spec grows with its length
    if spec and not isinstance(value, date):  # a date's spec is a strftime pattern
        _check_decimal_magnitude(value)
        for number in re.findall(r"\d+", spec):
            _format_number(number)
    return _checked_result(format(value, spec))


def _text(value: str) -> str:
    """A whole f-string, once joined: no more than MAX_SEQUENCE characters."""
    _check_size(len(value))
    return value


# --------------------------------------------------------------------------- method guards
# Each guard gets the object the method is called on and the call's arguments,
# raises if the result would be too large, and returns the arguments to use.

_Args = tuple[Any, ...]


def _guard_width(subject: Any, args: _Args, kwargs: dict[str, Any]) -> _Args:
    width = args[0] if args else kwargs.get("width")
    if isinstance(width, int):
        _check_size(width)
    return args


def _guard_expandtabs(subject: Any, args: _Args, kwargs: dict[str, Any]) -> _Args:
    tabsize = args[0] if args else kwargs.get("tabsize", 8)
    if isinstance(subject, str | bytes) and isinstance(tabsize, int):
        tab = "\t" if isinstance(subject, str) else b"\t"
        _check_size(len(subject) + subject.count(tab) * tabsize)  # type: ignore[arg-type]
    return args


def _guard_replace(subject: Any, args: _Args, kwargs: dict[str, Any]) -> _Args:
    if not isinstance(subject, str | bytes) or len(args) < 2:
        return args
    old, new = args[0], args[1]
    kind = str if isinstance(subject, str) else bytes
    if not isinstance(old, kind) or not isinstance(new, kind):
        return args
    hits = subject.count(old) if old else len(subject) + 1  # type: ignore[arg-type]
    if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
        hits = min(hits, args[2])
    _check_size(len(subject) + hits * (len(new) - len(old)))
    return args


def _guard_join(subject: Any, args: _Args, kwargs: dict[str, Any]) -> _Args:
    if not isinstance(subject, str | bytes) or len(args) != 1:
        return args
    items = args[0] if isinstance(args[0], list | tuple) else list(args[0])
    pasted = sum(len(item) for item in items if isinstance(item, str | bytes))
    _check_size(pasted + len(subject) * max(len(items) - 1, 0))
    return (items,)


def _guard_translate(subject: Any, args: _Args, kwargs: dict[str, Any]) -> _Args:
    if not isinstance(subject, str) or len(args) != 1:
        return args
    table = args[0]
    if not isinstance(table, dict | list | tuple | str):
        raise _limit(
            "translate 只接受 dict、list 或 str 表", "translate needs a dict, list or str table"
        )
    values = table.values() if isinstance(table, dict) else table
    longest = max((len(value) for value in values if isinstance(value, str)), default=1)
    _check_size(len(subject) * max(longest, 1))
    return args


def _guard_extend(subject: Any, args: _Args, kwargs: dict[str, Any]) -> _Args:
    if isinstance(subject, list) and len(args) == 1 and isinstance(args[0], Sized):
        _check_size(len(subject) + len(args[0]))
    return args


def _guard_to_bytes(subject: Any, args: _Args, kwargs: dict[str, Any]) -> _Args:
    length = args[0] if args else kwargs.get("length", 1)
    if isinstance(length, int):
        _check_size(length)
    return args


def _guard_integer_ratio(subject: Any, args: _Args, kwargs: dict[str, Any]) -> _Args:
    _check_decimal_magnitude(subject)
    return args


_METHOD_GUARDS: Final[dict[str, Callable[[Any, _Args, dict[str, Any]], _Args]]] = {
    "join": _guard_join,
    "replace": _guard_replace,
    "ljust": _guard_width,
    "rjust": _guard_width,
    "center": _guard_width,
    "zfill": _guard_width,
    "expandtabs": _guard_expandtabs,
    "translate": _guard_translate,
    "extend": _guard_extend,
    "to_bytes": _guard_to_bytes,
    "as_integer_ratio": _guard_integer_ratio,
}
GUARDED_METHODS: Final = frozenset(_METHOD_GUARDS)


_SIZED_RESULTS: Final = (str, bytes, list, tuple, dict, set, frozenset)


def _checked_result(value: _T) -> _T:
    """No call hands back a string or container over MAX_SEQUENCE items, or a huge int.

    Methods such as ``encode``, ``upper`` or ``strftime`` grow their input by a
    small factor; checking every result stops chains of them growing
    exponentially.  Ints are capped because dividing two huge ones (made with
    ``int.from_bytes`` or ``int(text, 16)``) takes quadratic time.
    """
    if isinstance(value, _SIZED_RESULTS):
        _check_size(len(value))
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _int_too_big()
    return value


def _call_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """``obj.name(*args, **kwargs)``: every method call in a script goes through here.

    ``name`` is a constant the transformer copied from a checked attribute.
    Methods in GUARDED_METHODS are checked before the call (``str.join(sep,
    items)``, called on the type, like ``sep.join(items)``); every result after.
    """
    method = getattr(obj, name)
    guard = _METHOD_GUARDS.get(name)
    if guard is None:
        return _checked_result(method(*args, **kwargs))
    if isinstance(obj, type | _GuardedType) and args:
        return _checked_result(method(args[0], *guard(args[0], args[1:], kwargs), **kwargs))
    return _checked_result(method(*guard(obj, args, kwargs), **kwargs))


class _CheckedCallable:
    """A method read as a value (``key=str.lower``): its results are checked when called."""

    __slots__ = ("_function",)

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _checked_result(self._function(*args, **kwargs))

    def __repr__(self) -> str:
        return repr(self._function)


def _get_attribute(obj: Any, name: str) -> Any:
    """``obj.name`` outside a call; ``name`` passed the check (no ``_``, no internals)."""
    value = getattr(obj, name)
    if callable(value) and not isinstance(value, type):
        return _CheckedCallable(value)
    return value


# --------------------------------------------------------------------------- guarded types


class _GuardedType:
    """Stands in for ``int`` or ``str`` in scripts: calls are size-checked.

    ``isinstance`` (through the sandbox's own), class attributes such as
    ``str.upper`` and ``int | None`` behave as with the real type.
    """

    __slots__ = ("_check", "_real")

    def __init__(self, real: type, check: Callable[[_Args, dict[str, Any]], None]) -> None:
        self._real = real
        self._check = check

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._check(args, kwargs)
        return _checked_result(self._real(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy/pickle probing, or _real before __init__
            raise AttributeError(name)
        return getattr(self._real, name)

    def __or__(self, other: Any) -> Any:
        return self._real | _real_type(other)

    def __ror__(self, other: Any) -> Any:
        return _real_type(other) | self._real

    def __repr__(self) -> str:
        return repr(self._real)


def _real_type(classinfo: Any) -> Any:
    if isinstance(classinfo, _GuardedType):
        return classinfo._real
    if isinstance(classinfo, tuple):
        return tuple(_real_type(item) for item in classinfo)
    return classinfo


# --------------------------------------------------------------------------- run budget

if sys.platform == "win32":  # pragma: no cover - the servers run Linux

    def _peak_rss() -> int:
        return 0

else:
    import resource

    _RSS_UNIT: Final = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes / KiB

    def _peak_rss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT


class _Budget:
    """Loop steps, wall time and memory growth one run may use; every loop draws on it."""

    __slots__ = ("_deadline", "_memory_ceiling", "_steps")

    def __init__(self) -> None:
        self._steps = 0
        self._deadline = time.monotonic() + MAX_SECONDS
        self._memory_ceiling = _peak_rss() + MAX_MEMORY_GROWTH

    def iterate(self, iterable: Iterable[_T]) -> Iterator[_T]:
        for item in iterable:
            self._steps += 1
            if self._steps > MAX_LOOP_STEPS:
                raise _limit(
                    f"循环总次数超过 {MAX_LOOP_STEPS:,}",
                    f"loops ran more than {MAX_LOOP_STEPS:,} steps",
                )
            if time.monotonic() > self._deadline:
                raise _limit(f"运行超过 {MAX_SECONDS} 秒", f"ran longer than {MAX_SECONDS} s")
            if not self._steps & 15 and _peak_rss() > self._memory_ceiling:
                raise _limit(
                    f"内存增长超过 {MAX_MEMORY_GROWTH >> 20} MiB",
                    f"memory grew by more than {MAX_MEMORY_GROWTH >> 20} MiB",
                )
            yield item


# --------------------------------------------------------------------------- guard transform

_BINOP_HELPERS: Final[dict[type[ast.operator], str]] = {
    ast.Add: "_add",
    ast.Mult: "_mul",
    ast.Pow: "_pow",
    ast.LShift: "_lshift",
    ast.Mod: "_mod",
}


def _helper_call(
    name: str, args: list[ast.expr], like: ast.AST, keywords: list[ast.keyword] | None = None
) -> ast.Call:
    call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=keywords or [])
    return ast.copy_location(call, like)


class _Guard(ast.NodeTransformer):
    """Runs after the check: routes risky operations through the ``_``-named guards."""

    def __init__(self) -> None:
        self.uses_budget = False

    def _budgeted(self, iterable: ast.expr) -> ast.expr:
        self.uses_budget = True
        return _helper_call("_iter", [iterable], iterable)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        helper = _BINOP_HELPERS.get(type(node.op))
        return node if helper is None else _helper_call(helper, [node.left, node.right], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        self.generic_visit(node)
        helper = _BINOP_HELPERS.get(type(node.op))
        if helper is None:
            return node
        op = ast.Constant(helper)
        target = node.target
        if isinstance(target, ast.Name):
            load = ast.Name(id=target.id, ctx=ast.Load())
            value = _helper_call("_inplace", [op, load, node.value], node)
            return ast.copy_location(ast.Assign(targets=[target], value=value), node)
        if not isinstance(target, ast.Subscript):  # the check refuses attribute targets
            raise ScriptRejectedError("不支持的赋值目标 / unsupported assignment target")
        call = _helper_call("_inplace_item", [op, target.value, target.slice, node.value], node)
        return ast.copy_location(ast.Expr(value=call), node)

    def visit_For(self, node: ast.For) -> ast.stmt:
        self.generic_visit(node)
        node.iter = self._budgeted(node.iter)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.iter = self._budgeted(node.iter)
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if not isinstance(func, ast.Attribute):
            self.generic_visit(node)
            return node
        receiver = self.visit(func.value)
        args = [receiver, ast.Constant(func.attr), *(self.visit(arg) for arg in node.args)]
        keywords = [self.visit(keyword) for keyword in node.keywords]
        return _helper_call("_call_method", args, node, keywords)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load):  # the check refuses these
            raise ScriptRejectedError("不支持的属性用法 / unsupported attribute use")
        return _helper_call("_get_attribute", [node.value, ast.Constant(node.attr)], node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        self.generic_visit(node)
        return _helper_call("_text", [node], node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.expr:
        self.generic_visit(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant("")
        call = _helper_call("_format", [node.value, ast.Constant(node.conversion), spec], node)
        return ast.copy_location(ast.FormattedValue(value=call, conversion=-1), node)
