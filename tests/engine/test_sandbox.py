"""engine.sandbox through its public API: hostile code is refused, diagram code works."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pytest

from engine.errors import ScriptFailedError, ScriptRejectedError
from engine.sandbox import SAFE_HELPERS, check, compile_cached, evaluate, execute
from engine.timekeeping import clock

Mode = Literal["eval", "exec"]
Outcome = Literal["rejected", "limit", "failed"]


class Hostile(NamedTuple):
    """A payload and how it must end.

    rejected: ``check`` already refuses it (ScriptRejectedError before anything runs);
    limit: it passes the static check and a resource guard refuses it while it runs
    (ScriptRejectedError); failed: it fails honestly at run time (ScriptFailedError),
    e.g. a NameError because the function does not exist in the sandbox.
    """

    source: str
    mode: Mode = "eval"
    outcome: Outcome = "rejected"


MARKER = "{marker}"  # replaced by a path in the test's tmp dir; it must never be created

HOSTILE_PAYLOADS: tuple[Hostile, ...] = (
    # --- reaching the interpreter through dunders
    Hostile("__import__('os').getpid()"),
    Hostile("__import__('os').system('id')"),
    Hostile(f"__import__('os').system('touch {MARKER}')"),
    Hostile(f"__import__('pathlib').Path('{MARKER}').write_text('x')"),
    Hostile("().__class__.__mro__[1].__subclasses__()"),
    Hostile("().__class__.__bases__[0].__subclasses__()"),
    Hostile("[c for c in ().__class__.__base__.__subclasses__()]"),
    Hostile("[x for x in (1,).__iter__()]"),
    Hostile("Decimal.__init__"),
    Hostile("date.__subclasses__()"),
    Hostile("str.mro()"),
    Hostile("(1).real.__class__"),
    Hostile("len.__self__"),
    Hostile("x if True else __builtins__"),
    Hostile("f'{x.__class__}'"),
    Hostile("f'{x:{x.__class__}}'"),
    Hostile("dict(_x=1)"),
    Hostile("dict(**{'__class__': 1})"),
    # --- the str.format attribute-walking escape
    Hostile('"{0.__class__}".format(1)'),
    Hostile("'{a.__class__}'.format_map({'a': 1})"),
    Hostile("str.format('{0.__class__}', 1)"),
    Hostile("(x for x in []).gi_frame.f_globals"),
    Hostile("(x for x in []).gi_code.co_code"),
    Hostile("items.f_back"),
    Hostile("items.tb_frame"),
    Hostile("items.cr_frame"),
    Hostile("items.ag_frame"),
    # --- dangerous builtins (not even in the namespace; refused statically)
    Hostile("open('/etc/passwd').read()"),
    Hostile(f"open('{MARKER}', 'w').write('pwned')"),
    Hostile("getattr((), '__class__')"),
    Hostile("getattr(x, '__cl'+'ass__')"),
    Hostile("setattr(x, 'y', 1)"),
    Hostile("delattr(x, 'y')"),
    Hostile("hasattr(x, '__class__')"),
    Hostile("eval('1')"),
    Hostile("exec('x=1')"),
    Hostile("compile('1','','eval')"),
    Hostile("globals()"),
    Hostile("locals()"),
    Hostile("vars()"),
    Hostile("dir()"),
    Hostile("type(1)"),
    Hostile("super()"),
    Hostile("object()"),
    Hostile("breakpoint()"),
    Hostile("input()"),
    Hostile("help()"),
    Hostile("memoryview(b'x')"),
    Hostile("exit()"),
    Hostile("ｅｖａｌ('1')"),  # full-width letters: Python normalises the name to eval
    Hostile("x if True else ｅｘｅｃ('1')"),
    # --- forbidden syntax
    Hostile("(lambda: 1)()"),
    Hostile("(lambda f: f)(1).__globals__"),
    Hostile("import os", "exec"),
    Hostile(f"import os\nos.system('touch {MARKER}')", "exec"),
    Hostile("from os import path", "exec"),
    Hostile("def f(): pass", "exec"),
    Hostile("async def f(): pass", "exec"),
    Hostile("class A: pass", "exec"),
    Hostile("while True: pass", "exec"),
    Hostile("try:\n    x = 1\nexcept Exception:\n    pass", "exec"),
    Hostile(f"with open('{MARKER}', 'w') as f:\n    pass", "exec"),
    Hostile("raise SystemExit", "exec"),
    Hostile("assert False", "exec"),
    Hostile("global x", "exec"),
    Hostile("nonlocal x", "exec"),
    Hostile("x = yield 1", "exec"),
    Hostile("await x", "exec"),
    Hostile("match x:\n    case {'a': 1}:\n        pass", "exec"),
    Hostile("x.real = 1", "exec"),
    Hostile("del x.real", "exec"),
    Hostile("items[:0] = items", "exec"),
    Hostile("[*items, *items]"),
    Hostile("items.extend"),  # a size-guarded method read without calling it
    Hostile("datetime.now()"),
    Hostile("date.today()"),
    Hostile("datetime.utcnow()"),
    Hostile("1\x00"),
    Hostile("(" * 1000 + ")" * 1000),
    Hostile("-" * 20_000 + "1"),
    Hostile("1+" * 30_000 + "1"),  # longer than any diagram script may be
    # --- resource bombs refused while running
    Hostile("9**9**9", outcome="limit"),
    Hostile("2 ** 100_000", outcome="limit"),
    Hostile("(10**9000) ** 100", outcome="limit"),
    Hostile("1 << 10**9", outcome="limit"),
    Hostile("'a'*10**9", outcome="limit"),
    Hostile("[0]*10**8", outcome="limit"),
    Hostile("list(range(10**9))", outcome="limit"),
    Hostile("sorted(range(10**9))", outcome="limit"),
    Hostile("[i*j for i in range(100000) for j in range(100000)]", outcome="limit"),
    Hostile("list(zip(*[list(range(1000))] * 100000))", outcome="limit"),
    Hostile("'x'.ljust(10**9)", outcome="limit"),
    Hostile("'\\t'.expandtabs(10**9)", outcome="limit"),
    Hostile("(1).to_bytes(10**9, 'big')", outcome="limit"),
    Hostile("','.join(['a'*1000]*100000)", outcome="limit"),
    Hostile("('a'*1000).replace('', 'b'*100000)", outcome="limit"),
    Hostile("str([['a'*1000]*1000]*1000)", outcome="limit"),
    Hostile("f\"{[['a'*1000]*1000]*1000}\"", outcome="limit"),
    Hostile("f'{1:1000000000}'", outcome="limit"),
    Hostile("f'{1:{10**9}}'", outcome="limit"),
    Hostile("'%1000000000d' % 1", outcome="limit"),
    Hostile("'%*d' % (10**9, 1)", outcome="limit"),
    Hostile("'%(a)s%(a)s' % {'a': 'x'*600000}", outcome="limit"),
    Hostile("int(Decimal('1e999999999'))", outcome="limit"),
    Hostile("round(Decimal('1e999999999'))", outcome="limit"),
    Hostile("round(5, -10**9)", outcome="limit"),
    Hostile("Decimal('1e999999999').as_integer_ratio()", outcome="limit"),
    Hostile("f\"{Decimal('1e999999999'):f}\"", outcome="limit"),
    Hostile("str(b'\\x00' * 1000000)", outcome="limit"),
    Hostile("sum([[0]*1000]*10000, [])", outcome="limit"),
    Hostile("int.from_bytes(b'\\xff' * 500000, 'big')", outcome="limit"),
    Hostile("int('f' * 1000000, 16)", outcome="limit"),
    Hostile("s = 'ab'\nfor i in range(64):\n    s += s", "exec", "limit"),
    Hostile("s = 'ab'\nfor i in range(64):\n    s = f'{s}{s}'", "exec", "limit"),
    Hostile(
        "s = 'ab'\nfor i in range(64):\n    s = s.encode('utf-32').decode('latin-1')",
        "exec",
        "limit",
    ),
    Hostile(
        "s = 'ab'\nfor i in range(64):\n    e = s.encode\n    d = e('utf-32').decode\n"
        "    s = d('latin-1')",
        "exec",
        "limit",
    ),
    Hostile("l = [0]\nfor i in range(64):\n    l.extend(l)", "exec", "limit"),
    Hostile("l = [0]\nfor x in l:\n    l.append(x)", "exec", "limit"),
    Hostile("l = []\nl.append(l)\ns = str(l)", "exec", "limit"),
    # --- honest run-time failures: the function simply is not there
    Hostile("bytearray(10**9)", outcome="failed"),
    Hostile("pow(9, 10**9)", outcome="failed"),
    Hostile("next(iter([]))", outcome="failed"),
    Hostile("a = []\na.append(a)\nb = []\nb.append(b)\nsame = a == b", "exec", "failed"),
)


def _victim_context() -> dict[str, Any]:
    return {
        "x": 1,
        "amount": Decimal("100"),
        "items": [1, 2, 3],
        "day": date(2024, 1, 1),
    }


def _run(source: str, mode: Mode, context: dict[str, Any]) -> Any:
    if mode == "eval":
        return evaluate(source, context)
    execute(source, context)
    return None


def test_marker_path_is_writable(tmp_path: Path) -> None:
    """The side-effect check below is meaningful: a leaked open() could create the marker."""
    marker = tmp_path / "pwned"
    marker.write_text("x")
    assert marker.exists()


@pytest.mark.parametrize(
    "payload",
    HOSTILE_PAYLOADS,
    ids=[f"{i:03d}-{payload.source[:50]!r}" for i, payload in enumerate(HOSTILE_PAYLOADS)],
)
def test_hostile_payload_is_refused(payload: Hostile, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = payload.source.replace(MARKER, str(marker))
    context = _victim_context()
    before = copy.deepcopy(context)
    expected = ScriptFailedError if payload.outcome == "failed" else ScriptRejectedError

    with pytest.raises(expected):
        _run(source, payload.mode, context)

    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []
    assert context == before
    if payload.outcome == "rejected":
        with pytest.raises(ScriptRejectedError):
            check(source, payload.mode)
    else:
        check(source, payload.mode)  # statically fine; refused or failed only while running


def test_every_hostile_outcome_is_covered() -> None:
    outcomes = {payload.outcome for payload in HOSTILE_PAYLOADS}
    assert outcomes == {"rejected", "limit", "failed"}
    assert len({(p.source, p.mode) for p in HOSTILE_PAYLOADS}) == len(HOSTILE_PAYLOADS)


# --------------------------------------------------------------------------- static messages


def test_rejection_names_the_attribute_and_its_position() -> None:
    with pytest.raises(ScriptRejectedError) as caught:
        check("().__class__")
    message = str(caught.value)
    assert message.startswith("不允许访问以下划线开头的属性 '__class__'")
    assert "attributes starting with '_' are not allowed: '__class__'" in message
    assert message.endswith("(line 1, col 4)")


def test_rejection_position_on_later_line_of_a_script() -> None:
    with pytest.raises(ScriptRejectedError, match=r"'__class__' \(line 2, col 7\)"):
        check("a = 1\nb = a.__class__", "exec")


def test_rejection_position_counts_characters_not_bytes() -> None:
    with pytest.raises(ScriptRejectedError, match=r"\(line 1, col 10\)"):  # bytes: col 14
        check("'金额' + x.__dict__")


def test_import_rejection_is_bilingual_with_line() -> None:
    with pytest.raises(ScriptRejectedError) as caught:
        check("a = 1\nimport os", "exec")
    assert str(caught.value) == "脚本不允许导入模块 / imports are not allowed (line 2, col 1)"


def test_while_rejection_suggests_for() -> None:
    with pytest.raises(ScriptRejectedError, match=r"use for \.\.\. in range"):
        check("while x:\n    x = x - 1", "exec")


def test_dangerous_call_rejection_names_the_function() -> None:
    with pytest.raises(ScriptRejectedError, match="calling 'getattr' is not allowed"):
        check("getattr(x, 'y')")


def test_format_rejection_suggests_fstring() -> None:
    with pytest.raises(ScriptRejectedError, match="use an f-string"):
        check("'{}'.format(x)")


def test_syntax_error_becomes_rejection_with_line() -> None:
    with pytest.raises(ScriptRejectedError, match=r"^语法错误 / syntax error: .*\(line 2"):
        check("a = 1\nb = = 2", "exec")


@pytest.mark.parametrize("source", ["x is 1", "code == 'A\\d'"])
def test_python_syntax_warnings_are_rejections(source: str) -> None:
    """Whatever the process's warning filters, ``is`` with a literal or a bad escape is refused."""
    with pytest.raises(ScriptRejectedError, match=r"syntax warning: .*\(line 1\)"):
        check(source)


