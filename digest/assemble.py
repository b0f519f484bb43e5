"""Digest assembly, pure: which papers one subscriber gets for one period, in which section.

A paper is a candidate only when it was first listed inside the period (so a backfill of old
days never floods anyone) and was never sent to this subscriber. A candidate may enter a
section only when its relevance estimate (``digest.relevance``: absolute, whatever else the
day holds) reaches the section's floor; each goes to the section where it ranks best among
those it clears and that still have room, so a paper appears once, in its best section, and a
thin day gives a short digest. A digest with nothing in it says why, so the sender can record
it as skipped instead of sending it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from digest.paper_index import PaperText
from digest.periods import Period
from digest.profiles import Profile
from digest.records import Organization
from digest.vectors import Matrix

__all__ = [
    "QUIET",
    "Digest",
    "DigestPaper",
    "Section",
    "SectionSpec",
    "assemble_digest",
    "no_new_papers",
]

QUIET = "quiet-day"
"""The ``theme_id`` of a quiet day's only section: the day's most upvoted papers."""
QUIET_ITEMS = 3


class DigestPaper(BaseModel):
    """A paper as a digest shows it; ``score`` and ``why`` are filled in by assembly."""

    model_config = ConfigDict(frozen=True)

    key: str
    arxiv_id: str | None = None
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    organization: Organization | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    upvotes: int | None = None
    num_comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    first_listed_on: date
    score: float = 0.0
    estimate: float = Field(0.0, description="how likely the subscriber wants it, 0 to 1")
    why: str = ""

    @property
    def text(self) -> PaperText:
        return PaperText.of(self, self.key)


class SectionSpec(BaseModel):
    """One subscription as assembly needs it."""

    model_config = ConfigDict(frozen=True)

    title: str
    theme_id: str | None
    profile: Profile
    max_items: int = Field(10, ge=1)
    floor: float = Field(0.0, ge=0.0, le=1.0, description="the estimate a paper must reach")
    strictness: str = Field("", description="the floor's name, for the digest's footer")


class Section(BaseModel):
    title: str
    theme_id: str | None
    papers: list[DigestPaper]
    strictness: str = ""


class Digest(BaseModel):
    """One subscriber's issue for one period. Empty when ``skip_reason`` is set."""

    email: str
    period: Period
    sections: list[Section]
    link_id: str | None = Field(None, description="the subscriber's handle in personal links")
    candidates: int = Field(description="papers new in the period and not sent before")
    skip_reason: str | None = None
    quiet: bool = Field(False, description="nothing matched; the day's most upvoted instead")

    @property
    def paper_keys(self) -> list[str]:
        return [paper.key for section in self.sections for paper in section.papers]

    @property
    def is_empty(self) -> bool:
        return not self.paper_keys


def no_new_papers(email: str, period: Period) -> Digest:
    """The empty digest of a period with no paper this subscriber has not had."""
    return Digest(
        email=email,
        period=period,
        sections=[],
        candidates=0,
        skip_reason=f"no new papers from {period.start} to {period.end}",
    )


def assemble_digest(
    email: str,
    period: Period,
    specs: Sequence[SectionSpec],
    pool: Sequence[DigestPaper],
    scores: Matrix,
    why: Callable[[int, int], str],
    *,
    estimates: Matrix | None = None,
    quiet_day: bool = False,
) -> Digest:
    """Place the scored candidates ``pool`` (``scores``, the ranking, and ``estimates``, the
    relevance estimates: one row per spec, one column per paper) into sections; ``why(row,
    column)`` says why a placed paper matched its section. Without ``estimates`` every paper
    that scores may enter (no floor)."""
    if estimates is None:
        estimates = np.ones_like(scores)
    placed = _place(scores, estimates, specs)
    sections = [
        Section(
            title=spec.title,
            theme_id=spec.theme_id,
            strictness=spec.strictness,
            papers=[
                pool[i].model_copy(
                    update={
                        "score": round(float(scores[row, i]), 4),
                        "estimate": round(float(estimates[row, i]), 4),
                        "why": why(row, i),
                    }
                )
                for i in placed[row]
            ],
        )
        for row, spec in enumerate(specs)
    ]
    sections = [s for s in sections if s.papers]
    if not sections and quiet_day:
        return Digest(
            email=email,
            period=period,
            sections=[_quiet_section(pool)],
            candidates=len(pool),
            quiet=True,
        )
    reason = None if sections else "no new paper reached your relevance floor"
    return Digest(
        email=email, period=period, sections=sections, candidates=len(pool), skip_reason=reason
    )


def _quiet_section(pool: Sequence[DigestPaper]) -> Section:
    top = sorted(pool, key=lambda p: (-(p.upvotes or 0), p.key))[:QUIET_ITEMS]
    return Section(
        title="Nothing matched today; most upvoted instead",
        theme_id=QUIET,
        papers=[
            p.model_copy(update={"why": f"trending: {p.upvotes or 0} upvotes on Hugging Face"})
            for p in top
        ],
    )


def _place(scores: Matrix, estimates: Matrix, specs: Sequence[SectionSpec]) -> list[list[int]]:
    """Greedy by score: each paper to its best section whose floor it clears and that has
    room."""
    floors = np.array([s.floor for s in specs], dtype=np.float32)[:, None]
    rows, cols = np.nonzero(np.isfinite(scores) & (estimates >= floors))
    order = np.argsort(-scores[rows, cols], kind="stable")
    placed: list[list[int]] = [[] for _ in specs]
    used: set[int] = set()
    for row, col in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if col in used or len(placed[row]) >= specs[row].max_items:
            continue
        placed[row].append(col)
        used.add(col)
    return placed
