"""The delivery workers of a send run: threads that each keep their own deliverers (one SMTP
connection each), claim ledger rows in chunks under a lease, wait their turn at the run's rate
limit, deliver, and mark each row sent at the channel's point of no return. Transient failures
are retried in place with exponential backoff (tenacity); a permanent one fails the row and
counts a bounce; a message whose server never answered the end is recorded unconfirmed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from digest.channels import deliverer_for
from digest.db import Engine, ledger
from digest.delivery import UNCONFIRMED, Deliverer, LeaseLost, reason_of
from digest.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UndeliverableError,
)
from digest.mime import RenderedEmail
from digest.runtime import SendOptions
from digest.send_summary import SendSummary

__all__ = ["Outgoing", "RateLimiter", "Workers", "deliver_all"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One rendered issue with its ledger row, ready to deliver."""

    planned: ledger.Planned
    email: RenderedEmail
    channel: str


class RateLimiter:
    """At most ``per_second`` messages a second and ``per_hour`` an hour (0: no limit), shared
    by every worker thread of a run."""

    def __init__(
        self,
        per_second: float,
        per_hour: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._per_hour, self._clock, self._sleep = per_hour, clock, sleep
        self._next = 0.0
        self._hour: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self._interval and not self._per_hour:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            if self._per_hour:
                while self._hour and self._hour[0] <= start - 3600:
                    self._hour.popleft()
                if len(self._hour) >= self._per_hour:
                    start = max(start, self._hour[0] + 3600)
                    self._hour.popleft()
                self._hour.append(start)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)


def deliver_all(
    engine: Engine,
    outgoing: Sequence[Outgoing],
    summary: SendSummary,
    *,
    channel: str,
    outbox: Path,
    options: SendOptions = SendOptions(),  # noqa: B008
) -> list[Outgoing]:
    """Deliver already planned and rendered issues (the benchmark's entry point); returns the
    ones another run holds."""
    with Workers(engine, channel, outbox, options, summary) as workers:
        return workers.deliver(outgoing)


_Later = tuple[Outgoing, str | None, str, str]
"""A findable delivery made but not yet recorded: the item, Message-ID, channel, reply."""


