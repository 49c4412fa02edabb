"""Working days, deadlines and paused clocks (engine.timekeeping.workdays), against the 2026 PRC calendar.

2026 arrangement as encoded in chinesecalendar 1.11 (State Council notice for 2026):
元旦 Jan 1–3 off, Sun Jan 4 worked; 春节 Feb 15–23 off, Sat Feb 14 and Sat Feb 28 worked;
劳动节 May 1–5 off, Sat May 9 worked; 中秋 Sep 25–27 off; 国庆 Oct 1–7 off,
Sun Sep 20 and Sat Oct 10 worked.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from engine.errors import InvalidInputError
from engine.timekeeping.workdays import (
    CHINA_TZ,
    add_calendar_days,
    add_workdays,
    calendar_covers,
    deadline_from,
    is_workday,
    parse_deadline_spec,
    workdays_between,
)


def cst(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=CHINA_TZ)


def eod(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 23, 59, 59, 999999, tzinfo=CHINA_TZ)


# --- the calendar -----------------------------------------------------------------------


def test_china_tz_is_utc_plus_8() -> None:
    assert CHINA_TZ.utcoffset(None) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("year", "covered"),
    [(2004, True), (2025, True), (2026, True), (2003, False), (2027, False), (0, False)],
)
def test_the_official_calendar_covers_2004_to_2026_only(year: int, covered: bool) -> None:
    assert calendar_covers(year) is covered


@pytest.mark.parametrize("day", [1, 2, 3, 4, 5, 6, 7])
def test_national_day_golden_week_2026_is_off(day: int) -> None:
    assert not is_workday(date(2026, 10, day))


def test_national_day_2026_weekday_holidays_and_make_up_days() -> None:
    assert date(2026, 10, 5).weekday() == 0  # Monday, yet a holiday
    assert not is_workday(date(2026, 10, 5))
    assert is_workday(date(2026, 10, 8))
    # 调休: weekend days that ARE working days
    assert date(2026, 9, 20).weekday() == 6
    assert is_workday(date(2026, 9, 20))
    assert date(2026, 10, 10).weekday() == 5
    assert is_workday(date(2026, 10, 10))
    # an ordinary weekend stays off
    assert not is_workday(date(2026, 10, 11))


def test_mid_autumn_2026_friday_is_off() -> None:
    assert not is_workday(date(2026, 9, 25))


def test_spring_festival_2026_is_off_and_its_saturday_make_up_days_are_worked() -> None:
    for offset in range(9):  # Feb 15 .. Feb 23
        assert not is_workday(date(2026, 2, 15) + timedelta(days=offset))
    assert is_workday(date(2026, 2, 13))
    assert is_workday(date(2026, 2, 14))  # Saturday make-up day
    assert is_workday(date(2026, 2, 24))
    assert is_workday(date(2026, 2, 28))  # Saturday make-up day


def test_new_year_2026_sunday_make_up_day() -> None:
    assert not is_workday(date(2026, 1, 2))
    assert is_workday(date(2026, 1, 4))


def test_an_ordinary_week_is_worked_monday_to_friday() -> None:
    assert is_workday(date(2026, 3, 13))  # Friday
    assert not is_workday(date(2026, 3, 14))
    assert not is_workday(date(2026, 3, 15))


def test_is_workday_judges_an_aware_datetime_by_its_china_date() -> None:
    # Friday 17:00 UTC is already Saturday 01:00 in China
    assert not is_workday(datetime(2026, 3, 13, 17, 0, tzinfo=UTC))
    assert is_workday(datetime(2026, 3, 13, 15, 0, tzinfo=UTC))


# --- add_workdays -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (cst(2026, 9, 30, 15), 1, eod(2026, 10, 8)),  # over the golden week
        (cst(2026, 9, 30, 15), 3, eod(2026, 10, 10)),  # ... landing on the Saturday make-up day
        (cst(2026, 9, 30, 15), 4, eod(2026, 10, 12)),
        (cst(2026, 9, 29), 2, eod(2026, 10, 8)),
        (cst(2026, 2, 12), 2, eod(2026, 2, 14)),  # Sat Feb 14 counts, then Spring Festival
        (cst(2026, 2, 12), 3, eod(2026, 2, 24)),
        (cst(2026, 3, 13), 1, eod(2026, 3, 16)),  # Friday -> Monday over a weekend
        (cst(2026, 3, 13), 5, eod(2026, 3, 20)),
        (cst(2026, 3, 14), 1, eod(2026, 3, 16)),  # from a Saturday
    ],
)
def test_add_workdays_skips_weekends_and_holidays_and_counts_make_up_days(
    start: datetime, n: int, due: datetime
) -> None:
    assert add_workdays(start, n) == due


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (cst(2026, 3, 13, 9), eod(2026, 3, 13)),  # working day: end of the same day
        (cst(2026, 3, 14, 9), eod(2026, 3, 16)),  # Saturday: end of Monday
        (cst(2026, 10, 1, 9), eod(2026, 10, 8)),  # holiday: end of the next working day
        (cst(2026, 10, 10, 9), eod(2026, 10, 10)),  # make-up Saturday is a working day
    ],
)
def test_zero_workdays_ends_the_start_day_or_else_the_next_working_day(
    start: datetime, due: datetime
) -> None:
    assert add_workdays(start, 0) == due


def test_add_workdays_returns_end_of_day_china_time_tz_aware() -> None:
    due = add_workdays(cst(2026, 3, 13, 9), 1)
    assert due.tzinfo is not None
    assert due.utcoffset() == timedelta(hours=8)
    assert (due.hour, due.minute, due.second, due.microsecond) == (23, 59, 59, 999999)
    assert due.astimezone(UTC) == datetime(2026, 3, 16, 15, 59, 59, 999999, tzinfo=UTC)


def test_add_workdays_uses_the_china_date_of_a_utc_start() -> None:
    # Fri 2026-03-13 17:00 UTC = Sat 01:00 China time
    start = datetime(2026, 3, 13, 17, 0, tzinfo=UTC)
    assert add_workdays(start, 0) == eod(2026, 3, 16)
    # Thu 2026-03-12 17:00 UTC = Fri 01:00 China time: one working day after Friday is Monday
    assert add_workdays(datetime(2026, 3, 12, 17, 0, tzinfo=UTC), 1) == eod(2026, 3, 16)
    assert add_workdays(datetime(2026, 3, 12, 15, 0, tzinfo=UTC), 1) == eod(2026, 3, 13)


def test_a_naive_start_time_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        add_workdays(datetime(2026, 3, 13, 9), 1)  # noqa: DTZ001 - naive on purpose
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        add_calendar_days(datetime(2026, 3, 13, 9), 1)  # noqa: DTZ001 - naive on purpose


@pytest.mark.parametrize("n", [-1, 100_000])
def test_add_workdays_rejects_out_of_range_counts(n: int) -> None:
    with pytest.raises(InvalidInputError):
        add_workdays(cst(2026, 3, 13), n)


# --- calendar days ----------------------------------------------------------------------


def test_add_calendar_days_ends_at_the_end_of_the_china_day() -> None:
    assert add_calendar_days(cst(2026, 4, 1, 9), 15) == eod(2026, 4, 16)
    assert add_calendar_days(cst(2026, 4, 1, 9), 0) == eod(2026, 4, 1)
    assert add_calendar_days(cst(2026, 4, 30, 9), 1) == eod(2026, 5, 1)


def test_add_calendar_days_counts_holidays_and_weekends() -> None:
    assert add_calendar_days(cst(2026, 9, 30), 7) == eod(2026, 10, 7)
    assert add_calendar_days(cst(2026, 2, 14), 1) == eod(2026, 2, 15)


def test_add_calendar_days_uses_the_china_date() -> None:
    # 2026-03-31 20:00 UTC = 2026-04-01 04:00 China time
    assert add_calendar_days(datetime(2026, 3, 31, 20, tzinfo=UTC), 15) == eod(2026, 4, 16)


# --- workdays_between -------------------------------------------------------------------


def test_workdays_between_counts_working_days_either_way() -> None:
    assert workdays_between(date(2026, 9, 30), date(2026, 10, 8)) == 1
    assert workdays_between(date(2026, 9, 30), date(2026, 10, 10)) == 3
    assert workdays_between(date(2026, 3, 13), date(2026, 3, 13)) == 0
    assert workdays_between(date(2026, 3, 13), date(2026, 3, 20)) == 5
    assert workdays_between(date(2026, 3, 20), date(2026, 3, 13)) == -5


@pytest.mark.parametrize("n", [1, 2, 5, 10, 20])
def test_workdays_between_inverts_add_workdays(n: int) -> None:
    start = cst(2026, 9, 28)
    assert workdays_between(start.date(), add_workdays(start, n).date()) == n


# --- deadline specs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("5 workdays", (5, "workdays")),
        ("5workdays", (5, "workdays")),
        ("1 workday", (1, "workdays")),
        ("5 Working Days", (5, "workdays")),
        ("5 工作日", (5, "workdays")),
        ("5工作日", (5, "workdays")),
        ("5个工作日", (5, "workdays")),
        ("15 days", (15, "days")),
        ("15 日", (15, "days")),
        ("15日", (15, "days")),
        ("15天", (15, "days")),
        ("15 自然日", (15, "days")),
        ("48 hours", (48, "hours")),
        ("48 小时", (48, "hours")),
        ("48小时", (48, "hours")),
        ("  0 days  ", (0, "days")),
        ("１５　日", (15, "days")),  # full-width digits and space
    ],
)
def test_a_deadline_spec_is_read_with_english_or_chinese_units(
    spec: str, expected: tuple[int, str]
) -> None:
    assert parse_deadline_spec(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "days",
        "5",
        "five days",
        "五个工作日",
        "-3 days",
        "3.5 days",
        "5 weeks",
        "5 days later",
        "99999 days",
    ],
)
def test_parse_deadline_spec_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(InvalidInputError, match="deadline"):
        parse_deadline_spec(spec)


def test_deadline_from_counts_workdays_days_or_hours_from_the_start() -> None:
    start = cst(2026, 9, 30, 20)
    assert deadline_from(start, "1 工作日") == eod(2026, 10, 8)
    assert deadline_from(start, "15 日") == eod(2026, 10, 15)
    assert deadline_from(start, "48 小时") == cst(2026, 10, 2, 20)  # no end-of-day rounding


def test_deadline_from_hours_is_elapsed_time_in_china_tz() -> None:
    start = datetime(2026, 3, 13, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    due = deadline_from(start, "48 hours")
    assert due == start + timedelta(hours=48)
    assert due.utcoffset() == timedelta(hours=8)


def test_deadline_from_refuses_an_unreadable_spec() -> None:
    with pytest.raises(InvalidInputError):
        deadline_from(cst(2026, 3, 13), "soon")


# --- years outside the official data ----------------------------------------------------


def test_fallback_year_is_monday_to_friday_without_crashing() -> None:
    assert not calendar_covers(2027)
    assert is_workday(date(2027, 1, 1))  # a Friday: a holiday in reality, unknown to the data
    assert not is_workday(date(2027, 1, 2))
    assert not is_workday(date(2027, 1, 3))
    assert is_workday(date(2027, 1, 4))
    assert add_workdays(cst(2027, 3, 5), 1) == eod(2027, 3, 8)  # Friday -> Monday
    assert workdays_between(date(2027, 3, 1), date(2027, 3, 8)) == 5


def test_fallback_across_the_year_end() -> None:
    # Thu 2026-12-31 (covered) -> Fri 2027-01-01 and Mon 2027-01-04 (fallback)
    assert add_workdays(cst(2026, 12, 31), 2) == eod(2027, 1, 4)


def test_a_year_outside_the_official_calendar_is_logged_as_a_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.timekeeping.workdays"):
        assert not is_workday(date(2099, 1, 3))  # a Saturday
    assert "2099" in caplog.text
    assert "Monday-Friday" in caplog.text
