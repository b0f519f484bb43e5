"""The subscription web app over HTTP (FastAPI's TestClient, a real store on SQLite and
PostgreSQL, the real outbox): double opt-in, confirmations and their replays, preferences,
RFC 8058 one-click unsubscribe, feedback moving the next ranking, export and deletion, and
every refusal (forged tokens, CSRF, oversized input, rate limits) leaving the store unchanged."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from digest.archive import Archive, publish_themes
from digest.assemble import Digest
from digest.compose import composer_for
from digest.db import accounts
from digest.db.accounts import Vote
from digest.db.models import Cadence, Delivery, Feedback, Subscriber, SubscriberStatus, Subscription
from digest.db.subscribers import due_subscribers
from digest.errors import TokenError
from digest.ingest import ingest_pages, read_pages
from digest.periods import Period
from digest.render import Renderer
from digest.requests import request_from
from digest.runtime import Runtime, SendOptions
from digest.sending import send_digests
from digest.settings import Settings, load_settings
from digest.subscriptions import subscribe
from digest.themes import load_themes
from digest.tokens import CONFIRM_MAX_AGE, Purpose, Tokens
from digest.web import MAX_BODY, create_app
from tests.conftest import SEEDS

THEMES = load_themes()
DAY = date(2026, 4, 15)
EARLIER = date(2026, 2, 16)
PUBLIC = "https://digest.example.org"


@pytest.fixture
def store(engine: Engine) -> Engine:
    ingest_pages(read_pages("seeds", SEEDS, None), str(engine.url))
    return engine


@pytest.fixture
def settings(clean_environ: Path) -> Settings:
    return load_settings(public_url=PUBLIC, secret_key=KEY, signup_rate="50/minute")


@pytest.fixture
def client(store: Engine, settings: Settings) -> TestClient:
    return TestClient(create_app(settings, store), base_url=PUBLIC)


KEY = "web-test-" + "k3y-0123456789abcdefghijklmnopqrstuvwxyz"


class ByAddress:
    """Tokens for a subscriber named by address, as the app makes them: for their link id."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.tokens, self.engine = Tokens(settings.key_ring().keys), engine

    def make(self, email: str, purpose: Purpose) -> str:
        return self.tokens.make(accounts.link_for(self.engine, email) or email, purpose)

    def read_confirm(self, token: str, max_age: int = CONFIRM_MAX_AGE) -> tuple[str, datetime]:
        return self.tokens.read_confirm(token, max_age)


def tokens(settings: Settings, engine: Engine) -> ByAddress:
    return ByAddress(settings, engine)


def csrf(client: TestClient, path: str = "/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    field = BeautifulSoup(page.text, "lxml").select_one('input[name="csrf"]')
    assert field is not None
    return str(field["value"])


def outbox(settings: Settings) -> list[EmailMessage]:
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted(settings.outbox_dir.glob("signup-*.eml"))
    ]


def link_in(message: EmailMessage, path: str) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(rf"{re.escape(PUBLIC)}(/{path}/[^\s]+)", text)
    assert found, text
    return found[1]


def person(engine: Engine, email: str) -> Subscriber | None:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return (
            session.exec(select(func.count()).select_from(Subscriber)).one(),
            session.exec(select(func.count()).select_from(Subscription)).one(),
            session.exec(select(func.count()).select_from(Feedback)).one(),
        )


def sign_up(client: TestClient, email: str, **fields: object) -> str:
    data = {"email": email, "themes": ["agents"], "csrf": csrf(client), **fields}
    response = client.post("/", data=data)
    assert response.status_code == 200, response.text
    mail_sent(client)
    return response.text


def mail_sent(client: TestClient) -> None:
    """Wait until the app's mail worker has sent (or given up on) every queued email."""
    queue = getattr(client.app.state, "signup_mail", None)  # type: ignore[attr-defined]
    if queue is not None:
        assert queue.wait_idle(timeout=30), "the sign-up emails were not sent"


