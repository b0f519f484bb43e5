"""Days, ISO weeks and months in UTC; nothing in the future; ranges checked before work."""

from __future__ import annotations

from datetime import date

import pytest

from digest.errors import ConfigError
from digest.periods import Period, days, parse_date, parse_period

TODAY = date(2026, 11, 22)


def test_a_day_week_and_month() -> None:
    assert parse_period("2026-03-06", today=TODAY) == Period.day(date(2026, 3, 6))
    week = parse_period("2026-W10", today=TODAY)
    assert (week.kind, week.start, week.end, week.label) == (
        "week",
        date(2026, 3, 2),
        date(2026, 3, 8),
        "2026-W10",
    )
    december = parse_period("2025-12", today=TODAY)
    assert (december.start, december.end, december.label) == (
        date(2025, 12, 1),
        date(2025, 12, 31),
        "2025-12",
    )
    assert parse_period("2024-02", today=TODAY).end == date(2024, 2, 29)


def test_the_current_week_is_allowed_but_not_a_future_one() -> None:
    assert parse_period("2026-W47", today=TODAY).contains(TODAY)
    with pytest.raises(ConfigError, match="starts in the future"):
        parse_period("2026-W49", today=TODAY)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "MM 01..12"),
        ("2026-W54", "no such ISO week"),
        ("06/03/2026", "expected YYYY-MM-DD"),
        ("2026-11-23", "in the future"),
    ],
)
def test_bad_periods(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_period(text, today=TODAY)


def test_words_for_today_and_yesterday() -> None:
    assert parse_date("today", today=TODAY) == TODAY
    assert parse_date("yesterday", today=TODAY) == date(2026, 11, 21)


def test_days_include_weekends_and_refuse_impossible_ranges() -> None:
    assert days(date(2026, 3, 6), date(2026, 3, 9), today=TODAY) == [
        date(2026, 3, d) for d in (6, 7, 8, 9)
    ]
    with pytest.raises(ConfigError, match="before the start"):
        days(date(2026, 3, 9), date(2026, 3, 6), today=TODAY)
    with pytest.raises(ConfigError, match="in the future"):
        days(date(2026, 11, 20), date(2026, 11, 23), today=TODAY)
