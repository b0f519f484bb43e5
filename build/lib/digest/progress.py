"""Progress through a range of days (a backfill): a live bar on a terminal, a plain log line per
day anywhere else (a worker's log, CI, a pipe), both with days done, papers new / updated, and
the time left at the pace so far.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["DayProgress"]


class DayProgress:
    """Counts days as they are stored. ``log`` receives one line per day when ``stream`` is
    not a terminal; on a terminal a rich progress bar is drawn on it instead."""

    def __init__(
        self,
        total: int,
        label: str,
        log: Callable[[str], None],
        stream: TextIO | None = None,
        *,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.label, self._log, self._clock = total, label, log, clock
        self.done = self.new = self.updated = self.failed = 0
        self._started = clock()
        stream = stream or sys.stderr
        tty = stream.isatty() if terminal is None else terminal
        self._bar: Progress | None = None
        if tty:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("days · {task.fields[papers]}"),
                TimeRemainingColumn(),
                console=Console(file=stream, force_terminal=True),
                transient=False,
            )
            self._task = self._bar.add_task(label, total=total, papers=self._papers())
            self._bar.start()

    def day(self, name: str, new: int = 0, updated: int = 0, *, failed: bool = False) -> None:
        """One more day finished (stored, or failed for good)."""
        self.done += 1
        self.new += new
        self.updated += updated
        self.failed += failed
        if self._bar is not None:
            self._bar.update(self._task, advance=1, papers=self._papers())
            return
        outcome = "failed" if failed else f"{new} new, {updated} updated"
        self._log(
            f"{self.label}: {name} {outcome}; {self.done}/{self.total} days, "
            f"{self._papers()}, ETA {self.eta()}"
        )

    def eta(self) -> str:
        """Time left at the pace so far, as m:ss ("?" before the first day)."""
        if not self.done:
            return "?"
        left = (self._clock() - self._started) / self.done * (self.total - self.done)
        minutes, seconds = divmod(round(left), 60)
        return f"{minutes}:{seconds:02d}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _papers(self) -> str:
        text = f"{self.new} new, {self.updated} updated papers"
        return text + (f", {self.failed} failed days" if self.failed else "")