def confirm(client: TestClient, link: str) -> httpx.Response:
    """What a person does with the emailed link: open it, then press the button."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    form = BeautifulSoup(page.text, "lxml").select_one(f'form[method="post"][action="{link}"]')
    assert form is not None, page.text
    field = form.select_one('input[name="csrf"]')
    assert field is not None
    return client.post(link, data={"csrf": str(field["value"])})


# --- sign-up and double opt-in ----------------------------------------------------------------


def test_the_form_lists_every_theme_with_recent_papers_and_safe_headers(
    client: TestClient,
) -> None:
    page = client.get("/")
    soup = BeautifulSoup(page.text, "lxml")
    boxes = [box["value"] for box in soup.select('input[name="themes"]')]
    assert boxes == list(THEMES)
    assert soup.select("ul.samples li"), "recent papers under the themes"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none'
    assert "pd_csrf" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]


def test_a_sign_up_is_unconfirmed_and_gets_exactly_one_confirmation_email(
    client: TestClient, store: Engine, settings: Settings
) -> None:
    page = sign_up(client, "Ann@Example.org", interest="diffusion for robots", cadence="weekly")
    assert "Check your inbox" in page
    ann = person(store, "ann@example.org")
    assert ann is not None and ann.status == SubscriberStatus.unconfirmed
    sent = outbox(settings)
    assert [m["To"] for m in sent] == ["ann@example.org"]
    assert "Confirm" in sent[0]["Subject"] and "List-Unsubscribe" not in sent[0]
    sign_up(client, "ann@example.org")  # again, at once: no second email
    sign_up(client, "ann@example.org", themes=["robotics-embodied"])
    assert len(outbox(settings)) == 1
    with Session(store) as session:  # the newest form is what they meant
        rows = session.exec(select(Subscription).where(Subscription.subscriber_id == ann.id)).all()
    assert [r.theme_id for r in rows] == ["robotics-embodied"]
    assert due_subscribers(store, Cadence.daily) == []  # nothing goes to the unconfirmed


def test_confirming_works_once_and_replays_forgeries_and_old_links_change_nothing(
    client: TestClient, store: Engine, settings: Settings
) -> None:
    sign_up(client, "bo@example.org")
    link = link_in(outbox(settings)[0], "confirm")
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 404
    other = "/confirm/" + tokens(settings, store).make("bo@example.org", Purpose.unsubscribe)
    assert client.get(other).status_code == 404
    field = csrf(client)
    assert client.post(tampered, data={"csrf": field}).status_code == 404
    assert client.post(other, data={"csrf": field}).status_code == 404
    assert person(store, "bo@example.org").status == SubscriberStatus.unconfirmed  # type: ignore[union-attr]
    first = confirm(client, link)
    assert first.status_code == 200 and "subscribed" in first.text
    assert person(store, "bo@example.org").status == SubscriberStatus.confirmed  # type: ignore[union-attr]
    replay = confirm(client, link)
    assert replay.status_code == 200 and "Already confirmed" in replay.text
    accounts.leave(store, "bo@example.org")
    assert client.post(link, data={"csrf": field}).status_code == 410  # no resubscribing
    assert person(store, "bo@example.org").status == SubscriberStatus.unsubscribed  # type: ignore[union-attr]


def test_opening_a_confirmation_link_confirms_nothing_until_the_button_is_pressed(
    client: TestClient, store: Engine, settings: Settings
) -> None:
    """A link scanner fetches every URL in an email: only the form's POST, with the CSRF pair
    only the person's own browser has, completes double opt-in."""
    sign_up(client, "lin@example.org")
    link = link_in(outbox(settings)[0], "confirm")
    scanner = TestClient(client.app, base_url=PUBLIC)  # no cookies, follows every link
    for opener in (scanner, client):
        page = opener.get(link)
        assert page.status_code == 200
        assert person(store, "lin@example.org").status == SubscriberStatus.unconfirmed  # type: ignore[union-attr]
    form = BeautifulSoup(page.text, "lxml").select_one(f'form[method="post"][action="{link}"]')
    assert form is not None and "lin@example.org" in form.text
    field = form.select_one('input[name="csrf"]')
    assert field is not None
    assert scanner.post(link).status_code == 422  # no CSRF field at all
    assert scanner.post(link, data={"csrf": str(field["value"])}).status_code == 403  # no cookie
    assert client.post(link, data={"csrf": "forged"}).status_code == 403
    assert person(store, "lin@example.org").status == SubscriberStatus.unconfirmed  # type: ignore[union-attr]
    done = client.post(link, data={"csrf": str(field["value"])})
    assert done.status_code == 200 and "subscribed" in done.text
    assert person(store, "lin@example.org").status == SubscriberStatus.confirmed  # type: ignore[union-attr]


