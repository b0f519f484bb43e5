"""Composing one subscriber's digest from the store: their active subscriptions, the papers first
listed in the period, and the embedding model when there is one, handed to pure assembly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import numpy as np

from digest.assemble import Digest, DigestPaper, SectionSpec, assemble_digest, no_new_papers
from digest.db import Engine
from digest.db import papers as papers_db
from digest.db import subscribers as subscribers_db
from digest.db.models import Cadence, Paper, Subscription
from digest.embeddings import CachedEmbedder
from digest.errors import SubscriptionError
from digest.paper_index import PaperIndex
from digest.periods import Period
from digest.profiles import Profile
from digest.reasons import explain
from digest.records import Organization
from digest.relevance import estimate_matrix, floor_of
from digest.scoring import profile_texts, profile_vectors, score_matrix
from digest.subscriptions import profile_of
from digest.themes import Theme
from digest.vectors import Matrix

__all__ = [
    "SECTION_COLUMNS",
    "Composer",
    "TitleLookup",
    "candidates",
    "composer_for",
    "digest_paper",
    "compose_digest",
    "compose_theme_days",
    "period_for",
]

THEME_PICKS = 10
"""Papers on a theme's public page and feed per day."""


def period_for(anchor: date, cadence: Cadence) -> Period:
    """The period a digest of ``cadence`` sent for ``anchor`` covers: that day, or its ISO week."""
    if cadence == Cadence.daily:
        return Period.day(anchor)
    start = anchor - timedelta(days=anchor.weekday())
    return Period(kind="week", start=start, end=start + timedelta(days=6))


TitleLookup = Callable[[Collection[str]], Mapping[str, str]]
"""Finds the titles of papers by key (the store's, in a run): liked or disliked papers that
are not among a period's candidates still steer a profile by their titles."""


def candidates(engine: Engine, period: Period) -> list[DigestPaper]:
    """The papers first listed in ``period``: what a digest for it chooses from."""
    rows = papers_db.first_listed_between(engine, period.start, period.end)
    return [digest_paper(row) for row in rows if row.first_listed_on is not None]


def composer_for(
    engine: Engine,
    period: Period,
    themes: dict[str, Theme],
    embedder: Callable[[], CachedEmbedder | None] = lambda: None,
) -> Composer:
    """A composer over the store's papers for ``period``, finding feedback titles there."""
    return Composer(
        period,
        candidates(engine, period),
        themes,
        embedder,
        titles=lambda keys: papers_db.titles_of(engine, keys),
    )


class Composer:
    """Builds many subscribers' digests for one period. The period's papers, their embeddings
    and index are loaded once; each distinct profile (most subscribers share theirs, a theme
    above all) is scored once over all the period's papers, in one matrix call per batch
    (``prepare``), and every digest that uses it reuses the row and its reasons."""

    def __init__(
        self,
        period: Period,
        papers: Sequence[DigestPaper],
        themes: dict[str, Theme],
        embedder: Callable[[], CachedEmbedder | None] = lambda: None,
        titles: TitleLookup = lambda keys: {},
    ) -> None:
        self.period, self.themes = period, themes
        self.papers = list(papers)
        self._model = _Once(embedder)
        self._lookup = titles
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

    def embed_ahead(self, rows: Iterable[Sequence[Any]]) -> None:
        """Embed, in one model call, whatever the cache lacks for the period's papers and
        these sections (``SECTION_COLUMNS`` of every due subscription), so that batches only
        read vectors (on a cold cache a model call per batch would cost seconds each). Each
        distinct section is built once."""
        model = self._model() if self.papers else None
        if model is None:
            return
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
            self._titles.update(self._lookup(keys))
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


SECTION_COLUMNS = _CONTENT = (
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
``embed_ahead`` is handed only them."""


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
    subscriber, subscriptions = subscribers_db.active_subscriptions(engine, email)
    anchor = day or papers_db.newest_listing_day(engine)
    if anchor is None:
        raise SubscriptionError("the store holds no papers yet: run `digest ingest` first")
    weekly = all(s.cadence == Cadence.weekly for s in subscriptions)
    period = period_for(anchor, Cadence.weekly if weekly else Cadence.daily)
    composer = composer_for(engine, period, themes, embedder)
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
    composers = [composer_for(engine, Period.day(day), themes, once) for day in days]
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


def digest_paper(paper: Paper) -> DigestPaper:
    """A stored paper as a digest shows it."""
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
