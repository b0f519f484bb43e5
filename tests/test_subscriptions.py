"""Subscribers and subscriptions on SQLite and PostgreSQL: validation, duplicates, unsubscribes,
bulk import all-or-nothing, and the scoring profile each subscription becomes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from digest.db.models import Cadence, Subscriber, SubscriberStatus, Subscription
from digest.errors import SubscriptionError
from digest.ingest import ingest_pages, read_pages
from digest.requests import request_from
from digest.subscriptions import (
    import_subscribers,
    list_subscribers,
    profile_of,
    subscribe,
    unmatched_words,
    unsubscribe,
)
from digest.themes import load_themes
from tests.conftest import SEEDS

THEMES = load_themes()


def ask(**fields: object):  # type: ignore[no-untyped-def]
    return request_from({"email": "Ada@Example.org", **fields}, "test")


def rows(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        return (
            session.exec(select(func.count()).select_from(Subscriber)).one(),
            session.exec(select(func.count()).select_from(Subscription)).one(),
        )


def test_a_theme_and_a_profile_become_two_sections(engine: Engine) -> None:
    person = subscribe(
        engine,
        ask(
            themes=["agents"],
            interest="tool-using agents",
            keywords=["MCP"],
            exclude=["survey"],
            cadence="weekly",
        ),
        THEMES,
    )
    assert person.email == "ada@example.org" and person.status == SubscriberStatus.confirmed
    [view] = list_subscribers(engine)
    assert [s["theme_id"] for s in view.subscriptions] == ["agents", None]
    assert {s["cadence"] for s in view.subscriptions} == {"weekly"}
    assert view.subscriptions[1]["keywords"] == ["MCP"] and view.subscriptions[1]["exclude"] == [
        "survey"
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not-an-address"}, "email: 'not-an-address' is not an email address"),
        ({"themes": ["astrology"]}, "theme 'astrology' is not in the catalogue"),
        ({"interest": "   "}, "give a theme, an interest or a keyword"),
        ({}, "give a theme, an interest or a keyword"),
        (
            {"themes": ["agents"], "timezone": "Mars/Olympus"},
            "timezone: 'Mars/Olympus' is not a time zone",
        ),
        (
            {"themes": ["agents"], "cadence": "hourly"},
            "cadence: Input should be 'daily' or 'weekly'",
        ),
        (
            {"themes": ["agents"], "max_items": 0},
            "max_items: Input should be greater than or equal to 1",
        ),
        (
            {"themes": ["agents"], "interest": "x" * 5000},
            "interest: String should have at most 2000 characters",
        ),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(
    engine: Engine, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(SubscriptionError, match=message):
        subscribe(engine, request_from({"email": "ada@example.org", **fields}, "test"), THEMES)
    assert rows(engine) == (0, 0)


def test_a_duplicate_subscription_is_refused_and_changes_nothing(engine: Engine) -> None:
    subscribe(engine, ask(themes=["agents"]), THEMES)
    with pytest.raises(SubscriptionError, match="already subscribed to theme 'agents'"):
        subscribe(engine, ask(themes=["speech-audio", "agents"]), THEMES)
    assert rows(engine) == (1, 1)  # speech-audio was not half-added
    subscribe(engine, ask(keywords=["GRPO"]), THEMES)
    with pytest.raises(SubscriptionError, match="already has this interest profile"):
        subscribe(engine, ask(keywords=["GRPO"]), THEMES)


def test_unsubscribe_from_a_theme_or_everything_and_come_back(engine: Engine) -> None:
    subscribe(engine, ask(themes=["agents", "speech-audio"]), THEMES)
    unsubscribe(engine, "ada@example.org", "agents")
    [view] = list_subscribers(engine)
    assert {s["theme_id"]: s["active"] for s in view.subscriptions} == {
        "agents": False,
        "speech-audio": True,
    }
    unsubscribe(engine, "ADA@example.org")
    assert list_subscribers(engine)[0].status == "unsubscribed"
    subscribe(engine, ask(themes=["agents"]), THEMES)  # re-subscribing reactivates
    [view] = list_subscribers(engine)
    assert view.status == "confirmed" and all(s["active"] for s in view.subscriptions)
    with pytest.raises(SubscriptionError, match="no such subscriber"):
        unsubscribe(engine, "bob@example.org")


def test_bulk_import_from_yaml_and_csv(engine: Engine, tmp_path: Path) -> None:
    people = tmp_path / "people.yaml"
    people.write_text(
        "subscribers:\n  - email: a@example.org\n    themes: [agents]\n  - email: b@example.org\n    interest: speech synthesis\n    cadence: weekly\n"
    )
    assert len(import_subscribers(engine, people, THEMES)) == 2
    sheet = tmp_path / "people.csv"
    sheet.write_text(
        'email,name,themes,keywords,exclude\nc@example.org,Cee,agents;speech-audio,,\nd@example.org,,,"GRPO;reward model",survey\n'
    )
    assert len(import_subscribers(engine, sheet, THEMES)) == 2
    views = {v.email: v for v in list_subscribers(engine)}
    assert [s["theme_id"] for s in views["c@example.org"].subscriptions] == [
        "agents",
        "speech-audio",
    ]
    assert views["d@example.org"].subscriptions[0]["keywords"] == ["GRPO", "reward model"]
    assert views["b@example.org"].subscriptions[0]["cadence"] == "weekly"


def test_a_bad_row_names_its_place_and_imports_nothing(engine: Engine, tmp_path: Path) -> None:
    sheet = tmp_path / "people.csv"
    sheet.write_text("email,themes\ne@example.org,agents\nnot-an-address,agents\n")
    with pytest.raises(
        SubscriptionError, match=r"people.csv:3: email: 'not-an-address' is not an email address"
    ):
        import_subscribers(engine, sheet, THEMES)
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "- {email: f@example.org, themes: [agents]}\n- {email: f@example.org, themes: [agents]}\n"
    )
    with pytest.raises(SubscriptionError, match="already subscribed"):
        import_subscribers(engine, twice, THEMES)
    assert rows(engine) == (0, 0)


def test_a_subscription_becomes_its_scoring_profile(engine: Engine) -> None:
    subscribe(
        engine,
        ask(
            themes=["agents"],
            interest="browser agents",
            keywords=["web agent"],
            require=["agent"],
            authors=["Ada Lovelace"],
        ),
        THEMES,
    )
    with Session(engine) as session:
        theme_row, personal_row = session.exec(select(Subscription).order_by(Subscription.id)).all()
    theme = profile_of(theme_row, THEMES)
    assert theme.keywords == THEMES["agents"].keywords and theme.require == ()
    personal = profile_of(personal_row, THEMES)
    assert personal.text == "browser agents" and personal.keywords == ("web agent",)
    assert personal.require == ("agent",) and personal.authors == ("Ada Lovelace",)
    assert personal_row.cadence == Cadence.daily


def test_a_database_failure_while_subscribing_is_a_store_error(engine: Engine) -> None:
    from digest.errors import StoreError

    subscribe(engine, ask(themes=["agents"]), THEMES)
    with Session(engine) as session, session.begin():  # break the schema under the store's feet
        session.connection().exec_driver_sql("DROP TABLE subscription")
    with pytest.raises(StoreError, match=r"database .*: writing failed: .*subscription"):
        subscribe(engine, ask(themes=["speech-audio"]), THEMES)


def test_words_no_stored_paper_has_are_named_and_the_rest_are_not(
    engine: Engine, database_url: str
) -> None:
    """A note at subscribe time, in SQL on either store: a keyword counts as found only as a
    whole word ("orld" is inside "world", not a word of its own); an interest only when none
    of its words is in any paper. An empty store has nothing to compare with."""
    wanted = ask(
        interest="zyxwvut qwzrtp",
        keywords=["GRPO", "orld", "zyxwvut", "reward model"],
        require=["RL"],
    )
    assert unmatched_words(engine, wanted) == []
    ingest_pages(read_pages("seeds", SEEDS, None), database_url)
    assert unmatched_words(engine, wanted) == ["orld", "zyxwvut", "zyxwvut qwzrtp"]
    found = ask(interest="Robot manipulation", keywords=["100%_"])  # LIKE's wildcards, literally
    assert unmatched_words(engine, found) == ["100%_"]
