"""Messages that went out whole but whose server never answered the end: they may or may not
have arrived, so no run sends them again on its own. The operator lists them and reopens the
ones that did not arrive (``digest unconfirmed``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, and_, or_, update
from sqlmodel import col, select

from digest.db.engine import connection_scope, session_scope
from digest.db.models import Cadence, Delivery, DeliveryStatus, Subscriber, utcnow

__all__ = ["NO_REPLY_RECORDED", "UNCONFIRMED_PREFIX", "Unconfirmed", "listed", "reopen"]


UNCONFIRMED_PREFIX = "unconfirmed:"
"""Starts ``provider_reply`` of a message whose acceptance never came back: the server may or
may not have it, so no run sends it again on its own (``reopen`` does, on purpose)."""


@dataclass(frozen=True)
class Unconfirmed:
    """A message that went out whole but whose server never answered."""

    delivery_id: int
    email: str
    issue_id: str
    cadence: Cadence
    period_start: date
    period_end: date
    sent_at: datetime | None
    reply: str

    @property
    def period_label(self) -> str:
        span = f"{self.period_start}"
        return span if self.period_end == self.period_start else f"{span}..{self.period_end}"


_IS_UNCONFIRMED = and_(
    col(Delivery.status) == DeliveryStatus.sent,
    or_(
        col(Delivery.provider_reply).startswith(UNCONFIRMED_PREFIX),
        col(Delivery.provider_reply).is_(None),  # the run stopped before it could record one
    ),
)
NO_REPLY_RECORDED = f"{UNCONFIRMED_PREFIX} no reply recorded (the run stopped before keeping it)"


def listed(engine: Engine) -> list[Unconfirmed]:
    """Every message sent with no answer from its server, oldest first, for the operator: the
    server never answered the end of it, or the run was killed before keeping the answer (a
    run still going lists its last few messages here until it records them)."""
    with session_scope(engine, "listing unconfirmed deliveries") as session:
        found = session.exec(
            select(Delivery, Subscriber.email)
            .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
            .where(_IS_UNCONFIRMED)
            .order_by(col(Delivery.sent_at), col(Delivery.id))
        ).all()
        return [
            Unconfirmed(
                delivery_id=row.id or 0,
                email=email,
                issue_id=row.issue_id,
                cadence=Cadence(row.cadence),
                period_start=row.period_start,
                period_end=row.period_end,
                sent_at=row.sent_at,
                reply=row.provider_reply or NO_REPLY_RECORDED,
            )
            for row, email in found
        ]


def reopen(engine: Engine, delivery_ids: Iterable[int]) -> int:
    """Make unconfirmed messages pending again, so the next send run of their period sends
    them: the operator's deliberate choice, after checking they did not arrive. Rows that are
    not (or no longer) unconfirmed are left alone. Returns how many were reopened."""
    ids = list(delivery_ids)
    if not ids:
        return 0
    with connection_scope(engine, "reopening unconfirmed deliveries") as connection:
        return int(
            connection.execute(
                update(Delivery)
                .where(col(Delivery.id).in_(ids), _IS_UNCONFIRMED)
                .values(
                    status=DeliveryStatus.pending,
                    provider_reply=None,
                    sent_at=None,
                    claim=None,
                    lease_until=None,
                    last_error="reopened by the operator after an unconfirmed ending",
                    updated_at=utcnow(),
                )
            ).rowcount
        )
