"""Deploy-time checks of DMN decision tables: supported hit policies, no overlapping UNIQUE rules.

SpiffWorkflow runs only UNIQUE and COLLECT, and its UNIQUE returns the first matching rule
without checking that rules do not overlap. A process owner's table must never depend on row
order by accident, so overlapping UNIQUE rules are refused here.

Two rules overlap when, for every input column, some value satisfies both entries. Entries
test one input each, so columns can be checked one at a time, on sample values drawn from
the literals the column's entries mention (each number, and just above and below it).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from engine import sandbox
from engine.errors import DefinitionProblem, OpsflowError

SUPPORTED_HIT_POLICIES = ("UNIQUE", "COLLECT")
_PLACEHOLDER = "dmn_input"


def table_problems(tables: Iterable[tuple[str, Any]], source: str) -> list[DefinitionProblem]:
    problems = []
    for element_id, table in tables:
        policy = str(table.hit_policy).upper()
        if policy not in SUPPORTED_HIT_POLICIES:
            problems.append(
                DefinitionProblem(
                    source,
                    element_id,
                    (
                        f"决策表 {table.id} 的命中策略 {policy} 不受支持（仅 UNIQUE、COLLECT）/ "
                        f"hit policy {policy} of decision table {table.id} is not supported (UNIQUE, COLLECT only)"
                    ),
                )
            )
        elif policy == "UNIQUE":
            problems.extend(
                DefinitionProblem(source, element_id, message) for message in _overlaps(table)
            )
    return problems


def _overlaps(table: Any) -> Iterator[str]:
    columns = [_column_entries(table, index) for index in range(len(table.inputs))]
    samples = [_samples(entries) for entries in columns]
    for first, second in itertools.combinations(range(len(table.rules)), 2):
        if all(
            _may_both_match(col[first], col[second], samples[i]) for i, col in enumerate(columns)
        ):
            rule_a, rule_b = table.rules[first], table.rules[second]
            yield (
                f"决策表 {table.id} 的规则 {first + 1}（{rule_a.id}）与规则 {second + 1}（{rule_b.id}）"
                f"可能同时命中 / UNIQUE rules {first + 1} and {second + 1} of {table.id} can match the same "
                "input: the engine would silently take the first; make the rules mutually exclusive"
            )


def entry_expression(text: str) -> str:
    """An input entry as the Python expression SpiffWorkflow evaluates, over ``dmn_input``.

    ``5000 < ? <= 20000`` tests the input in place; ``> 5000`` is appended to it; anything
    else (``"业务招待"``, ``true``) is compared for equality (SpiffWorkflow's DMNEngine rules).
    """
    if "?" in text:
        return text.replace("?", _PLACEHOLDER)
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return f"{_PLACEHOLDER} {text}"
    return f"({_PLACEHOLDER}) == ({text})"


def _column_entries(table: Any, index: int) -> list[str | None]:
    entries: list[str | None] = []
    for rule in table.rules:
        entry = rule.inputEntries[index] if index < len(rule.inputEntries) else None
        text = (getattr(entry, "text", None) or "").strip()
        entries.append(None if text in ("", "-") else entry_expression(text))
    return entries


def _samples(entries: list[str | None]) -> list[Any]:
    values: list[Any] = [None, True, False]
    for text in entries:
        if text is None:
            continue
        for literal in _literals(text):
            values.append(literal)
            if isinstance(literal, int | float | Decimal) and not isinstance(literal, bool):
                values.extend(
                    (
                        literal - 1,
                        literal + 1,
                        Decimal(str(literal)) - Decimal("0.01"),
                        Decimal(str(literal)) + Decimal("0.01"),
                    )
                )
    return values


def _literals(expression: str) -> list[Any]:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return []
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)]


def _matches(expression: str, value: Any) -> bool | None:
    """Whether an entry matches a value; None when it cannot be told (it reads other data)."""
    try:
        return bool(sandbox.evaluate(expression, {_PLACEHOLDER: value}))
    except OpsflowError:
        return None


def _may_both_match(first: str | None, second: str | None, samples: list[Any]) -> bool:
    if first is None or second is None:
        return True
    for value in samples:
        a, b = _matches(first, value), _matches(second, value)
        if a and b:
            return True
    # An entry that reads other data cannot be judged here: do not claim an overlap.
    return False
