"""The named states and kinds that the store, the requests and the send run share: plain
enums, so modules that never touch the database can use them."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Cadence", "DeliveryStatus", "SubscriberStatus"]


class Cadence(StrEnum):
    """How often a subscription is sent."""

    daily = "daily"
    weekly = "weekly"


class SubscriberStatus(StrEnum):
    """A subscriber's lifecycle: double opt-in, then confirmed until they leave."""

    unconfirmed = "unconfirmed"
    confirmed = "confirmed"
    unsubscribed = "unsubscribed"


class DeliveryStatus(StrEnum):
    """A digest issue's way out: claimed rows are ``sending``; only ``sent`` counts as sent."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"
