"""All storage goes through here: engines, migrations, and the paper upsert.

Records are merged into one ``Paper`` row per paper: by arXiv id, else by title fingerprint
confirmed by the abstract's start (never fuzzy), and an id-less row is upgraded in place when a
later record brings the id. Text fields keep the richest version; counters follow the newest
observation, so ingesting an old page after a new one never rolls them back. Each page is one
transaction: a failure leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, event, func
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, create_engine, select

from digest.errors import StoreError
from digest.models import FetchLog, HttpValidator, Paper, Sighting, utcnow
from digest.records import PaperRecord, abstract_fingerprint
from digest.sources import RawPage
from digest.sources.http import ValidatorLookup, Validators

__all__ = [
    "UpsertCounts",
    "count_rows",
    "get_engine",
    "list_papers",
    "log_failure",
    "save_page",
    "session_scope",
    "upsert_papers",
    "validator_lookup",
]

log = logging.getLogger("digest.store")
MIGRATIONS = Path(str(resources.files("digest") / "migrations"))
T = TypeVar("T")


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


# --- engines and migrations -------------------------------------------------------------------


@functools.cache
def get_engine(url: str) -> Engine:
    """An engine for ``url`` with the schema migrated to the newest version (once per process)."""
    engine = _create(url)
    _guard(lambda: migrate(engine), url, "migrating")
    return engine


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "handle_error", functools.partial(_damaged, parsed.database or url))
    return engine


_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def _damaged(path: str, context: ExceptionContext) -> StoreError | None:
    """A damaged SQLite file fails wherever it is first touched (opening, migrating, any read
    by any module): name the file and the way out there, once, for every caller."""
    error = context.original_exception
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(error, sqlite3.DatabaseError) or code is None or code & 0xFF not in _DAMAGED:
        return None
    return StoreError(
        f"database {path} is damaged ({error}): restore it from a backup, "
        "or move it aside to start an empty store"
    )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; skips an fsync per commit
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left on disk
    cursor.close()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (the only way the schema changes)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _guard(action: Callable[[], T], url: str, doing: str) -> T:
    try:
        return action()
    except SQLAlchemyError as exc:
        raise _store_error(exc, url, doing) from exc


def _store_error(exc: SQLAlchemyError, url: str, doing: str) -> StoreError:
    """A one-line error naming the database (password hidden), what failed and why."""
    safe = make_url(url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return StoreError(f"database {safe}: {doing} failed: {reason}")


@contextmanager
def session_scope(engine: Engine, doing: str = "writing") -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error; database errors come
    out as ``StoreError`` (caused by the original, so callers can still tell a unique-key
    race)."""
    with _writer(engine):
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise _store_error(exc, str(engine.url), doing) from exc


@contextmanager
def connection_scope(engine: Engine, doing: str = "writing") -> Iterator[Connection]:
    """Like ``session_scope`` without the ORM: for short hot statements (the ledger's)."""
    with _writer(engine):
        try:
            with engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise _store_error(exc, str(engine.url), doing) from exc


_SQLITE_WRITERS: dict[str, threading.Lock] = {}


def _writer(engine: Engine) -> contextlib.AbstractContextManager[object]:
    """SQLite takes one writer at a time and makes the others sleep and poll (up to 100 ms a
    try); threads of one process queue on a lock instead. PostgreSQL needs no such thing."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    return _SQLITE_WRITERS.setdefault(str(engine.url), threading.Lock())


# --- writing ----------------------------------------------------------------------------------


def save_page(
    engine: Engine, page: RawPage, records: list[PaperRecord], note: str | None = None
) -> UpsertCounts:
    """Store one page's records, its HTTP validators and a log line, all or nothing; ``note``
    (e.g. the invalid items the parser skipped) goes in the log line's ``error``.

    A unique-key race with a concurrent writer (PostgreSQL) rolls back and tries again.
    """
    for attempt in range(3):
        try:
            return _save_page_once(engine, page, records, note)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError) or attempt == 2:
                raise
            log.warning("retrying %s after a concurrent write: %s", page.location, exc)
    raise AssertionError("unreachable")


def _save_page_once(
    engine: Engine, page: RawPage, records: list[PaperRecord], note: str | None
) -> UpsertCounts:
    with session_scope(engine, "saving a page") as session:
        counts = upsert_papers(records, session=session)
        if page.etag or page.last_modified:
            _remember_validators(session, page)
        status = "not-modified" if page.not_modified else "stored"
        session.add(_log_row(page, status, counts, note))
    return counts


def log_failure(engine: Engine, source: str, listing: str, location: str, error: str) -> None:
    """Record a page or listing that could not be ingested."""
    row = FetchLog(
        source=source, listing=listing, location=location, status="failed", error=error, at=utcnow()
    )
    with session_scope(engine) as session:
        session.add(row)


def _log_row(page: RawPage, status: str, counts: UpsertCounts, note: str | None) -> FetchLog:
    return FetchLog(
        at=utcnow(),
        source=page.source,
        listing=page.listing,
        location=page.location,
        status=status,
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        error=note,
    )


def _remember_validators(session: Session, page: RawPage) -> None:
    row = session.get(HttpValidator, page.location) or HttpValidator(url=page.location)
    row.etag, row.last_modified = page.etag, page.last_modified
    if page.item_count is not None:
        row.item_count = page.item_count
    row.updated_at = utcnow()
    session.add(row)


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
    seen = _aware(record.sighting.observed_at)
    if paper.counters_at is not None and seen < _aware(paper.counters_at):
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
    elif _aware(seen.observed_at) <= _aware(row.observed_at) or all(
        getattr(row, name) == value for name, value in values.items()
    ):
        return False
    for name, value in values.items():
        setattr(row, name, value)
    row.observed_at = seen.observed_at
    session.add(row)
    return True


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every moment we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- reading ----------------------------------------------------------------------------------


def validator_lookup(engine: Engine) -> ValidatorLookup:
    """A function the HTTP client calls to find the ETag/Last-Modified stored for a URL."""

    def lookup(url: str) -> Validators | None:
        with Session(engine) as session:
            row = session.get(HttpValidator, url)
        if row is None:
            return None
        return Validators(row.etag, row.last_modified, row.item_count)

    return lookup


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


def count_rows(engine: Engine) -> dict[str, int]:
    """How many papers and sightings the store holds."""
    with Session(engine) as session:
        papers = session.exec(select(func.count()).select_from(Paper)).one()
        sightings = session.exec(select(func.count()).select_from(Sighting)).one()
    return {"papers": papers, "sightings": sightings}
