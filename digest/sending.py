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
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from digest.compose import SECTION_COLUMNS, Composer, composer_for
from digest.contents import contents_of
from digest.db import Engine, ledger, sent
from digest.db.models import Cadence, DeliveryStatus, Subscriber, Subscription
from digest.db.subscribers import due_ids, due_sections, due_subscribers
from digest.mime import RenderedEmail
from digest.periods import Period
from digest.runtime import Runtime, SendOptions
from digest.send_summary import SendSummary
from digest.workers import Outgoing, Workers

__all__ = ["bucket_of", "send_digests"]

log = logging.getLogger(__name__)


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
    with Workers(engine, channel, outbox, options, summary) as workers:
        going: list[Future[list[Outgoing]]] = []
        for ids in _chunks([i for i, _ in due], options.batch):
            batch = due_subscribers(engine, cadence, among=ids)  # a batch or two in memory
            outgoing = _prepare(batch, composer, runtime, summary)
            waiting += _finish(going, summary)  # the previous batch went out meanwhile
            going = workers.submit(outgoing)
        waiting += _finish(going, summary)
        _take_over(engine, workers, summary, waiting, cadence, period, options)
    return summary


def _prepare(
    batch: Sequence[tuple[Subscriber, list[Subscription]]],
    composer: Composer,
    runtime: Runtime,
    summary: SendSummary,
) -> list[Outgoing]:
    """Compose, render and plan one batch; returns the issues still to deliver."""
    engine, renderer, channel = runtime.engine, runtime.renderer, runtime.channel
    issues = {p.id or 0: renderer.issues.name(p.email, composer.period) for p, _ in batch}
    already = sent.sent_papers(engine, issues, except_issues=issues.values())
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


_LOOK_AGAIN = 2.0
"""Seconds between looks at rows another run holds."""


def _take_over(
    engine: Engine,
    workers: Workers,
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
        held, first_lease_end = sent.held_by_others(engine, cadence, period.start, period.end)
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
