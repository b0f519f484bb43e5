"""Papers, their sightings and the fetch log: the paper upsert and its reads.

Records are merged into one ``Paper`` row per paper: by arXiv id, else by title fingerprint
confirmed by the abstract's start (never fuzzy), and an id-less row is upgraded in place when a
later record brings the id. Text fields keep the richest version; counters follow the newest
observation, so ingesting an old page after a new one never rolls them back. Each page is one
transaction: a failure leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel
from sqlalchemy import Engine, String, cast, func, or_
from sqlmodel import Session, col, select

from digest.db.models import Paper, Sighting, aware, utcnow
from digest.records import PaperRecord, abstract_fingerprint

__all__ = [
    "UpsertCounts",
    "by_keys",
    "count_rows",
    "first_listed_between",
    "listing_days",
    "newest_listing_day",
    "texts_containing",
    "titles_of",
    "list_papers",
    "upsert_papers",
]

log = logging.getLogger("digest.store")


class UpsertCounts(BaseModel):
    """What an upsert did: papers added, papers changed, papers seen again as they were."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            new=self.new + other.new,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
        )

    @property
    def total(self) -> int:
        return self.new + self.updated + self.unchanged

    def __str__(self) -> str:
        return f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged"


def upsert_papers(records: list[PaperRecord], *, session: Session) -> UpsertCounts:
    """Merge ``records`` into the store inside the caller's transaction; returns the counts.

    The page's candidate papers and sightings are loaded in two queries and written in one
    flush, so a page costs a handful of round trips whatever its size.
    """
    known = _Known.load(session, records)
    outcomes: list[tuple[Paper, PaperRecord, bool, bool]] = []  # paper, record, new, changed
    for record in records:
        paper = known.find(record)
        if paper is None:
            paper = _new_paper(record)
            session.add(paper)
            known.add(paper)
            outcomes.append((paper, record, True, True))
            continue
        changed = _merge(paper, record)
        known.add(paper)  # re-index: the record may have brought the arXiv id
        outcomes.append((paper, record, False, changed))
    session.flush()  # new papers get their ids
    sightings = known.sightings(session)
    counts = UpsertCounts()
    for paper, record, new, changed in outcomes:
        sighted = _sight(session, sightings, paper, record)
        if new:
            counts.new += 1
        elif changed or sighted:
            paper.updated_at = utcnow()
            counts.updated += 1
        else:
            counts.unchanged += 1
    return counts


class _Known:
    """The papers a page could match, indexed by arXiv id and by title fingerprint."""

    def __init__(self, papers: list[Paper]) -> None:
        self.by_id: dict[str, Paper] = {}
        self.by_title: dict[str, list[Paper]] = {}
        for paper in papers:
            self.add(paper)

    @classmethod
    def load(cls, session: Session, records: list[PaperRecord]) -> _Known:
        ids = {r.paper_id for r in records if r.paper_id}
        titles = {r.title_key for r in records}
        query = (
            select(Paper)
            .where(col(Paper.arxiv_id).in_(ids) | col(Paper.title_key).in_(titles))
            .order_by(col(Paper.id))
        )
        return cls(list(session.exec(query).all()))

    def add(self, paper: Paper) -> None:
        if paper.arxiv_id:
            self.by_id[paper.arxiv_id] = paper
        same = self.by_title.setdefault(paper.title_key, [])
        if paper not in same:
            same.append(paper)

    def find(self, record: PaperRecord) -> Paper | None:
        if record.paper_id and record.paper_id in self.by_id:
            return self.by_id[record.paper_id]
        wanted = abstract_fingerprint(record.abstract)
        for paper in self.by_title.get(record.title_key, []):
            if record.paper_id and paper.arxiv_id is not None:
                continue  # another paper with the same title and its own id
            if not wanted or not paper.abstract_key or paper.abstract_key == wanted:
                return paper
        return None

    def sightings(self, session: Session) -> dict[tuple[int, str, str], Sighting]:
        ids = {p.id for papers in self.by_title.values() for p in papers if p.id is not None}
        rows = session.exec(select(Sighting).where(col(Sighting.paper_id).in_(ids))).all()
        return {(row.paper_id, row.source, row.listing): row for row in rows}


def _new_paper(record: PaperRecord) -> Paper:
    now = utcnow()
    paper = Paper(  # every defaulted column given: SQLModel's default factories are slow
        key=record.paper_id or _title_key(record),
        title_key=record.title_key,
        title=record.title,
        authors=[],
        ai_keywords=[],
        counters_at=record.sighting.observed_at,
        created_at=now,
        updated_at=now,
    )
    _merge(paper, record)
    return paper


def _title_key(record: PaperRecord) -> str:
    """The key of a paper without an arXiv id: its title and abstract start, hashed."""
    both = record.title_key + "|" + abstract_fingerprint(record.abstract)
    return "title:" + hashlib.sha256(both.encode()).hexdigest()[:16]


_RICHER_TEXT = ("title", "abstract", "ai_summary")
_FILL = (
    "published_on",
    "submitted_on_daily_at",
    "submitted_by",
    "github_repo",
    "project_page",
    "thumbnail",
    "withdrawn_at",
)
_COUNTERS = ("upvotes", "num_comments", "github_stars")


