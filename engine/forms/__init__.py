"""Form definitions (forms/*.json) to marshmallow schemas; validate and clean submitted task data.

A form definition is one JSON document per user-task form, ``forms/<key>.json`` (the format is
described in docs/forms.md). :func:`load_form` checks a definition and compiles it, once, into
marshmallow schemas (one for the form, one per table for its rows) kept on the returned
:class:`FormDefinition`. :func:`validate` runs on every task completion: it returns the cleaned
data or raises :class:`~engine.errors.InvalidInputError` with one list of messages per field, in
Chinese or English.

How it fits together:

* every field type has a converter ``(definition, value, today) -> cleaned value`` that raises
  ``_FieldError(code, **params)``; one marshmallow field class wraps the converters, so the
  marshmallow schema walks the fields and collects the errors;
* errors stay codes until the end and are rendered in the caller's language then, so one schema
  serves both languages;
* the rules that look at more than one field (``required``, ``required_when``, ``visible_when``,
  ``default``) run after the schema, in declaration order; a condition may only name a field
  declared above it, so there are no cycles;
* ``today`` reaches the date checks through a context variable that :func:`validate` sets
  (marshmallow 4 has no schema context).

Callers use the names below, as ``from engine import forms; forms.validate``; the modules are
``definitions`` (the dataclasses), ``reader`` (reading and checking the definition JSON),
``validation`` (the converters, the compiled schema, ``validate``), ``messages`` (the bilingual
error messages, ``localize``) and ``json_data`` (``to_json_data``).
"""

from engine.forms.definitions import (
    Choice,
    Condition,
    DateBound,
    FieldDefinition,
    FormDefinition,
    Section,
)
from engine.forms.json_data import to_json_data
from engine.forms.messages import localize
from engine.forms.reader import from_document, load_form, load_forms_dir, to_document
from engine.forms.validation import validate

__all__ = [
    "Choice",
    "Condition",
    "DateBound",
    "FieldDefinition",
    "FormDefinition",
    "Section",
    "from_document",
    "load_form",
    "load_forms_dir",
    "localize",
    "to_document",
    "to_json_data",
    "validate",
]
