"""Backfill of 365 days from a local site that answers every request after 100 ms, through the
real ``backfill`` flow (Prefect temporary server included), beside a sequential loop of the same
library calls, one request at a time, run in the same process against the same site.

    .venv/bin/python bench/backfill.py [--days 365] [--latency 0.1] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
WORK = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
os.environ.update(DIGEST_DATA_DIR=str(WORK / "flow"), PREFECT_LOGGING_LEVEL="WARNING")

from flows import use_prefect_defaults  # noqa: E402

use_prefect_defaults()  # before Prefect is imported

from digest.db import count_rows, get_engine  # noqa: E402
from digest.ingest import fetch_pages, ingest_pages  # noqa: E402
from digest.periods import Period  # noqa: E402
from digest.settings import load_settings  # noqa: E402
from tests.factories import api_day, json_body  # noqa: E402
from tests.site import LocalSite, Reply  # noqa: E402

PAPERS_PER_WEEKDAY = 25


def synthetic_day(path: str, query: dict[str, str]) -> Reply | None:
    """Every weekday lists 25 synthetic papers; weekends are empty, as on the real site."""
    if path != "/api/daily_papers" or "date" not in query:
        return None
    day = date.fromisoformat(query["date"])
    items = api_day(day, PAPERS_PER_WEEKDAY) if day.weekday() < 5 and query.get("p") == "0" else []
    return Reply(body=json_body(items))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    end = date(2026, 11, 20)
    start = end - timedelta(days=args.days - 1)

    with LocalSite(latency=args.latency) as site:
        site.fallback = synthetic_day
        os.environ.update(DIGEST_HF_BASE_URL=site.url, DIGEST_HTTP_BACKOFF="0")

        os.environ["DIGEST_DATA_DIR"] = str(WORK / "sequential")
        settings = load_settings()
        began = time.perf_counter()
        for offset in range(args.days):
            pages = fetch_pages("hf-api", Period.day(start + timedelta(days=offset)), settings)
            ingest_pages(pages, settings.db_url)
        sequential = time.perf_counter() - began
        sequential_rows = count_rows(get_engine(settings.db_url))

        os.environ["DIGEST_DATA_DIR"] = str(WORK / "flow")
        from flows.backfill import backfill

        requests_before = len(site.seen)
        began = time.perf_counter()
        summary = backfill(start=start, end=end, source="hf-api", concurrency=args.concurrency)
        flowed = time.perf_counter() - began
        flow_rows = count_rows(get_engine(load_settings().db_url))
        requests = len(site.seen) - requests_before

    print(
        f"{args.days} days ({start}..{end}), {args.latency * 1000:.0f} ms per request, "
        f"{PAPERS_PER_WEEKDAY} papers per weekday"
    )
    print(f"sequential loop, one request at a time: {sequential:6.1f} s   store {sequential_rows}")
    print(
        f"backfill flow, concurrency {args.concurrency}:          {flowed:6.1f} s   store {flow_rows}"
        f"   ({requests} requests; includes Prefect's temporary server start)"
    )
    print(f"flow summary: {summary}")
    print(
        f"speed-up: {sequential / flowed:.1f}x; target under 60 s: {'met' if flowed < 60 else 'MISSED'}"
    )
    print(f"work folder: {WORK}")


if __name__ == "__main__":
    main()
