"""Engines, migrations and transactions: the one place a database connection is made.

``get_engine`` migrates the schema once per process (Alembic, the only way it changes);
``session_scope`` and ``connection_scope`` are the transactions every repository in this
package writes in. A database error leaves as a one-line ``StoreError`` naming the database.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from digest.errors import StoreError

__all__ = ["MIGRATIONS", "Engine", "connection_scope", "get_engine", "migrate", "session_scope"]

MIGRATIONS = Path(str(resources.files("digest") / "migrations"))
T = TypeVar("T")


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