def test_check_accepts_ordinary_code_which_then_runs() -> None:
    expression = "amount > 5000 and region in ('north', 'south')"
    script = "total = 0\nfor i in items:\n    total += i['amount']\nok = total < limit"
    check(expression)  # raises ScriptRejectedError for what it refuses
    check(script, "exec")
    assert evaluate(expression, {"amount": 6000, "region": "north"}) is True
    context: dict[str, Any] = {"items": [{"amount": 3}, {"amount": 4}], "limit": 10}
    execute(script, context)
    assert (context["total"], context["ok"]) == (7, True)


def test_names_that_are_data_may_look_like_builtins() -> None:
    """Only *calling* eval/type/... is refused; a form field called ``type`` is fine."""
    assert evaluate("type == 'auto'", {"type": "auto"}) is True


# --------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("amount > 5000", True),
        ("amount * Decimal('0.05')", Decimal("600.00")),
        ("amount / 4 + fee", Decimal("3010")),
        ("amount // 7", Decimal("1714")),
        ("amount % 7", Decimal("2")),
        ("-amount + 2 ** 10", Decimal("-10976")),
        ("count * 3 - 1", 8),
        ("5000 < amount <= 20000", True),
        ("0 < count < 3", False),
        ("amount == Decimal('12000.00')", True),
        ("round(amount / 7, 2)", Decimal("1714.29")),
        ("abs(-count) + max(count, 10) - min(1, 2)", 12),
    ],
)
def test_arithmetic_and_comparisons_give_what_python_gives(
    expression: str, expected: object
) -> None:
    context = {"amount": Decimal("12000"), "fee": 10, "count": 3}
    assert evaluate(expression, context) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("approved and not flagged", True),
        ("flagged or amount > 50000", False),
        ("region in ('north', 'south') and approved", True),
        ("region not in ['east']", True),
        ("manager is None", True),
        ("'high' if amount > 10000 else 'low'", "high"),
    ],
)
def test_boolean_logic_membership_and_conditionals_give_what_python_gives(
    expression: str, expected: object
) -> None:
    context = {
        "approved": True,
        "flagged": False,
        "amount": 12000,
        "region": "north",
        "manager": None,
    }
    assert evaluate(expression, context) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("name.startswith('Li')", True),
        ("name.lower().endswith('wei')", True),
        ("name.split()[0]", "Li"),
        ("name.replace(' ', '_')", "Li_Wei"),
        ("'-'.join(tags)", "vip-auto"),
        ("len(name)", 6),
        ("'%s-%03d' % (code, 7)", "AB-007"),
        ("str(12) + name[:2]", "12Li"),
        ("int('42') + 1", 43),
        ("name.upper().center(10, '*')", "**LI WEI**"),
        ("sorted(['b', 'A', 'c'], key=str.lower)", ["A", "b", "c"]),
        ("isinstance(name, str) and isinstance(3, (int, Decimal))", True),
        ("isinstance(None, int | None)", True),
    ],
)
def test_string_methods_and_conversions(expression: str, expected: object) -> None:
    context = {"name": "Li Wei", "tags": ["vip", "auto"], "code": "AB"}
    assert evaluate(expression, context) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("claim['amount']", 250),
        ("claim['parties'][-1]['name']", "B"),
        ("claim.get('missing', 0)", 0),
        ("items[1:3]", [20, 30]),
        ("items[::-1][0]", 40),
        ("list(claim.keys())", ["amount", "parties"]),
        ("day.year * 100 + day.month", 202402),
        ("(day + timedelta(days=1)).isoformat()", "2024-03-01"),
        ("{**claim, 'amount': 1}['amount']", 1),
    ],
)
def test_dict_list_and_attribute_access(expression: str, expected: object) -> None:
    context = {
        "claim": {"amount": 250, "parties": [{"name": "A"}, {"name": "B"}]},
        "items": [10, 20, 30, 40],
        "day": date(2024, 2, 29),
    }
    assert evaluate(expression, context) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[i * rate for i in items if i > limit]", [24, 40]),
        ("{k: v for k, v in scores.items() if v >= limit}", {"b": 25}),
        ("{i % 2 for i in items}", {0, 1}),
        ("sum(i for i in items if i > limit)", 32),
        ("any(i > limit for i in items)", True),
        ("all(i > limit for i in items)", False),
        (
            "[[i * j for j in items if j > limit] for i in items if i < limit]",
            [[60, 100], [36, 60]],
        ),
        ("[(n, i) for n, i in enumerate(items, start=1) if i == limit + 2]", [(2, 12)]),
        ("dict(zip(['a', 'b'], items))", {"a": 5, "b": 12}),
        ("list(range(limit, 13, 2))", [10, 12]),
    ],
)
def test_comprehensions_use_context_variables(expression: str, expected: object) -> None:
    context = {"items": [5, 12, 20, 3], "limit": 10, "rate": 2, "scores": {"a": 5, "b": 25}}
    assert evaluate(expression, context) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("f'{name}: {amount:,.2f}'", "Li Wei: 12,345.60"),
        ("f'{day:%Y-%m-%d}'", "2024-05-01"),
        ("f'{name!r:>10}'", "  'Li Wei'"),
        ("f'{count:0{width}d}'", "00042"),
        ("f'{count=}'", "count=42"),
        ("f'{items}'", "[1, 2]"),
    ],
)
def test_fstrings_format_with_python_format_specs(expression: str, expected: str) -> None:
    context = {
        "name": "Li Wei",
        "amount": Decimal("12345.6"),
        "day": date(2024, 5, 1),
        "count": 42,
        "width": 5,
        "items": [1, 2],
    }
    assert evaluate(expression, context) == expected


