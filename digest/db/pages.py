"""A fetched page's storage: its papers (``papers.upsert_papers``), its HTTP validators for
the next conditional GET and a fetch-log line, all in one transaction; and the log line of a
page that could not be ingested. The page arrives as anything shaped like ``FetchedPage`` (a
source's ``RawPage`` is one): the store knows no source or HTTP types."""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from digest.db.engine import session_scope
from digest.db.models import FetchLog, HttpValidator, utcnow
from digest.db.papers import UpsertCounts, upsert_papers
from digest.errors import StoreError
from digest.records import PaperRecord

__all__ = ["FetchedPage", "log_failure", "save_page", "stored_validators"]

log = logging.getLogger("digest.store")


class FetchedPage(Protocol):
    """What the store keeps of a fetched page (a source's ``RawPage`` is one): who listed it,
    where it came from, and the validators for the next conditional GET."""

    @property
    def source(self) -> str: ...
    @property
    def listing(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def last_modified(self) -> str | None: ...
    @property
    def item_count(self) -> int | None: ...
    @property
    def not_modified(self) -> bool: ...


def save_page(
    engine: Engine, page: FetchedPage, records: list[PaperRecord], note: str | None = None
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
    engine: Engine, page: FetchedPage, records: list[PaperRecord], note: str | None
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


def _log_row(page: FetchedPage, status: str, counts: UpsertCounts, note: str | None) -> FetchLog:
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


def _remember_validators(session: Session, page: FetchedPage) -> None:
    row = session.get(HttpValidator, page.location) or HttpValidator(url=page.location)
    row.etag, row.last_modified = page.etag, page.last_modified
    if page.item_count is not None:
        row.item_count = page.item_count
    row.updated_at = utcnow()
    session.add(row)


def stored_validators(engine: Engine, url: str) -> HttpValidator | None:
    """The ETag, Last-Modified and item count stored for ``url`` by its last 200 response."""
    with Session(engine) as session:
        return session.get(HttpValidator, url)
