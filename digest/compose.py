"""Composing one subscriber's digest from the store: their active subscriptions, the papers first
listed in the period, and the embedding model when there is one, handed to pure assembly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from digest.assemble import Digest, DigestPaper, SectionSpec, build_digest
from digest.embeddings import CachedEmbedder
from digest.errors import SubscriptionError
from digest.models import Cadence, Paper, Sighting, Subscriber, SubscriberStatus, Subscription
from digest.periods import Period
from digest.records import Organization
from digest.scoring import PaperIndex, profile_vectors
from digest.subscriptions import profile_of
from digest.themes import Theme

__all__ = ["compose_digest", "newest_listing_day"]


def newest_listing_day(engine: Engine) -> date | None:
    """The latest day any stored listing is dated: the default digest day."""
    with Session(engine) as session:
        newest: date | None = session.exec(select(func.max(Sighting.listed_on))).one()
    return newest


def compose_digest(
    engine: Engine,
    email: str,
    day: date | None,
    themes: dict[str, Theme],
    embedder: Callable[[], CachedEmbedder | None] = lambda: None,
) -> Digest:
    """The digest ``email`` would get for the day (or, if every subscription is weekly, the
    ISO week) containing ``day``; ``day`` defaults to the newest listing day in the store.
    ``embedder`` is called only when there are papers to score (loading a model takes seconds)."""
    subscriber, subscriptions = _subscriptions(engine, email)
    anchor = day or newest_listing_day(engine)
    if anchor is None:
        raise SubscriptionError("the store holds no papers yet: run `digest ingest` first")
    weekly = all(s.cadence == Cadence.weekly for s in subscriptions)
    start = anchor - timedelta(days=anchor.weekday()) if weekly else anchor
    period = Period(
        kind="week" if weekly else "day",
        start=start,
        end=start + timedelta(days=6 if weekly else 0),
    )
    specs = [
        SectionSpec(
            title=themes[s.theme_id].name if s.theme_id else "Your interests",
            theme_id=s.theme_id,
            profile=profile_of(s, themes),
            max_items=s.max_items,
            threshold=s.threshold,
        )
        for s in subscriptions
    ]
    papers = _candidates(engine, period)
    model = embedder() if papers else None
    if model is None:
        return build_digest(subscriber.email, period, specs, papers)
    embeddings = model.encode([p.text.text for p in papers])
    index = PaperIndex([p.text for p in papers], embeddings)
    vectors = profile_vectors([s.profile for s in specs], model, index)
    return build_digest(
        subscriber.email, period, specs, papers, embeddings=embeddings, vectors=vectors
    )


def _subscriptions(engine: Engine, email: str) -> tuple[Subscriber, list[Subscription]]:
    address = email.strip().lower()
    with Session(engine) as session:
        subscriber = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
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


def _candidates(engine: Engine, period: Period) -> list[DigestPaper]:
    query = select(Paper).where(
        col(Paper.first_listed_on) >= period.start, col(Paper.first_listed_on) <= period.end
    )
    with Session(engine) as session:
        rows = session.exec(query.order_by(col(Paper.id))).all()
    return [_digest_paper(row) for row in rows if row.first_listed_on is not None]


def _digest_paper(paper: Paper) -> DigestPaper:
    assert paper.first_listed_on is not None
    return DigestPaper(
        key=paper.key,
        arxiv_id=paper.arxiv_id,
        title=paper.title,
        abstract=paper.abstract,
        authors=tuple(paper.authors),
        author_count=paper.author_count,
        organization=Organization(slug=paper.org_slug, name=paper.org_name or paper.org_slug)
        if paper.org_slug
        else None,
        ai_summary=paper.ai_summary,
        ai_keywords=tuple(paper.ai_keywords),
        upvotes=paper.upvotes,
        num_comments=paper.num_comments,
        github_repo=paper.github_repo,
        github_stars=paper.github_stars,
        project_page=paper.project_page,
        first_listed_on=paper.first_listed_on,
    )
