"""Ingest steps as plain functions: fetch or read pages, parse one page, store one page.

Flows wrap each step in one Prefect task; ``ingest_pages`` chains them without Prefect for
benchmarks and for callers that want no orchestration. Only the fetch step does network I/O.
Items a parser skipped as invalid do not fail their page: they are logged, noted on the page's
fetch-log row and listed in ``IngestSummary.skipped``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from digest.db import Engine, UpsertCounts, get_engine, log_failure, save_page, stored_validators
from digest.errors import DigestError
from digest.periods import Period
from digest.records import PaperRecord
from digest.settings import Settings
from digest.sources import RawPage, get_source
from digest.sources.hf_items import Records, SkippedItem
from digest.sources.http import Fetcher, ValidatorLookup, Validators

__all__ = [
    "IngestSummary",
    "fetch_pages",
    "ingest_pages",
    "parse_page",
    "read_pages",
    "record_failure",
    "release_fetchers",
    "shared_fetcher",
    "skipped_items",
    "store_page",
]

log = logging.getLogger("digest.ingest")


class IngestSummary(BaseModel):
    """What an ingest or backfill did, page by page and in total."""

    pages: int = 0
    not_modified: int = 0
    counts: UpsertCounts = UpsertCounts()
    failures: list[str] = []
    skipped: list[str] = []

    def add(self, page: RawPage, counts: UpsertCounts, skipped: Sequence[SkippedItem] = ()) -> None:
        self.pages += 1
        self.not_modified += page.not_modified
        self.counts = self.counts + counts
        self.skipped.extend(f"{page.listing}: {page.location}: {item}" for item in skipped)

    def fail(self, where: str, error: BaseException) -> None:
        self.failures.append(f"{where}: {error}")

    def merge(self, other: IngestSummary) -> None:
        self.pages += other.pages
        self.not_modified += other.not_modified
        self.counts = self.counts + other.counts
        self.failures.extend(other.failures)
        self.skipped.extend(other.skipped)

    def __str__(self) -> str:
        text = f"{self.pages} page(s): {self.counts}"
        if self.not_modified:
            text += f" ({self.not_modified} not modified)"
        if self.skipped:
            text += f"; {len(self.skipped)} invalid item(s) skipped"
        if self.failures:
            text += f"; {len(self.failures)} failed"
        return text


def fetch_pages(source: str, period: Period, settings: Settings) -> list[RawPage]:
    """Download ``period``'s listing from the site (conditional GET against stored validators)."""
    return get_source(source).fetch(shared_fetcher(settings), period)


def read_pages(source: str, path: Path, period: Period | None) -> list[RawPage]:
    """Read saved pages of ``source`` from a file or a folder."""
    return get_source(source).read(path, period)


def parse_page(page: RawPage) -> list[PaperRecord]:
    """Parse one page into records (pure)."""
    return get_source(page.source).parse(page)


def store_page(page: RawPage, records: list[PaperRecord], database_url: str) -> UpsertCounts:
    """Save one page's records in one transaction; items the parser skipped are logged and
    noted on the page's fetch-log row."""
    skipped = skipped_items(records)
    for item in skipped:
        log.warning("%s %s: %s: skipped %s", page.source, page.listing, page.location, item)
    counts = save_page(get_engine(database_url), page, records, note=_skipped_note(skipped))
    log.info("%s %s: %d records: %s", page.source, page.listing, len(records), counts)
    return counts


def skipped_items(records: list[PaperRecord]) -> list[SkippedItem]:
    """The items a parser left out of ``records`` because they failed validation."""
    return records.skipped if isinstance(records, Records) else []


def _skipped_note(skipped: list[SkippedItem]) -> str | None:
    if not skipped:
        return None
    shown = "; ".join(str(item) for item in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"{len(skipped)} invalid item(s) skipped: {shown}{more}"


def record_failure(
    source: str, listing: str, location: str, error: BaseException, database_url: str
) -> None:
    """Note a page or listing that failed in the fetch log, so the operator can see it."""
    log_failure(get_engine(database_url), source, listing, location, str(error))


def ingest_pages(pages: list[RawPage], database_url: str) -> IngestSummary:
    """Parse and store ``pages`` one by one, one transaction each; a bad page is recorded and
    the rest go on, and so are a page's invalid items (in ``skipped``) while its valid ones are
    stored."""
    summary = IngestSummary()
    for page in pages:
        try:
            records = parse_page(page)
            summary.add(page, store_page(page, records, database_url), skipped_items(records))
        except DigestError as exc:
            record_failure(page.source, page.listing, page.location, exc, database_url)
            summary.fail(page.listing or page.location, exc)
    return summary


_fetchers: dict[str, Fetcher] = {}
_fetchers_lock = threading.Lock()


def shared_fetcher(settings: Settings) -> Fetcher:
    """One HTTP client per configuration and process, so a backfill reuses its connections."""
    key = settings.model_dump_json()
    with _fetchers_lock:
        if key not in _fetchers:
            lookup = _validator_lookup(get_engine(settings.db_url))
            _fetchers[key] = Fetcher.from_settings(settings, lookup)
        return _fetchers[key]


def _validator_lookup(engine: Engine) -> ValidatorLookup:
    """What the HTTP client calls to find the ETag/Last-Modified stored for a URL."""

    def lookup(url: str) -> Validators | None:
        row = stored_validators(engine, url)
        return Validators(row.etag, row.last_modified, row.item_count) if row else None

    return lookup


def release_fetchers() -> None:
    """Close the shared HTTP clients (a flow calls this when it ends)."""
    with _fetchers_lock:
        for fetcher in _fetchers.values():
            fetcher.close()
        _fetchers.clear()
