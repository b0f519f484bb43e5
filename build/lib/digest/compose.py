"""Composing one subscriber's digest from the store: their active subscriptions, the papers first
listed in the period, and the embedding model when there is one, handed to pure assembly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, timedelta
from functools import cached_property

import numpy as np
from sqlalchemy import ColumnElement, Engine, func
from sqlmodel import Session, col, select

from digest.assemble import Digest, DigestPaper, SectionSpec, assemble_digest, no_new_papers
from digest.embeddings import CachedEmbedder
from digest.errors import SubscriptionError
from digest.models import Cadence, Paper, Sighting, Subscriber, SubscriberStatus, Subscription
from digest.periods import Period
from digest.records import Organization
from digest.relevance import estimate_matrix, floor_of
from digest.scoring import (
    Matrix,
    PaperIndex,
    Profile,
    explain,
    profile_texts,
    profile_vectors,
    score_matrix,
)
from digest.subscriptions import profile_of
from digest.themes import Theme

__all__ = [
    "Composer",
    "compose_digest",
    "compose_theme_days",
    "due_ids",
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
    """Builds many subscribers' digests for one period. The period's papers, their embeddings
    and index are loaded once; each distinct profile (most subscribers share theirs, a theme
    above all) is scored once over all the period's papers, in one matrix call per batch
    (``prepare``), and every digest that uses it reuses the row and its reasons."""

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
        self._specs: dict[tuple[object, ...], SectionSpec] = {}
        self._scored: dict[Profile, _Scored] = {}

    def prepare(self, subscribers: Iterable[Sequence[Subscription]]) -> None:
        """Score, in one call, every profile of these subscribers not scored yet."""
        if not self.papers:
            return
        everyone = [s for subscriptions in subscribers for s in subscriptions]
        titles = self._feedback_titles(everyone)
        self._score([self._spec(s, titles).profile for s in everyone])

    def embed_ahead(self, cadence: Cadence) -> None:
        """Embed, in one model call, whatever the cache lacks for the period's papers and the
        sections of every due ``cadence`` subscriber, so that batches only read vectors (on a
        cold cache a model call per batch would cost seconds each). Reads the sections'
        content columns only, and builds each distinct one once."""
        model = self._model() if self.papers else None
        if model is None:
            return
        content = [getattr(Subscription, name) for name in _CONTENT]
        due = select(Subscriber.id).where(*_due())
        query = select(*content).where(
            col(Subscription.active),
            col(Subscription.cadence) == cadence,
            col(Subscription.subscriber_id).in_(due),
        )
        with Session(self._engine) as session:
            rows = session.exec(query).all()
        distinct = {_hashable(row): row for row in rows}.values()
        sections = [Subscription(**dict(zip(_CONTENT, row, strict=True))) for row in distinct]
        titles = self._feedback_titles(sections)
        profiles = [self._spec(s, titles).profile for s in sections]
        model.encode([*self.paper_texts, *profile_texts(profiles)])

    def compose(
        self,
        email: str,
        subscriptions: Sequence[Subscription],
        already_sent: Collection[str] = (),
        *,
        quiet_days: bool = False,
        link_id: str | None = None,
    ) -> Digest:
        """The subscriber's digest; ``link_id`` (theirs) makes its personal links."""
        titles = self._feedback_titles(subscriptions)
        specs = [self._spec(s, titles) for s in subscriptions]
        digest = self.compose_sections(email, specs, already_sent, quiet_days=quiet_days)
        return digest.model_copy(update={"link_id": link_id}) if link_id else digest

    def compose_sections(
        self,
        email: str,
        specs: Sequence[SectionSpec],
        already_sent: Collection[str] = (),
        *,
        quiet_days: bool = False,
    ) -> Digest:
        """The digest with these sections: the period's papers this subscriber has not had,
        placed by their scores over the whole period."""
        papers = self.papers
        wanted = [i for i, p in enumerate(papers) if p.key not in already_sent]
        if not wanted:
            return no_new_papers(email, self.period)
        scored = self._score([spec.profile for spec in specs])
        scores = np.stack([entry.row for entry in scored])
        estimates = np.stack([entry.estimates for entry in scored])
        if len(wanted) < len(papers):
            scores, estimates = scores[:, wanted], estimates[:, wanted]
        return assemble_digest(
            email,
            self.period,
            specs,
            [papers[i] for i in wanted],
            scores,
            lambda row, column: scored[row].why(wanted[column]),
            estimates=estimates,
            quiet_day=quiet_days,
        )

    def _spec(self, subscription: Subscription, titles: Mapping[str, str]) -> SectionSpec:
        """A subscription's section, built once per distinct content (a title for a liked
        key, once found, stays the same for the run)."""
        s = subscription
        key = _hashable([getattr(s, name) for name in _CONTENT])
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = SectionSpec(
                title=self.themes[s.theme_id].name if s.theme_id else "Your interests",
                theme_id=s.theme_id,
                profile=profile_of(s, self.themes, titles),
                max_items=s.max_items,
                floor=floor_of(s.strictness),
                strictness=s.strictness,
            )
        return spec

    def _score(self, profiles: Sequence[Profile]) -> list[_Scored]:
        """Each profile's scores, computing the missing ones together."""
        missing = [p for p in dict.fromkeys(profiles) if p not in self._scored]
        if missing and len(self._scored) + len(missing) > MAX_SCORED:
            self._scored.clear()  # bounded memory; the next lookups recompute
            missing = list(dict.fromkeys(profiles))
        if missing:
            model = self._model()
            vectors = None
            if model is not None:
                # one model call at most for what the cache lacks: papers and profiles
                papers = [] if "_semantic" in self.__dict__ else self.paper_texts
                model.encode([*papers, *profile_texts(missing)])
                index = self._semantic
                vectors = profile_vectors(missing, model, index)
            else:
                index = self._lexical
            matrix = score_matrix(index, missing, vectors)
            estimates = estimate_matrix(index, missing, vectors)
            for row, profile in enumerate(missing):
                phrases = vectors.parts_of(row) if vectors else None
                self._scored[profile] = _Scored(
                    profile, index, matrix[row], estimates[row], phrases
                )
        return [self._scored[p] for p in profiles]

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
    def paper_texts(self) -> list[str]:
        """What the model embeds of each candidate."""
        return [p.text.text for p in self.papers]

    @cached_property
    def _lexical(self) -> PaperIndex:
        return PaperIndex([p.text for p in self.papers])

    @cached_property
    def _semantic(self) -> PaperIndex:
        """The papers' index carrying their embeddings (only made when there is a model)."""
        model = self._model()
        assert model is not None
        return PaperIndex([p.text for p in self.papers], model.encode(self.paper_texts))


