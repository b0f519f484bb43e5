"""A subscriber's own account, as the web app changes it: double opt-in sign-up, confirmation,
preferences, pause, feedback votes and unsubscribe (export and deletion: ``privacy``). Each
operation is one transaction keyed by the (already verified) address; nothing here knows
about HTTP.

A sign-up never changes a confirmed subscriber (anyone can type any address into a form): it
only asks for a "manage your subscription" email, and at most one email per address goes out
per ``resend_after``, whatever the form is sent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.db.engine import session_scope
from digest.db.models import (
    Cadence,
    Feedback,
    Paper,
    Subscriber,
    SubscriberStatus,
    Subscription,
    aware,
    utcnow,
)
from digest.db.subscribers import by_email, new_subscription, subscriptions_of
from digest.errors import StoreError, SubscriptionError
from digest.relevance import DEFAULT_STRICTNESS, Strictness
from digest.requests import Preferences, SubscriptionRequest, check_request
from digest.themes import Theme

__all__ = [
    "Account",
    "ConfirmOutcome",
    "Preferences",
    "SignUp",
    "Vote",
    "account",
    "confirm",
    "email_for_link",
    "leave",
    "link_for",
    "paper_title",
    "record_feedback",
    "sign_up",
    "sign_up_failed",
    "update_preferences",
]

log = logging.getLogger(__name__)

MAX_VOTES = 200
"""Liked / disliked papers kept per subscription (the newest); older votes age out."""


class Vote(StrEnum):
    more = "more"
    less = "less"


class Account(BaseModel):
    """A subscriber as their preferences page shows them."""

    email: str
    status: SubscriberStatus
    preferences: Preferences
    votes: int


class SignUp(BaseModel):
    """What a sign-up did: which email to send now, if any (``confirm`` or ``manage``)."""

    email: str
    send: str | None
    at: datetime | None = None


class ConfirmOutcome(StrEnum):
    confirmed = "confirmed"
    already = "already"
    stale = "stale"
    """The link is older than the latest sign-up email, or the address has left since."""


def sign_up(
    engine: Engine,
    request: SubscriptionRequest,
    themes: dict[str, Theme],
    resend_after: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> SignUp:
    """Record a web sign-up (unconfirmed) and say whether to email the address now."""
    now = now or utcnow()
    check_request(request, themes)
    try:
        with session_scope(engine) as session:
            found = by_email(session, request.email)
            throttled = found is not None and _recent(found.confirm_sent_at, now, resend_after)
            if found is not None and found.status == SubscriberStatus.confirmed:
                send = None if throttled else "manage"
            else:
                send = None if throttled else "confirm"
                found = _pending(session, found, request, now)
            if send is not None:
                found.confirm_sent_at = now
                session.add(found)
    except StoreError as exc:
        if not isinstance(exc.__cause__, IntegrityError):
            raise
        # the same address signing up twice at once: the other request won and sends the email
        return SignUp(email=request.email, send=None)
    return SignUp(email=request.email, send=send, at=now if send else None)


def sign_up_failed(engine: Engine, email: str, at: datetime) -> None:
    """The sign-up email could not be sent: let the next attempt send it at once."""
    with session_scope(engine) as session:
        found = by_email(session, email)
        if found is None or found.confirm_sent_at is None:
            return
        if aware(found.confirm_sent_at) == aware(at):  # SQLite gives it back naive
            found.confirm_sent_at = None
            session.add(found)


def confirm(engine: Engine, email: str, issued_at: datetime) -> ConfirmOutcome:
    """Confirm ``email`` from a link made at ``issued_at``; a replay changes nothing."""
    with session_scope(engine) as session:
        found = by_email(session, email)
        if found is None or found.status == SubscriberStatus.unsubscribed:
            return ConfirmOutcome.stale
        if found.status == SubscriberStatus.confirmed:
            return ConfirmOutcome.already
        sent = found.confirm_sent_at
        if sent is not None and issued_at < aware(sent).replace(microsecond=0):
            return ConfirmOutcome.stale
        found.status = SubscriberStatus.confirmed
        found.confirmed_at = found.updated_at = utcnow()
        session.add(found)
        return ConfirmOutcome.confirmed


def account(engine: Engine, email: str) -> Account | None:
    """The subscriber's account, or None when there is none (deleted, never existed)."""
    with Session(engine) as session:
        found = by_email(session, email)
        if found is None:
            return None
        rows = subscriptions_of(session, found)
        votes = len(
            session.exec(select(Feedback.id).where(Feedback.subscriber_id == found.id)).all()
        )
    active = [r for r in rows if r.active]
    profile = next((r for r in active if r.theme_id is None), None)
    first = active[0] if active else None
    return Account(
        email=found.email,
        status=found.status,
        votes=votes,
        preferences=Preferences(
            themes=tuple(r.theme_id for r in active if r.theme_id),
            interest=profile.interest if profile else "",
            keywords=tuple(profile.keywords) if profile else (),
            require=tuple(profile.require) if profile else (),
            exclude=tuple(profile.exclude) if profile else (),
            cadence=first.cadence if first else Cadence.daily,
            max_items=first.max_items if first else 10,
            strictness=Strictness(first.strictness) if first else DEFAULT_STRICTNESS,
            paused=found.paused,
            quiet_days=found.quiet_days,
        ),
    )


