"""Channels that carry a rendered digest out: the outbox folder, SMTP, and apprise.

Every ``Deliverer`` takes a ``commit`` callback and calls it at its point of no return; the
send run marks the ledger row ``sent`` there. Where that point sits is what makes a crash safe:

- **outbox** writes ``<issue>.eml`` atomically and commits after; a crash in between leaves a
  file the next run finds (``already_delivered``) and only records.
- **SMTP** sends the whole message but the final ``.``, checks the server is still there,
  commits, then sends the ``.``: the server cannot accept a message the ledger does not already
  call sent, and a crash before the commit drops the connection mid-DATA, so the server discards
  it and the next run sends it again. Only a crash in the window between the commit and
  handing ``.`` to the kernel (microseconds; longer when the process waits for CPU or the GIL)
  loses a message, one per worker at most, and its row stays ``sent`` with no server reply;
  none can duplicate one. A 4xx/5xx answer to
  the ``.`` reopens the row (retry or bounce); no answer at all (timeout, dropped connection)
  leaves it sent but ``unconfirmed``, because the server may have kept it.
- **apprise** (Slack, Discord, Telegram, Matrix, ntfy, ...) has no such step: it commits after
  apprise reports success, so a crash right then may repeat that one notification.

Email never goes through apprise: its email plugin drops the plain-text part's links and cannot
carry a per-subscriber ``List-Unsubscribe``, so mail goes through ``SmtpDeliverer`` and apprise
serves the other channels.

This module is the protocol they share; the channels are ``digest.outbox``, ``digest.smtp``
and ``digest.apprise_channel``, and ``digest.channels`` picks one from a setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from digest.db.unconfirmed import UNCONFIRMED_PREFIX
from digest.mime import RenderedEmail

__all__ = ["Commit", "Deliverer", "LeaseLost", "UNCONFIRMED", "describe", "reason_of"]

Commit = Callable[[], bool]
"""Called once, at the point of no return; False means "stop: this row is no longer yours"."""

UNCONFIRMED = UNCONFIRMED_PREFIX
"""Starts the reply of a message whose acceptance never came back (see ``SmtpDeliverer``)."""


class Deliverer(Protocol):
    """One channel, used by one worker thread at a time (connections are reused)."""

    name: str
    findable: bool
    """Whether ``already_delivered`` always finds what it delivered (the outbox's files):
    then a crash before the ledger hears of a delivery loses nothing, and the send run may
    record a chunk of them at once instead of committing each before it goes out."""

    def already_delivered(self, email: RenderedEmail, issue_id: str) -> bool:
        """Whether an earlier, interrupted attempt did get this issue out (where knowable)."""

    def deliver(self, email: RenderedEmail, issue_id: str, commit: Commit) -> str:
        """Send ``email``; return the channel's acceptance. Raises ``TransientDeliveryError``
        (retry later) or ``PermanentDeliveryError`` (a hard bounce)."""

    def reset(self) -> None:
        """Drop any connection: an error nobody foresaw left it in an unknown state."""

    def close(self) -> None: ...


class LeaseLost(Exception):  # noqa: N818  (control flow, not an error to report)
    """The ledger row went to another run before the point of no return: nothing was sent."""


def reason_of(exc: BaseException) -> str:
    """An exception in one line: its type, and its words when it has any."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def describe(url: str) -> str:
    """A channel URL fit for logs: no password, no query (tokens live there)."""
    if "://" not in url:
        return url.split(":", 1)[0] + (":…" if ":" in url else "")
    parts = urlsplit(url.removeprefix("apprise:"))
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    prefix = "apprise:" if url.startswith("apprise:") else ""
    return f"{prefix}{parts.scheme}://{user}{host}{port}"
