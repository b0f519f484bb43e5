"""Subscribers and their subscriptions: validated requests in, one transaction each, out as
scoring profiles. An operator adding someone from the CLI or a file confirms them; the web's
double opt-in (later) starts them unconfirmed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from digest.errors import SubscriptionError
from digest.models import Cadence, Subscriber, SubscriberStatus, Subscription, utcnow
from digest.relevance import DEFAULT_STRICTNESS, Strictness
from digest.scoring import Profile
from digest.store import session_scope
from digest.themes import Theme
from digest.tokens import new_link

__all__ = [
    "SubscriberView",
    "SubscriptionRequest",
    "check_request",
    "import_subscribers",
    "list_subscribers",
    "new_subscription",
    "profile_of",
    "subscribe",
    "unsubscribe",
]

MAX_TEXT = 2000


class SubscriptionRequest(BaseModel):
    """What someone asks for: themes and/or a personal profile, with cadence and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    name: str = Field("", max_length=200)
    timezone: str = "UTC"
    themes: tuple[str, ...] = ()
    interest: str = Field("", max_length=MAX_TEXT)
    keywords: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    cadence: Cadence = Cadence.daily
    max_items: int = Field(10, ge=1, le=100)
    strictness: Strictness = DEFAULT_STRICTNESS
    quiet_days: bool | None = Field(
        None, description="a short digest on days with no match; None leaves it as it was"
    )
    channel: str | None = Field(
        None, max_length=2000, description="apprise:URL instead of email; None leaves it"
    )

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("apprise:") and "://" in value):
            raise ValueError("expected apprise:URL, e.g. apprise:ntfy://ntfy.sh/my-topic")
        return value

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return validate_email(value.strip(), check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            raise ValueError(f"{value!r} is not an email address: {exc}") from exc

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone such as Europe/Berlin") from None
        return value

    @field_validator("keywords", "require", "exclude", "authors", "themes")
    @classmethod
    def _words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
        if any(len(v) > 200 for v in cleaned):
            raise ValueError("each entry must be at most 200 characters")
        return cleaned

    @property
    def has_profile(self) -> bool:
        return bool(self.interest.strip() or self.keywords or self.require or self.authors)


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


def request_from(fields: dict[str, Any], where: str) -> SubscriptionRequest:
    """Validate raw fields into a request, or ``SubscriptionError`` naming ``where`` and field."""
    try:
        return SubscriptionRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "request"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SubscriptionError(f"{where}: {field}: {message}") from None


def subscribe(
    engine: Engine,
    request: SubscriptionRequest,
    themes: dict[str, Theme],
    *,
    status: SubscriberStatus = SubscriberStatus.confirmed,
) -> Subscriber:
    """Add the request's subscriptions (creating the subscriber if new), all or nothing."""
    with session_scope(engine) as session:
        return _subscribe(session, request, themes, status)


def _subscribe(
    session: Session,
    request: SubscriptionRequest,
    themes: dict[str, Theme],
    status: SubscriberStatus,
) -> Subscriber:
    check_request(request, themes, where=f"{request.email}: ")
    subscriber = _subscriber(session, request, status)
    existing = session.exec(
        select(Subscription).where(Subscription.subscriber_id == subscriber.id)
    ).all()
    for theme_id in request.themes:
        _add_theme(session, subscriber, theme_id, existing, request)
    if request.has_profile:
        _add_profile(session, subscriber, existing, request)
    return subscriber


def check_request(request: SubscriptionRequest, themes: dict[str, Theme], where: str = "") -> None:
    """Refuse a request that asks for nothing or for a theme outside the catalogue (before
    anything is written); ``where`` prefixes the message."""
    if not request.themes and not request.interest.strip() and not request.keywords:
        raise SubscriptionError(f"{where}give a theme, an interest or a keyword")
    unknown = [t for t in request.themes if t not in themes]
    if unknown:
        raise SubscriptionError(
            f"{where}theme {unknown[0]!r} is not in the catalogue ({', '.join(themes)})"
        )


def _subscriber(
    session: Session, request: SubscriptionRequest, status: SubscriberStatus
) -> Subscriber:
    now = utcnow()
    found = session.exec(select(Subscriber).where(Subscriber.email == request.email)).first()
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


def unsubscribe(engine: Engine, email: str, theme_id: str | None = None) -> None:
    """Stop one theme, or (without ``theme_id``) everything for that address."""
    address = request_from({"email": email}, "unsubscribe").email
    with session_scope(engine) as session:
        subscriber = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
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


def revoke_links(engine: Engine, email: str) -> None:
    """Give the address a new link id: every personal link it was ever sent stops working
    (a forwarded digest, a leaked preferences link); its next digest carries new ones."""
    address = request_from({"email": email}, "revoke-links").email
    with session_scope(engine, "revoking personal links") as session:
        subscriber = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
        if subscriber is None:
            raise SubscriptionError(f"{address}: no such subscriber")
        subscriber.link_id, subscriber.updated_at = new_link(), utcnow()
        session.add(subscriber)


def list_subscribers(engine: Engine) -> list[SubscriberView]:
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


def import_subscribers(engine: Engine, path: Path, themes: dict[str, Theme]) -> int:
    """Load many subscribers from a YAML list or a CSV file, in one transaction: a bad row
    (named by file and row) leaves the store unchanged. Returns how many rows were imported."""
    requests = [request_from(fields, where) for where, fields in _rows(path)]
    with session_scope(engine) as session:
        for request in requests:
            _subscribe(session, request, themes, SubscriberStatus.confirmed)
    return len(requests)


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriptionError(f"{path}: cannot read: {exc}") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        return [(f"{path}:{reader.line_num}", _csv_fields(row)) for row in reader]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SubscriptionError(f"{path}: not valid YAML: {exc}") from exc
    entries = data.get("subscribers") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SubscriptionError(f"{path}: expected a list of subscribers (mappings)")
    return [(f"{path}: subscriber {i}", e) for i, e in enumerate(entries, start=1)]


_LIST_COLUMNS = ("themes", "keywords", "require", "exclude", "authors")


def _csv_fields(row: dict[str, str | None]) -> dict[str, Any]:
    """CSV cells as request fields; list columns are separated by ``;``."""
    fields: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or not value.strip():
            continue
        key = key.strip()
        fields[key] = value.split(";") if key in _LIST_COLUMNS else value.strip()
    return fields


def profile_of(
    subscription: Subscription, themes: dict[str, Theme], titles: Mapping[str, str] = {}
) -> Profile:
    """The scoring profile for one subscription (a theme's, or the personal one). ``titles``
    holds the liked / disliked papers that are not among today's candidates, so feedback on
    an earlier digest still steers today's."""
    base = themes[subscription.theme_id].profile() if subscription.theme_id else Profile()
    return base.extended(
        liked_texts=[titles[k] for k in subscription.liked if k in titles],
        disliked_texts=[titles[k] for k in subscription.disliked if k in titles],
        text=subscription.interest,
        keywords=subscription.keywords,
        require=subscription.require,
        exclude=subscription.exclude,
        authors=subscription.authors,
        liked=subscription.liked,
        disliked=subscription.disliked,
    )