_CONTENT = (
    "theme_id",
    "interest",
    "keywords",
    "require",
    "exclude",
    "authors",
    "liked",
    "disliked",
    "max_items",
    "strictness",
)
"""The columns that make a subscription's section: ``Composer._spec`` keys on them, and
``embed_ahead`` reads only them."""


def _hashable(row: Sequence[object]) -> tuple[object, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in row)


MAX_SCORED = 20_000
"""Distinct profiles a composer keeps scored (one row of floats per period paper each)."""


class _Scored:
    """One profile's scores and relevance estimates over the period's papers, and the reasons
    of those it places."""

    __slots__ = ("_index", "_phrases", "_profile", "_why", "estimates", "row")

    def __init__(
        self,
        profile: Profile,
        index: PaperIndex,
        row: Matrix,
        estimates: Matrix,
        phrases: tuple[tuple[str, ...], Matrix] | None,
    ) -> None:
        self._profile, self._index, self.row, self.estimates = profile, index, row, estimates
        self._phrases = phrases
        self._why: dict[int, str] = {}

    def why(self, position: int) -> str:
        reason = self._why.get(position)
        if reason is None:
            reason = explain(self._profile, self._index, position, self._phrases)
            self._why[position] = reason
        return reason


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
    return composer.compose(
        subscriber.email,
        subscriptions,
        quiet_days=subscriber.quiet_days,
        link_id=subscriber.link_id,
    )


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
        SectionSpec(
            title=t.name,
            theme_id=t.id,
            profile=t.profile(),
            max_items=THEME_PICKS,
        )
        for t in themes.values()
    ]
    picks: dict[str, list[Digest]] = {theme_id: [] for theme_id in themes}
    once = _Once(embedder)  # one model for all days
    composers = [Composer(engine, Period.day(day), themes, once) for day in days]
    composers = [c for c in composers if c.papers]
    model = once() if composers else None
    if model is not None:  # what the cache lacks, in one model call
        model.encode(
            [
                *(t for c in composers for t in c.paper_texts),
                *profile_texts([s.profile for s in specs]),
            ]
        )
    for composer in composers:
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
