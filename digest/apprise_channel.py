"""The chat and push channel (Slack, Discord, Telegram, Matrix, ntfy, ...) through apprise.
Never email: apprise's email plugin drops the text part's links and cannot carry a personal
``List-Unsubscribe``, so mail goes through ``digest.smtp``."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import apprise

from digest.delivery import Commit, describe
from digest.errors import ConfigError, TransientDeliveryError
from digest.mime import RenderedEmail

__all__ = ["AppriseDeliverer"]

log = logging.getLogger(__name__)


class AppriseDeliverer:
    """Any apprise URL except email: the digest's plain text, titled with its subject."""

    name = "apprise"
    findable = False

    def __init__(self, url: str) -> None:
        self._url = url
        self._apprise = apprise.Apprise()
        if urlsplit(url).scheme in ("mailto", "mailtos") or not self._apprise.add(url):
            raise ConfigError(
                f"apprise URL {describe(url)}: not usable (email goes through smtp://, "
                "other channels through apprise)"
            )

    def already_delivered(self, email: RenderedEmail, issue_id: str) -> bool:
        return False

    def deliver(self, email: RenderedEmail, issue_id: str, commit: Commit) -> str:
        ok = self._apprise.notify(
            body=email.text, title=email.subject, body_format=apprise.NotifyFormat.TEXT
        )
        if not ok:
            raise TransientDeliveryError(email.to, f"{describe(self._url)} refused the message")
        if not commit():
            log.warning("%s: sent, but another run had taken the row over", email.to)
        return f"accepted by {describe(self._url)}"

    def reset(self) -> None:
        return None

    def close(self) -> None:
        return None
