"""Subscribers and their subscriptions: rows in from validated requests, out as views.

Validation (``digest.requests``) and the theme catalogue check happen before anything here
runs; these functions only write and read rows, one transaction each (``add`` takes a
session, so an import adds many requests in one).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Engine
from sqlmodel import Session, col, select

from digest.db.engine import session_scope
from digest.db.models import Cadence, Subscriber, SubscriberStatus, Subscription, utcnow
from digest.errors import SubscriptionError
from digest.requests import SubscriptionRequest
from digest.tokens import new_link

__all__ = [
    "SubscriberView",
    "active_subscriptions",
    "add",
    "add_all",
    "by_email",
    "due_ids",
    "due_sections",
    "due_subscribers",
    "list_all",
    "new_subscription",
    "revoke_links",
    "subscriptions_of",
    "unsubscribe",
]


class SubscriberView(BaseModel):
    """A subscriber with their subscriptions, for listing and export."""

    email: str
    name: str
    timezone: str
    status: str
    quiet_days: bool
    channel: str = Field(description="email, or the apprise service (its URL holds secrets)")
    suppressed: bool
    subscriptions: list[dict[str, Any]]


def by_email(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this (normalised) address, if any: the one lookup by address."""
    return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def subscriptions_of(session: Session, subscriber: Subscriber) -> list[Subscription]:
    """All of the subscriber's subscriptions, active or not, in the order they were made."""
    return list(
        session.exec(
            select(Subscription)
            .where(Subscription.subscriber_id == subscriber.id)
            .order_by(col(Subscription.id))
        ).all()
    )


def add_all(
    engine: Engine, requests: Sequence[SubscriptionRequest], status: SubscriberStatus
) -> Subscriber | None:
    """Add every request's subscriptions in one transaction, all or nothing; the last
    subscriber written (None for no requests)."""
    last = None
    with session_scope(engine) as session:
        for request in requests:
            last = add(session, request, status)
    return last


def add(session: Session, request: SubscriptionRequest, status: SubscriberStatus) -> Subscriber:
    """Add the request's subscriptions, creating the subscriber if new."""
    subscriber = _subscriber(session, request, status)
    existing = subscriptions_of(session, subscriber)
    for theme_id in request.themes:
        _add_theme(session, subscriber, theme_id, existing, request)
    if request.has_profile:
        _add_profile(session, subscriber, existing, request)
    return subscriber


def _subscriber(
    session: Session, request: SubscriptionRequest, status: SubscriberStatus
) -> Subscriber:
    now = utcnow()
    found = by_email(session, request.email)
    if found is None:
        found = Subscriber(
            email=request.email,
            name=request.name,
            timezone=request.timezone,
            status=status,
            quiet_days=bool(request.quiet_days),
            channel=request.channel,
            created_at=now,
            updated_at=now,
        )
    else:
        if request.quiet_days is not None:
            found.quiet_days = request.quiet_days
        if request.channel is not None:
            found.channel = request.channel
        if found.status == SubscriberStatus.unsubscribed:
            found.status = status
        found.name = request.name or found.name
        found.timezone = request.timezone if request.timezone != "UTC" else found.timezone
        found.updated_at = now
    session.add(found)
    session.flush()
    return found


def _add_theme(
    session: Session,
    subscriber: Subscriber,
    theme_id: str,
    existing: Iterable[Subscription],
    request: SubscriptionRequest,
) -> None:
    same = next((s for s in existing if s.theme_id == theme_id), None)
    if same is not None and same.active:
        raise SubscriptionError(f"{subscriber.email}: already subscribed to theme {theme_id!r}")
    row = same or new_subscription(subscriber, request, theme_id=theme_id)
    row.active = True
    row.cadence, row.max_items, row.strictness = (
        request.cadence,
        request.max_items,
        request.strictness.value,
    )
    session.add(row)


def _add_profile(
    session: Session,
    subscriber: Subscriber,
    existing: Iterable[Subscription],
    request: SubscriptionRequest,
) -> None:
    row = new_subscription(subscriber, request, theme_id=None)
    for other in existing:
        if other.theme_id is None and other.active and _same_profile(other, row):
            raise SubscriptionError(f"{subscriber.email}: already has this interest profile")
    session.add(row)


def new_subscription(
    subscriber: Subscriber, request: SubscriptionRequest, theme_id: str | None
) -> Subscription:
    assert subscriber.id is not None
    personal = theme_id is None
    return Subscription(
        subscriber_id=subscriber.id,
        theme_id=theme_id,
        interest=request.interest.strip() if personal else "",
        keywords=list(request.keywords) if personal else [],
        require=list(request.require) if personal else [],
        exclude=list(request.exclude) if personal else [],
        authors=list(request.authors) if personal else [],
        liked=[],
        disliked=[],
        cadence=request.cadence,
        max_items=request.max_items,
        strictness=request.strictness.value,
        created_at=utcnow(),
    )


def _same_profile(one: Subscription, other: Subscription) -> bool:
    fields = ("interest", "keywords", "require", "exclude", "authors")
    return all(getattr(one, f) == getattr(other, f) for f in fields)


