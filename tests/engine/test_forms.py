"""engine.forms: form definitions, validation and cleaning, through the public API."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pathlib
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import InvalidDefinitionError, InvalidInputError
from engine.forms import (
    FormDefinition,
    load_form,
    load_forms_dir,
    localize,
    to_json_data,
    validate,
)

TODAY = dt.date(2026, 11, 25)  # today-90d is 2026-08-27
FORMS_DIR = pathlib.Path(__file__).resolve().parents[2] / "forms"
HASH_A = hashlib.sha256(b"invoice-a.pdf").hexdigest()
HASH_B = hashlib.sha256(b"invoice-b.pdf").hexdigest()


def make_form(*fields: dict[str, Any], key: str = "sample") -> FormDefinition:
    return load_form(
        json.dumps({"key": key, "title": {"zh": "样例", "en": "Sample"}, "fields": fields})
    )


def one(field: dict[str, Any]) -> FormDefinition:
    return make_form({"name": "f", **field})


def clean(form: FormDefinition, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return validate(form, data, today=kwargs.pop("today", TODAY), **kwargs)


def errors(form: FormDefinition, data: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidInputError) as caught:
        validate(form, data, today=kwargs.pop("today", TODAY), **kwargs)
    return caught.value.field_errors


def definition_problems(
    document: Any, source: str = "forms/sample.json"
) -> list[tuple[str | None, str]]:
    raw = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(InvalidDefinitionError) as caught:
        load_form(raw, source=source)
    assert all(problem.file == source for problem in caught.value.problems)
    return [(problem.element_id, problem.message) for problem in caught.value.problems]


# --------------------------------------------------------------------------- text types


def test_string_is_stripped_and_length_checked() -> None:
    form = one({"type": "string", "max_length": 5})
    assert clean(form, {"f": "  abc "}) == {"f": "abc"}
    assert errors(form, {"f": "abcdef"}) == {"f": ["最多 5 个字符"]}
    assert errors(form, {"f": "a\nb"}) == {"f": ["不能包含换行"]}
    assert errors(form, {"f": 12}) == {"f": ["请输入文本"]}


def test_string_has_a_default_maximum_length() -> None:
    form = one({"type": "string"})
    assert clean(form, {"f": "x" * 200}) == {"f": "x" * 200}
    assert errors(form, {"f": "x" * 201}) == {"f": ["最多 200 个字符"]}


def test_text_min_length_and_multiple_lines() -> None:
    form = one({"type": "text", "min_length": 10, "required": True})
    assert clean(form, {"f": "第一行说明\n第二行说明"}) == {"f": "第一行说明\n第二行说明"}
    assert errors(form, {"f": "太短了"}) == {"f": ["至少需要 10 个字符"]}
    assert errors(form, {"f": "   "}) == {"f": ["此项为必填项"]}


@pytest.mark.parametrize(
    "blank",
    [
        "\u200b",
        "\u3000",
        " ",
        "\u200b\u200c\u200d\u2060\ufeff",
        "\u00a0\u3000\t",
        "\u2800",
        "\u3164",
    ],
)
@pytest.mark.parametrize("kind", ["string", "text", "mobile", "email", "choice"])
def test_a_required_field_of_only_blank_or_invisible_characters_is_missing(
    blank: str, kind: str
) -> None:
    extra = {"choices": [{"value": "是", "label": {"zh": "是"}}]} if kind == "choice" else {}
    form = one({"type": kind, "required": True, **extra})
    assert errors(form, {"f": blank}) == {"f": ["此项为必填项"]}
    assert errors(form, {"f": blank}, locale="en") == {"f": ["This field is required."]}


def test_invisible_characters_around_a_text_are_trimmed_inside_are_kept() -> None:
    form = one({"type": "string", "required": True})
    assert clean(form, {"f": "\u200b王秀英\u3000"}) == {"f": "王秀英"}
    assert clean(form, {"f": "👨\u200d👩"}) == {"f": "👨\u200d👩"}


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(("given", "expected"), [(42, 42), ("-7", -7), (" 8 ", 8), (3.0, 3)])
def test_an_integer_field_takes_whole_numbers_given_as_text_or_numbers(
    given: Any, expected: int
) -> None:
    assert clean(one({"type": "integer"}), {"f": given}) == {"f": expected}


@pytest.mark.parametrize("given", ["4.2", 4.5, True, "abc", [1]])
def test_an_integer_field_refuses_fractions_booleans_text_and_lists(given: Any) -> None:
    assert errors(one({"type": "integer"}), {"f": given}) == {"f": ["请输入整数"]}


def test_an_integer_field_refuses_values_outside_its_min_and_max() -> None:
    form = one({"type": "integer", "min": 1, "max": 10})
    assert clean(form, {"f": 10}) == {"f": 10}
    assert errors(form, {"f": 0}) == {"f": ["不得小于 1"]}
    assert errors(form, {"f": 11}) == {"f": ["不得大于 10"]}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("12.5", "12.50"),
        (12, "12.00"),
        ("12.500", "12.50"),
        (0.1, "0.10"),
        (Decimal("7.1"), "7.10"),
    ],
)
def test_decimal_is_quantized_to_its_places(given: Any, expected: str) -> None:
    cleaned = clean(one({"type": "decimal", "places": 2}), {"f": given})
    assert cleaned["f"] == Decimal(expected)
    assert str(cleaned["f"]) == expected


def test_decimal_rejects_more_places_than_allowed() -> None:
    form = one({"type": "decimal", "places": 2})
    assert errors(form, {"f": "12.345"}) == {"f": ["最多两位小数"]}
    assert errors(form, {"f": "12.345"}, locale="en") == {"f": ["Use at most 2 decimal places."]}
    assert errors(one({"type": "decimal", "places": 0}), {"f": "3.5"}) == {"f": ["请输入整数"]}


@pytest.mark.parametrize("given", ["abc", "1e5", "1,000.00", float("nan"), True, "Infinity"])
def test_decimal_rejects_non_numbers(given: Any) -> None:
    assert errors(one({"type": "decimal"}), {"f": given}) == {"f": ["请输入数字"]}


def test_a_decimal_field_refuses_values_outside_its_min_and_max() -> None:
    form = one({"type": "decimal", "places": 2, "min": "0.01", "max": "9999999999.99"})
    assert clean(form, {"f": "0.01"}) == {"f": Decimal("0.01")}
    assert clean(form, {"f": "9999999999.99"}) == {"f": Decimal("9999999999.99")}
    assert errors(form, {"f": "0"}) == {"f": ["不得小于 0.01"]}
    assert errors(form, {"f": "10000000000"}) == {"f": ["不得大于 9999999999.99"]}
    assert errors(form, {"f": "-5"}, locale="en") == {"f": ["Must be at least 0.01."]}


# --------------------------------------------------------------------------- dates


def test_a_date_field_takes_only_real_iso_dates() -> None:
    form = one({"type": "date"})
    assert clean(form, {"f": "2026-02-28"}) == {"f": dt.date(2026, 2, 28)}
    assert clean(form, {"f": dt.date(2026, 3, 1)}) == {"f": dt.date(2026, 3, 1)}
    for bad in ("2026-02-30", "2026/02/28", "20260228", "yesterday", 20260228):
        assert errors(form, {"f": bad}) == {"f": ["请输入有效日期（YYYY-MM-DD）"]}


def test_date_relative_bounds_follow_the_given_today() -> None:
    form = one({"type": "date", "min": "today-90d", "max": "today"})
    assert clean(form, {"f": "2026-08-27"}) == {"f": dt.date(2026, 8, 27)}
    assert clean(form, {"f": "2026-11-25"}) == {"f": dt.date(2026, 11, 25)}
    assert errors(form, {"f": "2026-08-26"}) == {"f": ["日期不得早于 2026-08-27"]}
    assert errors(form, {"f": "2026-11-26"}) == {"f": ["日期不得晚于 2026-11-25"]}
    # The clock moves: the same date is now too old.
    later = TODAY + dt.timedelta(days=1)
    assert errors(form, {"f": "2026-08-27"}, today=later) == {"f": ["日期不得早于 2026-08-28"]}


def test_date_absolute_and_future_relative_bounds() -> None:
    form = one({"type": "date", "min": "2026-01-01", "max": "today+30d"})
    assert clean(form, {"f": "2026-12-25"}) == {"f": dt.date(2026, 12, 25)}
    assert errors(form, {"f": "2025-12-31"}, locale="en") == {
        "f": ["Date must not be before 2026-01-01."]
    }
    assert errors(form, {"f": "2026-12-26"}) == {"f": ["日期不得晚于 2026-12-25"]}


def test_datetime_needs_an_offset() -> None:
    form = one({"type": "datetime"})
    cleaned = clean(form, {"f": "2026-08-27T09:30:00+08:00"})
    assert cleaned["f"] == dt.datetime(2026, 8, 27, 1, 30, tzinfo=dt.UTC)
    assert cleaned["f"].utcoffset() == dt.timedelta(hours=8)
    assert clean(form, {"f": "2026-08-27T01:30Z"})["f"] == dt.datetime(
        2026, 8, 27, 1, 30, tzinfo=dt.UTC
    )
    for bad in ("2026-08-27T09:30:00", "2026-08-27", "next tuesday"):
        assert errors(form, {"f": bad}) == {
            "f": ["请输入带时区的日期时间（如 2026-08-27T09:30:00+08:00）"]
        }


# --------------------------------------------------------------------------- booleans and choices


def test_a_boolean_field_takes_true_or_false_and_refuses_yes_or_one() -> None:
    form = one({"type": "boolean", "required": True})
    assert clean(form, {"f": False}) == {"f": False}
    assert clean(form, {"f": "true"}) == {"f": True}
    assert errors(form, {"f": "yes"}) == {"f": ["请选择是或否"]}
    assert errors(form, {"f": 1}) == {"f": ["请选择是或否"]}
    assert errors(form, {}) == {"f": ["此项为必填项"]}


CHOICES = [
    {"value": "同意", "label": {"zh": "同意", "en": "Approve"}},
    {"value": "驳回", "label": {"zh": "驳回", "en": "Reject"}},
]


def test_a_choice_field_takes_a_listed_value_not_its_label() -> None:
    form = one({"type": "choice", "choices": CHOICES})
    assert clean(form, {"f": "驳回"}) == {"f": "驳回"}
    assert errors(form, {"f": "Reject"}) == {"f": ["请从选项中选择"]}
    assert errors(form, {"f": 1}, locale="en") == {"f": ["Select one of the choices."]}


def test_a_multi_choice_field_drops_repeats_and_refuses_unlisted_values() -> None:
    form = one({"type": "multi_choice", "choices": ["差旅", "办公", "培训"]})
    assert clean(form, {"f": ["培训", "差旅", "培训"]}) == {"f": ["培训", "差旅"]}
    assert errors(form, {"f": ["差旅", "娱乐"]}) == {"f": ["请从选项中选择"]}
    assert errors(form, {"f": "差旅"}) == {"f": ["请从选项中选择"]}
    assert clean(form, {"f": []}) == {"f": None}


# --------------------------------------------------------------------------- identity and contact


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("11010519491231002X", "11010519491231002X"),
        ("110101199003074477", "110101199003074477"),
        (" 11010519491231002x ", "11010519491231002X"),
    ],
)
def test_an_id_number_with_a_right_check_digit_is_taken_with_an_upper_case_x(
    given: str, expected: str
) -> None:
    assert clean(one({"type": "id_number"}), {"f": given}) == {"f": expected}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("110101199003074478", "身份证号码校验位不正确"),
        ("110105194912310021", "身份证号码校验位不正确"),
        ("110105199002301231", "身份证号码中的出生日期无效"),  # 30 February, check digit right
        ("110105209901011234", "身份证号码中的出生日期无效"),  # born after today
        ("11010519900307447", "身份证号码应为 18 位（17 位数字加 1 位数字或 X）"),
        ("11010519900307447A", "身份证号码应为 18 位（17 位数字加 1 位数字或 X）"),
    ],
)
def test_an_id_number_with_a_wrong_check_digit_birth_date_or_length_is_refused(
    given: str, message: str
) -> None:
    assert errors(one({"type": "id_number"}), {"f": given}) == {"f": [message]}


def test_an_id_number_error_reads_in_english_for_an_english_reader() -> None:
    got = errors(one({"type": "id_number"}), {"f": "110101199003074478"}, locale="en")
    assert got == {"f": ["The ID number's check digit is wrong."]}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("19912345678", "19912345678"),
    ],
)
def test_a_mobile_number_is_taken_without_its_country_code_spaces_or_dashes(
    given: str, expected: str
) -> None:
    assert clean(one({"type": "mobile"}), {"f": given}) == {"f": expected}


@pytest.mark.parametrize(
    "given", ["12800138000", "1380013800", "138001380001", "010-12345678", 13800138000]
)
def test_a_mobile_number_of_the_wrong_length_or_prefix_is_refused(given: Any) -> None:
    assert errors(one({"type": "mobile"}), {"f": given}) == {"f": ["请输入有效的手机号码"]}


def test_an_email_address_is_trimmed_and_a_malformed_one_refused() -> None:
    form = one({"type": "email"})
    assert clean(form, {"f": " zhang.san@example.com.cn "}) == {"f": "zhang.san@example.com.cn"}
    for bad in ("zhang.san", "a@b", "a b@example.com"):
        assert errors(form, {"f": bad}) == {"f": ["请输入有效的电子邮箱地址"]}


# --------------------------------------------------------------------------- attachments


def test_attachment_is_a_sha256_hash() -> None:
    form = one({"type": "attachment"})
    assert clean(form, {"f": HASH_A}) == {"f": HASH_A}
    assert clean(form, {"f": HASH_A.upper()}) == {"f": HASH_A}
    assert errors(form, {"f": HASH_A[:-1]}) == {"f": ["附件标识无效"]}
    assert errors(form, {"f": "invoice.pdf"}) == {"f": ["附件标识无效"]}


def test_attachments_list_and_max_files() -> None:
    form = one({"type": "attachments", "required": True, "max_files": 2})
    assert clean(form, {"f": [HASH_A, HASH_B, HASH_A]}) == {"f": [HASH_A, HASH_B]}
    third = hashlib.sha256(b"c").hexdigest()
    assert errors(form, {"f": [HASH_A, HASH_B, third]}) == {"f": ["最多 2 个附件"]}
    assert errors(form, {"f": [HASH_A, "nope"]}) == {"f": ["附件标识无效"]}
    assert errors(form, {"f": HASH_A}) == {"f": ["应为附件列表"]}
    assert errors(form, {"f": []}) == {"f": ["此项为必填项"]}


# --------------------------------------------------------------------------- tables

INVOICES = {
    "name": "invoices",
    "type": "table",
    "required": True,
    "min_rows": 1,
    "max_rows": 3,
    "columns": [
        {"name": "invoice_no", "type": "string", "required": True, "unique": True},
        {"name": "date", "type": "date", "required": True, "max": "today"},
        {"name": "amount", "type": "decimal", "places": 2, "min": "0.01", "required": True},
    ],
}


def row(number: str, amount: str = "10.00", date: str = "2026-11-01") -> dict[str, str]:
    return {"invoice_no": number, "date": date, "amount": amount}


def test_table_rows_are_cleaned() -> None:
    form = make_form(INVOICES)
    cleaned = clean(form, {"invoices": [row("A1", "10.5"), row("A2", "3")]})
    assert cleaned == {
        "invoices": [
            {"invoice_no": "A1", "date": dt.date(2026, 11, 1), "amount": Decimal("10.50")},
            {"invoice_no": "A2", "date": dt.date(2026, 11, 1), "amount": Decimal("3.00")},
        ]
    }


def test_table_per_row_errors_use_zero_based_indexes() -> None:
    form = make_form(INVOICES)
    data = {"invoices": [row("A1"), {"invoice_no": "A2", "date": "2026-12-01", "amount": "0"}]}
    assert errors(form, data) == {
        "invoices[1].date": ["日期不得晚于 2026-11-25"],
        "invoices[1].amount": ["不得小于 0.01"],
    }
    assert errors(form, {"invoices": [{"invoice_no": "A1", "amount": "1"}]}) == {
        "invoices[0].date": ["此项为必填项"]
    }


def test_a_repeat_in_a_unique_column_names_the_row_it_repeats() -> None:
    form = make_form(INVOICES)
    data = {"invoices": [row("A1"), row("B2"), row("A1")]}
    assert errors(form, data) == {"invoices[2].invoice_no": ["与第 1 行重复"]}
    assert errors(form, data, locale="en") == {"invoices[2].invoice_no": ["Same as row 1."]}


def test_a_table_refuses_too_many_too_few_or_no_rows() -> None:
    form = make_form(INVOICES)
    assert errors(form, {"invoices": [row("A"), row("B"), row("C"), row("D")]}) == {
        "invoices": ["最多 3 行"]
    }
    assert errors(form, {"invoices": []}) == {"invoices": ["此项为必填项"]}
    assert errors(form, {"invoices": "A1"}) == {"invoices": ["应为表格行列表"]}
    assert errors(make_form({**INVOICES, "min_rows": 2}), {"invoices": [row("A")]}) == {
        "invoices": ["至少需要 2 行"]
    }


def test_table_bad_rows_and_unknown_columns() -> None:
    form = make_form(INVOICES)
    data = {"invoices": ["A1", {**row("B2"), "vendor": "某公司"}]}
    assert errors(form, data) == {
        "invoices[0]": ["每行应为对象"],
        "invoices[1].vendor": ["表单中没有此项"],
    }


# --------------------------------------------------------------------------- conditions and empties

DECISION = {"name": "decision", "type": "choice", "required": True, "choices": CHOICES}
COMMENT = {
    "name": "comment",
    "type": "text",
    "required_when": {"field": "decision", "equals": "驳回"},
}


def test_a_field_required_when_another_equals_a_value_is_required_only_then() -> None:
    form = make_form(DECISION, COMMENT)
    assert clean(form, {"decision": "同意"}) == {"decision": "同意", "comment": None}
    assert errors(form, {"decision": "驳回"}) == {"comment": ["此项为必填项"]}
    assert errors(form, {"decision": "驳回", "comment": "  "}) == {"comment": ["此项为必填项"]}
    assert clean(form, {"decision": "驳回", "comment": "票据不全"}) == {
        "decision": "驳回",
        "comment": "票据不全",
    }


def test_a_field_required_when_another_is_one_of_some_values_is_required_only_then() -> None:
    amount = {"name": "amount", "type": "integer"}
    reason = {
        "name": "reason",
        "type": "string",
        "required_when": {"field": "amount", "in": [0, 100]},
    }
    form = make_form(amount, reason)
    assert errors(form, {"amount": "100"}) == {"reason": ["此项为必填项"]}
    assert clean(form, {"amount": 50}) == {"amount": 50, "reason": None}


def test_visible_when_drops_hidden_fields() -> None:
    pays = {"name": "needs_payment", "type": "boolean", "required": True}
    mobile = {
        "name": "mobile",
        "type": "mobile",
        "required": True,
        "visible_when": {"field": "needs_payment", "equals": True},
    }
    form = make_form(pays, mobile)
    assert clean(form, {"needs_payment": False, "mobile": "not a number"}) == {
        "needs_payment": False
    }
    assert clean(form, {"needs_payment": True, "mobile": "13800138000"}) == {
        "needs_payment": True,
        "mobile": "13800138000",
    }
    assert errors(form, {"needs_payment": True}) == {"mobile": ["此项为必填项"]}
    assert errors(form, {"needs_payment": True, "mobile": "123"}) == {
        "mobile": ["请输入有效的手机号码"]
    }


def test_conditions_inside_table_rows() -> None:
    table = {
        "name": "lines",
        "type": "table",
        "columns": [
            {"name": "kind", "type": "choice", "choices": ["差旅", "其他"], "required": True},
            {
                "name": "note",
                "type": "string",
                "required_when": {"field": "kind", "equals": "其他"},
            },
        ],
    }
    form = make_form(table)
    assert errors(form, {"lines": [{"kind": "差旅"}, {"kind": "其他"}]}) == {
        "lines[1].note": ["此项为必填项"]
    }


def test_empty_optional_fields_are_none() -> None:
    form = make_form(
        {"name": "a", "type": "string"},
        {"name": "b", "type": "decimal"},
        {"name": "c", "type": "date"},
        {"name": "d", "type": "attachments"},
    )
    assert clean(form, {"a": "", "b": None, "d": []}) == {
        "a": None,
        "b": None,
        "c": None,
        "d": None,
    }


def test_default_fills_an_empty_field() -> None:
    action = {"name": "action", "type": "choice", "choices": ["提交", "撤回"], "default": "提交"}
    form = make_form(action)
    assert clean(form, {}) == {"action": "提交"}
    assert clean(form, {"action": ""}) == {"action": "提交"}
    assert clean(form, {"action": "撤回"}) == {"action": "撤回"}


def test_unknown_keys_are_rejected() -> None:
    form = make_form(DECISION)
    assert errors(form, {"decision": "同意", "approved": True, "x": 1}) == {
        "approved": ["表单中没有此项"],
        "x": ["表单中没有此项"],
    }


def test_data_must_be_a_mapping() -> None:
    assert errors(make_form(DECISION), ["decision"]) == {"_form": ["表单数据应为对象"]}


def test_error_message_and_english_messages() -> None:
    form = make_form(DECISION, COMMENT, {"name": "amount", "type": "decimal", "places": 2})
    with pytest.raises(InvalidInputError) as zh:
        validate(form, {"decision": "驳回", "amount": "1.005"}, today=TODAY)
    assert str(zh.value) == "表单数据无效"
    with pytest.raises(InvalidInputError) as en:
        validate(form, {"decision": "驳回", "amount": "1.005"}, today=TODAY, locale="en")
    assert str(en.value) == "Form data is not valid."
    assert en.value.field_errors == {
        "amount": ["Use at most 2 decimal places."],
        "comment": ["This field is required."],
    }


def test_a_text_is_shown_in_the_readers_language_falling_back_to_chinese() -> None:
    title = {"zh": "费用报销申请", "en": "Expense claim"}
    assert localize(title, "en-GB") == "Expense claim"
    assert localize(title) == "费用报销申请"
    assert localize({"zh": "仅中文"}, "en") == "仅中文"


# --------------------------------------------------------------------------- to_json_data


def test_cleaned_data_becomes_json_that_validates_back_to_the_same_values() -> None:
    form = make_form(
        {"name": "amount", "type": "decimal", "places": 2},
        {"name": "on", "type": "date"},
        {"name": "at", "type": "datetime"},
        INVOICES,
    )
    cleaned = clean(
        form,
        {
            "amount": "5",
            "on": "2026-08-27",
            "at": "2026-08-27T09:30:00+08:00",
            "invoices": [row("A1", "1.5")],
        },
    )
    data = to_json_data(cleaned)
    assert data == {
        "amount": "5.00",
        "on": "2026-08-27",
        "at": "2026-08-27T09:30:00+08:00",
        "invoices": [{"invoice_no": "A1", "date": "2026-11-01", "amount": "1.50"}],
    }
    assert json.loads(json.dumps(data)) == data
    assert clean(form, data) == cleaned  # the JSON form validates back to the same values


# --------------------------------------------------------------------------- definitions


def test_load_form_keeps_metadata() -> None:
    raw = json.dumps({"key": "sample", "title": {"zh": "样例"}, "fields": [DECISION, COMMENT]})
    form = load_form(raw)
    assert form.key == "sample"
    assert form.title == {"zh": "样例"}
    assert [f.name for f in form.fields] == ["decision", "comment"]
    assert form.field("decision").choices[1].label == {"zh": "驳回", "en": "Reject"}
    assert form.field("comment").label == {"zh": "comment"}
    assert form.digest == hashlib.sha256(raw.encode()).hexdigest()


def base(*fields: Any) -> dict[str, Any]:
    return {"key": "sample", "title": {"zh": "样例"}, "fields": list(fields)}


@pytest.mark.parametrize(
    ("document", "element_id", "fragment"),
    [
        ('{"key": "sample", ', None, "not valid JSON"),
        ('{"key": "a", "key": "b"}', None, "duplicate key"),
        (base({"name": "x", "type": "money"}), "x", "unknown field type"),
        (base({"name": "x", "type": "choice"}), "x", "'choices' must be a non-empty list"),
        (base({"name": "x", "type": "choice", "choices": ["a", "a"]}), "x", "unique"),
        (
            base(DECISION, {**COMMENT, "required_when": {"field": "decison", "equals": "驳回"}}),
            "comment",
            "'decison'",
        ),
        (
            base({**COMMENT, "required_when": {"field": "decision", "equals": "驳回"}}, DECISION),
            "comment",
            "declared above",
        ),
        (
            base(DECISION, {**COMMENT, "required_when": {"field": "decision", "equals": "拒绝"}}),
            "comment",
            "'拒绝'",
        ),
        (
            base(DECISION, {**COMMENT, "visible_when": {"field": "decision"}}),
            "comment",
            "'visible_when' must be",
        ),
        (base(DECISION, DECISION), "decision", "duplicate field name"),
        (base({"name": "x", "type": "decimal", "min": "abc"}), "x", "'min'"),
        (base({"name": "x", "type": "decimal", "places": 2, "min": "0.001"}), "x", "'min'"),
        (base({"name": "x", "type": "decimal", "min": "10", "max": "1"}), "x", "greater than"),
        (base({"name": "x", "type": "date", "min": "yesterday"}), "x", "'min'"),
        (base({"name": "x", "type": "date", "min": "today", "max": "today-1d"}), "x", "later than"),
        (base({"name": "x", "type": "integer", "min": 1.5}), "x", "'min'"),
        (base({"name": "x", "type": "string", "requird": True}), "x", "unknown property 'requird'"),
        (base({"name": "x", "type": "string", "unique": True}), "x", "unknown property 'unique'"),
        (base({"name": "x", "type": "string", "label": "X"}), "x", "'label'"),
        (base({"name": "Bad-Name", "type": "string"}), "fields[0]", "'name'"),
        (base({"name": "x", "type": "attachments", "default": HASH_A}), "x", "'default'"),
        (base({"name": "x", "type": "integer", "default": "many"}), "x", "default"),
        (
            base({**INVOICES, "columns": [{"name": "n", "type": "table", "columns": []}]}),
            "invoices.n",
            "cannot be a table",
        ),
        (
            base({**INVOICES, "columns": [{"name": "n", "type": "strng"}]}),
            "invoices.n",
            "unknown field type",
        ),
        (base(), None, "'fields' must be a non-empty list"),
        ({"key": "Sample", "title": {"zh": "样例"}, "fields": [DECISION]}, None, "'key'"),
        ({"key": "sample", "fields": [DECISION]}, None, "'title' is required"),
    ],
)
def test_definition_problems_name_file_and_field(
    document: Any, element_id: str | None, fragment: str
) -> None:
    problems = definition_problems(document)
    assert any(where == element_id and fragment in message for where, message in problems), problems


def test_definition_reports_every_problem() -> None:
    problems = definition_problems(
        base({"name": "a", "type": "money"}, {"name": "b", "type": "choice"})
    )
    assert [where for where, _ in problems] == ["a", "b"]


# --------------------------------------------------------------------------- directories


def write(path: pathlib.Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def test_a_forms_folder_loads_its_json_files_and_ignores_other_files(
    tmp_path: pathlib.Path,
) -> None:
    write(tmp_path / "sample.json", base(DECISION))
    (tmp_path / "notes.txt").write_text("not a form", encoding="utf-8")
    forms = load_forms_dir(tmp_path)
    assert list(forms) == ["sample"]
    assert forms["sample"].field("decision").required


def test_load_forms_dir_key_must_match_file_stem(tmp_path: pathlib.Path) -> None:
    write(tmp_path / "expense.json", base(DECISION))
    write(tmp_path / "broken.json", {**base({"name": "x", "type": "money"}), "key": "broken"})
    with pytest.raises(InvalidDefinitionError) as caught:
        load_forms_dir(tmp_path)
    found = {(pathlib.Path(p.file).name, p.element_id) for p in caught.value.problems}
    assert found == {("broken.json", "x"), ("expense.json", None)}
    mismatch = next(p for p in caught.value.problems if p.file.endswith("expense.json"))
    assert "'sample'" in mismatch.message


def test_every_form_of_the_project_loads() -> None:
    forms = load_forms_dir(FORMS_DIR)
    assert set(forms) >= {
        "expense_claim",
        "expense_approval_decision",
        "expense_finance_review",
        "expense_payment",
    }
    assert len(forms) == len(list(FORMS_DIR.glob("*.json")))


# --------------------------------------------------------------------------- the expense forms


@pytest.fixture(scope="module")
def project_forms() -> dict[str, FormDefinition]:
    return load_forms_dir(FORMS_DIR)


def claim_data() -> dict[str, Any]:
    return {
        "cost_center": "OPS-01",
        "category": "差旅",
        "amount": "1280.00",
        "incurred_date": "2026-11-20",
        "purpose": "赴上海分公司核对季度保单台账",
        "invoices": [row("04400001", "1000.00"), row("04400002", "280")],
        "attachments": [HASH_A, HASH_B],
        "payee_account": "招商银行 6225 8800 1234 5678",
    }


def test_the_expense_claim_form_takes_a_real_claim_and_refuses_a_bad_one(
    project_forms: dict[str, FormDefinition],
) -> None:
    form = project_forms["expense_claim"]
    cleaned = clean(form, claim_data())
    assert cleaned["action"] == "提交"
    assert cleaned["amount"] == Decimal("1280.00")
    assert cleaned["invoices"][1]["amount"] == Decimal("280.00")
    bad = {
        **claim_data(),
        "category": "娱乐",
        "amount": "0",
        "incurred_date": "2026-08-26",
        "purpose": "出差",
    }
    assert errors(form, bad) == {
        "category": ["请从选项中选择"],
        "amount": ["不得小于 0.01"],
        "incurred_date": ["日期不得早于 2026-08-27"],
        "purpose": ["至少需要 10 个字符"],
    }
    assert clean(form, {**claim_data(), "action": "撤回"})["action"] == "撤回"


def test_the_expense_decision_forms_need_a_comment_to_refuse_and_no_future_payment_date(
    project_forms: dict[str, FormDefinition],
) -> None:
    approval = project_forms["expense_approval_decision"]
    assert errors(approval, {"decision": "驳回"}) == {"comment": ["此项为必填项"]}
    assert clean(approval, {"decision": "同意"}) == {"decision": "同意", "comment": None}
    review = project_forms["expense_finance_review"]
    data = {"voucher_no": "记-2026-11-0031", "account_code": "6602.01", "decision": "退回"}
    assert errors(review, data) == {"comment": ["此项为必填项"]}
    assert clean(review, {**data, "decision": "通过"})["decision"] == "通过"
    payment = project_forms["expense_payment"]
    assert errors(payment, {"payment_reference": "P1", "paid_on": "2026-11-26"}) == {
        "paid_on": ["日期不得晚于 2026-11-25"]
    }
    assert clean(payment, {"payment_reference": "P1", "paid_on": "2026-11-25"})["paid_on"] == TODAY
