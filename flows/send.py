"""``send-digests``: every due subscriber's digest for one period, exactly once.

The library (``digest.sending``) does the work in batches over a few reused connections; the
ledger in the store is what guarantees each message goes out once, even with two runs at once
or a rerun after a crash. A Prefect global concurrency limit (one slot, ``send-digests``) keeps
runs against the same standing Prefect server from overlapping in the first place.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import date
from typing import Any

from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from digest.compose import period_for
from digest.db import get_engine
from digest.db.models import Cadence
from digest.db.papers import newest_listing_day
from digest.errors import ConfigError, PartialFailure
from digest.periods import Period, utc_today
from digest.runtime import Runtime
from digest.send_summary import SendSummary
from digest.sending import send_digests as send_all
from digest.settings import Settings, load_settings
from flows.api import uses_temporary_server

LIMIT = "send-digests"


@flow(name="send-digests")
def send_digests(
    cadence: str = "daily",
    day: date | None = None,
    anchor_at_newest: bool = False,
    start: date | None = None,
    timezone: str | None = None,
) -> SendSummary:
    """Send ``cadence`` digests for the period containing ``day`` (default: today, UTC; or,
    with ``anchor_at_newest``, the newest listing day in the store, as for the seeds). With
    ``start``, daily digests cover ``start``..``day`` in one issue (a catch-up). With
    ``timezone`` (one of ``DIGEST_SEND_TIMEZONES``), only that send time's subscribers."""
    settings = load_settings()
    wanted = Cadence(cadence)
    anchor = day or (newest_day(settings) if anchor_at_newest else utc_today())
    period = Period.span(start, anchor) if start else period_for(anchor, wanted)
    with one_run_at_a_time(settings):
        summary = fan_out(settings, wanted, period, timezone)
    report(summary)
    return summary


def one_run_at_a_time(settings: Settings) -> AbstractContextManager[object]:
    """The ``send-digests`` slot on a standing Prefect server, which frees the slot of a run
    that died when its lease runs out. A temporary server (``flows.api``) dies with its run, and
    its slot would outlive it in ``prefect.db``: there the ledger's leases alone keep runs apart."""
    if uses_temporary_server():
        return nullcontext()
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(LIMIT, 1)
    return concurrency(LIMIT, occupy=1, strict=True, lease_duration=settings.send_lease)


def task_runner(settings: Settings) -> TaskRunner[Any]:
    """Where the shards run: threads of this process (default), or Dask (``DIGEST_TASK_RUNNER
    =dask``): the scheduler at ``DIGEST_DASK_ADDRESS``, else an in-process local cluster."""
    if settings.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=settings.send_shards)
    from prefect_dask.task_runners import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": 1,
            "threads_per_worker": settings.send_shards,
            "processes": False,
            "dashboard_address": None,
        }
    )


def fan_out(
    settings: Settings, cadence: Cadence, period: Period, timezone: str | None
) -> SendSummary:
    """One task per shard of subscribers, on the configured task runner; the ledger keeps
    every issue to one send whatever runs where. Rate limits are split between the shards."""
    shards = settings.send_shards
    with task_runner(settings) as runner:
        futures = [
            runner.submit(
                send_batches,
                {
                    "settings": settings,
                    "cadence": cadence,
                    "period": period,
                    "timezone": timezone,
                    "shard": (index, shards),
                },
            )
            for index in range(shards)
        ]
        return SendSummary.combined([future.result() for future in futures])


def newest_day(settings: Settings) -> date:
    newest = newest_listing_day(get_engine(settings.db_url))
    if newest is None:
        raise ConfigError("the store holds no papers yet: run `digest ingest` first")
    return newest


@task(
    cache_policy=NO_CACHE,
    task_run_name="send {cadence.value} digests for {period.label}, shard {shard[0]}",
)
def send_batches(
    settings: Settings,
    cadence: Cadence,
    period: Period,
    timezone: str | None = None,
    shard: tuple[int, int] = (0, 1),
) -> SendSummary:
    runtime = Runtime.from_settings(settings, shards=shard[1])
    return send_all(runtime, period=period, cadence=cadence, bucket=timezone, shard=shard)


def report(summary: SendSummary) -> None:
    """Log and publish the run summary; fail the run if any message failed."""
    get_run_logger().info("send %s", summary)
    failures = "\n".join(f"- {line}" for line in summary.failures[:50]) or "none"
    create_markdown_artifact(
        key="send-summary",
        description=f"send {summary.cadence} {summary.period}",
        markdown=(
            f"## send {summary.cadence} {summary.period}\n\n"
            "| sent | skipped | failed | suppressed | done before | retries |\n"
            "|---|---|---|---|---|---|\n"
            f"| {summary.sent} | {summary.skipped} | {summary.failed} | {summary.suppressed} "
            f"| {summary.earlier} | {summary.retries} |\n\nFailures:\n{failures}\n"
        ),
    )
    if summary.failures:
        raise PartialFailure(f"send {summary.cadence} {summary.period}", summary.failures, summary)
