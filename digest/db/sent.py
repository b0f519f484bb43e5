"""What the ledger says was sent, for the parts that read it: the papers each subscriber
already had (assembly leaves them out), a sent issue's contents (its "view in browser" page),
rows another run still holds, and where a catch-up starts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from digest.db.models import Cadence, Delivery, DeliveryStatus, Subscriber

__all__ = ["SentIssue", "held_by_others", "last_period_end", "sent_issue", "sent_papers"]


def sent_papers(
    engine: Engine, subscriber_ids: Iterable[int], except_issues: Iterable[str] = ()
) -> dict[int, set[str]]:
    """Every paper already sent to each subscriber (what assembly subtracts), leaving out the
    issues being (re)built now."""
    ids, skip = list(subscriber_ids), set(except_issues)
    found: dict[int, set[str]] = {i: set() for i in ids}
    if not ids:
        return found
    query = select(Delivery.subscriber_id, Delivery.issue_id, Delivery.paper_keys).where(
        col(Delivery.subscriber_id).in_(ids), col(Delivery.status) == DeliveryStatus.sent
    )
    with Session(engine) as session:
        for subscriber_id, issue_id, keys in session.exec(query).all():
            if issue_id not in skip:
                found[subscriber_id].update(keys)
    return found


def held_by_others(
    engine: Engine, cadence: Cadence, start: date, end: date
) -> tuple[int, datetime | None]:
    """Rows of this period still ``sending`` under someone's lease, and when the first lease
    ends: a rerun after a crash waits for those, then takes them over."""
    query = select(func.count(), func.min(Delivery.lease_until)).where(
        col(Delivery.cadence) == cadence,
        col(Delivery.period_start) == start,
        col(Delivery.period_end) == end,
        col(Delivery.status) == DeliveryStatus.sending,
    )
    with Session(engine) as session:
        count, first = session.exec(query).one()
    return int(count), first


@dataclass(frozen=True)
class SentIssue:
    """A sent issue as its web page needs it: whose, which period, and what it held."""

    email: str
    link_id: str
    cadence: Cadence
    period_start: date
    period_end: date
    contents: dict[str, Any]


def sent_issue(engine: Engine, issue_id: str) -> SentIssue | None:
    """The sent issue named ``issue_id`` with what it held; None for an unknown, unsent or
    unrecorded one (and for every issue of a deleted subscriber)."""
    query = (
        select(Delivery, Subscriber.email, Subscriber.link_id)
        .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
        .where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.sent)
    )
    with Session(engine) as session:
        found = session.exec(query).first()
    if found is None:
        return None
    row, email, link_id = found
    if row.contents is None:  # sent before issues recorded what they held
        return None
    return SentIssue(
        email=email,
        link_id=link_id,
        cadence=row.cadence,
        period_start=row.period_start,
        period_end=row.period_end,
        contents=row.contents,
    )


def last_period_end(engine: Engine, cadence: Cadence) -> date | None:
    """The end of the newest period a run of ``cadence`` planned: where a catch-up starts."""
    query = select(func.max(Delivery.period_end)).where(col(Delivery.cadence) == cadence)
    with Session(engine) as session:
        found: date | None = session.exec(query).one()
    return found
