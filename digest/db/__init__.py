"""The store: every SQL statement of the project runs in this package.

One module per aggregate, each a set of functions over an ``Engine`` (or a ``Session`` where a
caller composes one transaction):

    engine         engines, migrations, the transactions the others write in
    models         the tables (SQLModel); their enums live in ``digest.kinds``
    papers         papers and their sightings: the upsert, and the reads of them
    pages          a fetched page stored whole: its papers, HTTP validators and log line
    subscribers    subscribers and their subscriptions; who is due
    accounts       the web account: sign-up, confirmation, preferences, votes, leaving
    privacy        a subscriber's export, and erasure of everything tied to them
    ledger         the delivery ledger: one row per (subscriber, issue), claimed and sent once
    sent           what the ledger says was sent: papers already had, a sent issue's contents
    unconfirmed    messages whose server never answered the end, for the operator
    status         the operator's read-only view of recent ingests and deliveries

An import-linter contract keeps ``sqlmodel``, ``sqlalchemy`` and ``alembic`` out of the rest of
``digest``.
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
from digest.db.pages import log_failure, save_page, stored_validators
from digest.db.papers import UpsertCounts, count_rows, list_papers, upsert_papers

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