def update_preferences(
    engine: Engine, email: str, preferences: Preferences, themes: dict[str, Theme]
) -> None:
    """Make the subscriber's subscriptions match ``preferences``, all or nothing. Saving
    from the emailed link also (re)subscribes someone who had left."""
    check_request(preferences, themes)
    personal = preferences.personal
    with session_scope(engine) as session:
        found = _require(session, email)
        rows = subscriptions_of(session, found)
        liked, disliked = _votes(session, found)
        wanted: list[Subscription] = []
        for theme_id in preferences.themes:
            row = next((r for r in rows if r.theme_id == theme_id), None)
            wanted.append(row or _fresh(found, theme_id, liked, disliked))
        if personal:
            row = next((r for r in rows if r.theme_id is None and r.active), None)
            row = row or _fresh(found, None, liked, disliked)
            row.interest = preferences.interest.strip()
            row.keywords, row.require = list(preferences.keywords), list(preferences.require)
            row.exclude = list(preferences.exclude)
            wanted.append(row)
        for row in rows:
            row.active = False
            session.add(row)
        for row in wanted:
            row.active, row.cadence = True, preferences.cadence
            row.max_items, row.strictness = preferences.max_items, preferences.strictness.value
            session.add(row)
        found.paused, found.quiet_days = preferences.paused, preferences.quiet_days
        if found.status != SubscriberStatus.confirmed:  # the link proved the mailbox is theirs
            found.status, found.confirmed_at = SubscriberStatus.confirmed, utcnow()
        found.updated_at = utcnow()
        session.add(found)


def leave(engine: Engine, email: str) -> bool:
    """Unsubscribe ``email`` from everything; False if it was not subscribed (idempotent)."""
    with session_scope(engine) as session:
        found = by_email(session, email)
        if found is None or found.status == SubscriberStatus.unsubscribed:
            return False
        found.status = SubscriberStatus.unsubscribed
        found.updated_at = utcnow()
        session.add(found)
        return True


def paper_title(engine: Engine, key: str) -> str | None:
    with Session(engine) as session:
        title: str | None = session.exec(select(Paper.title).where(Paper.key == key)).first()
    return title


def record_feedback(engine: Engine, email: str, paper_key: str, vote: Vote) -> bool:
    """Record "more / less like this" and move every subscription's profile with it: the
    paper joins its liked (or disliked) examples, leaving the other list. False when the
    paper or the subscriber is unknown."""
    with session_scope(engine) as session:
        found = by_email(session, email)
        exists = session.exec(select(Paper.id).where(Paper.key == paper_key)).first()
        if found is None or found.id is None or exists is None:
            return False
        row = session.exec(
            select(Feedback).where(
                Feedback.subscriber_id == found.id, Feedback.paper_key == paper_key
            )
        ).first()
        row = row or Feedback(subscriber_id=found.id, paper_key=paper_key, vote=vote.value)
        row.vote, row.at = vote.value, utcnow()
        session.add(row)
        for subscription in subscriptions_of(session, found):
            keep, drop = (
                (subscription.liked, subscription.disliked)
                if vote is Vote.more
                else (subscription.disliked, subscription.liked)
            )
            kept = [k for k in keep if k != paper_key][-(MAX_VOTES - 1) :] + [paper_key]
            dropped = [k for k in drop if k != paper_key]
            if vote is Vote.more:
                subscription.liked, subscription.disliked = kept, dropped
            else:
                subscription.disliked, subscription.liked = kept, dropped
            session.add(subscription)
        return True


def _pending(
    session: Session, found: Subscriber | None, request: SubscriptionRequest, now: datetime
) -> Subscriber:
    """The unconfirmed subscriber with exactly the request's subscriptions (a later sign-up
    before confirming replaces an earlier one: the newest form is what they meant)."""
    if found is None:
        found = Subscriber(email=request.email, created_at=now, updated_at=now)
    found.status, found.updated_at = SubscriberStatus.unconfirmed, now
    found.name = request.name or found.name
    found.timezone = request.timezone
    found.quiet_days = bool(request.quiet_days)
    session.add(found)
    session.flush()
    session.exec(delete(Subscription).where(col(Subscription.subscriber_id) == found.id))
    for theme_id in request.themes:
        session.add(new_subscription(found, request, theme_id=theme_id))
    if request.has_profile:
        session.add(new_subscription(found, request, theme_id=None))
    return found


def _fresh(
    subscriber: Subscriber, theme_id: str | None, liked: list[str], disliked: list[str]
) -> Subscription:
    request = SubscriptionRequest(email=subscriber.email)
    row = new_subscription(subscriber, request, theme_id=theme_id)
    row.liked, row.disliked = list(liked), list(disliked)
    return row


def _votes(session: Session, subscriber: Subscriber) -> tuple[list[str], list[str]]:
    votes = session.exec(
        select(Feedback).where(Feedback.subscriber_id == subscriber.id).order_by(col(Feedback.at))
    ).all()
    liked = [v.paper_key for v in votes if v.vote == Vote.more][-MAX_VOTES:]
    disliked = [v.paper_key for v in votes if v.vote == Vote.less][-MAX_VOTES:]
    return liked, disliked


def email_for_link(engine: Engine, link_id: str) -> str | None:
    """The address whose personal links carry ``link_id`` (None once revoked or deleted)."""
    with Session(engine) as session:
        found = session.exec(select(Subscriber.email).where(Subscriber.link_id == link_id))
        return found.first()


def link_for(engine: Engine, email: str) -> str | None:
    """The link id that ``email``'s personal links carry (None for an unknown address)."""
    with Session(engine) as session:
        found = session.exec(select(Subscriber.link_id).where(Subscriber.email == email))
        return found.first()


def _require(session: Session, email: str) -> Subscriber:
    found = by_email(session, email)
    if found is None:
        raise SubscriptionError(f"{email}: no such subscriber")
    return found


def _recent(moment: datetime | None, now: datetime, window: timedelta) -> bool:
    return moment is not None and now - aware(moment) < window
