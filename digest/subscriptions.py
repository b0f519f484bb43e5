"""Subscribing and unsubscribing as the operator does it (``digest subscribe``, an import
file): validated requests (``digest.requests``) checked against the theme catalogue, then
written by the store (``digest.db.subscribers``); and each subscription as a scoring profile.
An operator adding someone confirms them; the web's double opt-in starts them unconfirmed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from digest.db import Engine, count_rows
from digest.db import subscribers as rows
from digest.db.models import Subscriber, SubscriberStatus, Subscription
from digest.db.papers import texts_containing
from digest.db.subscribers import SubscriberView
from digest.errors import SubscriptionError
from digest.paper_index import PaperIndex, occurs
from digest.profiles import Profile
from digest.requests import Interests, SubscriptionRequest, check_request, request_from
from digest.themes import Theme

__all__ = [
    "SubscriberView",
    "import_subscribers",
    "list_subscribers",
    "profile_of",
    "revoke_links",
    "subscribe",
    "unmatched_note",
    "unmatched_words",
    "unsubscribe",
]

MENTION_SCAN = 2000
"""Papers read at most to check one word; a word in more is common enough to count as found."""


def subscribe(
    engine: Engine,
    request: SubscriptionRequest,
    themes: dict[str, Theme],
    *,
    status: SubscriberStatus = SubscriberStatus.confirmed,
) -> Subscriber:
    """Add the request's subscriptions (creating the subscriber if new), all or nothing."""
    check_request(request, themes, where=f"{request.email}: ")
    added = rows.add_all(engine, [request], status)
    assert added is not None
    return added


def unmatched_words(engine: Engine, wanted: Interests) -> list[str]:
    """What the subscriber asked for that no stored paper has: each keyword or required word
    no paper mentions as a whole word, and the interest when none of its words is in any
    paper. A note at subscribe time, not an error: tomorrow's papers may have them. Nothing
    when the store is empty. Reads only the papers that contain each word."""
    if count_rows(engine)["papers"] == 0:
        return []
    missing = []
    for word in dict.fromkeys([*wanted.keywords, *wanted.require]):
        texts = texts_containing(engine, word, limit=MENTION_SCAN)
        if texts is not None and not any(occurs(word, text) for text in texts):
            missing.append(word)
    stems = PaperIndex.query_terms(wanted.interest)
    if stems and all(texts_containing(engine, stem, limit=0) == [] for stem in stems):
        missing.append(wanted.interest.strip())
    return missing


def unmatched_note(engine: Engine, wanted: Interests) -> str | None:
    """One sentence on what ``unmatched_words`` finds, for the CLI, the import and the web
    alike; None when every word is in some paper."""
    missing = unmatched_words(engine, wanted)
    if not missing:
        return None
    quoted = ", ".join(f'"{word}"' for word in missing)
    return f"no stored paper mentions {quoted} yet; digests will hold such papers once listed"


def unsubscribe(engine: Engine, email: str, theme_id: str | None = None) -> None:
    """Stop one theme, or (without ``theme_id``) everything for that address."""
    rows.unsubscribe(engine, request_from({"email": email}, "unsubscribe").email, theme_id)


def revoke_links(engine: Engine, email: str) -> None:
    """Give the address a new link id: every personal link it was ever sent stops working
    (a forwarded digest, a leaked preferences link); its next digest carries new ones."""
    rows.revoke_links(engine, request_from({"email": email}, "revoke-links").email)


def list_subscribers(engine: Engine) -> list[SubscriberView]:
    """Every subscriber with their subscriptions, by address."""
    return rows.list_all(engine)


def import_subscribers(
    engine: Engine, path: Path, themes: dict[str, Theme]
) -> list[SubscriptionRequest]:
    """Load many subscribers from a YAML list or a CSV file, in one transaction: a bad row
    (named by file and row) leaves the store unchanged. Returns the requests imported."""
    requests = [request_from(fields, where) for where, fields in _rows(path)]
    for request in requests:
        check_request(request, themes, where=f"{request.email}: ")
    rows.add_all(engine, requests, SubscriberStatus.confirmed)
    return requests


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriptionError(f"{path}: cannot read: {exc}") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        return [(f"{path}:{reader.line_num}", _csv_fields(row)) for row in reader]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SubscriptionError(f"{path}: not valid YAML: {exc}") from exc
    entries = data.get("subscribers") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SubscriptionError(f"{path}: expected a list of subscribers (mappings)")
    return [(f"{path}: subscriber {i}", e) for i, e in enumerate(entries, start=1)]


_LIST_COLUMNS = ("themes", "keywords", "require", "exclude", "authors")


def _csv_fields(row: dict[str, str | None]) -> dict[str, Any]:
    """CSV cells as request fields; list columns are separated by ``;``."""
    fields: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or not value.strip():
            continue
        key = key.strip()
        fields[key] = value.split(";") if key in _LIST_COLUMNS else value.strip()
    return fields


def profile_of(
    subscription: Subscription, themes: dict[str, Theme], titles: Mapping[str, str] = {}
) -> Profile:
    """The scoring profile for one subscription (a theme's, or the personal one). ``titles``
    holds the liked / disliked papers that are not among today's candidates, so feedback on
    an earlier digest still steers today's."""
    base = themes[subscription.theme_id].profile() if subscription.theme_id else Profile()
    return base.extended(
        liked_texts=[titles[k] for k in subscription.liked if k in titles],
        disliked_texts=[titles[k] for k in subscription.disliked if k in titles],
        text=subscription.interest,
        keywords=subscription.keywords,
        require=subscription.require,
        exclude=subscription.exclude,
        authors=subscription.authors,
        liked=subscription.liked,
        disliked=subscription.disliked,
    )
