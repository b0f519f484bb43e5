"""The store: every SQL statement of the project runs in this package.

One module per aggregate, each a set of functions over an ``Engine`` (or a ``Session`` where a
caller composes one transaction):

    engine         engines, migrations, the transactions the others write in
    models         the tables (SQLModel) and their enums
    papers         papers, sightings, the fetch log and stored HTTP validators
    subscribers    subscribers, their subscriptions, votes and personal-link ids
    ledger         the delivery ledger: one row per (subscriber, issue), claimed and sent once
    status         the operator's read-only view of recent ingests and deliveries

An import-linter contract keeps ``sqlmodel`` and ``sqlalchemy`` out of the rest of ``digest``.
"""

from __future__ import annotations

from digest.db.engine import (
    MIGRATIONS,
    Engine,
    connection_scope,
    get_engine,
    migrate,
    session_scope,
)
from digest.db.papers import (
    UpsertCounts,
    count_rows,
    list_papers,
    log_failure,
    save_page,
    stored_validators,
    upsert_papers,
)

__all__ = [
    "MIGRATIONS",
    "Engine",
    "UpsertCounts",
    "connection_scope",
    "count_rows",
    "get_engine",
    "list_papers",
    "log_failure",
    "migrate",
    "save_page",
    "session_scope",
    "stored_validators",
    "upsert_papers",
]
