"""The delivery ledger: which digest issue went to whom, so nothing is sent twice or lost.

One ``Delivery`` row per subscriber × issue (unique). Every state change is a single guarded
``UPDATE`` whose ``WHERE`` names the state it expects, so two send runs (threads, processes or
machines, SQLite or PostgreSQL) can race on a row and exactly one wins::

    pending ──claim──▶ sending ──mark_sent──▶ sent ──confirm──▶ sent (+ server reply)
       ▲                  │  ▲                  │
       └──release─────────┘  └─────unsend───────┘   (the server refused after all)
                          └──fail──▶ failed          (permanent, or out of attempts)
    skipped: nothing to send for that period (the reason is kept)

A claim is a lease: a run that dies leaves its rows ``sending`` until ``lease_until``; after
that any run may take them over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, and_, bindparam, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from digest.db.engine import connection_scope, session_scope
from digest.db.models import (
    Cadence,
    Delivery,
    DeliveryStatus,
    Subscriber,
    utcnow,
)

__all__ = [
    "IssuePlan",
    "Claim",
    "Planned",
    "claim",
    "confirm",
    "fail",
    "mark_all_sent",
    "mark_sent",
    "note_attempt",
    "plan",
    "release",
    "unsend",
]


@dataclass(frozen=True)
class IssuePlan:
    """One issue a send run composed: who, which issue, the period, and what it holds (or
    why it is skipped). ``plan`` writes one ledger row from it."""

    subscriber_id: int
    issue_id: str
    cadence: Cadence
    period_start: date
    period_end: date
    paper_keys: Sequence[str]
    skip_reason: str | None = None
    contents: dict[str, Any] | None = None
    """What the issue held (``digest.contents``): its "view in browser" page's source."""


@dataclass(frozen=True)
class Planned:
    """An issue to send: its ledger row and whether an earlier run already finished it."""

    delivery_id: int
    subscriber_id: int
    issue_id: str
    status: DeliveryStatus


def plan(engine: Engine, issues: Sequence[IssuePlan]) -> list[Planned]:
    """Insert the ledger rows of one batch, leaving rows that exist as they are, except that a
    skipped issue that now has papers becomes pending. One transaction; returns every row's
    current state."""
    if not issues:
        return []
    now = utcnow()
    rows = {
        (i.subscriber_id, i.issue_id): {**asdict(i), "paper_keys": list(i.paper_keys)}
        for i in issues
    }
    values = [
        {
            **row,
            "status": DeliveryStatus.skipped if row["skip_reason"] else DeliveryStatus.pending,
            "attempts": 0,
            "channel": "",
            "created_at": now,
            "updated_at": now,
        }
        for row in rows.values()
    ]
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    with session_scope(engine, "planning deliveries") as session:
        session.execute(
            insert(Delivery).on_conflict_do_nothing(index_elements=["subscriber_id", "issue_id"]),
            values,
        )
        found = _rows_of(session, rows)
        revive = _revive_skipped(session, found, rows, now)
    return [
        Planned(
            delivery_id=row_id,
            subscriber_id=person,
            issue_id=issue,
            status=DeliveryStatus.pending if row_id in revive else status,
        )
        for row_id, person, issue, status in found
    ]


_Found = list[tuple[int, int, str, DeliveryStatus]]
"""A batch's ledger rows as they stand: (row id, subscriber id, issue id, status)."""


def _rows_of(session: Session, rows: Mapping[tuple[int, str], Mapping[str, Any]]) -> _Found:
    """The batch's rows as they stand after the insert (new or left as they were)."""
    query = select(Delivery.id, Delivery.subscriber_id, Delivery.issue_id, Delivery.status).where(
        col(Delivery.subscriber_id).in_({person for person, _ in rows}),
        col(Delivery.issue_id).in_({issue for _, issue in rows}),
    )
    return [
        (row_id or 0, person, issue, DeliveryStatus(status))
        for row_id, person, issue, status in session.exec(query).all()
        if (person, issue) in rows
    ]


