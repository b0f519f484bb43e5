"""Backfill progress: a line per day with counts and ETA when not on a terminal, a live bar
when on one."""

from __future__ import annotations

import io
import itertools

from digest.progress import DayProgress


def test_off_a_terminal_each_day_is_a_log_line_with_counts_and_eta() -> None:
    lines: list[str] = []
    ticks = itertools.count(0.0, 10.0)  # each clock read is 10 s later
    progress = DayProgress(
        4, "backfill hf-api", lines.append, io.StringIO(), clock=lambda: next(ticks)
    )
    assert progress.eta() == "?"
    progress.day("2026-03-02", new=3, updated=1)
    progress.day("2026-03-03", failed=True)
    progress.close()
    assert lines[0] == (
        "backfill hf-api: 2026-03-02 3 new, 1 updated; 1/4 days, 3 new, 1 updated papers, ETA 0:30"
    )
    assert lines[1].startswith("backfill hf-api: 2026-03-03 failed; 2/4 days, 3 new, 1 updated")
    assert lines[1].endswith("1 failed days, ETA 0:20")


def test_on_a_terminal_a_bar_is_drawn_and_nothing_is_logged() -> None:
    lines: list[str] = []
    screen = io.StringIO()
    progress = DayProgress(3, "backfill seeds", lines.append, screen, terminal=True)
    for day in ("a", "b", "c"):
        progress.day(day, new=2)
    progress.close()
    drawn = screen.getvalue()
    assert lines == []
    assert "backfill seeds" in drawn and "3/3" in drawn and "6 new, 0 updated papers" in drawn
    assert "\x1b[" in drawn  # terminal control codes: a live bar, not lines
