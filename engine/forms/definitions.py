"""The checked form definition: FormDefinition, FieldDefinition and their parts (frozen dataclasses).

:mod:`engine.forms.reader` builds them from the JSON documents; a FormDefinition compiles its
marshmallow schema (:mod:`engine.forms.validation`) once, on its first validation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Choice:
    """One option of a choice / multi_choice field."""

    value: str
    label: dict[str, str]


@dataclasses.dataclass(frozen=True)
class DateBound:
    """A date limit: a fixed date, or ``days`` after (negative: before) validate()'s ``today``."""

    fixed: dt.date | None = None
    days: int = 0

    def resolve(self, today: dt.date) -> dt.date:
        return self.fixed if self.fixed is not None else today + dt.timedelta(days=self.days)


@dataclasses.dataclass(frozen=True)
class Condition:
    """``{"field": X, "equals": V}`` or ``{"field": X, "in": [...]}``, values already cleaned."""

    field: str
    values: tuple[Any, ...]

    def holds(self, cleaned: Mapping[str, Any]) -> bool:
        return cleaned.get(self.field) in self.values


@dataclasses.dataclass(frozen=True)
class Section:
    """A titled group of a form's top-level fields, shown together (in two columns when wide)."""

    title: dict[str, str]
    fields: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class FieldDefinition:
    """One field of a form, or one column of a table field."""

    name: str
    type: str
    label: dict[str, str]
    help: dict[str, str] | None = None
    required: bool = False
    required_when: Condition | None = None
    visible_when: Condition | None = None
    default: Any = None
    min_length: int | None = None
    max_length: int | None = None
    min_value: int | decimal.Decimal | DateBound | None = None
    max_value: int | decimal.Decimal | DateBound | None = None
    places: int | None = None
    choices: tuple[Choice, ...] = ()
    max_files: int | None = None
    columns: tuple[FieldDefinition, ...] = ()
    min_rows: int | None = None
    max_rows: int | None = None
    unique: bool = False
    role: str | None = None  # a "user" field: the role the chosen person must hold

    @functools.cached_property
    def choice_values(self) -> frozenset[str]:
        return frozenset(choice.value for choice in self.choices)


@dataclasses.dataclass(frozen=True)
class FormDefinition:
    """A checked form definition with its compiled marshmallow schema.

    ``digest`` is the SHA-256 of the source document (record it with the data it validated).
    """

    key: str
    title: dict[str, str]
    fields: tuple[FieldDefinition, ...]
    description: dict[str, str] | None = None
    sections: tuple[Section, ...] = ()
    digest: str = ""
    # The JSON document the definition was read from, as deployed with a process version.
    document: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    # the compiled schema, built once by engine.forms.validation (which knows its type)
    compiled: object = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def field(self, name: str) -> FieldDefinition:
        """The top-level field called ``name`` (KeyError if there is none)."""
        for definition in self.fields:
            if definition.name == name:
                return definition
        raise KeyError(name)

    def groups(self) -> list[tuple[Section | None, tuple[FieldDefinition, ...]]]:
        """The fields to show, grouped by section (one untitled group when there are none)."""
        if not self.sections:
            return [(None, self.fields)]
        return [(s, tuple(self.field(name) for name in s.fields)) for s in self.sections]

    def user_roles(self) -> dict[str, str]:
        """Field path (``handler``, ``table.column``) → role of every "user" field."""
        found: dict[str, str] = {}
        for field in self.fields:
            if field.role is not None:
                found[field.name] = field.role
            for column in field.columns:
                if column.role is not None:
                    found[f"{field.name}.{column.name}"] = column.role
        return found
