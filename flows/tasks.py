"""Prefect tasks: each is one call into ``digest``. Only transient fetch errors are retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from digest import ingest
from digest.errors import TransientFetchError
from digest.periods import Period
from digest.records import PaperRecord
from digest.settings import Settings
from digest.sources import RawPage
from digest.store import UpsertCounts

RETRY_DELAYS = [5, 30]


def only_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a task only when it failed with a ``TransientFetchError`` (429, 5xx, timeout)."""
    try:
        state.result()
    except TransientFetchError:
        return True
    except Exception:
        return False
    return False


@task(
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    task_run_name="fetch {source} {period.label}",
)
def fetch_pages(source: str, period: Period, settings: Settings) -> list[RawPage]:
    return ingest.fetch_pages(source, period, settings)


@task(cache_policy=NO_CACHE, task_run_name="read {source} {path}")
def read_pages(source: str, path: Path, period: Period | None) -> list[RawPage]:
    return ingest.read_pages(source, path, period)


@task(cache_policy=NO_CACHE, task_run_name="parse {page.listing}")
def parse_page(page: RawPage) -> list[PaperRecord]:
    return ingest.parse_page(page)


@task(cache_policy=NO_CACHE, task_run_name="store {page.listing}")
def store_page(page: RawPage, records: list[PaperRecord], database_url: str) -> UpsertCounts:
    return ingest.store_page(page, records, database_url)


@task(cache_policy=NO_CACHE, task_run_name="record failure {page.listing}")
def record_failure(page: RawPage, error: BaseException, database_url: str) -> None:
    ingest.record_failure(page, error, database_url)


@task(cache_policy=NO_CACHE, task_run_name="record failure {source} {listing}")
def record_failure_of(source: str, listing: str, error: BaseException, database_url: str) -> None:
    ingest.record_failure((source, listing, listing), error, database_url)