def unsubscribe(engine: Engine, address: str, theme_id: str | None = None) -> None:
    """Stop one theme, or (without ``theme_id``) everything for that (normalised) address."""
    with session_scope(engine) as session:
        subscriber = by_email(session, address)
        if subscriber is None:
            raise SubscriptionError(f"{address}: no such subscriber")
        rows = session.exec(
            select(Subscription).where(Subscription.subscriber_id == subscriber.id)
        ).all()
        if theme_id is None:
            subscriber.status = SubscriberStatus.unsubscribed
            subscriber.updated_at = utcnow()
            session.add(subscriber)
            return
        match = [r for r in rows if r.theme_id == theme_id and r.active]
        if not match:
            raise SubscriptionError(f"{address}: not subscribed to theme {theme_id!r}")
        match[0].active = False
        session.add(match[0])


def revoke_links(engine: Engine, address: str) -> None:
    """Give the (normalised) address a new link id: every personal link it was ever sent
    stops working (a forwarded digest, a leaked preferences link); its next digest carries
    new ones."""
    with session_scope(engine, "revoking personal links") as session:
        subscriber = by_email(session, address)
        if subscriber is None:
            raise SubscriptionError(f"{address}: no such subscriber")
        subscriber.link_id, subscriber.updated_at = new_link(), utcnow()
        session.add(subscriber)


def list_all(engine: Engine) -> list[SubscriberView]:
    """Every subscriber with their subscriptions, by address."""
    with Session(engine) as session:
        people = session.exec(select(Subscriber).order_by(col(Subscriber.email))).all()
        rows = session.exec(select(Subscription).order_by(col(Subscription.id))).all()
    by_person: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_person.setdefault(row.subscriber_id, []).append(
            row.model_dump(mode="json", exclude={"id", "subscriber_id", "created_at"})
        )
    return [
        SubscriberView(
            email=p.email,
            name=p.name,
            timezone=p.timezone,
            status=p.status.value,
            quiet_days=p.quiet_days,
            channel=p.channel.removeprefix("apprise:").split("://")[0] if p.channel else "email",
            suppressed=p.suppressed_at is not None,
            subscriptions=by_person.get(p.id or -1, []),
        )
        for p in people
    ]


def due_subscribers(
    engine: Engine, cadence: Cadence, among: Collection[int] | None = None
) -> list[tuple[Subscriber, list[Subscription]]]:
    """Confirmed, unsuppressed, unpaused subscribers with active subscriptions of ``cadence``,
    each with those subscriptions, by id; with ``among``, only those ids (a send run loads
    one batch at a time: see ``due_ids``)."""
    with Session(engine) as session:
        query = select(Subscriber).where(*_due())
        rows = select(Subscription).where(
            col(Subscription.active), col(Subscription.cadence) == cadence
        )
        if among is not None:
            query = query.where(col(Subscriber.id).in_(sorted(among)))
            rows = rows.where(col(Subscription.subscriber_id).in_(sorted(among)))
        people = session.exec(query.order_by(col(Subscriber.id))).all()
        found = session.exec(rows.order_by(col(Subscription.id))).all()
    by_person: dict[int, list[Subscription]] = {}
    for row in found:
        by_person.setdefault(row.subscriber_id, []).append(row)
    return [(p, by_person[p.id]) for p in people if p.id in by_person]


def due_ids(engine: Engine, cadence: Cadence) -> list[tuple[int, str]]:
    """``(id, timezone)`` of every subscriber ``due_subscribers`` would return, by id: enough
    to split a run into shards, time-zone buckets and batches before loading anyone whole."""
    has = (
        select(Subscription.subscriber_id)
        .where(col(Subscription.active), col(Subscription.cadence) == cadence)
        .distinct()
    )
    query = select(Subscriber.id, Subscriber.timezone).where(*_due(), col(Subscriber.id).in_(has))
    with Session(engine) as session:
        return [(i or 0, zone) for i, zone in session.exec(query.order_by(col(Subscriber.id)))]


def _due() -> tuple[ColumnElement[bool], ...]:
    return (
        col(Subscriber.status) == SubscriberStatus.confirmed,
        col(Subscriber.suppressed_at).is_(None),
        ~col(Subscriber.paused),
    )


def due_sections(engine: Engine, cadence: Cadence, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """``columns`` of every active ``cadence`` subscription of a due subscriber: what an
    embedding pass ahead of a send run reads, without loading anyone whole."""
    due = select(Subscriber.id).where(*_due())
    query = select(*(getattr(Subscription, name) for name in columns)).where(
        col(Subscription.active),
        col(Subscription.cadence) == cadence,
        col(Subscription.subscriber_id).in_(due),
    )
    with Session(engine) as session:
        return [tuple(row) for row in session.exec(query).all()]


def active_subscriptions(engine: Engine, email: str) -> tuple[Subscriber, list[Subscription]]:
    """The subscriber and their active subscriptions, or ``SubscriptionError`` saying why
    nothing would be sent to them."""
    address = email.strip().lower()
    with Session(engine) as session:
        subscriber = by_email(session, address)
        if subscriber is None:
            raise SubscriptionError(f"{address}: no such subscriber")
        if subscriber.status == SubscriberStatus.unsubscribed:
            raise SubscriptionError(f"{address}: unsubscribed; nothing would be sent")
        rows = session.exec(
            select(Subscription)
            .where(Subscription.subscriber_id == subscriber.id, col(Subscription.active))
            .order_by(col(Subscription.id))
        ).all()
    if not rows:
        raise SubscriptionError(f"{address}: no active subscriptions")
    return subscriber, list(rows)
