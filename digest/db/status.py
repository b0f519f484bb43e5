"""``digest status``: the pipeline's health at a glance, read from the store alone (so it works
without a Prefect server): the last ingests, papers per day, subscribers, and deliveries."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from digest.db.models import Delivery, DeliveryStatus, FetchLog, Paper, Subscriber

__all__ = ["Status", "read_status"]


class IngestLine(BaseModel):
    source: str
    listing: str
    status: str
    new: int
    updated: int
    at: datetime
    error: str | None


class DeliveryLine(BaseModel):
    cadence: str
    period_start: date
    period_end: date
    counts: dict[str, int]
    last_sent: datetime | None


class Status(BaseModel):
    newest_day: date | None
    papers_per_day: dict[date, int]
    last_ingests: list[IngestLine]
    subscribers: dict[str, int]
    suppressed: int
    deliveries: list[DeliveryLine]
    recent_errors: list[str]


def read_status(engine: Engine, days: int = 21, runs: int = 8) -> Status:
    """The store's view of the last ``days`` listing days and ``runs`` ingests / send periods."""
    with Session(engine) as session:
        newest = session.exec(select(func.max(Paper.first_listed_on))).one()
        ingests = session.exec(select(FetchLog).order_by(col(FetchLog.id).desc()).limit(runs)).all()
        people = session.exec(
            select(Subscriber.status, func.count()).group_by(col(Subscriber.status))
        ).all()
        suppressed = session.exec(
            select(func.count()).where(col(Subscriber.suppressed_at).is_not(None))
        ).one()
        return Status(
            newest_day=newest,
            papers_per_day=_papers_per_day(session, newest, days),
            last_ingests=[IngestLine.model_validate(i, from_attributes=True) for i in ingests],
            subscribers={str(s): int(n) for s, n in people},
            suppressed=int(suppressed),
            deliveries=_deliveries(session, runs),
            recent_errors=_recent_errors(session),
        )


def _papers_per_day(session: Session, newest: date | None, days: int) -> dict[date, int]:
    """Papers first listed on each of the ``days`` listing days up to ``newest``."""
    if newest is None:
        return {}
    rows = session.exec(
        select(col(Paper.first_listed_on), func.count())
        .where(col(Paper.first_listed_on) >= newest - timedelta(days=days - 1))
        .group_by(col(Paper.first_listed_on))
    ).all()
    return dict(sorted((day, int(n)) for day, n in rows if day is not None))


def _deliveries(session: Session, runs: int) -> list[DeliveryLine]:
    """The ``runs`` newest send periods, each with its rows per status and its last send."""
    periods = session.exec(
        select(col(Delivery.cadence), col(Delivery.period_start), col(Delivery.period_end))
        .distinct()
        .order_by(col(Delivery.period_start).desc())
        .limit(runs)
    ).all()
    lines = []
    for cadence, start, end in periods:
        where = (
            col(Delivery.cadence) == cadence,
            col(Delivery.period_start) == start,
            col(Delivery.period_end) == end,
        )
        counts = session.exec(
            select(Delivery.status, func.count()).where(*where).group_by(col(Delivery.status))
        ).all()
        last = session.exec(select(func.max(Delivery.sent_at)).where(*where)).one()
        lines.append(
            DeliveryLine(
                cadence=str(cadence),
                period_start=start,
                period_end=end,
                counts={str(s): int(n) for s, n in counts},
                last_sent=last,
            )
        )
    return lines


def _recent_errors(session: Session) -> list[str]:
    """The last five errors of deliveries that failed or wait for a retry."""
    errors = session.exec(
        select(Delivery.last_error)
        .where(
            col(Delivery.status).in_([DeliveryStatus.failed, DeliveryStatus.pending]),
            col(Delivery.last_error).is_not(None),
        )
        .order_by(col(Delivery.updated_at).desc())
        .limit(5)
    ).all()
    return [e for e in errors if e]