class Workers:
    """A thread pool whose threads each keep their own deliverers (one connection each)."""

    def __init__(
        self,
        engine: Engine,
        channel: str,
        outbox: Path,
        options: SendOptions,
        summary: SendSummary,
    ) -> None:
        self._engine, self._channel, self._outbox = engine, channel, outbox
        self._options, self._summary = options, summary
        self._limiter = RateLimiter(options.rate, options.hourly)
        self._local = threading.local()
        self._all: list[Deliverer] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(options.workers, thread_name_prefix="send")

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(wait=True)
        for deliverer in self._all:
            deliverer.close()

    def deliver(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        """Deliver each; returns those another run holds right now."""
        return [item for future in self.submit(outgoing) for item in future.result()]

    def submit(self, outgoing: Sequence[Outgoing]) -> list[Future[list[Outgoing]]]:
        """Start delivering each, without waiting; each future gives the items another run
        holds. Workers take chunks: one statement claims a chunk, and its acceptances are
        written together at its end."""
        size = self._options.claim_batch
        chunks = [outgoing[i : i + size] for i in range(0, len(outgoing), size)]
        return [self._pool.submit(self._chunk, chunk) for chunk in chunks]

    def _deliverer(self, channel: str) -> Deliverer:
        mine: dict[str, Deliverer] = getattr(self._local, "deliverers", None) or {}
        self._local.deliverers = mine
        if channel not in mine:
            mine[channel] = deliverer_for(channel, self._outbox)
            with self._lock:
                self._all.append(mine[channel])
        return mine[channel]

    def _chunk(self, chunk: Sequence[Outgoing]) -> list[Outgoing]:
        token = uuid.uuid4().hex
        lease = timedelta(seconds=self._options.lease)
        got = ledger.claim(self._engine, [o.planned.delivery_id for o in chunk], token, lease)
        held, replies = [], []
        later: list[_Later] = []
        for item in chunk:
            state = got.get(item.planned.delivery_id, "done")
            if state == "busy":
                held.append(item)
            elif state == "done":
                self._summary.count("earlier")
            else:
                reply = self._one(item, token, later)
                if reply is not None:
                    replies.append((item.planned.delivery_id, item.planned.subscriber_id, reply))
        replies += self._record(later, token)
        ledger.confirm(self._engine, replies)
        return held

    def _record(self, later: Sequence[_Later], token: str) -> list[tuple[int, int, str]]:
        """Mark the chunk's findable deliveries sent, in one transaction; those whose lease
        another run took meanwhile are its to record (it finds them: ``already_delivered``)."""
        rows = [(item.planned.delivery_id, mid, name) for item, mid, name, _ in later]
        marked = ledger.mark_all_sent(self._engine, rows, token)
        replies = []
        for item, _, _, reply in later:
            if item.planned.delivery_id in marked:
                self._summary.count("sent")
                replies.append((item.planned.delivery_id, item.planned.subscriber_id, reply))
        return replies

    def _one(self, item: Outgoing, token: str, later: list[_Later]) -> str | None:
        """Deliver and record one claimed issue; returns the acceptance when it was sent and
        recorded, or adds it to ``later`` when its deliverer is findable (recorded by chunk)."""
        row, options = item.planned, self._options
        deliverer = self._deliverer(item.channel)
        message_id = item.email.headers.get("Message-ID")
        if deliverer.already_delivered(item.email, row.issue_id):
            if ledger.mark_sent(self._engine, row.delivery_id, token, deliverer.name, message_id):
                self._summary.count("sent")
                return "delivered by an earlier run"
            return None
        retrying = Retrying(
            retry=retry_if_exception_type(TransientDeliveryError),
            stop=stop_after_attempt(options.attempts),
            wait=wait_exponential(multiplier=options.backoff, max=options.backoff * 16),
            before_sleep=lambda state: self._summary.count("retries"),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    reply = self._attempt(deliverer, item, message_id, token)
        except LeaseLost:
            return None
        except UndeliverableError as exc:
            self._fail(item, token, exc, bounce=False)
            return None
        except TransientDeliveryError as exc:
            retry_at = datetime.now(UTC) + timedelta(seconds=options.backoff)
            ledger.release(self._engine, row.delivery_id, token, str(exc), retry_at)
            self._summary.count("failed", f"{exc} (left pending for the next run)")
            return None
        except PermanentDeliveryError as exc:
            self._fail(item, token, exc, bounce=True)
            return None
        if deliverer.findable:
            later.append((item, message_id, deliverer.name, reply))
            return None
        self._summary.count("sent")
        if reply.startswith(UNCONFIRMED):
            self._summary.count("unconfirmed", unconfirmed=item.email.to)
        return reply

    def _fail(self, item: Outgoing, token: str, exc: DeliveryError, *, bounce: bool) -> None:
        """Fail one row for good; a bounce counts towards suppressing its subscriber."""
        row = item.planned
        suppressed = ledger.fail(
            self._engine,
            row.delivery_id,
            row.subscriber_id,
            token,
            str(exc),
            bounce=bounce,
            max_bounces=self._options.max_bounces,
        )
        self._summary.count("failed", str(exc))
        if suppressed:
            self._summary.count("suppressed", f"{item.email.to}: suppressed after bounces")

    def _attempt(
        self, deliverer: Deliverer, item: Outgoing, message_id: str | None, token: str
    ) -> str:
        row = item.planned
        committed = False

        def commit() -> bool:
            nonlocal committed
            if deliverer.findable:
                return True  # recorded with the rest of the chunk, by ``_record``
            committed = ledger.mark_sent(
                self._engine, row.delivery_id, token, deliverer.name, message_id
            )
            return committed

        self._limiter.acquire()
        try:
            return deliverer.deliver(item.email, row.issue_id, commit)
        except LeaseLost:
            raise
        except Exception as exc:
            if not isinstance(exc, DeliveryError):
                # Nobody foresaw this one (a bug, a library's surprise): it fails this message
                # alone, and the connection, in an unknown state, is never used again.
                log.exception("%s: unexpected error while delivering", item.email.to)
                deliverer.reset()
                exc = UndeliverableError(item.email.to, f"unexpected {reason_of(exc)}")
            if committed:
                ledger.unsend(self._engine, row.delivery_id, token)
            lease = timedelta(seconds=self._options.lease)
            ledger.note_attempt(self._engine, row.delivery_id, token, str(exc), lease)
            raise exc from None
