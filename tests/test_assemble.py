"""Assembly: the period decides candidates, nothing is sent twice, each paper lands once in its
best section, caps and floors hold, and an empty digest says why."""

from __future__ import annotations

from datetime import date
from itertools import pairwise

import pytest

from digest.assemble import DigestPaper, SectionSpec
from digest.ingest import read_pages
from digest.periods import Period
from digest.profiles import Profile
from digest.sources import get_source
from digest.themes import load_themes
from tests.conftest import SEEDS
from tests.factories import build_digest

THEMES = load_themes()
RECORDS = [r for page in read_pages("seeds", SEEDS, None) for r in get_source("seeds").parse(page)]
FIRST_SEEN: dict[str, date] = {}
for _record in RECORDS:
    day = _record.sighting.listed_on or date.min
    FIRST_SEEN[_record.title_key] = min(day, FIRST_SEEN.get(_record.title_key, date.max))
PAPERS = [
    DigestPaper(
        key=r.title_key, title=r.title, abstract=r.abstract, first_listed_on=FIRST_SEEN[r.title_key]
    )
    for r in {r.title_key: r for r in RECORDS}.values()
]
NEWEST = Period.day(date(2026, 4, 15))  # the newest seed page: 32 papers, some first seen earlier


def spec(theme: str, **extra: object) -> SectionSpec:
    return SectionSpec(
        title=THEMES[theme].name, theme_id=theme, profile=THEMES[theme].profile(), **extra
    )  # type: ignore[arg-type]


def test_only_papers_first_listed_in_the_period_are_candidates() -> None:
    digest = build_digest("ada@example.org", NEWEST, [spec("llm-reasoning-rl")], PAPERS)
    fresh = {p.key for p in PAPERS if p.first_listed_on == date(2026, 4, 15)}
    assert digest.candidates == len(fresh) < 32  # re-listed older papers are not new
    assert set(digest.paper_keys) <= fresh


def test_old_days_never_flood_a_digest() -> None:
    digest = build_digest(
        "ada@example.org", Period.day(date(2026, 11, 20)), [spec("agents")], PAPERS
    )
    assert digest.is_empty and digest.candidates == 0
    assert digest.skip_reason == "no new papers from 2026-11-20 to 2026-11-20"


def test_a_week_covers_every_day_in_it() -> None:
    week = Period(kind="week", start=date(2025, 10, 27), end=date(2025, 11, 2))
    digest = build_digest("ada@example.org", week, [spec("agents", max_items=100)], PAPERS)
    assert digest.candidates == sum(1 for p in PAPERS if week.contains(p.first_listed_on))


def test_papers_already_sent_are_left_out() -> None:
    first = build_digest("ada@example.org", NEWEST, [spec("safety-alignment", max_items=3)], PAPERS)
    again = build_digest(
        "ada@example.org",
        NEWEST,
        [spec("safety-alignment", max_items=3)],
        PAPERS,
        already_sent=first.paper_keys,
    )
    assert first.paper_keys and not set(first.paper_keys) & set(again.paper_keys)
    assert again.candidates == first.candidates - len(first.paper_keys)


def test_each_paper_appears_once_in_its_best_section_and_full_sections_pass_the_rest_on() -> None:
    specs = [
        spec("llm-reasoning-rl", max_items=2),
        spec("agents", max_items=1000),
    ]
    digest = build_digest(
        "ada@example.org",
        Period(kind="month", start=date(2025, 10, 1), end=date(2026, 4, 30)),
        specs,
        PAPERS,
    )
    keys = digest.paper_keys
    assert len(keys) == len(set(keys)) == digest.candidates  # everything placed once
    reasoning, agents = digest.sections
    assert len(reasoning.papers) == 2
    assert all(p.score >= q.score for p, q in pairwise(reasoning.papers))
    assert len(agents.papers) == digest.candidates - 2  # the full section passed the rest on
    assert all(p.why for section in digest.sections for p in section.papers)


def test_thresholds_and_hard_filters_hold_and_an_empty_result_says_why() -> None:
    strict = build_digest("ada@example.org", NEWEST, [spec("robotics-embodied", floor=1.0)], PAPERS)
    assert strict.is_empty and strict.skip_reason == "no new paper reached your relevance floor"
    excluding = SectionSpec(
        title="Reasoning, no surveys",
        theme_id=None,
        profile=Profile(keywords=("reasoning",), exclude=("survey",)),
        max_items=100,
    )
    digest = build_digest("ada@example.org", NEWEST, [excluding], PAPERS)
    assert digest.paper_keys and all(
        "survey" not in (p.title + p.abstract).lower() for p in digest.sections[0].papers
    )


@pytest.mark.parametrize("max_items", [1, 3])
def test_caps_are_respected(max_items: int) -> None:
    digest = build_digest(
        "ada@example.org",
        NEWEST,
        [spec("multimodal-vlm", max_items=max_items)],
        PAPERS,
    )
    assert len(digest.sections[0].papers) == max_items


def test_scores_in_a_section_are_best_first_and_above_the_floor() -> None:
    digest = build_digest("ada@example.org", NEWEST, [spec("llm-reasoning-rl", floor=0.2)], PAPERS)
    papers = digest.sections[0].papers
    scores = [p.score for p in papers]
    assert scores and scores == sorted(scores, reverse=True)
    assert all(p.estimate >= 0.2 for p in papers)