def _revive_skipped(
    session: Session,
    found: _Found,
    rows: Mapping[tuple[int, str], Mapping[str, Any]],
    now: datetime,
) -> set[int]:
    """Skipped rows whose issue now has papers become pending, with those papers and what the
    issue holds, in one statement (an executemany); returns their ids."""
    revived = [
        {
            "row_id": row_id,
            "keys": rows[(person, issue)]["paper_keys"],
            "held": rows[(person, issue)]["contents"],
        }
        for row_id, person, issue, status in found
        if status == DeliveryStatus.skipped and rows[(person, issue)]["paper_keys"]
    ]
    if revived:
        session.connection().execute(
            update(Delivery)
            .where(
                col(Delivery.id) == bindparam("row_id"),
                col(Delivery.status) == DeliveryStatus.skipped,
            )
            .values(
                status=DeliveryStatus.pending,
                skip_reason=None,
                paper_keys=bindparam("keys"),
                contents=bindparam("held"),
                updated_at=now,
            ),
            revived,
        )
    return {r["row_id"] for r in revived}


Claim = Literal["claimed", "busy", "done"]


def claim(
    engine: Engine, delivery_ids: Sequence[int], token: str, lease: timedelta
) -> dict[int, Claim]:
    """Take rows for sending, in one statement: pending ones whose retry time has come, and
    ones whose holder's lease ran out. Per row: ``claimed`` (by this ``token``, which must be
    new for every call), ``busy`` (another run holds it, or its retry time is ahead) or
    ``done`` (sent, failed or skipped)."""
    now = utcnow()
    due = or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) <= now)
    claimable = and_(
        col(Delivery.status).in_([DeliveryStatus.pending, DeliveryStatus.sending]), due
    )
    ids = list(delivery_ids)
    with connection_scope(engine, "claiming deliveries") as connection:
        connection.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), claimable)
            .values(status=DeliveryStatus.sending, claim=token, lease_until=now + lease)
        )
        found = connection.execute(
            select(Delivery.id, Delivery.status, Delivery.claim).where(col(Delivery.id).in_(ids))
        ).all()
    return {
        row_id: "claimed"
        if holder == token
        else "busy"
        if status in (DeliveryStatus.pending, DeliveryStatus.sending)
        else "done"
        for row_id, status, holder in found
    }


_MARK_SENT = (
    update(Delivery)
    .where(
        col(Delivery.id) == bindparam("row"),
        col(Delivery.claim) == bindparam("token"),
        col(Delivery.status) == DeliveryStatus.sending,
    )
    .values(
        status=DeliveryStatus.sent,
        attempts=Delivery.attempts + 1,
        channel=bindparam("channel"),
        message_id=bindparam("message_id"),
        sent_at=bindparam("now"),
        lease_until=None,
        updated_at=bindparam("now"),
    )
)


def mark_sent(
    engine: Engine, delivery_id: int, token: str, channel: str, message_id: str | None
) -> bool:
    """The point of no return, taken just before the server can accept the message. False
    when this run no longer holds the row (its lease ran out and another run took it).
    Runs once per message, so its statement is built once."""
    values = {
        "row": delivery_id,
        "token": token,
        "channel": channel,
        "message_id": message_id,
        "now": utcnow(),
    }
    with connection_scope(engine, "marking a delivery sent") as connection:
        return bool(connection.execute(_MARK_SENT, values).rowcount)


def mark_all_sent(
    engine: Engine, sent: Sequence[tuple[int, str | None, str]], token: str
) -> set[int]:
    """``mark_sent`` for many ``(delivery_id, message_id, channel)`` at once, in one
    transaction, for channels whose deliveries can be found again after a crash (the outbox).
    Returns the ids this run still held and so marked; the others went to another run, which
    finds them."""
    if not sent:
        return set()
    now = utcnow()
    ids = [row for row, _, _ in sent]
    values = [
        {"row": row, "token": token, "channel": channel, "message_id": message_id, "now": now}
        for row, message_id, channel in sent
    ]
    with connection_scope(engine, "marking deliveries sent") as connection:
        connection.execute(_MARK_SENT, values)
        marked = connection.execute(
            select(Delivery.id).where(
                col(Delivery.id).in_(ids),
                col(Delivery.claim) == token,
                col(Delivery.status) == DeliveryStatus.sent,
            )
        ).all()
    return {row for (row,) in marked}