def _merge(paper: Paper, record: PaperRecord) -> bool:
    """Fold ``record`` into ``paper``; True when anything a reader would see changed."""
    before = _visible(paper)
    if record.paper_id and paper.arxiv_id is None:
        paper.arxiv_id = paper.key = record.paper_id
    for name in _RICHER_TEXT:
        new = getattr(record, name)
        if new and len(new) > len(getattr(paper, name) or ""):
            setattr(paper, name, new)
    paper.abstract_key = paper.abstract_key or abstract_fingerprint(paper.abstract)
    for name in _FILL:
        if getattr(paper, name) is None and getattr(record, name) is not None:
            setattr(paper, name, getattr(record, name))
    if len(record.authors) > len(paper.authors):
        paper.authors = list(record.authors)
    if len(record.ai_keywords) > len(paper.ai_keywords):
        paper.ai_keywords = list(record.ai_keywords)
    if record.author_count is not None:
        paper.author_count = max(paper.author_count or 0, record.author_count)
    if record.organization and paper.org_slug is None:
        paper.org_slug, paper.org_name = record.organization.slug, record.organization.name
    _merge_counters(paper, record)
    _widen_listing_dates(paper, record.sighting.listed_on)
    return _visible(paper) != before


_VISIBLE = tuple(
    name for name in Paper.model_fields if name not in {"counters_at", "created_at", "updated_at"}
)


def _visible(paper: Paper) -> tuple[object, ...]:
    """The columns a reader sees, to tell whether a merge changed anything."""
    return tuple(
        list(value) if isinstance(value := getattr(paper, name), list) else value
        for name in _VISIBLE
    )


def _merge_counters(paper: Paper, record: PaperRecord) -> None:
    seen = aware(record.sighting.observed_at)
    if paper.counters_at is not None and seen < aware(paper.counters_at):
        return
    for name in _COUNTERS:
        value = getattr(record, name)
        if value is not None:
            setattr(paper, name, value)
    paper.counters_at = seen


def _widen_listing_dates(paper: Paper, listed_on: date | None) -> None:
    if listed_on is None:
        return
    if paper.first_listed_on is None or listed_on < paper.first_listed_on:
        paper.first_listed_on = listed_on
    if paper.last_listed_on is None or listed_on > paper.last_listed_on:
        paper.last_listed_on = listed_on


def _sight(
    session: Session,
    sightings: dict[tuple[int, str, str], Sighting],
    paper: Paper,
    record: PaperRecord,
) -> bool:
    """Add or refresh the sighting of ``paper`` in the record's listing; True if it changed."""
    seen = record.sighting
    assert paper.id is not None
    key = (paper.id, seen.source, seen.listing)
    values = {
        "listed_on": seen.listed_on,
        "rank": seen.rank,
        "upvotes": record.upvotes,
        "num_comments": record.num_comments,
    }
    row = sightings.get(key)
    if row is None:
        row = sightings[key] = Sighting(
            paper_id=paper.id,
            source=seen.source,
            listing=seen.listing,
            observed_at=seen.observed_at,
        )
    elif aware(seen.observed_at) <= aware(row.observed_at) or all(
        getattr(row, name) == value for name, value in values.items()
    ):
        return False
    for name, value in values.items():
        setattr(row, name, value)
    row.observed_at = seen.observed_at
    session.add(row)
    return True


# --- reading ----------------------------------------------------------------------------------


def list_papers(engine: Engine, *, listed_on: date | None = None) -> list[Paper]:
    """Stored papers, newest listing first; only those listed on ``listed_on`` when given."""
    query = select(Paper)
    if listed_on is not None:
        seen_that_day = select(Sighting.paper_id).where(Sighting.listed_on == listed_on)
        query = query.where(col(Paper.id).in_(seen_that_day))
    query = query.order_by(
        col(Paper.last_listed_on).desc().nulls_last(),
        col(Paper.upvotes).desc().nulls_last(),
        col(Paper.id),
    )
    with Session(engine) as session:
        return list(session.exec(query).all())


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


def first_listed_between(engine: Engine, start: date, end: date) -> list[Paper]:
    """The papers first listed from ``start`` to ``end`` (a digest period's candidates), by id."""
    query = select(Paper).where(
        col(Paper.first_listed_on) >= start, col(Paper.first_listed_on) <= end
    )
    with Session(engine) as session:
        return list(session.exec(query.order_by(col(Paper.id))).all())


def by_keys(engine: Engine, keys: Iterable[str]) -> list[Paper]:
    """The stored papers among ``keys``."""
    with Session(engine) as session:
        return list(session.exec(select(Paper).where(col(Paper.key).in_(sorted(keys)))).all())


def titles_of(engine: Engine, keys: Iterable[str]) -> dict[str, str]:
    """The title of each stored paper among ``keys``."""
    with Session(engine) as session:
        found = session.exec(
            select(Paper.key, Paper.title).where(col(Paper.key).in_(sorted(keys)))
        ).all()
    return dict(found)


def count_rows(engine: Engine) -> dict[str, int]:
    """How many papers and sightings the store holds."""
    with Session(engine) as session:
        papers = session.exec(select(func.count()).select_from(Paper)).one()
        sightings = session.exec(select(func.count()).select_from(Sighting)).one()
    return {"papers": papers, "sightings": sightings}


def texts_containing(engine: Engine, fragment: str, *, limit: int) -> list[str] | None:
    """The lowered text (title, abstract, keywords) of the stored papers whose text contains
    ``fragment`` anywhere, case-insensitive: candidates for a whole-word check, read without
    loading the store. None when more than ``limit`` match (too common to check cheaply)."""
    escaped = fragment.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    fields = (Paper.title, Paper.abstract, cast(Paper.ai_keywords, String))
    matches = or_(*(func.lower(f).like(pattern, escape="\\") for f in fields))
    query = select(*fields).where(matches).limit(limit + 1)
    with Session(engine) as session:
        rows = session.exec(query).all()
    if len(rows) > limit:
        return None
    return [" ".join(str(part) for part in row).lower() for row in rows]
