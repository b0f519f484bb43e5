"""Database tables (SQLModel). The schema is created and changed only by Alembic migrations
in ``digest/migrations``; a test checks these classes and the migrations agree.

One ``Paper`` row per paper, keyed by the arXiv id when known, else by a title fingerprint; one
``Sighting`` row per paper per listing, so a paper trending again adds a sighting, not a paper.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from digest.kinds import Cadence, DeliveryStatus, SubscriberStatus
from digest.tokens import new_link

__all__ = [
    "Cadence",
    "Delivery",
    "DeliveryStatus",
    "Feedback",
    "FetchLog",
    "HttpValidator",
    "Paper",
    "Sighting",
    "Subscriber",
    "SubscriberStatus",
    "Subscription",
    "aware",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; every moment we store is
    UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _moment(nullable: bool = True) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class Paper(SQLModel, table=True):
    """A paper, merged across every source and listing that showed it."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64, description="arXiv id, else 'title:<hash>'")
    arxiv_id: str | None = Field(default=None, unique=True, max_length=32)
    title_key: str = Field(index=True, max_length=512)
    abstract_key: str = Field(default="", max_length=16)
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    author_count: int | None = None
    org_slug: str | None = Field(default=None, max_length=200)
    org_name: str | None = Field(default=None, max_length=300)
    published_on: date | None = None
    submitted_on_daily_at: datetime | None = Field(default=None, sa_column=_moment())
    submitted_by: str | None = Field(default=None, max_length=200)
    upvotes: int | None = None
    num_comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    thumbnail: str | None = None
    withdrawn_at: datetime | None = Field(default=None, sa_column=_moment())
    first_listed_on: date | None = Field(default=None, index=True)
    last_listed_on: date | None = Field(default=None, index=True)
    counters_at: datetime | None = Field(default=None, sa_column=_moment())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_moment(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_moment(nullable=False))


class Sighting(SQLModel, table=True):
    """A paper in one listing, with the counters it had there."""

    __table_args__ = (
        UniqueConstraint("paper_id", "source", "listing"),
        Index("ix_sighting_listed_on", "listed_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="paper.id", index=True, ondelete="CASCADE")
    source: str = Field(max_length=32)
    listing: str
    listed_on: date | None = None
    rank: int | None = None
    upvotes: int | None = None
    num_comments: int | None = None
    observed_at: datetime = Field(sa_column=_moment(nullable=False))


class HttpValidator(SQLModel, table=True):
    """ETag / Last-Modified from the last 200 for a URL, for conditional GETs."""

    url: str = Field(primary_key=True)
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    item_count: int | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_moment(nullable=False))


class FetchLog(SQLModel, table=True):
    """One row per page ingested or failed: what the operator reads in ``digest status``."""

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    listing: str = Field(index=True)
    location: str
    status: str = Field(max_length=16, description="stored | not-modified | failed")
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    at: datetime = Field(default_factory=utcnow, sa_column=_moment(nullable=False))


class Subscriber(SQLModel, table=True):
    """A person who receives digests."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320, description="normalised address")
    link_id: str = Field(
        default_factory=new_link,
        unique=True,
        index=True,
        max_length=32,
        description="random handle in personal links (never the address); renewing it revokes them",
    )
    name: str = Field(default="", max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    status: SubscriberStatus = Field(default=SubscriberStatus.unconfirmed, max_length=16)
    quiet_days: bool = Field(
        default=False, description="on a day with no match, send the most upvoted papers"
    )
    channel: str | None = Field(
        default=None, description="an apprise URL that replaces the default delivery channel"
    )
    bounces: int = Field(default=0, description="permanent delivery failures in a row")
    suppressed_at: datetime | None = Field(
        default=None, sa_column=_moment(), description="set after too many hard bounces"
    )
    paused: bool = Field(default=False, description="keeps everything but sends nothing")
    confirm_sent_at: datetime | None = Field(
        default=None, sa_column=_moment(), description="when the last sign-up email went out"
    )
    confirmed_at: datetime | None = Field(default=None, sa_column=_moment())
    created_at: datetime = Field(sa_column=_moment(nullable=False))
    updated_at: datetime = Field(sa_column=_moment(nullable=False))


class Subscription(SQLModel, table=True):
    """One section of a subscriber's digest: a theme from the catalogue, or a personal profile
    (free text, soft keywords, hard filters, followed authors, liked/disliked papers)."""

    __table_args__ = (UniqueConstraint("subscriber_id", "theme_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    theme_id: str | None = Field(default=None, max_length=64, description="None: a profile")
    interest: str = ""
    keywords: list[str] = Field(sa_column=Column(JSON, nullable=False))
    require: list[str] = Field(sa_column=Column(JSON, nullable=False))
    exclude: list[str] = Field(sa_column=Column(JSON, nullable=False))
    authors: list[str] = Field(sa_column=Column(JSON, nullable=False))
    liked: list[str] = Field(sa_column=Column(JSON, nullable=False))
    disliked: list[str] = Field(sa_column=Column(JSON, nullable=False))
    cadence: Cadence = Field(default=Cadence.daily, max_length=8)
    max_items: int = Field(default=10, ge=1, le=100)
    strictness: str = Field(
        default="balanced",
        max_length=16,
        description="how sure the relevance estimate must be: strict, balanced or broad",
    )
    active: bool = True
    created_at: datetime = Field(sa_column=_moment(nullable=False))


class Delivery(SQLModel, table=True):
    """The ledger: one row per subscriber × digest issue, so nothing is sent twice (and, short
    of a crash inside SMTP's last step, nothing is lost: see ``digest.delivery``).

    A send run claims a row (``sending``, with a lease), marks it ``sent`` just before the
    message is committed to the server, and records the server's reply. The papers sent are
    the "already sent" set that assembly subtracts from later digests."""

    __table_args__ = (
        UniqueConstraint("subscriber_id", "issue_id"),
        Index("ix_delivery_status_lease", "status", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    issue_id: str = Field(max_length=64, description="stable per subscriber and period")
    cadence: Cadence = Field(max_length=8)
    period_start: date
    period_end: date
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, max_length=8)
    attempts: int = 0
    last_error: str | None = None
    skip_reason: str | None = None
    channel: str = Field(default="", max_length=32, description="outbox, smtp or apprise")
    message_id: str | None = Field(default=None, max_length=200)
    provider_reply: str | None = Field(default=None, description="the server's acceptance")
    paper_keys: list[str] = Field(sa_column=Column(JSON, nullable=False))
    contents: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="what the issue held (sections, papers, reasons): its web page's source",
    )
    claim: str | None = Field(default=None, max_length=40, description="the run holding it")
    lease_until: datetime | None = Field(default=None, sa_column=_moment())
    sent_at: datetime | None = Field(default=None, sa_column=_moment())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_moment(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_moment(nullable=False))


class Feedback(SQLModel, table=True):
    """A subscriber's "more / less like this" on a paper, from a link in a digest. The newest
    vote per paper counts; it is also copied into the subscriptions' liked / disliked lists."""

    __table_args__ = (UniqueConstraint("subscriber_id", "paper_key"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    paper_key: str = Field(max_length=64)
    vote: str = Field(max_length=8, description="more | less")
    at: datetime = Field(default_factory=utcnow, sa_column=_moment(nullable=False))
