"""A send run: every due subscriber's digest for one period, composed, rendered, recorded in the
ledger and delivered exactly once, in batches, over a few reused connections, at a bounded rate.

For each batch of subscribers the run composes and renders every digest and plans the batch's
ledger rows in one transaction, each holding what its issue held (the source of its "view in
browser" page, rendered by the web app when asked for; rows that exist are left as they are,
so a rerun finds what is already sent), while the previous batch is being delivered.
Worker threads, each with its own deliverer (one SMTP connection per worker), claim rows in
chunks and deliver them; the ledger, not the run, decides who sends what, so two runs at once
or a rerun after a crash send each message once. Transient failures are retried in place with
exponential backoff (tenacity); a permanent one fails the row and counts a bounce.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from digest.channels import deliverer_for
from digest.compose import SECTION_COLUMNS, Composer, composer_for
from digest.contents import contents_of
from digest.db import Engine, ledger
from digest.db.models import Cadence, DeliveryStatus, Subscriber, Subscription
from digest.db.subscribers import due_ids, due_sections, due_subscribers
from digest.delivery import UNCONFIRMED, Deliverer, LeaseLost, reason_of
from digest.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UndeliverableError,
)
from digest.mime import RenderedEmail
from digest.periods import Period
from digest.runtime import Runtime, SendOptions

__all__ = [
    "Outgoing",
    "RateLimiter",
    "SendOptions",
    "SendSummary",
    "bucket_of",
    "deliver_all",
    "send_digests",
]

log = logging.getLogger(__name__)


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


def send_digests(
    runtime: Runtime,
    *,
    period: Period,
    cadence: Cadence,
    bucket: str | None = None,
    shard: tuple[int, int] = (0, 1),
) -> SendSummary:
    """Send every due ``cadence`` subscriber their digest for ``period``, exactly once; with a
    ``bucket`` (one of the send-time zones ``buckets``), only those whose own time zone is
    nearest to it; with ``shard`` ``(i, n)``, only subscribers whose id is ``i`` modulo ``n``
    (so ``n`` tasks, on threads or machines, share a run without overlapping)."""
    engine, channel, outbox, options = (
        runtime.engine,
        runtime.channel,
        runtime.outbox,
        runtime.options,
    )
    summary = SendSummary(period=period.label, cadence=cadence.value)
    if channel == "outbox":
        # Writing files is CPU and disk work under two locks (the GIL, SQLite's writer), so
        # more threads only contend: 10,000 issues took 9.3 s on one worker, 12.5 s on four.
        options = replace(options, workers=1)
    composer = composer_for(engine, period, runtime.themes, runtime.embedder)
    index, shards = shard
    if not 0 <= index < shards:
        raise ValueError(f"shard {index} of {shards}: expected 0 <= shard < shards")
    due = [(i, zone) for i, zone in due_ids(engine, cadence) if i % shards == index]
    if bucket is not None:
        zones = list(runtime.zones) or [bucket]
        due = [(i, zone) for i, zone in due if bucket_of(zone, zones) == bucket]
    log.info(
        "%s %s: %d due subscriber(s), %d new paper(s)",
        cadence.value,
        period.label,
        len(due),
        len(composer.papers),
    )
    clock = time.perf_counter()
    composer.embed_ahead(due_sections(engine, cadence, SECTION_COLUMNS))
    summary.timed("embed", clock)
    waiting: list[Outgoing] = []
    with _Workers(engine, channel, outbox, options, summary) as workers:
        going: list[Future[list[Outgoing]]] = []
        for ids in _chunks([i for i, _ in due], options.batch):
            batch = due_subscribers(engine, cadence, among=ids)  # a batch or two in memory
            outgoing = _prepare(batch, composer, runtime, summary)
            waiting += _finish(going, summary)  # the previous batch went out meanwhile
            going = workers.submit(outgoing)
        waiting += _finish(going, summary)
        _take_over(engine, workers, summary, waiting, cadence, period, options)
    return summary


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
    with _Workers(engine, channel, outbox, options, summary) as workers:
        return workers.deliver(outgoing)


def _prepare(
    batch: Sequence[tuple[Subscriber, list[Subscription]]],
    composer: Composer,
    runtime: Runtime,
    summary: SendSummary,
) -> list[Outgoing]:
    """Compose, render and plan one batch; returns the issues still to deliver."""
    engine, renderer, channel = runtime.engine, runtime.renderer, runtime.channel
    issues = {p.id or 0: renderer.issues.name(p.email, composer.period) for p, _ in batch}
    already = ledger.sent_papers(engine, issues, except_issues=issues.values())
    rows: list[ledger.IssuePlan] = []
    emails: dict[int, RenderedEmail] = {}
    clock = time.perf_counter()
    composer.prepare(subscriptions for _, subscriptions in batch)
    for person, subscriptions in batch:
        assert person.id is not None
        digest = composer.compose(
            person.email,
            subscriptions,
            already[person.id],
            quiet_days=person.quiet_days,
            link_id=person.link_id,
        )
        clock = summary.timed("compose", clock)
        if not digest.is_empty:  # its web page is rendered when asked for, from contents
            emails[person.id] = renderer.render(digest)
            clock = summary.timed("render", clock)
        rows.append(
            ledger.IssuePlan(
                subscriber_id=person.id,
                issue_id=issues[person.id],
                cadence=subscriptions[0].cadence,
                period_start=composer.period.start,
                period_end=composer.period.end,
                paper_keys=digest.paper_keys,
                skip_reason=digest.skip_reason if digest.is_empty else None,
                contents=None if digest.is_empty else contents_of(digest),
            )
        )
    channels = {p.id: p.channel or channel for p, _ in batch}
    outgoing = []
    clock = time.perf_counter()
    planned_rows = ledger.plan(engine, rows)
    summary.timed("plan", clock)
    for planned in planned_rows:
        if planned.status in (DeliveryStatus.sent, DeliveryStatus.failed):
            summary.count("earlier")
        elif planned.status == DeliveryStatus.skipped:
            summary.count("skipped")
        elif planned.subscriber_id in emails:
            email = emails[planned.subscriber_id]
            outgoing.append(Outgoing(planned, email, channels[planned.subscriber_id]))
    return outgoing


_Later = tuple[Outgoing, str | None, str, str]
"""A findable delivery made but not yet recorded: the item, Message-ID, channel, reply."""


class _Workers:
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

    def __enter__(self) -> _Workers:
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


_LOOK_AGAIN = 2.0
"""Seconds between looks at rows another run holds."""


def _take_over(
    engine: Engine,
    workers: _Workers,
    summary: SendSummary,
    waiting: list[Outgoing],
    cadence: Cadence,
    period: Period,
    options: SendOptions,
) -> None:
    """Issues held by another run: wait while it works; if its lease runs out (it died),
    send them here. Ends when no row of the period is held any more."""
    deadline = time.monotonic() + 2 * options.lease
    while waiting:
        if time.monotonic() > deadline:
            for item in waiting:
                summary.count("failed", f"{item.email.to}: still held by another run; not sent")
            return
        held, first_lease_end = ledger.held_by_others(engine, cadence, period.start, period.end)
        pause = min(options.backoff, 1.0)
        if held and first_lease_end is not None:
            # Until the other run's lease ends, but looking every few seconds: a run that
            # finishes early frees its rows long before its lease would have run out.
            end = first_lease_end if first_lease_end.tzinfo else first_lease_end.replace(tzinfo=UTC)
            pause = min(max((end - datetime.now(UTC)).total_seconds(), 0.05), _LOOK_AGAIN)
        log.info("%d issue(s) held by another run; looking again in %.1f s", len(waiting), pause)
        time.sleep(pause)
        waiting = workers.deliver(waiting)


def _finish(going: Sequence[Future[list[Outgoing]]], summary: SendSummary) -> list[Outgoing]:
    """Wait for a batch's deliveries (the time left after the next batch was prepared, since
    they overlap); returns the items another run holds."""
    clock = time.perf_counter()
    held = [item for future in going for item in future.result()]
    summary.timed("deliver", clock)
    return held


def bucket_of(zone: str, buckets: Sequence[str], when: datetime | None = None) -> str:
    """The configured send-time zone nearest to ``zone`` by UTC offset (at ``when``): whose
    morning run a subscriber's digest goes out with."""
    moment = when or datetime.now(UTC)

    def offset(name: str) -> float:
        delta = moment.astimezone(ZoneInfo(name)).utcoffset()
        return delta.total_seconds() if delta is not None else 0.0

    mine = offset(zone)
    return min(buckets, key=lambda b: (abs(offset(b) - mine), buckets.index(b)))


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