def confirm(engine: Engine, replies: Sequence[tuple[int, int, str]]) -> None:
    """Keep the servers' acceptances (``(delivery_id, subscriber_id, reply)``, written in one
    transaction per batch) and clear those subscribers' bounce counts."""
    if not replies:
        return
    with connection_scope(engine, "confirming deliveries") as connection:
        connection.execute(
            update(Delivery)
            .where(col(Delivery.id) == bindparam("row"))
            .values(provider_reply=bindparam("reply"), last_error=None),
            [{"row": row, "reply": reply[:500]} for row, _, reply in replies],
        )
        connection.execute(
            update(Subscriber)
            .where(
                col(Subscriber.id).in_({who for _, who, _ in replies}), col(Subscriber.bounces) > 0
            )
            .values(bounces=0)
        )


def unsend(engine: Engine, delivery_id: int, token: str) -> bool:
    """Undo ``mark_sent`` when the server refused or vanished before accepting."""
    return _update(
        engine,
        "reopening a delivery",
        _held(delivery_id, token, DeliveryStatus.sent),
        status=DeliveryStatus.sending,
        attempts=Delivery.attempts - 1,
        sent_at=None,
    )


def note_attempt(
    engine: Engine, delivery_id: int, token: str, error: str, lease: timedelta
) -> bool:
    """Count a failed try on a row this run still holds, keep the error, extend the lease."""
    return _update(
        engine,
        "recording a failed attempt",
        _held(delivery_id, token, DeliveryStatus.sending),
        attempts=Delivery.attempts + 1,
        last_error=error[:1000],
        lease_until=utcnow() + lease,
        updated_at=utcnow(),
    )


def release(
    engine: Engine, delivery_id: int, token: str, error: str, retry_at: datetime | None
) -> bool:
    """Give a row back after a transient failure; no run takes it before ``retry_at``."""
    return _update(
        engine,
        "releasing a delivery",
        _held(delivery_id, token, DeliveryStatus.sending),
        status=DeliveryStatus.pending,
        claim=None,
        lease_until=retry_at,
        last_error=error[:1000],
        updated_at=utcnow(),
    )


def fail(
    engine: Engine,
    delivery_id: int,
    subscriber_id: int,
    token: str,
    error: str,
    *,
    bounce: bool,
    max_bounces: int,
) -> bool:
    """Record a row as failed for good. A hard bounce counts against the subscriber, who is
    suppressed (sent nothing more) after ``max_bounces`` in a row. Returns whether this
    failure suppressed them."""
    now = utcnow()
    with session_scope(engine, "failing a delivery") as session:
        done = session.execute(
            update(Delivery)
            .where(_held(delivery_id, token, DeliveryStatus.sending))
            .values(
                status=DeliveryStatus.failed,
                claim=None,
                lease_until=None,
                last_error=error[:1000],
                updated_at=now,
            )
        )
        if not done.rowcount or not bounce:  # type: ignore[attr-defined]
            return False
        session.execute(
            update(Subscriber)
            .where(col(Subscriber.id) == subscriber_id)
            .values(bounces=Subscriber.bounces + 1)
        )
        suppressed = session.execute(
            update(Subscriber)
            .where(
                col(Subscriber.id) == subscriber_id,
                col(Subscriber.bounces) >= max_bounces,
                col(Subscriber.suppressed_at).is_(None),
            )
            .values(suppressed_at=now)
        )
        return bool(suppressed.rowcount)  # type: ignore[attr-defined]


def _held(delivery_id: int, token: str, status: DeliveryStatus):  # type: ignore[no-untyped-def]
    return and_(
        col(Delivery.id) == delivery_id,
        col(Delivery.claim) == token,
        col(Delivery.status) == status,
    )


def _update(engine: Engine, doing: str, where: object, **values: object) -> bool:
    with connection_scope(engine, doing) as connection:
        result = connection.execute(update(Delivery).where(where).values(**values))  # type: ignore[arg-type]
        return bool(result.rowcount)
