"""Listing periods (a day, an ISO week, a month) in UTC, and the rule that none is in the future.

Hugging Face files Daily Papers by UTC calendar day and answers a future ``date=`` with HTTP 400,
so every date the pipeline asks for is checked here first.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from digest.errors import ConfigError

__all__ = ["Period", "days", "parse_date", "parse_period", "utc_today"]

PeriodKind = Literal["day", "week", "month", "range"]
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class Period(BaseModel):
    """A span the site lists papers for; ``label`` is the site's own spelling of it. A
    ``range`` (any run of days) is never asked of the site: it is a catch-up digest's period."""

    model_config = ConfigDict(frozen=True)

    kind: PeriodKind
    start: date
    end: date

    @property
    def label(self) -> str:
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "range":
            return f"{self.start.isoformat()}..{self.end.isoformat()}"
        return self.start.isoformat()

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    @classmethod
    def day(cls, day: date) -> Period:
        return cls(kind="day", start=day, end=day)

    @classmethod
    def span(cls, start: date, end: date) -> Period:
        """The days from ``start`` to ``end``: one day, or a catch-up range."""
        if end < start:
            raise ConfigError(f"date range {start}..{end}: the end is before the start")
        return cls.day(start) if start == end else cls(kind="range", start=start, end=end)


def utc_today() -> date:
    """Today's date in UTC, the calendar Hugging Face files papers by."""
    return datetime.now(UTC).date()


def parse_date(text: str, *, today: date | None = None) -> date:
    """``YYYY-MM-DD`` (or ``today``/``yesterday``) as a date that is not in the future (UTC)."""
    today = today or utc_today()
    words = {"today": today, "yesterday": today - timedelta(days=1)}
    try:
        value = words.get(text) or date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"date {text!r}: expected YYYY-MM-DD") from exc
    if value > today:
        raise ConfigError(f"date {value}: is in the future (today is {today} UTC)")
    return value


def parse_period(text: str, *, today: date | None = None) -> Period:
    """A day ``2026-03-06``, an ISO week ``2026-W10`` or a month ``2026-03``; never starting
    after today (UTC)."""
    today = today or utc_today()
    period = _week(text) or _month(text) or Period.day(parse_date(text, today=today))
    if period.start > today:
        raise ConfigError(f"period {text}: starts in the future (today is {today} UTC)")
    return period


def days(start: date, end: date, *, today: date | None = None) -> list[date]:
    """Every calendar day from ``start`` to ``end`` inclusive, weekends included; a range that
    ends before it starts or ends in the future (UTC) is refused before any work."""
    today = today or utc_today()
    if end < start:
        raise ConfigError(f"date range {start}..{end}: the end is before the start")
    if end > today:
        raise ConfigError(
            f"date range {start}..{end}: the end is in the future (today is {today} UTC)"
        )
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def _week(text: str) -> Period | None:
    match = _WEEK.match(text)
    if not match:
        return None
    try:
        start = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError as exc:
        raise ConfigError(f"week {text!r}: no such ISO week") from exc
    return Period(kind="week", start=start, end=start + timedelta(days=6))


def _month(text: str) -> Period | None:
    match = _MONTH.match(text)
    if not match:
        return None
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ConfigError(f"month {text!r}: expected YYYY-MM with MM 01..12")
    start = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period(kind="month", start=start, end=following - timedelta(days=1))
