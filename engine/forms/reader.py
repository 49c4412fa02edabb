"""Reading and checking form definitions (``forms/<key>.json``, format in docs/forms.md).

:func:`load_form` reads one document and reports every problem found in it at once
(:class:`~engine.errors.InvalidDefinitionError`); :func:`load_forms_dir` reads a directory;
:func:`to_document` / :func:`from_document` store a definition with a process version and read
it back. Literal values in a definition (defaults, conditions, bounds) are cleaned by the same
converters as submitted data.
"""

from __future__ import annotations

import dataclasses
import decimal
import hashlib
import json
import pathlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from engine.errors import DefinitionProblem, InvalidDefinitionError
from engine.forms.definitions import (
    Choice,
    Condition,
    DateBound,
    FieldDefinition,
    FormDefinition,
    Section,
)
from engine.forms.messages import _FieldError
from engine.forms.validation import (
    _CONVERTERS,
    _MAX_PLACES,
    _is_empty,
    _parse_date,
    _quantize,
    _to_decimal,
    compiled,
)

# --------------------------------------------------------------------------- public API


def load_form(raw: bytes | str, source: str = "<form>") -> FormDefinition:
    """Parse and check one form definition; InvalidDefinitionError lists every problem found."""
    problems = _Problems(source)
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    document = _parse_json(data, problems)
    form = None
    if not problems.items:
        form = _read_form(document, problems, hashlib.sha256(data).hexdigest())
    if form is None or problems.items:
        raise InvalidDefinitionError(
            f"form definition {source} is not valid ({len(problems.items)} problem(s))",
            problems.items,
        )
    object.__setattr__(form, "document", document)
    return form


def to_document(form: FormDefinition) -> dict[str, Any]:
    """The definition as the JSON document it was read from (stored with each process version)."""
    return dict(form.document)


def from_document(document: Mapping[str, Any], source: str = "<deployed form>") -> FormDefinition:
    """A definition back from ``to_document`` output."""
    return load_form(json.dumps(document, ensure_ascii=False), source)


def load_forms_dir(path: pathlib.Path) -> dict[str, FormDefinition]:
    """Every ``*.json`` in ``path`` by key; each key must equal its file's stem."""
    if not path.is_dir():
        problem = DefinitionProblem(str(path), None, "not a directory")
        raise InvalidDefinitionError(f"no form directory at {path}", [problem])
    forms: dict[str, FormDefinition] = {}
    problems: list[DefinitionProblem] = []
    for file in sorted(path.glob("*.json")):
        try:
            form = load_form(file.read_bytes(), source=str(file))
        except InvalidDefinitionError as exc:
            problems.extend(exc.problems)
            continue
        if form.key != file.stem:
            message = f"key {form.key!r} does not match the file name {file.name!r}"
            problems.append(DefinitionProblem(str(file), None, message))
        else:
            forms[form.key] = form
    if problems:
        raise InvalidDefinitionError(
            f"{len(problems)} problem(s) in the form definitions under {path}", problems
        )
    return forms


# --------------------------------------------------------------------------- definition reader

_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,62}")
_RELATIVE_DATE_RE: Final = re.compile(r"today(?:([+-])([0-9]{1,5})d)?")
_FORM_KEYS: Final = frozenset({"key", "title", "description", "fields", "sections"})
_SECTION_KEYS: Final = frozenset({"title", "fields"})
_ROLE_RE: Final = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
_COMMON_KEYS: Final = frozenset(
    {"name", "type", "label", "help", "required", "required_when", "visible_when", "default"}
)
_CONDITION_KEYS: Final = frozenset({"field", "equals", "in"})
_CONDITION_TYPES: Final = frozenset({"string", "integer", "decimal", "boolean", "choice"})
_DEFAULT_TYPES: Final = frozenset({"string", "text", "integer", "decimal", "boolean", "choice"})
_UNHASHABLE_TYPES: Final = frozenset({"multi_choice", "attachments", "table"})
_TEXT_MAX_LENGTH: Final = {"string": 200, "text": 5000}
_BOUNDS: Final = frozenset({"min", "max"})
_TYPE_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "string": frozenset({"min_length", "max_length"}),
    "text": frozenset({"min_length", "max_length"}),
    "integer": _BOUNDS,
    "decimal": _BOUNDS | {"places"},
    "date": _BOUNDS,
    "datetime": frozenset(),
    "boolean": frozenset(),
    "choice": frozenset({"choices"}),
    "multi_choice": frozenset({"choices"}),
    "id_number": frozenset(),
    "mobile": frozenset(),
    "email": frozenset(),
    "attachment": frozenset(),
    "attachments": frozenset({"max_files"}),
    "table": frozenset({"columns", "min_rows", "max_rows"}),
    "user": frozenset({"role"}),
}


