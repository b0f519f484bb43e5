"""``backfill``: every day of a date range (weekends included), a few requests at a time.

Fetches run concurrently as tasks in a sliding window of ``concurrency``; parsing and storing
happen in the flow's own thread, one page (one transaction) at a time, so writers never contend.
A day that fails after its retries is recorded and the rest of the range goes on. Progress is a
bar on a terminal and a log line per day elsewhere (``digest.progress``).
"""

from __future__ import annotations

from collections import deque
from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from digest import periods
from digest.errors import DigestError
from digest.ingest import IngestSummary, release_fetchers
from digest.periods import Period
from digest.progress import DayProgress
from digest.settings import load_settings
from digest.sources import RawPage
from flows import tasks
from flows.ingest import finish


# Prefect 3.8 types TaskRunner as invariant in its future type, so its own ThreadPoolTaskRunner
# does not match the decorator's annotation; the combination is the documented usage.
@flow(name="backfill", task_runner=ThreadPoolTaskRunner(max_workers=16))  # type: ignore[arg-type]
def backfill(
    start: date,
    end: date,
    source: str = "hf-api",
    concurrency: int | None = None,
    send: bool = False,
) -> IngestSummary:
    """Ingest each day from ``start`` to ``end`` inclusive (UTC; the end not in the future).
    Sends nothing unless ``send``: then each daily subscriber gets one digest for the range
    (papers first listed in it that they were not sent before), never one per day."""
    settings = load_settings()
    days = periods.days(start, end)
    window = max(1, min(concurrency or settings.http_concurrency, 16))
    summary = IngestSummary()
    progress = DayProgress(len(days), f"backfill {source}", get_run_logger().info)
    pending: deque[tuple[Period, PrefectFuture[list[RawPage]]]] = deque()
    try:
        for day in days:
            if len(pending) >= window:
                _store_day(*pending.popleft(), settings.db_url, source, summary, progress)
            period = Period.day(day)
            pending.append((period, tasks.fetch_pages.submit(source, period, settings)))
        while pending:
            _store_day(*pending.popleft(), settings.db_url, source, summary, progress)
    finally:
        progress.close()
        release_fetchers()
    if send:
        from flows.send import send_digests

        send_digests(cadence="daily", day=end, start=start if start < end else None)
    finish("backfill", summary, f"{source} {start}..{end}")
    return summary


def _store_day(
    period: Period,
    future: PrefectFuture[Any],
    database_url: str,
    source: str,
    summary: IngestSummary,
    progress: DayProgress,
) -> None:
    try:
        pages: list[RawPage] = future.result()
    except DigestError as exc:
        tasks.record_failure(source, f"day/{period.label}", exc, database_url)
        summary.fail(f"day/{period.label}", exc)
        progress.day(period.label, failed=True)
        return
    stored = tasks.store_pages(pages, database_url, source, f"day/{period.label}")
    summary.merge(stored)
    progress.day(period.label, stored.counts.new, stored.counts.updated)
