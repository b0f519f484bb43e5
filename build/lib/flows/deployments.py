"""The deployments, as code: what ``digest serve`` serves and ``deployments/prefect.yaml``
mirrors for a Prefect server with a process work pool.

- ``daily``: one cron schedule per send time zone (``DIGEST_SEND_TIMEZONES``), each at that
  zone's local morning (``DIGEST_DAILY_CRON``) and each sending only to the subscribers whose
  own time zone is nearest to it; the digest covers the newest complete UTC day.
- ``weekly``: ``DIGEST_WEEKLY_CRON`` in the first send zone.
- ``backfill``: no schedule; run by hand with ``start`` and ``end``; ``send`` is false unless
  asked, so a backfill never floods anyone.
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from digest.settings import Settings
from flows.backfill import backfill
from flows.daily import daily, weekly

__all__ = ["deployments"]


def deployments(settings: Settings) -> list[RunnerDeployment]:
    """The three deployments with their schedules, from ``settings``. Parameters are checked
    against each flow's signature when a run is created, so a wrong type is refused before
    any work."""
    zones = settings.zones
    made = [
        daily.to_deployment(
            name="daily",
            schedules=[
                Cron(
                    settings.daily_cron,
                    timezone=zone,
                    parameters={"source": settings.daily_source, "timezone": zone},
                    slug=f"daily-{zone.lower().replace('/', '-')}",
                )
                for zone in zones
            ],
            description="Ingest the newest listings, then send each send zone its daily digests.",
            tags=["papers-digest"],
            enforce_parameter_schema=True,
        ),
        weekly.to_deployment(
            name="weekly",
            schedule=Cron(settings.weekly_cron, timezone=zones[0]),
            description="Send the weekly digests for the current ISO week.",
            tags=["papers-digest"],
            enforce_parameter_schema=True,
        ),
        backfill.to_deployment(
            name="backfill",
            parameters={"send": False},
            description="Ingest a date range by hand (start, end); send=true mails one digest "
            "for the whole range.",
            tags=["papers-digest"],
            enforce_parameter_schema=True,
        ),
    ]
    # to_deployment is sync-compatible: called from sync code it returns the deployment itself
    return [d for d in made if isinstance(d, RunnerDeployment)]
