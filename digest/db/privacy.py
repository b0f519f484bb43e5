"""A subscriber's privacy rights over the store: everything stored about them as JSON (the
export), and erasure of the subscriber with everything tied to them, their bytes off the disk
on SQLite included."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from digest.db.engine import session_scope
from digest.db.models import Delivery, Feedback, Subscription
from digest.db.subscribers import by_email, subscriptions_of

__all__ = ["delete_account", "export_account"]

log = logging.getLogger(__name__)


def export_account(engine: Engine, email: str) -> dict[str, Any] | None:
    """Everything stored about ``email``, as JSON-ready data (the privacy export)."""
    with Session(engine) as session:
        found = by_email(session, email)
        if found is None:
            return None
        rows = subscriptions_of(session, found)
        votes = session.exec(select(Feedback).where(Feedback.subscriber_id == found.id)).all()
        sent = session.exec(
            select(Delivery)
            .where(Delivery.subscriber_id == found.id)
            .order_by(col(Delivery.period_start))
        ).all()
    person = found.model_dump(mode="json", exclude={"id", "channel"})
    person["channel"] = "apprise" if found.channel else "email"
    return {
        "subscriber": person,
        "subscriptions": [r.model_dump(mode="json", exclude={"id", "subscriber_id"}) for r in rows],
        "feedback": [v.model_dump(mode="json", exclude={"id", "subscriber_id"}) for v in votes],
        "deliveries": [
            d.model_dump(
                mode="json",
                include={
                    "issue_id",
                    "cadence",
                    "period_start",
                    "period_end",
                    "status",
                    "channel",
                    "paper_keys",
                    "sent_at",
                },
            )
            for d in sent
        ],
    }


def delete_account(
    engine: Engine,
    email: str,
    erase_issues: Callable[[list[str]], object] = lambda _: None,
) -> bool:
    """Erase the subscriber and everything tied to them; False if there was nothing.

    ``erase_issues`` gets the ids of their issues (from the ledger) before the ledger rows that
    name them go, to delete what was written outside the store (the "view in browser" pages
    that versions before on-demand rendering wrote to the archive); if it raises, nothing is
    deleted from the store. On SQLite the deleted
    rows are overwritten (``secure_delete``) and the write-ahead log, which still holds their
    old pages, is then copied back and emptied."""
    with session_scope(engine) as session:
        found = by_email(session, email)
        if found is None:
            return False
        issues = session.exec(
            select(Delivery.issue_id).where(Delivery.subscriber_id == found.id)
        ).all()
        erase_issues(list(issues))
        for table in (Delivery, Feedback, Subscription):
            session.exec(delete(table).where(col(table.subscriber_id) == found.id))
        session.delete(found)
    _checkpoint(engine)
    return True


def _checkpoint(engine: Engine) -> None:
    """SQLite: move the write-ahead log into the database file and truncate it, so deleted
    rows leave the disk now rather than at some later checkpoint. Best effort: a reader that
    holds an old snapshot keeps the log until the next checkpoint (logged)."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as connection:
            busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
    except SQLAlchemyError as exc:
        log.warning("checkpointing the database after a deletion failed: %s", exc)
        return
    if busy:
        log.warning("the database was busy: deleted rows stay in its log until a checkpoint")
