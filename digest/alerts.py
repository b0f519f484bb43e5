"""Operator alerts: what a daily run must not keep quiet about, sent through apprise.

The checks are pure (``daily_alerts``); ``notify`` is the only I/O. Alerts go to
``DIGEST_ALERTS`` (any apprise URL: email via ``mailtos://``, Slack, ntfy, ...); without it they
are only logged. A heartbeat ("all well") is sent too when ``DIGEST_HEARTBEAT`` is on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Literal

import apprise
from pydantic import BaseModel

from digest.send_summary import SendSummary

__all__ = ["Alert", "daily_alerts", "notify"]

log = logging.getLogger(__name__)


class Alert(BaseModel):
    level: Literal["failure", "warning", "info"]
    title: str
    body: str


def daily_alerts(
    day: date,
    papers_listed: int,
    ingest_failures: Sequence[str],
    send: SendSummary | None,
    *,
    failure_rate: float,
    heartbeat: bool = False,
) -> list[Alert]:
    """What the operator must hear about after the daily run for ``day``."""
    alerts = []
    if ingest_failures:
        shown = "\n".join(ingest_failures[:10])
        alerts.append(
            Alert(
                level="failure",
                title=f"papers-digest: ingest failed for {day}",
                body=f"{len(ingest_failures)} listing(s) failed after retries:\n{shown}",
            )
        )
    if day.weekday() < 5 and papers_listed == 0:
        alerts.append(
            Alert(
                level="warning",
                title=f"papers-digest: no papers for {day}",
                body=f"{day:%A %d %b %Y} is a weekday, yet no paper is listed for it. Is the "
                "source down or has its format changed?",
            )
        )
    if send is not None:
        attempted = send.sent + send.failed
        if attempted and send.failed / attempted > failure_rate:
            shown = "\n".join(send.failures[:10])
            alerts.append(
                Alert(
                    level="failure",
                    title=f"papers-digest: {send.failed} of {attempted} digests failed",
                    body=f"{send}\n\nAbove the {failure_rate:.0%} threshold. First failures:\n"
                    f"{shown}",
                )
            )
        if send.suppressed:
            alerts.append(
                Alert(
                    level="warning",
                    title=f"papers-digest: {send.suppressed} subscriber(s) suppressed",
                    body="\n".join(f for f in send.failures if "suppressed" in f)
                    or f"{send.suppressed} subscriber(s) reached the hard-bounce limit.",
                )
            )
    if heartbeat and not alerts:
        alerts.append(
            Alert(
                level="info",
                title=f"papers-digest: all well for {day}",
                body=f"{papers_listed} paper(s) listed; {send or 'no digests sent'}.",
            )
        )
    return alerts


def notify(url: str | None, alerts: Sequence[Alert]) -> int:
    """Send each alert to ``url`` (an apprise URL); log them all. Returns how many went out."""
    sent = 0
    for alert in alerts:
        log.log(logging.INFO if alert.level == "info" else logging.WARNING, "%s", alert.title)
        if not url:
            continue
        notifier = apprise.Apprise()
        if not notifier.add(url):
            log.error("alerts: the DIGEST_ALERTS URL is not usable by apprise")
            return sent
        kind = {
            "failure": apprise.NotifyType.FAILURE,
            "warning": apprise.NotifyType.WARNING,
            "info": apprise.NotifyType.INFO,
        }[alert.level]
        if notifier.notify(title=alert.title, body=alert.body, notify_type=kind):
            sent += 1
        else:
            log.error("alerts: could not deliver %r", alert.title)
    return sent
