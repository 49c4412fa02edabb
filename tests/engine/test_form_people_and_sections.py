"""Form definitions: person pickers ("user" fields) and sections."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from engine import forms
from engine.errors import InvalidDefinitionError, InvalidInputError

TODAY = dt.date(2026, 3, 2)


def form(**extra: Any) -> str:
    document = {
        "key": "pick",
        "title": {"zh": "选人"},
        "fields": [
            {"name": "handler", "type": "user", "role": "CS", "label": {"zh": "处理人"}},
            {"name": "note", "type": "string", "label": {"zh": "备注"}},
        ],
    }
    return json.dumps(document | extra, ensure_ascii=False)


def cs_holders(role: str) -> set[str]:
    return {"cs1", "cs2"} if role == "CS" else set()


def test_a_user_field_accepts_a_holder_of_its_role_and_refuses_anyone_else() -> None:
    definition = forms.load_form(form())
    cleaned = forms.validate(definition, {"handler": "cs2"}, today=TODAY, holders=cs_holders)
    assert cleaned["handler"] == "cs2"
    with pytest.raises(InvalidInputError) as refused:
        forms.validate(definition, {"handler": "sales1"}, today=TODAY, holders=cs_holders)
    assert refused.value.field_errors == {"handler": ["所选人员不是在职的 CS 角色成员"]}
    with pytest.raises(InvalidInputError) as english:
        forms.validate(
            definition, {"handler": "sales1"}, today=TODAY, locale="en", holders=cs_holders
        )
    assert english.value.field_errors == {"handler": ["The person chosen is no active CS."]}


def test_a_user_field_needs_a_role_code() -> None:
    bad = form().replace('"role": "CS"', '"role": "客服"')
    with pytest.raises(InvalidDefinitionError) as refused:
        forms.load_form(bad)
    assert any("'role' must be a role code" in p.message for p in refused.value.problems)


def test_sections_group_every_field_once_in_their_order() -> None:
    sections = [
        {"title": {"zh": "备注"}, "fields": ["note"]},
        {"title": {"zh": "人员"}, "fields": ["handler"]},
    ]
    definition = forms.load_form(form(sections=sections))
    groups = [(s.title["zh"] if s else None, [f.name for f in fs]) for s, fs in definition.groups()]
    assert groups == [("备注", ["note"]), ("人员", ["handler"])]


def test_a_field_left_out_of_the_sections_or_named_twice_is_a_definition_problem() -> None:
    sections = [{"title": {"zh": "人员"}, "fields": ["handler", "handler", "nobody"]}]
    with pytest.raises(InvalidDefinitionError) as refused:
        forms.load_form(form(sections=sections))
    messages = sorted(p.message for p in refused.value.problems)
    assert messages == [
        "'handler' is in more than one section",
        "'nobody' is not a field of the form",
        "'note' is in no section",
    ]