def test_expression_with_leading_whitespace_from_an_editor() -> None:
    assert evaluate("  amount > 1\n", {"amount": 2}) is True
    assert evaluate("\n    amount > 1 and (\n        amount < 3)\n", {"amount": 2}) is True


def test_context_wins_over_helpers_for_reads() -> None:
    assert evaluate("sum + 1", {"sum": 2}) == 3
    assert evaluate("sum(values)", {"values": [1, 2]}) == 3


def test_walrus_does_not_leak_out_of_evaluate() -> None:
    context = {"a": 2}
    assert evaluate("(b := a * 2) + b", context) == 8
    assert context == {"a": 2}


# --------------------------------------------------------------------------- execute


def test_script_assigns_several_variables_with_decimal() -> None:
    context: dict[str, Any] = {
        "invoices": [{"amount": 1200.10}, {"amount": "300.05"}, {"amount": Decimal("0.5")}],
        "vat_rate": "0.06",
    }
    execute(
        """
        total = sum(Decimal(str(i['amount'])) for i in invoices)
        vat = quantize2(total * Decimal(vat_rate))
        gross = total + vat
        big = [i for i in invoices if Decimal(str(i['amount'])) > total / 4]
        """,
        context,
    )
    assert context["total"] == Decimal("1500.65")
    assert context["vat"] == Decimal("90.04")
    assert context["gross"] == Decimal("1590.69")
    assert context["big"] == [{"amount": 1200.10}]


