"""``daily`` and ``weekly``: the scheduled jobs.

``daily`` ingests today's listing and the three days before it (Hugging Face adds papers to a
day for a while after), sends the daily digests, and refreshes the web archive. On the bundled
seeds (old pages) it ingests those and anchors the digest period at the newest listing in the
store instead of at today, so a first run on a new machine has something to send.
"""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow, get_run_logger

from digest.archive import Archive, Published, publish_themes
from digest.compose import newest_listing_day
from digest.embeddings import load_cached_embedder
from digest.ingest import IngestSummary
from digest.periods import utc_today
from digest.render import Renderer
from digest.sending import SendSummary
from digest.settings import Settings, load_settings
from digest.store import get_engine
from digest.themes import load_themes
from flows.backfill import backfill
from flows.ingest import ingest
from flows.send import newest_day, send_digests

LATE_DAYS = 3
"""Days before today re-ingested by the daily run: papers are added to a day after it."""


@flow(name="daily")
def daily(source: str = "hf-api", day: date | None = None) -> SendSummary:
    """Ingest, then send the daily digests for ``day`` (default: today, UTC)."""
    if source == "seeds":
        ingested: IngestSummary = ingest(source="seeds")
        anchor = day or newest_day(load_settings())
    else:
        anchor = day or utc_today()
        ingested = backfill(start=anchor - timedelta(days=LATE_DAYS), end=anchor, source=source)
    get_run_logger().info("daily %s: ingested %s", anchor, ingested)
    publish(load_settings(), anchor)
    return send_digests(cadence="daily", day=anchor)


@flow(name="weekly")
def weekly(day: date | None = None, anchor_at_newest: bool = False) -> SendSummary:
    """Send the weekly digests for the ISO week containing ``day`` (default: today, UTC)."""
    return send_digests(cadence="weekly", day=day, anchor_at_newest=anchor_at_newest)


def publish(settings: Settings, until: date) -> Published:
    """Refresh the web archive (theme pages and feeds) up to ``until``."""
    engine = get_engine(settings.db_url)
    published = publish_themes(
        engine,
        Renderer.from_settings(settings),
        load_themes(),
        Archive(settings.archive_dir, settings.public_url),
        min(until, newest_listing_day(engine) or until),
        lambda: load_cached_embedder(settings),
    )
    get_run_logger().info(
        "archive: %d theme page(s), %d feed(s) at %s",
        published.pages,
        published.feeds,
        published.index,
    )
    return published