def test_a_link_older_than_the_latest_sign_up_email_is_refused(store: Engine) -> None:
    wanted = request_from({"email": "cy@example.org", "themes": ["agents"]}, "test")
    first = accounts.sign_up(store, wanted, THEMES)
    assert first.send == "confirm" and first.at is not None
    later = first.at + timedelta(hours=2)
    again = accounts.sign_up(store, wanted, THEMES, now=later)
    assert again.send == "confirm"
    stale = accounts.confirm(store, "cy@example.org", first.at - timedelta(seconds=1))
    assert stale is accounts.ConfirmOutcome.stale
    assert accounts.confirm(store, "cy@example.org", later) is accounts.ConfirmOutcome.confirmed


def test_an_expired_confirmation_token_is_refused(settings: Settings, store: Engine) -> None:
    token = tokens(settings, store).make("dee@example.org", Purpose.confirm)
    assert tokens(settings, store).read_confirm(token)[0] == "dee@example.org"
    with pytest.raises(TokenError, match="expired"):
        tokens(settings, store).read_confirm(token, max_age=-1)


def test_signing_up_a_confirmed_address_changes_nothing_and_mails_a_preferences_link(
    client: TestClient, store: Engine, settings: Settings
) -> None:
    subscribe(store, request_from({"email": "eve@example.org", "themes": ["agents"]}, "t"), THEMES)
    before = counts(store)
    sign_up(client, "eve@example.org", themes=["robotics-embodied", "speech-audio"])
    assert counts(store) == before
    (notice,) = outbox(settings)
    assert "preferences" in link_in(notice, "preferences")
    sign_up(client, "eve@example.org")
    assert len(outbox(settings)) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not an address"}, "is not an email address"),
        ({"email": "x@example.org", "themes": ["no-such-theme"]}, "not in the catalogue"),
        ({"email": "x@example.org", "themes": []}, "give a theme, an interest or a keyword"),
        ({"email": "x@example.org", "interest": "<script>alert(1)</script>" * 200}, "interest"),
        ({"email": "<script>alert(1)</script>@example.org"}, "is not an email address"),
    ],
)
def test_a_bad_sign_up_is_refused_with_a_clear_message_and_nothing_written(
    client: TestClient, store: Engine, settings: Settings, fields: dict[str, object], message: str
) -> None:
    before = counts(store)
    data = {"themes": ["agents"], "csrf": csrf(client), **fields}
    response = client.post("/", data=data)
    assert response.status_code == 422
    assert message in response.text
    assert "<script>alert" not in response.text  # what they typed comes back escaped
    assert counts(store) == before and outbox(settings) == []


