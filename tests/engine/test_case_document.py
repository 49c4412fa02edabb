"""The case document: only what forms entered, unless a diagram marks a variable for display."""

from __future__ import annotations

from engine import runtime
from engine.definitions import registry
from engine.people import identity
from engine.storage.db import Database
from tests.conftest import ActorOf, open_task, work
from tests.diagrams import files, process, sequence, user_task

NOTE_FORM = (
    '{"key": "note", "title": {"zh": "备注", "en": "Note"}, "fields": ['
    '{"name": "note", "type": "string", "required": true, "label": {"zh": "备注", "en": "Note"}},'
    '{"name": "kind", "type": "choice", "label": {"zh": "类型", "en": "Kind"}, "choices": ['
    '{"value": "a", "label": {"zh": "甲类", "en": "Class A"}}]}]}'
)


def deployed(db: Database, **review: str) -> None:
    xml = process(
        "memo",
        '<bpmn:startEvent id="start"/>'
        '<bpmn:scriptTask id="flag" name="打标记"><bpmn:script>checked = True\nscore = 42'
        "</bpmn:script></bpmn:scriptTask>"
        + user_task("review", "审核", formKey="note", nameEn="Review", **review)
        + user_task("confirm", "确认")
        + '<bpmn:endEvent id="end"/>'
        + sequence("start", "flag", "review", "confirm", "end"),
        lanes={"运营管理组": ["start", "flag", "review", "confirm", "end"]},
    )
    with db.unit_of_work() as session:
        registry.deploy(session, identity.SYSTEM, files("memo.bpmn", xml, {"note": NOTE_FORM}))


def test_variables_no_form_entered_stay_hidden(db: Database, actor: ActorOf) -> None:
    deployed(db)
    case = runtime.start_instance(db, actor("ops1"), "memo")
    work(db, actor("ops1"), case.id, "review", {"note": "看过了", "kind": "a"})
    (section,) = runtime.get_instance(db, case.id).document.sections
    shown = {(e.label.zh, e.label.en): e.value for e in section.entries}
    assert list(shown) == [("备注", "Note"), ("类型", "Kind")]
    assert shown[("类型", "Kind")].labels[0].en == "Class A"
    assert (section.task.zh, section.task.en) == ("审核", "Review")
    assert section.by is not None
    assert section.by.role is not None
    assert section.by.role.zh == "运营管理组"


def test_a_diagram_shows_a_variable_it_lists_in_display_fields(
    db: Database, actor: ActorOf
) -> None:
    deployed(db, displayFields="score=评分/Score, checked")
    case = runtime.start_instance(db, actor("ops1"), "memo")
    work(db, actor("ops1"), case.id, "review", {"note": "看过了"})
    (section,) = runtime.get_instance(db, case.id).document.sections
    shown = {e.label.en: e.value.text for e in section.entries}
    assert shown == {"Note": "看过了", "Score": "42", "checked": "true"}
    assert open_task(db, case.id, "confirm")
