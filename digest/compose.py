"""Composing one subscriber's digest from the store: their active subscriptions, the papers first
listed in the period, and the embedding model when there is one, handed to pure assembly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, timedelta
from functools import cached_property

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from digest.assemble import Digest, DigestPaper, SectionSpec, build_digest
from digest.embeddings import CachedEmbedder
from digest.errors import SubscriptionError
from digest.models import Cadence, Paper, Sighting, Subscriber, SubscriberStatus, Subscription
from digest.periods import Period
from digest.records import Organization
from digest.scoring import Matrix, PaperIndex, profile_vectors
from digest.subscriptions import profile_of
from digest.themes import Theme

__all__ = [
    "Composer",
    "compose_digest",
    "compose_theme_days",
    "due_subscribers",
    "listing_days",
    "newest_listing_day",
    "period_for",
]

THEME_PICKS = 10
"""Papers on a theme's public page and feed per day."""


def newest_listing_day(engine: Engine) -> date | None:
    """The latest day any stored listing is dated: the default digest day."""
    with Session(engine) as session:
        newest: date | None = session.exec(select(func.max(Sighting.listed_on))).one()
    return newest


def listing_days(engine: Engine, until: date, count: int) -> list[date]:
    """The ``count`` newest days up to ``until`` on which some paper was first listed."""
    day = col(Paper.first_listed_on)
    query = select(day).where(day.is_not(None), day <= until).distinct()
    with Session(engine) as session:
        found = session.exec(query.order_by(day.desc()).limit(count)).all()
    return [d for d in found if d is not None]


def period_for(anchor: date, cadence: Cadence) -> Period:
    """The period a digest of ``cadence`` sent for ``anchor`` covers: that day, or its ISO week."""
    if cadence == Cadence.daily:
        return Period.day(anchor)
    start = anchor - timedelta(days=anchor.weekday())
    return Period(kind="week", start=start, end=start + timedelta(days=6))


class Composer:
    """Builds many subscribers' digests for one period: the period's papers, their embeddings
    and index are loaded once, each subscriber's profile vectors as they come."""

    def __init__(
        self,
        engine: Engine,
        period: Period,
        themes: dict[str, Theme],
        embedder: Callable[[], CachedEmbedder | None] = lambda: None,
    ) -> None:
        self.period, self.themes = period, themes
        self.papers = _candidates(engine, period)
        self._model = _Once(embedder)
        self._engine = engine
        self._titles: dict[str, str] = {}

    def compose(
        self,
        email: str,
        subscriptions: Sequence[Subscription],
        already_sent: Collection[str] = (),
        *,
        quiet_days: bool = False,
    ) -> Digest:
        titles = self._feedback_titles(subscriptions)
        specs = [
            SectionSpec(
                title=self.themes[s.theme_id].name if s.theme_id else "Your interests",
                theme_id=s.theme_id,
                profile=profile_of(s, self.themes, titles),
                max_items=s.max_items,
                threshold=s.threshold,
            )
            for s in subscriptions
        ]
        return self.compose_sections(email, specs, already_sent, quiet_days=quiet_days)

    def compose_sections(
        self,
        email: str,
        specs: Sequence[SectionSpec],
        already_sent: Collection[str] = (),
        *,
        quiet_days: bool = False,
    ) -> Digest:
        """The digest with these sections, scored against the period's shared index."""
        semantic = self._semantic
        embeddings = vectors = None
        index: PaperIndex | None
        if semantic is not None:
            model, embeddings, index = semantic
            vectors = profile_vectors([spec.profile for spec in specs], model, index)
        else:
            index = self._lexical if self.papers else None
        return build_digest(
            email,
            self.period,
            specs,
            self.papers,
            already_sent,
            embeddings=embeddings,
            vectors=vectors,
            quiet_day=quiet_days,
            index=index,
        )

    def _feedback_titles(self, subscriptions: Sequence[Subscription]) -> dict[str, str]:
        """Titles of the papers these subscriptions liked or disliked that are not candidates
        now (the candidates' own are in the index), read once per paper per period."""
        keys = {k for s in subscriptions for k in (*s.liked, *s.disliked)}
        if keys:
            keys -= self._titles.keys() | self._candidate_keys
        if keys:
            with Session(self._engine) as session:
                found = session.exec(
                    select(Paper.key, Paper.title).where(col(Paper.key).in_(sorted(keys)))
                ).all()
            self._titles.update(dict(found))
        return self._titles

    @cached_property
    def _candidate_keys(self) -> set[str]:
        return {p.key for p in self.papers}

    @cached_property
    def _lexical(self) -> PaperIndex:
        return PaperIndex([p.text for p in self.papers])

    @cached_property
    def _semantic(self) -> tuple[CachedEmbedder, Matrix, PaperIndex] | None:
        """The model, the papers' embeddings and an index carrying them; None: lexical only."""
        model = self._model() if self.papers else None
        if model is None:
            return None
        embeddings = model.encode([p.text.text for p in self.papers])
        return model, embeddings, PaperIndex([p.text for p in self.papers], embeddings)


def due_subscribers(
    engine: Engine, cadence: Cadence
) -> list[tuple[Subscriber, list[Subscription]]]:
    """Confirmed, unsuppressed, unpaused subscribers with active subscriptions of ``cadence``,
    each with those subscriptions, by id."""
    with Session(engine) as session:
        people = session.exec(
            select(Subscriber)
            .where(
                col(Subscriber.status) == SubscriberStatus.confirmed,
                col(Subscriber.suppressed_at).is_(None),
                ~col(Subscriber.paused),
            )
            .order_by(col(Subscriber.id))
        ).all()
        rows = session.exec(
            select(Subscription)
            .where(col(Subscription.active), col(Subscription.cadence) == cadence)
            .order_by(col(Subscription.id))
        ).all()
    by_person: dict[int, list[Subscription]] = {}
    for row in rows:
        by_person.setdefault(row.subscriber_id, []).append(row)
    return [(p, by_person[p.id]) for p in people if p.id in by_person]


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
    period = period_for(anchor, Cadence.weekly if weekly else Cadence.daily)
    composer = Composer(engine, period, themes, embedder)
    return composer.compose(subscriber.email, subscriptions, quiet_days=subscriber.quiet_days)


def compose_theme_days(
    engine: Engine,
    themes: dict[str, Theme],
    days: Sequence[date],
    embedder: Callable[[], CachedEmbedder | None] = lambda: None,
) -> dict[str, list[Digest]]:
    """Each theme's picks for each of ``days``, independently (a paper may suit several
    themes): what the public archive pages and Atom feeds show. Days without picks are left
    out."""
    specs = [
        SectionSpec(title=t.name, theme_id=t.id, profile=t.profile(), max_items=THEME_PICKS)
        for t in themes.values()
    ]
    picks: dict[str, list[Digest]] = {theme_id: [] for theme_id in themes}
    once = _Once(embedder)  # one model load for all days
    for day in days:
        composer = Composer(engine, Period.day(day), themes, once)
        if not composer.papers:
            continue
        for spec in specs:
            digest = composer.compose_sections(f"theme:{spec.theme_id}", [spec])
            if not digest.is_empty:
                picks[str(spec.theme_id)].append(digest)
    return picks


class _Once:
    """Loads the model on first use only (and never when no day has papers)."""

    def __init__(self, load: Callable[[], CachedEmbedder | None]) -> None:
        self._load, self._done = load, False
        self._model: CachedEmbedder | None = None

    def __call__(self) -> CachedEmbedder | None:
        if not self._done:
            self._model, self._done = self._load(), True
        return self._model


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