def test_posts_without_the_csrf_pair_are_refused(client: TestClient, store: Engine) -> None:
    before = counts(store)
    assert (
        client.post(
            "/", data={"email": "f@example.org", "themes": ["agents"], "csrf": "x"}
        ).status_code
        == 403
    )
    foreign = TestClient(client.app, base_url=PUBLIC)  # another browser: its own cookie
    field = csrf(client)
    foreign.get("/")
    response = foreign.post(
        "/", data={"email": "f@example.org", "themes": ["agents"], "csrf": field}
    )
    assert response.status_code == 403
    assert counts(store) == before


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient, store: Engine) -> None:
    before = counts(store)
    body = "email=a%40example.org&interest=" + "x" * (MAX_BODY + 10)
    response = client.post(
        "/", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert counts(store) == before


def test_sign_ups_are_rate_limited_per_client(store: Engine, clean_environ: Path) -> None:
    settings = load_settings(public_url=PUBLIC, signup_rate="2/minute")
    client = TestClient(create_app(settings, store), base_url=PUBLIC)
    codes = [
        client.post(
            "/", data={"email": f"r{i}@example.org", "themes": ["agents"], "csrf": csrf(client)}
        ).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]
    assert person(store, "r2@example.org") is None


# --- preferences, unsubscribe, feedback, privacy -----------------------------------------------


@pytest.fixture
def member(store: Engine) -> str:
    email = "gus@example.org"
    subscribe(store, request_from({"email": email, "themes": ["agents"]}, "test"), THEMES)
    return email


def test_strictness_is_shown_and_set_on_the_preferences_page(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    path = "/preferences/" + tokens(settings, store).make(member, Purpose.preferences)
    page = BeautifulSoup(client.get(path).text, "lxml")
    chosen = page.select_one('select[name="strictness"] option[selected]')
    assert chosen is not None and chosen["value"] == "balanced"  # the default
    data = {"csrf": csrf(client, path), "themes": ["agents"], "cadence": "daily"}
    assert client.post(path, data={**data, "strictness": "strict"}).status_code == 200
    assert {s.strictness for s in accounts_subscriptions(store, member)} == {"strict"}
    page = BeautifulSoup(client.get(path).text, "lxml")
    chosen = page.select_one('select[name="strictness"] option[selected]')
    assert chosen is not None and chosen["value"] == "strict"
    refused = client.post(path, data={**data, "strictness": "lenient"})
    assert refused.status_code == 422
    assert {s.strictness for s in accounts_subscriptions(store, member)} == {"strict"}


def test_words_no_stored_paper_has_are_noted_at_sign_up_and_on_the_preferences_page(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    """The web warns as the CLI does: a keyword or an interest the store has never seen is
    named after sign-up and on the preferences page (a note; the request still goes in)."""
    page = sign_up(client, "ann@example.org", interest="qwzrtp xylofon", keywords="GRPO, zyxwvut")
    note = BeautifulSoup(page, "lxml").select_one("#message")
    assert note is not None and "Check your inbox" in page
    assert 'no stored paper mentions "zyxwvut", "qwzrtp xylofon" yet' in note.text
    assert "GRPO" not in note.text
    plain = sign_up(client, "bob@example.org", keywords="GRPO")
    assert "no stored paper mentions" not in plain
    path = "/preferences/" + tokens(settings, store).make(member, Purpose.preferences)
    assert BeautifulSoup(client.get(path).text, "lxml").select_one("#unmatched") is None
    data = {"csrf": csrf(client, path), "themes": ["agents"], "cadence": "daily"}
    saved = client.post(path, data={**data, "keywords": "zyxwvut, agents"})
    notice = BeautifulSoup(saved.text, "lxml").select_one("#unmatched")
    assert notice is not None and '"zyxwvut"' in notice.text and '"agents"' not in notice.text


def test_preferences_show_and_change_themes_cadence_and_pause(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    path = "/preferences/" + tokens(settings, store).make(member, Purpose.preferences)
    page = BeautifulSoup(client.get(path).text, "lxml")
    assert [b["value"] for b in page.select('input[name="themes"][checked]')] == ["agents"]
    data = {
        "csrf": csrf(client, path),
        "themes": ["robotics-embodied", "llm-reasoning-rl"],
        "interest": "humanoid locomotion",
        "keywords": "sim-to-real, whole-body control",
        "cadence": "weekly",
        "max_items": "5",
        "paused": "true",
    }
    response = client.post(path, data=data, follow_redirects=False)
    assert response.status_code == 303
    account = accounts.account(store, member)
    assert account is not None
    prefs = account.preferences
    assert prefs.themes == ("robotics-embodied", "llm-reasoning-rl")
    assert prefs.keywords == ("sim-to-real", "whole-body control")
    assert (prefs.cadence, prefs.max_items, prefs.paused) == (Cadence.weekly, 5, True)
    assert due_subscribers(store, Cadence.weekly) == []  # paused
    shown = client.get(response.headers["location"])
    assert "Saved." in shown.text
    forged = client.post(path + "x", data=data)
    assert forged.status_code == 404
    no_csrf = client.post(path, data={**data, "csrf": "nope", "themes": ["agents"]})
    assert no_csrf.status_code == 403
    assert accounts.account(store, member).preferences.themes == prefs.themes  # type: ignore[union-attr]


def test_one_click_unsubscribe_by_post_and_a_get_changes_nothing(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    path = "/unsubscribe/" + tokens(settings, store).make(member, Purpose.unsubscribe)
    page = client.get(path)  # what a link scanner does
    assert page.status_code == 200 and "<form" in page.text
    assert person(store, member).status == SubscriberStatus.confirmed  # type: ignore[union-attr]
    assert client.post(path, data={}).status_code == 400
    provider = TestClient(client.app, base_url=PUBLIC)  # a mail provider: no cookies
    response = provider.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert person(store, member).status == SubscriberStatus.unsubscribed  # type: ignore[union-attr]
    assert provider.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert due_subscribers(store, Cadence.daily) == []
    resubscribe = "/preferences/" + tokens(settings, store).make(member, Purpose.preferences)
    assert "You are unsubscribed" in client.get(resubscribe).text
    data = {"csrf": csrf(client, resubscribe), "themes": ["agents"], "cadence": "daily"}
    assert client.post(resubscribe, data=data).status_code == 200  # (redirect followed)
    assert [p.email for p, _ in due_subscribers(store, Cadence.daily)] == [member]
    accounts.leave(store, member)
    preferences_token = tokens(settings, store).make(member, Purpose.preferences)
    assert (
        provider.post(
            "/unsubscribe/" + preferences_token, data={"List-Unsubscribe": "One-Click"}
        ).status_code
        == 404
    )


def test_feedback_links_record_on_post_only_and_move_every_section(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    composer = composer_for(store, Period.day(DAY), THEMES)
    paper = composer.papers[0]  # any paper of the day: a vote is the subscriber's to give
    path = "/feedback/" + tokens(settings, store).make(member, Purpose.feedback)
    page = client.get(path, params={"paper": paper.key, "vote": "less"})
    assert page.status_code == 200 and paper.title.split()[0] in page.text
    assert counts(store)[2] == 0
    assert client.get(path, params={"paper": "no-such-paper", "vote": "less"}).status_code == 404
    assert client.get(path, params={"paper": paper.key, "vote": "meh"}).status_code == 422
    data = {"csrf": csrf(client), "paper": paper.key, "vote": "less"}
    assert client.post(path, data=data).status_code == 200
    assert [s.disliked for s in accounts_subscriptions(store, member)] == [[paper.key]]
    assert client.post(path, data={**data, "vote": "more"}).status_code == 200
    (row,) = accounts_subscriptions(store, member)
    assert (row.liked, row.disliked) == ([paper.key], [])
    assert counts(store)[2] == 1  # one vote per paper: the newest


def accounts_subscriptions(engine: Engine, email: str) -> list[Subscription]:
    with Session(engine) as session:
        found = session.exec(select(Subscriber).where(Subscriber.email == email)).one()
        return list(
            session.exec(
                select(Subscription).where(
                    Subscription.subscriber_id == found.id, Subscription.active
                )
            ).all()
        )


def test_less_like_this_drops_that_topic_in_the_next_digest(store: Engine, member: str) -> None:
    """A vote on an earlier day's paper reaches the next day's ranking (the paper itself is no
    longer a candidate): the next day's paper most like it falls."""

    def ranking() -> list[tuple[str, float]]:
        digest = every_paper(store, member, max_items=100)
        # the papers above the day's mean score, as sections held before there was a floor
        return [(p.key, p.score) for s in digest.sections for p in s.papers if p.score >= 0]

    before = ranking()
    earlier = composer_for(store, Period.span(date(2020, 1, 1), EARLIER), THEMES).papers
    overlap, target, disliked = max(
        (
            (len(words(title_of(store, key)) & words(old.title)), key, old)
            for key, _ in before
            for old in earlier
        ),
        key=lambda found: (found[0], found[1], found[2].key),
    )
    assert overlap >= 2, "an earlier paper on the same topic as one of today's"
    assert accounts.record_feedback(store, member, disliked.key, Vote.less)
    after = ranking()
    old_place, old_score = [k for k, _ in before].index(target), dict(before)[target]
    keys = [k for k, _ in after]
    assert dict(after).get(target, float("-inf")) < old_score
    assert target not in keys or keys.index(target) > old_place or old_place == len(keys) - 1
    others = [k for k, _ in before if k != target]
    assert [k for k in keys if k != target] == [k for k in others if k in keys]


def every_paper(engine: Engine, email: str, max_items: int | None = None) -> Digest:
    """The subscriber's digest of the day with no relevance floor (every scored paper, up to
    each section's size), with their personal links: to test what is done with a digest."""
    composer = composer_for(engine, Period.day(DAY), THEMES)
    rows = accounts_subscriptions(engine, email)
    for row in rows:
        row.max_items = max_items or row.max_items
    titles = composer._feedback_titles(rows)
    specs = [composer._spec(row, titles).model_copy(update={"floor": 0.0}) for row in rows]
    digest = composer.compose_sections(email, specs)
    return digest.model_copy(update={"link_id": accounts.link_for(engine, email)})


def words(title: str) -> set[str]:
    common = {"model", "models", "language", "large", "learning", "towards", "using", "via"}
    return set(re.findall(r"[a-z]{5,}", title.lower())) - common


def title_of(engine: Engine, key: str) -> str:
    return (accounts.paper_title(engine, key) or "").lower()


def test_export_holds_everything_and_delete_erases_it(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    paper = composer_for(store, Period.day(DAY), THEMES).papers[0]
    accounts.record_feedback(store, member, paper.key, Vote.more)
    path = "/preferences/" + tokens(settings, store).make(member, Purpose.preferences)
    export = client.get(path + "/export")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    data = json.loads(export.text)
    assert data["subscriber"]["email"] == member
    assert data["subscriptions"][0]["theme_id"] == "agents"
    assert data["feedback"][0]["paper_key"] == paper.key
    assert client.post(path + "/delete", data={"csrf": csrf(client, path)}).status_code == 400
    assert person(store, member) is not None
    deleted = client.post(path + "/delete", data={"csrf": csrf(client, path), "confirm": "yes"})
    assert deleted.status_code == 200
    assert person(store, member) is None and counts(store) == (0, 0, 0)
    with Session(store) as session:
        assert session.exec(select(func.count()).select_from(Delivery)).one() == 0
    assert client.get(path).status_code == 404


def test_the_digest_links_lead_to_working_pages(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    renderer = Renderer.from_settings(settings)
    email = renderer.render(every_paper(store, member))
    soup = BeautifulSoup(email.html, "lxml")
    less = soup.find("a", string="Less like this")
    assert less is not None
    url = urlsplit(str(less["href"]))
    assert parse_qs(url.query)["vote"] == ["less"]
    assert client.get(f"{url.path}?{url.query}").status_code == 200
    for name in ("Manage preferences", "Unsubscribe"):
        link = soup.find("a", string=name)
        assert link is not None
        assert client.get(urlsplit(str(link["href"])).path).status_code == 200
    header = email.headers["List-Unsubscribe"].split(",")[0].strip("<> ")
    one_click = TestClient(client.app, base_url=PUBLIC).post(
        urlsplit(header).path, data={"List-Unsubscribe": "One-Click"}
    )
    assert one_click.status_code == 200
    assert person(store, member).status == SubscriberStatus.unsubscribed  # type: ignore[union-attr]
    assert "More like this:" in email.text


def test_the_archive_and_feeds_are_served(
    client: TestClient, store: Engine, settings: Settings
) -> None:
    archive = Archive(settings.archive_dir, settings.public_url)
    publish_themes(store, Renderer.from_settings(settings), THEMES, archive, DAY)
    index = client.get("/archive/")
    assert index.status_code == 200 and "Papers Digest archive" in index.text
    feed = client.get("/archive/feeds/agents.atom")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/atom+xml")
    assert client.get("/archive/../digest.db").status_code == 404


def test_deleting_an_account_erases_its_archive_pages_and_its_bytes_on_disk(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    """ "Everything we stored about you is gone": the "view in browser" pages (the address and
    personal links, rendered from the ledger when asked for, never written to the archive)
    stop answering, and the address leaves the database file's bytes, free pages and
    write-ahead log included."""
    archive = Archive(settings.archive_dir, settings.public_url)
    wide = {"email": member, "themes": ["llm-reasoning-rl"], "strictness": "broad"}
    subscribe(store, request_from(wide, "test"), THEMES)  # the seeds' main topic: a digest
    summary = send_digests(
        Runtime(
            engine=store,
            themes=THEMES,
            renderer=Renderer.from_settings(settings),
            archive=archive,
            channel="outbox",
            outbox=settings.outbox_dir,
            options=SendOptions(workers=1),
        ),
        period=Period.day(DAY),
        cadence=Cadence.daily,
    )
    assert summary.sent == 1
    with Session(store) as session:
        issues = session.exec(select(Delivery.issue_id)).all()
    assert len(issues) == 1
    assert not archive.issue(issues[0]).exists()  # no page per subscriber on disk
    url = f"/archive/{issues[0]}.html"  # the "view in browser" link of the email
    shown = client.get(url)
    assert shown.status_code == 200 and member in shown.text
    assert shown.headers["cache-control"] == "private, no-store"  # personal links inside
    with Session(store) as session:
        sent = session.exec(select(Delivery.paper_keys)).one()
    cards = BeautifulSoup(shown.text, "lxml").select("td.card a.title")
    assert len(cards) == len(sent) > 0  # every paper the email held, none clipped
    assert client.get(url.replace(issues[0][-20:], "0" * 20)).status_code == 404  # unguessable
    on_disk = sqlite_files(store)  # none for PostgreSQL, whose files are the server's
    if store.dialect.name == "sqlite":
        assert any(member.encode() in f.read_bytes() for f in on_disk)  # the check can see it

    path = "/preferences/" + tokens(settings, store).make(member, Purpose.preferences)
    deleted = client.post(path + "/delete", data={"csrf": csrf(client, path), "confirm": "yes"})
    assert deleted.status_code == 200 and "gone" in deleted.text
    assert client.get(url).status_code == 404
    assert person(store, member) is None
    for file in sqlite_files(store):
        assert member.encode() not in file.read_bytes(), file.name


def sqlite_files(engine: Engine) -> list[Path]:
    """The SQLite database's files (itself and its write-ahead log); none for PostgreSQL."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return []
    base = Path(engine.url.database)
    return [f for f in (base, Path(f"{base}-wal"), Path(f"{base}-journal")) if f.exists()]


def test_every_response_carries_the_security_headers_even_an_unhandled_error(
    store: Engine, settings: Settings, clean_environ: Path
) -> None:
    """CSP and the rest on every answer, a crash's 500 included (without its traceback), and
    HSTS exactly when the public URL is https."""
    plain = settings.model_copy(update={"public_url": "http://localhost:8000"})
    for config, hsts in ((settings, True), (plain, False)):
        app = create_app(config, store)

        def boom() -> None:
            raise RuntimeError("secret internals")

        app.add_api_route("/boom", boom)
        client = TestClient(app, base_url=config.public_url, raise_server_exceptions=False)
        answers = {
            "page": client.get("/"),
            "crash": client.get("/boom"),
            "missing": client.get("/no-such-page"),
            "archive": client.get("/archive/no-such-issue.html"),
            "too large": client.post(
                "/", content=b"x" * (MAX_BODY + 1), headers={"content-type": "text/plain"}
            ),
        }
        assert [r.status_code for r in answers.values()] == [200, 500, 404, 404, 413]
        crash = answers["crash"]
        assert "secret internals" not in crash.text and "Traceback" not in crash.text
        for name, response in answers.items():
            headers = response.headers
            assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), name
            assert headers.get("x-content-type-options") == "nosniff", name
            assert headers.get("x-frame-options") == "DENY", name
            assert headers.get("referrer-policy") == "no-referrer", name
            if name != "archive":
                assert headers.get("cache-control") == "no-store", name
            if hsts:
                assert "max-age=" in headers.get("strict-transport-security", ""), name
            else:
                assert "strict-transport-security" not in headers, name
        assert crash.headers["content-type"].startswith("text/html")  # the site's error page


# --- tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_works_only_for_its_own_purpose_address_and_key(purpose: Purpose) -> None:
    signer = Tokens("the-key")
    token = signer.make("hal@example.org", purpose)
    if purpose is Purpose.confirm:
        assert signer.read_confirm(token)[0] == "hal@example.org"
    assert signer.read(token, purpose) == "hal@example.org"
    for other in Purpose:
        if other is not purpose:
            with pytest.raises(TokenError):
                signer.read(token, other)
    with pytest.raises(TokenError):
        Tokens("another-key").read(token, purpose)
    payload, _, rest = token.partition(".")
    forged = Tokens("the-key").make("mallory@example.org", purpose).partition(".")[0]
    with pytest.raises(TokenError):
        signer.read(f"{forged}.{rest}", purpose)  # someone else's address, our signature
    with pytest.raises(TokenError):
        signer.read(payload, purpose)


def test_access_logs_never_carry_a_personal_links_token(
    client: TestClient, store: Engine, settings: Settings, member: str
) -> None:
    """uvicorn's access log line names the page, not the token nor its query."""
    import logging

    from digest.web import REDACT

    token = tokens(settings, store).make(member, Purpose.preferences)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/preferences/{token}?saved=true", "1.1", 200),
        None,
    )
    assert REDACT.filter(record)
    line = record.getMessage()
    assert token not in line and "saved" not in line and "/preferences/…" in line
    plain = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s", ("/archive/index.html",), None
    )
    REDACT.filter(plain)
    assert plain.getMessage() == "/archive/index.html"
