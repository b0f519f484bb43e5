"""What one send run did: counts, failures, unconfirmed addresses and wall time per stage;
shards of one run add up (``combined``). Shared by the send run, its delivery workers, the
flows that report it and the operator's alerts."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["SendSummary"]

_COUNTING = threading.Lock()


@dataclass
class SendSummary:
    """What one run did. ``earlier``: issues an earlier run had already finished."""

    period: str
    cadence: str
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    suppressed: int = 0
    earlier: int = 0
    retries: int = 0
    unconfirmed: int = 0
    failures: list[str] = field(default_factory=list)
    unconfirmed_to: list[str] = field(default_factory=list)
    """Addresses whose server never answered the end of the message: it may or may not have
    arrived, so it is not resent; ``digest unconfirmed`` lists them for the operator."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per stage (embed, compose, render, archive, plan, deliver), for benchmarks; a
    batch's delivery overlaps the next batch's preparation, so ``deliver`` is only the wait
    that was left."""

    def timed(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        with _COUNTING:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now

    def count(self, what: str, failure: str | None = None, unconfirmed: str | None = None) -> None:
        with _COUNTING:
            setattr(self, what, getattr(self, what) + 1)
            if failure:
                self.failures.append(failure)
            if unconfirmed:
                self.unconfirmed_to.append(unconfirmed)

    @classmethod
    def combined(cls, parts: Sequence[SendSummary]) -> SendSummary:
        """The shards of one run, added up."""
        total = cls(period=parts[0].period, cadence=parts[0].cadence)
        for part in parts:
            for name in ("sent", "skipped", "failed", "suppressed", "earlier", "retries"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            total.unconfirmed += part.unconfirmed
            total.failures.extend(part.failures)
            total.unconfirmed_to.extend(part.unconfirmed_to)
            for stage, seconds in part.seconds.items():
                total.seconds[stage] = total.seconds.get(stage, 0.0) + seconds
        return total

    def __str__(self) -> str:
        return (
            f"{self.cadence} {self.period}: {self.sent} sent, {self.skipped} skipped, "
            f"{self.failed} failed, {self.suppressed} suppressed, {self.earlier} done before"
            + (f", {self.unconfirmed} unconfirmed" if self.unconfirmed else "")
            + self._unconfirmed_list()
        )

    def _unconfirmed_list(self, shown: int = 10) -> str:
        """The unconfirmed messages on their own: sent whole, but no server reply came back."""
        if not self.unconfirmed_to:
            return ""
        names = ", ".join(sorted(self.unconfirmed_to)[:shown])
        more = len(self.unconfirmed_to) - shown
        return (
            f"\nUnconfirmed (no reply after the whole message; not resent): {names}"
            + (f" and {more} more" if more > 0 else "")
            + "\nReview them with `digest unconfirmed`; resend with `digest unconfirmed --resend`."
        )
