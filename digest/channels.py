"""The deliverer a ``delivery`` channel setting names. Apart from the channels themselves so
each of them depends only on the protocol in ``digest.delivery``, never on its siblings."""

from __future__ import annotations

from pathlib import Path

from digest.apprise_channel import AppriseDeliverer
from digest.delivery import Deliverer, describe
from digest.errors import ConfigError
from digest.outbox import OutboxDeliverer
from digest.smtp import SmtpDeliverer

__all__ = ["deliverer_for"]


def deliverer_for(channel: str, outbox: Path, timeout: float = 30.0) -> Deliverer:
    """The deliverer a channel setting names: ``outbox``, ``smtp[s]://...`` or ``apprise:URL``."""
    if channel == "outbox":
        return OutboxDeliverer(outbox)
    if channel.startswith(("smtp://", "smtps://")):
        return SmtpDeliverer(channel, timeout=timeout)
    if channel.startswith("apprise:"):
        return AppriseDeliverer(channel.removeprefix("apprise:"))
    raise ConfigError(
        f"delivery channel {describe(channel)}: expected outbox, smtp://..., smtps://... "
        "or apprise:URL"
    )
