"""Prefect tasks: each is one call into ``digest``. No task retries: the HTTP client is the one
retry layer (``DIGEST_HTTP_RETRIES``, honouring Retry-After), so a URL costs at most 1 + retries
requests; retrying the task as well would multiply that by its tries."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from digest import ingest
from digest.ingest import IngestSummary
from digest.periods import Period
from digest.settings import Settings
from digest.sources import RawPage


@task(cache_policy=NO_CACHE, task_run_name="fetch {source} {period.label}")
def fetch_pages(source: str, period: Period, settings: Settings) -> list[RawPage]:
    return ingest.fetch_pages(source, period, settings)


@task(cache_policy=NO_CACHE, task_run_name="read {source} {path}")
def read_pages(source: str, path: Path, period: Period | None) -> list[RawPage]:
    return ingest.read_pages(source, path, period)


@task(cache_policy=NO_CACHE, task_run_name="store {source} {listing}")
def store_pages(
    pages: list[RawPage], database_url: str, source: str, listing: str
) -> IngestSummary:
    """Parse and store one listing's pages (one transaction per page)."""
    return ingest.ingest_pages(pages, database_url)


@task(cache_policy=NO_CACHE, task_run_name="record failure {source} {listing}")
def record_failure(source: str, listing: str, error: BaseException, database_url: str) -> None:
    ingest.record_failure(source, listing, listing, error, database_url)