def test_script_comprehension_sees_context_and_script_variables() -> None:
    """The exec(globals, locals) trap: comprehensions must see every variable."""
    context: dict[str, Any] = {"items": [1, 5, 9], "limit": 2}
    execute("double = limit * 2\nbig = [i for i in items if i > double]", context)
    assert context["big"] == [5, 9]


def test_script_loops_branches_and_augmented_assignment() -> None:
    context: dict[str, Any] = {"claims": [100, 2500, 40, 9000], "threshold": 1000}
    execute(
        "small = 0\nlarge = []\ncounts = {'large': 0}\n"
        "for amount in claims:\n"
        "    if amount >= threshold:\n"
        "        large += [amount]\n"
        "        counts['large'] += 1\n"
        "    elif amount < 50:\n"
        "        continue\n"
        "    else:\n"
        "        small += amount\n"
        "label = 'x' * counts['large']\n",
        context,
    )
    assert context["small"] == 100
    assert context["large"] == [2500, 9000]
    assert context["counts"] == {"large": 2}
    assert context["label"] == "xx"


def test_helpers_do_not_leak_into_context() -> None:
    context: dict[str, Any] = {"x": 1}
    execute("y = x + len([1, 2])\nz = quantize2(y)", context)
    assert context == {"x": 1, "y": 3, "z": Decimal("3.00")}
    assert not set(context) & set(SAFE_HELPERS)


