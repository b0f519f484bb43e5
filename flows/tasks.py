"""Prefect tasks: each is one call into ``digest``. Only transient fetch errors are retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from digest import ingest
from digest.errors import TransientFetchError
from digest.ingest import IngestSummary
from digest.periods import Period
from digest.settings import Settings
from digest.sources import RawPage

RETRY_DELAYS: list[float] = [5, 30]


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


@task(cache_policy=NO_CACHE, task_run_name="store {source} {listing}")
def store_pages(
    pages: list[RawPage], database_url: str, source: str, listing: str
) -> IngestSummary:
    """Parse and store one listing's pages (one transaction per page)."""
    return ingest.ingest_pages(pages, database_url)


@task(cache_policy=NO_CACHE, task_run_name="record failure {source} {listing}")
def record_failure(source: str, listing: str, error: BaseException, database_url: str) -> None:
    ingest.record_failure(source, listing, listing, error, database_url)