@dataclasses.dataclass
class _Problems:
    source: str
    items: list[DefinitionProblem] = dataclasses.field(default_factory=list)

    def add(self, element_id: str | None, message: str) -> None:
        self.items.append(DefinitionProblem(self.source, element_id, message))


class _Reader:
    """Reads the properties of one JSON object of a definition, recording each problem."""

    def __init__(self, obj: Mapping[str, Any], problems: _Problems, element_id: str | None):
        self.obj = obj
        self.problems = problems
        self.element_id = element_id

    def problem(self, message: str) -> None:
        self.problems.add(self.element_id, message)

    def check_keys(self, allowed: frozenset[str]) -> None:
        for key in sorted(set(self.obj) - allowed):
            self.problem(f"unknown property {key!r}")

    def flag(self, key: str) -> bool:
        value = self.obj.get(key, False)
        if not isinstance(value, bool):
            self.problem(f"{key!r} must be true or false")
            return False
        return value

    def count(self, key: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        too_big = maximum is not None and isinstance(value, int) and value > maximum
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum or too_big:
            limits = f"from {minimum} to {maximum}" if maximum is not None else f"≥ {minimum}"
            self.problem(f"{key!r} must be a whole number {limits} (got {value!r})")
            return None
        return value

    def whole(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        self.problem(f"{key!r} must be a whole number (got {value!r})")
        return None

    def localized(self, key: str, *, required: bool = False) -> dict[str, str] | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.problem(f"{key!r} is required")
            return None
        if not _is_localized(value):
            self.problem(f"{key!r} must be an object with a non-empty 'zh' text and optional 'en'")
            return None
        return dict(value)


def _is_localized(value: object) -> bool:
    return (
        isinstance(value, dict)
        and "zh" in value
        and set(value) <= {"zh", "en"}
        and all(isinstance(text, str) and text.strip() for text in value.values())
    )


def _parse_json(data: bytes, problems: _Problems) -> object:
    try:
        return json.loads(
            data.decode("utf-8-sig"),
            parse_float=decimal.Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and ours
        problems.add(None, f"not valid JSON: {exc}")
        return None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _read_form(document: object, problems: _Problems, digest: str) -> FormDefinition | None:
    if not isinstance(document, dict):
        problems.add(None, "the document must be a JSON object")
        return None
    reader = _Reader(document, problems, None)
    reader.check_keys(_FORM_KEYS)
    key = document.get("key")
    if not isinstance(key, str) or not _NAME_RE.fullmatch(key):
        reader.problem(f"'key' must match [a-z][a-z0-9_]* (got {key!r})")
    title = reader.localized("title", required=True)
    description = reader.localized("description")
    fields = _read_fields(document.get("fields"), problems, parent=None)
    sections = _read_sections(document.get("sections"), fields, problems)
    if problems.items or not isinstance(key, str) or title is None:
        return None
    form = FormDefinition(
        key, title, fields, description=description, sections=sections, digest=digest
    )
    compiled(form)  # once, when read: validate() only runs the ready schema
    return form


def _read_sections(
    raw: object, fields: tuple[FieldDefinition, ...], problems: _Problems
) -> tuple[Section, ...]:
    """``sections``: each {"title": {...}, "fields": [names]}; every field in exactly one."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        problems.add(None, "'sections' must be a non-empty list")
        return ()
    sections: list[Section] = []
    placed: list[str] = []
    for index, item in enumerate(raw):
        where = f"sections[{index}]"
        if not isinstance(item, dict):
            problems.add(where, 'a section must be {"title": {...}, "fields": [names]}')
            continue
        reader = _Reader(item, problems, where)
        reader.check_keys(_SECTION_KEYS)
        title = reader.localized("title", required=True)
        names = item.get("fields")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            reader.problem("'fields' must be a non-empty list of field names")
            continue
        placed.extend(names)
        if title is not None:
            sections.append(Section(title, tuple(names)))
    declared = [field.name for field in fields]
    for name in sorted(set(placed) - set(declared)):
        problems.add("sections", f"{name!r} is not a field of the form")
    for name in sorted({n for n in placed if placed.count(n) > 1}):
        problems.add("sections", f"{name!r} is in more than one section")
    for name in [n for n in declared if n not in placed]:
        problems.add("sections", f"{name!r} is in no section")
    return tuple(sections)


def _read_fields(
    raw: object, problems: _Problems, parent: str | None
) -> tuple[FieldDefinition, ...]:
    if not isinstance(raw, list) or not raw:
        problems.add(parent, f"{'columns' if parent else 'fields'!r} must be a non-empty list")
        return ()
    declared: dict[str, FieldDefinition] = {}
    for index, item in enumerate(raw):
        definition = _read_field(item, index, declared, problems, parent)
        if definition is None:
            continue
        if definition.name in declared:
            problems.add(_element_id(parent, definition.name), "duplicate field name")
        else:
            declared[definition.name] = definition
    return tuple(declared.values())


def _element_id(parent: str | None, name: str) -> str:
    return name if parent is None else f"{parent}.{name}"


def _read_field(
    item: object,
    index: int,
    declared: Mapping[str, FieldDefinition],
    problems: _Problems,
    parent: str | None,
) -> FieldDefinition | None:
    name = item.get("name") if isinstance(item, dict) else None
    if not isinstance(item, dict) or not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        where = _element_id(parent, f"{'columns' if parent else 'fields'}[{index}]")
        problems.add(
            where, f"a field must be an object whose 'name' matches [a-z][a-z0-9_]* (got {name!r})"
        )
        return None
    reader = _Reader(item, problems, _element_id(parent, name))
    kind = item.get("type")
    if not isinstance(kind, str) or kind not in _TYPE_KEYS or (parent and kind == "table"):
        reader.problem(
            f"unknown field type {kind!r}"
            if kind != "table"
            else "a table column cannot be a table"
        )
        return None
    reader.check_keys(_COMMON_KEYS | _TYPE_KEYS[kind] | ({"unique"} if parent else set()))
    definition = FieldDefinition(
        name=name,
        type=kind,
        label=reader.localized("label") or {"zh": name},
        help=reader.localized("help"),
        required=reader.flag("required"),
        required_when=_read_condition(reader, "required_when", declared),
        visible_when=_read_condition(reader, "visible_when", declared),
        unique=reader.flag("unique"),
        **_OPTION_READERS[kind](reader),
    )
    return _finish_field(definition, reader)


def _finish_field(definition: FieldDefinition, reader: _Reader) -> FieldDefinition:
    if definition.required and definition.required_when is not None:
        reader.problem("use either 'required' or 'required_when', not both")
    if definition.unique and definition.type in _UNHASHABLE_TYPES:
        reader.problem(f"a {definition.type} column cannot be 'unique'")
    if "default" not in reader.obj:
        return definition
    if definition.type not in _DEFAULT_TYPES:
        reader.problem(f"a {definition.type} field cannot have a 'default'")
        return definition
    default = _literal(definition, reader.obj["default"], reader, "default")
    return dataclasses.replace(definition, default=default)


def _literal(target: FieldDefinition, value: object, reader: _Reader, what: str) -> Any:
    """A definition's literal value for ``target``, cleaned as if it had been submitted."""
    try:
        cleaned = None if _is_empty(value) else _CONVERTERS[target.type](target, value, None)
    except _FieldError as exc:
        reader.problem(
            f"{what}: {value!r} is not a valid value of {target.name!r} ({exc.render('en')})"
        )
        return None
    if cleaned is None:
        reader.problem(f"{what}: the value must not be empty")
    return cleaned


def _read_condition(
    reader: _Reader, key: str, declared: Mapping[str, FieldDefinition]
) -> Condition | None:
    raw = reader.obj.get(key)
    if raw is None:
        return None
    literals = _condition_literals(raw)
    if literals is None:
        reader.problem(
            f'{key!r} must be {{"field": name, "equals": value}} or {{"field": name, "in": [values]}}'
        )
        return None
    name = raw.get("field")
    target = declared.get(name) if isinstance(name, str) else None
    if target is None:
        reader.problem(f"{key!r} names {name!r}, which is not a field declared above this one")
        return None
    if target.type not in _CONDITION_TYPES:
        reader.problem(f"{key!r} cannot test {name!r}: a {target.type} field")
        return None
    return Condition(target.name, tuple(_literal(target, v, reader, key) for v in literals))


def _condition_literals(raw: object) -> list[Any] | None:
    if (
        not isinstance(raw, dict)
        or set(raw) - _CONDITION_KEYS
        or ("equals" in raw) == ("in" in raw)
    ):
        return None
    if "equals" in raw:
        return [raw["equals"]]
    values = raw["in"]
    return values if isinstance(values, list) and values else None


def _no_options(reader: _Reader) -> dict[str, Any]:
    return {}


def _length_options(reader: _Reader) -> dict[str, Any]:
    low = reader.count("min_length")
    high = reader.count("max_length", minimum=1)
    if high is None:
        high = _TEXT_MAX_LENGTH[reader.obj["type"]]
    if low is not None and low > high:
        reader.problem(f"'min_length' {low} is greater than the maximum length {high}")
    return {"min_length": low, "max_length": high}


def _integer_options(reader: _Reader) -> dict[str, Any]:
    low, high = reader.whole("min"), reader.whole("max")
    if low is not None and high is not None and low > high:
        reader.problem("'min' is greater than 'max'")
    return {"min_value": low, "max_value": high}


def _decimal_options(reader: _Reader) -> dict[str, Any]:
    places = reader.count("places", maximum=_MAX_PLACES)
    places = 2 if places is None else places
    low, high = (_decimal_bound(reader, key, places) for key in ("min", "max"))
    if low is not None and high is not None and low > high:
        reader.problem("'min' is greater than 'max'")
    return {"places": places, "min_value": low, "max_value": high}


def _decimal_bound(reader: _Reader, key: str, places: int) -> decimal.Decimal | None:
    value = reader.obj.get(key)
    if value is None:
        return None
    try:
        return _quantize(_to_decimal(value), places)
    except _FieldError as exc:
        reader.problem(
            f"{key!r}: {value!r} is not a decimal with at most {places} places ({exc.render('en')})"
        )
        return None


def _date_options(reader: _Reader) -> dict[str, Any]:
    low, high = _date_bound(reader, "min"), _date_bound(reader, "max")
    if low is not None and high is not None and _later(low, high):
        reader.problem("'min' is later than 'max'")
    return {"min_value": low, "max_value": high}


def _later(low: DateBound, high: DateBound) -> bool:
    if low.fixed is not None and high.fixed is not None:
        return low.fixed > high.fixed
    return low.fixed is None and high.fixed is None and low.days > high.days


def _date_bound(reader: _Reader, key: str) -> DateBound | None:
    value = reader.obj.get(key)
    if value is None:
        return None
    if isinstance(value, str) and (match := _RELATIVE_DATE_RE.fullmatch(value)):
        days = int(match.group(2) or 0)
        return DateBound(days=-days if match.group(1) == "-" else days)
    try:
        return DateBound(fixed=_parse_date(value))
    except _FieldError:
        reader.problem(
            f"{key!r} must be YYYY-MM-DD, 'today', 'today-90d' or 'today+30d' (got {value!r})"
        )
        return None


def _choice_options(reader: _Reader) -> dict[str, Any]:
    raw = reader.obj.get("choices")
    if not isinstance(raw, list) or not raw:
        reader.problem("'choices' must be a non-empty list")
        return {}
    choices = [choice for choice in map(_read_choice, raw) if choice is not None]
    if len(choices) != len(raw):
        reader.problem(
            'each choice must be a text or {"value": text, "label": {"zh": ..., "en": ...}}'
        )
    values = [choice.value for choice in choices]
    if len(set(values)) != len(values):
        reader.problem("choice values must be unique")
    return {"choices": tuple(choices)}


def _read_choice(item: object) -> Choice | None:
    if isinstance(item, str):
        item = {"value": item}
    if not isinstance(item, dict) or set(item) - {"value", "label"}:
        return None
    value, label = item.get("value"), item.get("label", {"zh": item.get("value")})
    if (
        not isinstance(value, str)
        or not value
        or value != value.strip()
        or not _is_localized(label)
    ):
        return None
    return Choice(value, dict(label))


def _user_options(reader: _Reader) -> dict[str, Any]:
    role = reader.obj.get("role")
    if not isinstance(role, str) or not _ROLE_RE.fullmatch(role):
        reader.problem(f"'role' must be a role code such as \"CS\" (got {role!r})")
        return {}
    return {"role": role}


def _attachments_options(reader: _Reader) -> dict[str, Any]:
    return {"max_files": reader.count("max_files", minimum=1)}


def _table_options(reader: _Reader) -> dict[str, Any]:
    columns = _read_fields(reader.obj.get("columns"), reader.problems, parent=reader.element_id)
    low, high = reader.count("min_rows"), reader.count("max_rows", minimum=1)
    if low is not None and high is not None and low > high:
        reader.problem("'min_rows' is greater than 'max_rows'")
    return {"columns": columns, "min_rows": low, "max_rows": high}


_OPTION_READERS: Final[Mapping[str, Callable[[_Reader], dict[str, Any]]]] = {
    "string": _length_options,
    "text": _length_options,
    "integer": _integer_options,
    "decimal": _decimal_options,
    "date": _date_options,
    "datetime": _no_options,
    "boolean": _no_options,
    "choice": _choice_options,
    "multi_choice": _choice_options,
    "id_number": _no_options,
    "mobile": _no_options,
    "email": _no_options,
    "attachment": _no_options,
    "attachments": _attachments_options,
    "table": _table_options,
    "user": _user_options,
}