def test_context_may_shadow_a_helper_and_keeps_it() -> None:
    context: dict[str, Any] = {"max": 10, "values": [3, 4]}
    execute("limit = max * 2\nlargest = sorted(values)[-1]", context)
    assert context == {"max": 10, "values": [3, 4], "limit": 20, "largest": 4}


def test_script_deletes_are_written_back() -> None:
    context: dict[str, Any] = {"temp": 1, "keep": 2}
    execute("del temp\nkeep = keep + 1", context)
    assert context == {"keep": 3}


def test_failed_script_writes_nothing_back() -> None:
    context: dict[str, Any] = {"a": 1}
    with pytest.raises(ScriptFailedError):
        execute("a = 2\nb = 3\nc = a / 0", context)
    assert context == {"a": 1}


def test_indented_script_from_an_editor_runs() -> None:
    context: dict[str, Any] = {}
    execute("\n    a = 1\n    if a:\n        b = a + 1\n", context)
    assert context == {"a": 1, "b": 2}


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("2.675"), Decimal("2.68")),
        (2.675, Decimal("2.68")),  # via str: not the binary 2.67499999...
        ("1.005", Decimal("1.01")),
        (Decimal("-1.005"), Decimal("-1.01")),
        (7, Decimal("7.00")),
    ],
)
def test_quantize2_rounds_money_half_up(value: object, expected: Decimal) -> None:
    result = evaluate("quantize2(value)", {"value": value})
    assert result == expected
    assert isinstance(result, Decimal)
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2024, 1, 1), date(2024, 3, 1), 60),
        (date(2024, 3, 1), date(2024, 1, 1), -60),
        ("2024-01-01", "2024-01-31", 30),
        (datetime(2024, 1, 1, 23, 0, tzinfo=UTC), date(2024, 1, 2), 1),
    ],
)
def test_days_between_counts_calendar_days_from_dates_strings_or_datetimes(
    start: object, end: object, expected: int
) -> None:
    assert evaluate("days_between(start, end)", {"start": start, "end": end}) == expected


