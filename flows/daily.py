"""``daily`` and ``weekly``: the scheduled jobs.

``daily`` ingests the anchor day's listing (yesterday, UTC, unless a day is given: today's is
still filling) and the three days before it (Hugging Face adds papers to a day for a while
after), sends the daily digests, and refreshes the web archive. On the bundled
seeds (old pages) it ingests those and anchors the digest period at the newest listing in the
store instead of at today, so a first run on a new machine has something to send.
"""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow, get_run_logger

from digest.alerts import daily_alerts, notify
from digest.archive import Published, publish_themes
from digest.db import Engine, get_engine, list_papers
from digest.db.models import Cadence
from digest.db.papers import newest_listing_day
from digest.db.sent import last_period_end
from digest.errors import PartialFailure
from digest.ingest import IngestSummary
from digest.periods import utc_today
from digest.runtime import Runtime
from digest.send_summary import SendSummary
from digest.settings import Settings, load_settings
from flows.backfill import backfill
from flows.ingest import ingest
from flows.send import newest_day, send_digests

LATE_DAYS = 3
"""Days before today re-ingested by the daily run: papers are added to a day after it."""
CATCH_UP_DAYS = 7
"""The longest span one catch-up digest covers after the machine was off."""


@flow(name="daily")
def daily(
    source: str = "hf-api", day: date | None = None, timezone: str | None = None
) -> SendSummary:
    """Ingest, refresh the archive, send the daily digests for ``day`` (default: yesterday,
    UTC, the newest complete list; on the seeds, their newest day), then tell the operator what
    went wrong (``DIGEST_ALERTS``). ``timezone`` limits sending to that send time's bucket.
    A failed listing does not stop the digests of what was stored; the run still ends failed
    so it shows in Prefect."""
    settings = load_settings()
    engine = get_engine(settings.db_url)
    failures: list[str] = []
    anchor = day or utc_today() - timedelta(days=1)
    first = catch_up_start(engine, anchor)
    try:
        if source == "seeds":
            ingested: IngestSummary = ingest(source="seeds")
        else:
            start = min(first, anchor - timedelta(days=LATE_DAYS))
            ingested = backfill(start=start, end=anchor, source=source)
        get_run_logger().info("daily: ingested %s", ingested)
    except PartialFailure as exc:
        failures += exc.failures
    if source == "seeds" and day is None:  # old pages: anchor at their newest day instead
        anchor = newest_day(settings)
        first = catch_up_start(engine, anchor)
    publish(settings, anchor)
    sent: SendSummary | None = None
    try:
        sent = send_digests(
            cadence="daily", day=anchor, start=first if first < anchor else None, timezone=timezone
        )
    except PartialFailure as exc:
        failures += exc.failures
        sent = exc.summary if isinstance(exc.summary, SendSummary) else None
    alerts = daily_alerts(
        anchor,
        len(list_papers(engine, listed_on=anchor)),
        [f for f in failures if sent is None or f not in sent.failures],
        sent,
        failure_rate=settings.alert_failure_rate,
        heartbeat=settings.heartbeat,
    )
    notify(settings.alerts.get_secret_value() if settings.alerts else None, alerts)
    if failures:
        raise PartialFailure(f"daily {anchor}", failures)
    assert sent is not None
    return sent


def catch_up_start(engine: Engine, anchor: date) -> date:
    """The first day today's daily digest covers: today, or, if the machine was off, the day
    after the last daily period sent (at most ``CATCH_UP_DAYS`` back), so each subscriber gets
    one digest for the missed days instead of none or one per day."""
    last = last_period_end(engine, Cadence.daily)
    if last is None or last >= anchor - timedelta(days=1):
        return anchor
    return max(last + timedelta(days=1), anchor - timedelta(days=CATCH_UP_DAYS - 1))


@flow(name="weekly")
def weekly(day: date | None = None, anchor_at_newest: bool = False) -> SendSummary:
    """Send the weekly digests for the ISO week containing ``day`` (default: today, UTC)."""
    return send_digests(cadence="weekly", day=day, anchor_at_newest=anchor_at_newest)


def publish(settings: Settings, until: date) -> Published:
    """Refresh the web archive (theme pages and feeds) up to ``until``."""
    runtime = Runtime.from_settings(settings)
    newest = newest_listing_day(runtime.engine) or until
    published = publish_themes(
        runtime.engine,
        runtime.renderer,
        runtime.themes,
        runtime.archive,
        min(until, newest),
        runtime.embedder,
    )
    get_run_logger().info(
        "archive: %d theme page(s), %d feed(s) at %s",
        published.pages,
        published.feeds,
        published.index,
    )
    return published
