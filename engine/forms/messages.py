"""The bilingual error messages of form validation, and ``localize`` for ``{"zh", "en"}`` texts.

A failed check raises :class:`_FieldError` with a message code and its parameters; the code is
rendered in Chinese or English only at the end, so one compiled schema serves both languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# code -> (Chinese, English); the parameters are filled in with str.format.
_MESSAGES: Final[Mapping[str, tuple[str, str]]] = {
    "required": ("此项为必填项", "This field is required."),
    "unknown": ("表单中没有此项", "Unknown field."),
    "not_object": ("表单数据应为对象", "Form data must be an object."),
    "not_text": ("请输入文本", "Enter text."),
    "single_line": ("不能包含换行", "Must be a single line."),
    "min_length": ("至少需要 {n} 个字符", "Enter at least {n} characters."),
    "max_length": ("最多 {n} 个字符", "Enter at most {n} characters."),
    "not_integer": ("请输入整数", "Enter a whole number."),
    "not_number": ("请输入数字", "Enter a number."),
    "places": ("最多{places_zh}位小数", "Use at most {places} decimal places."),
    "min_value": ("不得小于 {limit}", "Must be at least {limit}."),
    "max_value": ("不得大于 {limit}", "Must be at most {limit}."),
    "not_date": ("请输入有效日期（YYYY-MM-DD）", "Enter a valid date (YYYY-MM-DD)."),
    "date_min": ("日期不得早于 {limit}", "Date must not be before {limit}."),
    "date_max": ("日期不得晚于 {limit}", "Date must not be after {limit}."),
    "not_datetime": (
        "请输入带时区的日期时间（如 2026-08-27T09:30:00+08:00）",
        "Enter a date and time with a UTC offset (e.g. 2026-08-27T09:30:00+08:00).",
    ),
    "not_boolean": ("请选择是或否", "Must be true or false."),
    "not_choice": ("请从选项中选择", "Select one of the choices."),
    "id_format": (
        "身份证号码应为 18 位（17 位数字加 1 位数字或 X）",
        "A resident ID number has 18 characters: 17 digits, then a digit or X.",
    ),
    "id_birth": ("身份证号码中的出生日期无效", "The birth date in the ID number is not valid."),
    "id_check": ("身份证号码校验位不正确", "The ID number's check digit is wrong."),
    "mobile": ("请输入有效的手机号码", "Enter a valid mainland China mobile number."),
    "email": ("请输入有效的电子邮箱地址", "Enter a valid email address."),
    "attachment": ("附件标识无效", "Not a valid attachment reference."),
    "not_files": ("应为附件列表", "Must be a list of attachments."),
    "max_files": ("最多 {n} 个附件", "Attach at most {n} files."),
    "not_rows": ("应为表格行列表", "Must be a list of rows."),
    "not_row": ("每行应为对象", "Each row must be an object."),
    "min_rows": ("至少需要 {n} 行", "Enter at least {n} rows."),
    "max_rows": ("最多 {n} 行", "Enter at most {n} rows."),
    "duplicate": ("与第 {row} 行重复", "Same as row {row}."),
    "not_username": ("请选择一位同事", "Choose a colleague."),
    "not_holder": ("所选人员不是在职的 {role} 角色成员", "The person chosen is no active {role}."),
}
_FORM_INVALID: Final[Mapping[str, str]] = {"zh": "表单数据无效", "en": "Form data is not valid."}
_ZH_NUMERALS: Final = ("零", "一", "两", "三", "四", "五", "六", "七", "八", "九", "十")


class _FieldError(Exception):
    """A value failed a check; rendered into a message in the caller's language later."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def render(self, language: str) -> str:
        zh, en = _MESSAGES[self.code]
        return (en if language == "en" else zh).format(**self.params)


def _language(locale: str) -> str:
    """``"en"`` for any English locale ("en", "en-GB"...), otherwise ``"zh"``."""
    return "en" if locale[:2].lower() == "en" else "zh"


def localize(text: Mapping[str, str], locale: str = "zh") -> str:
    """The ``locale`` text of a ``{"zh": ..., "en": ...}`` object, falling back to Chinese."""
    return text.get(_language(locale)) or text.get("zh") or next(iter(text.values()), "")