@pytest.mark.parametrize(
    ("day", "days", "expected"),
    [
        (date(2024, 2, 28), 1, date(2024, 2, 29)),
        (date(2024, 3, 1), -1, date(2024, 2, 29)),
        ("2024-12-31", 1, date(2025, 1, 1)),
        (
            datetime(2024, 1, 31, 9, 30, tzinfo=UTC),
            30,
            datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        ),
    ],
)
def test_add_days_moves_a_date_string_or_datetime_by_calendar_days(
    day: object, days: int, expected: date
) -> None:
    assert evaluate("add_days(day, days)", {"day": day, "days": days}) == expected


def test_add_days_refuses_fractional_days() -> None:
    with pytest.raises(ScriptFailedError, match="whole number of days"):
        evaluate("add_days(day, 1.5)", {"day": date(2024, 1, 1)})


def test_safe_helpers_are_the_whitelist() -> None:
    expected = {
        "Decimal", "date", "datetime", "timedelta", "timezone", "round", "len", "min", "max",
        "sum", "abs", "int", "float", "str", "bool", "list", "dict", "set", "tuple", "sorted",
        "any", "all", "range", "enumerate", "zip", "isinstance", "quantize2", "days_between",
        "add_days", "add_workdays", "deadline", "now", "today", "sha256_json",
    }  # fmt: skip
    assert set(SAFE_HELPERS) == expected
    with pytest.raises(TypeError):
        SAFE_HELPERS["open"] = open  # type: ignore[index]  # read-only: what the test proves


def test_now_and_today_read_the_engine_clock_in_china_time() -> None:
    # 2026-03-31 17:30 UTC is already 1 April in China
    clock.use(clock.FrozenClock(datetime(2026, 3, 31, 17, 30, tzinfo=UTC)))
    try:
        assert evaluate("now()", {}) == "2026-04-01T01:30:00+08:00"
        assert evaluate("today()", {}) == "2026-04-01"
    finally:
        clock.use(None)


def test_sha256_json_fingerprints_a_record_whatever_its_key_order() -> None:
    first = evaluate("sha256_json({'b': [1, 2], 'a': d})", {"d": date(2026, 3, 2)})
    again = evaluate("sha256_json({'a': '2026-03-02', 'b': [1, 2]})", {})
    assert first == again
    assert len(first) == 64
    assert evaluate("sha256_json([1, 2])", {}) != evaluate("sha256_json([2, 1])", {})


def test_the_system_clock_stays_out_of_reach() -> None:
    with pytest.raises(ScriptRejectedError, match="engine clock"):
        check("datetime.now()")


@pytest.mark.parametrize(
    ("start", "spec", "expected"),
    [
        ("2026-04-01", "15 days", "2026-04-16T23:59:59.999999+08:00"),
        ("2026-04-01T10:00:00+08:00", "30 日", "2026-05-01T23:59:59.999999+08:00"),
        # 1-5 May 2026 are holidays and Saturday 9 May is a make-up working day
        ("2026-04-29", "5 workdays", "2026-05-09T23:59:59.999999+08:00"),
        ("2026-03-02T09:00:00+08:00", "48 hours", "2026-03-04T09:00:00+08:00"),
    ],
)
def test_deadline_counts_days_and_prc_working_days(start: str, spec: str, expected: str) -> None:
    assert evaluate("deadline(start, spec)", {"start": start, "spec": spec}) == expected


def test_deadline_refuses_an_unknown_unit() -> None:
    with pytest.raises(ScriptFailedError, match="unknown unit"):
        evaluate('deadline("2026-04-01", "15 fortnights")', {})


def test_add_workdays_skips_weekends_and_holidays() -> None:
    assert evaluate('add_workdays("2026-03-06", 1)', {}) == "2026-03-09"  # Friday -> Monday
    # National Day: 1-7 October 2026 off, Saturday 10 October worked
    assert evaluate('add_workdays("2026-09-30", 1)', {}) == "2026-10-08"
    assert evaluate('add_workdays("2026-09-30", 3)', {}) == "2026-10-10"


# --------------------------------------------------------------------------- run-time errors


def test_name_error_suggests_the_context_variable() -> None:
    with pytest.raises(ScriptFailedError) as caught:
        evaluate("amout > 5000", {"amount": 12000})
    message = str(caught.value)
    assert "NameError: name 'amout' is not defined" in message
    assert "did you mean 'amount'?" in message


def test_name_error_suggests_a_helper() -> None:
    with pytest.raises(ScriptFailedError, match="did you mean 'quantize2'"):
        evaluate("quantise2(x)", {"x": 1})


def test_attribute_error_suggests_the_method() -> None:
    with pytest.raises(ScriptFailedError, match="did you mean 'startswith'"):
        evaluate("name.startwith('x')", {"name": "x"})


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("1 / zero", "ZeroDivisionError: division by zero"),
        ("claim['amout']", "KeyError: 'amout'"),
        ("'a' + 1", "TypeError: can only concatenate str"),
        ("int('abc')", "ValueError: invalid literal for int()"),
        ("Decimal('abc')", "InvalidOperation: ConversionSyntax"),
        ("items[10]", "IndexError: list index out of range"),
    ],
)
def test_runtime_errors_name_type_and_text(expression: str, text: str) -> None:
    with pytest.raises(ScriptFailedError) as caught:
        evaluate(expression, {"zero": 0, "claim": {"amount": 1}, "items": []})
    assert text in str(caught.value)


def test_runtime_error_in_script_names_the_line() -> None:
    with pytest.raises(ScriptFailedError) as caught:
        execute("a = 1\nb = 2\nc = a / (b - 2)\nd = 4", {})
    message = str(caught.value)
    assert "ZeroDivisionError: division by zero (line 3)" in message


def test_runtime_error_inside_comprehension_names_the_line() -> None:
    with pytest.raises(ScriptFailedError, match=r"KeyError: 'b' \(line 2\)"):
        execute("a = 1\nb = [row['b'] for row in rows]", {"rows": [{"a": 1}]})


def test_resource_limit_in_script_names_the_line() -> None:
    with pytest.raises(ScriptRejectedError, match=r"resource limit exceeded.*\(line 2\)"):
        execute("a = 1\nb = 'x' * 10**9", {})


# --------------------------------------------------------------------------- cache


def test_same_expression_is_served_from_the_cache() -> None:
    expression = "amount > 4321 and region == 'cache-probe'"
    evaluate(expression, {"amount": 1, "region": "x"})
    before = compile_cached.cache_info()

    assert evaluate(expression, {"amount": 5000, "region": "cache-probe"}) is True

    after = compile_cached.cache_info()
    assert after.hits == before.hits + 1
    assert after.misses == before.misses
    assert compile_cached(expression, "eval") is compile_cached(expression, "eval")


def test_check_warms_the_cache_and_rejections_are_not_cached() -> None:
    expression = "amount > 9876 and 'warm' != region"
    check(expression)
    before = compile_cached.cache_info()
    evaluate(expression, {"amount": 1, "region": "x"})
    assert compile_cached.cache_info().hits == before.hits + 1
    for _ in range(2):
        with pytest.raises(ScriptRejectedError):
            check("().__class__")
    assert compile_cached.cache_info().currsize == before.currsize
