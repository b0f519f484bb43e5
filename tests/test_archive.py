"""The email's twins and limits: clipping past the size budget, quiet days, the keyed issue id,
the static archive (issue and theme pages, index) and the Atom feeds, read by feedparser."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import feedparser
import pytest
from bs4 import BeautifulSoup
from lxml import etree
from sqlalchemy import Engine

from digest.archive import Archive, publish_themes
from digest.assemble import QUIET, Digest, Section
from digest.contents import contents_of, rebuild
from digest.ingest import ingest_pages, read_pages
from digest.periods import Period
from digest.render import Renderer
from digest.themes import load_themes
from tests.conftest import SEEDS
from tests.test_assemble import NEWEST, PAPERS, spec
from tests.test_render import LINK, RENDERER, paper, personal_digest

ATOM = "{http://www.w3.org/2005/Atom}"
THEMES = load_themes()


def big_digest(count: int) -> Digest:
    """``count`` papers with long summaries in two sections, scores descending by index."""
    papers = [
        paper(
            key=f"2603.{i:05d}",
            arxiv_id=f"2603.{i:05d}",
            title=f"Paper number {i}",
            ai_summary=("A long one-line summary that says a great deal about it. " * 12),
            score=float(count - i),
        )
        for i in range(count)
    ]
    half = count // 2
    return Digest(
        email="ada@example.org",
        link_id=LINK,
        period=Period.day(date(2026, 3, 6)),
        sections=[
            Section(title="Agents", theme_id="agents", papers=papers[:half]),
            Section(title="Safety & alignment", theme_id="safety-alignment", papers=papers[half:]),
        ],
        candidates=count,
    )


def titles_in(html: str) -> list[str]:
    return [a.get_text() for a in BeautifulSoup(html, "lxml").select("td.card a.title")]


@pytest.mark.parametrize("papers", [12, 120], ids=["fits", "clipped"])
def test_a_send_run_renders_the_email_and_its_page_as_render_and_web_page_do(papers: int) -> None:
    digest = big_digest(papers)
    email, page = RENDERER.render_issue(digest)
    assert email == RENDERER.render(digest)
    assert page == RENDERER.web_page(digest)
    assert len(titles_in(page)) == papers and "View in browser" not in page


def test_an_issue_recorded_in_the_ledger_renders_the_same_page_when_asked_for() -> None:
    """The send run records what an issue held (``contents_of``, stored as JSON with its
    ledger row); the web app rebuilds it over the stored papers: the same page, every paper."""
    digest = big_digest(120)
    stored = {
        p.key: p.model_copy(update={"why": "", "estimate": 0.0, "score": 0.0})
        for section in digest.sections
        for p in section.papers
    }
    recorded = json.loads(json.dumps(contents_of(digest)))
    again = rebuild(recorded, stored, email=digest.email, link_id=digest.link_id)
    assert again.period == digest.period and again.paper_keys == digest.paper_keys
    assert RENDERER.web_page(again) == RENDERER.web_page(digest)
    gone = {k: v for k, v in stored.items() if k != digest.paper_keys[0]}
    assert (
        rebuild(recorded, gone, email=digest.email, link_id=None).paper_keys
        == (digest.paper_keys[1:])
    )  # a paper no longer stored is left out, the rest stay


def test_an_email_over_the_size_budget_keeps_its_best_papers_and_links_the_rest() -> None:
    digest = big_digest(120)
    email = RENDERER.render(digest)
    assert len(email.html.encode()) <= RENDERER.max_bytes < len(RENDERER.web_page(digest).encode())
    shown = titles_in(email.html)
    more = BeautifulSoup(email.html, "lxml").select_one("td.more a")
    assert more is not None
    hidden = 120 - len(shown)
    assert 0 < hidden < 120
    assert more.get_text() == f"{hidden} more papers in the web version"
    assert more["href"].startswith("https://digest.example.org/archive/2026-03-06-")
    # the best-scored papers stay (scores fall with the index), each still in its section
    assert shown == [f"Paper number {i}" for i in range(len(shown))]
    # the plain-text part carries the same papers and the same link
    assert [line[2:] for line in email.text.splitlines() if line.startswith("* ")] == shown
    assert f"{hidden} more papers in the web version: {more['href']}" in email.text
    assert f"{len(shown) + hidden} new" in email.subject
    # the web version has every paper and no "more" link
    web = RENDERER.web_page(digest)
    assert len(titles_in(web)) == 120
    assert BeautifulSoup(web, "lxml").select("td.more") == []


def test_an_email_under_the_budget_is_not_clipped() -> None:
    email = RENDERER.render(big_digest(10))
    assert len(titles_in(email.html)) == 10
    assert "more papers in the web version" not in email.html + email.text


def test_a_quiet_day_sends_the_most_upvoted_papers_only_to_those_who_asked() -> None:
    impossible = [spec("llm-reasoning-rl", floor=1.0)]
    upvoted = [p.model_copy(update={"upvotes": i}) for i, p in enumerate(PAPERS)]
    skipped = personal_digest("ada@example.org", NEWEST, impossible, upvoted)
    assert skipped.is_empty and skipped.skip_reason == "no new paper reached your relevance floor"

    quiet = personal_digest("ada@example.org", NEWEST, impossible, upvoted, quiet_day=True)
    assert quiet.quiet and quiet.skip_reason is None
    [section] = quiet.sections
    assert section.theme_id == QUIET and len(section.papers) == 3
    votes = [p.upvotes or 0 for p in section.papers]
    in_period = [p.upvotes or 0 for p in upvoted if NEWEST.contains(p.first_listed_on)]
    assert votes == sorted(in_period, reverse=True)[:3]
    assert section.papers[0].why == f"trending: {votes[0]} upvotes on Hugging Face"
    email = RENDERER.render(quiet)
    assert "quiet day" in email.subject
    header = BeautifulSoup(email.html, "lxml").select_one("p.meta").get_text()
    assert f"none of {quiet.candidates} new papers matched your interests" in header
    # a day with no papers at all stays silent even for quiet-day subscribers
    empty = personal_digest("ada@example.org", Period.day(date(2024, 1, 2)), impossible, upvoted)
    assert empty.is_empty


def test_the_issue_id_is_stable_but_needs_the_secret_key() -> None:
    digest = big_digest(2)
    other = Renderer(
        public_url="https://digest.example.org",
        hf_url="https://huggingface.co",
        sender="Papers Digest <digest@example.org>",
        secret_key="another-key",
    )
    assert RENDERER.issue_id(digest) == RENDERER.issue_id(digest.model_copy())
    assert RENDERER.issue_id(digest) != other.issue_id(digest)
    assert RENDERER.issue_id(digest) != RENDERER.issue_id(
        digest.model_copy(update={"email": "b@x.org"})
    )
    email = RENDERER.render(digest)
    issue = RENDERER.issue_id(digest)
    assert email.headers["Message-ID"] == f"<{issue}@example.org>"
    assert f"/archive/{issue}.html" in email.html


@pytest.fixture
def published(engine: Engine, tmp_path: Path) -> tuple[Archive, object]:
    ingest_pages(read_pages("seeds", SEEDS, None), str(engine.url))
    archive = Archive(tmp_path / "archive", "https://digest.example.org")
    result = publish_themes(engine, RENDERER, THEMES, archive, date(2026, 4, 15), days=3)
    return archive, result


def test_archive_has_a_page_per_theme_per_day_a_feed_per_theme_and_an_index(published) -> None:  # type: ignore[no-untyped-def]
    archive, result = published
    assert result.days == [date(2026, 4, 15), date(2026, 2, 16), date(2025, 12, 25)]
    pages = sorted(archive.folder.glob("themes/*/*.html"))
    assert len(pages) == result.pages == 3 * len(THEMES)  # every theme has picks on seed days
    assert sorted(p.stem for p in archive.folder.glob("feeds/*.atom")) == sorted(THEMES)
    page = BeautifulSoup(archive.theme_day("agents", date(2026, 4, 15)).read_text(), "lxml")
    cards = page.select("td.card")
    assert 1 <= len(cards) <= 10
    assert page.select_one("p.meta").get_text() == (
        f"Wed 15 Apr 2026 · {len(cards)} picks in LLM agents & tool use"
    )
    footer = {a.get_text(): a["href"] for a in page.select("td.footer a")}
    assert footer == {
        "Get them by email": "https://digest.example.org/",
        "Atom feed": "https://digest.example.org/archive/feeds/agents.atom",
    }
    assert "unsubscribe" not in page.get_text().lower()  # public: no personal links
    assert page.select_one("link[rel=alternate]")["href"] == footer["Atom feed"]
    index = BeautifulSoup(result.index.read_text(), "lxml")
    assert [p.get_text() for p in index.select("p.title")] == [t.name for t in THEMES.values()]
    hrefs = {a["href"] for a in index.select("a")}
    assert "https://digest.example.org/archive/themes/agents/2026-04-15.html" in hrefs
    assert all(not Path(p.name).name.startswith(".") for p in archive.folder.rglob("*"))


def test_each_feed_is_valid_atom_that_a_feed_reader_understands(published) -> None:  # type: ignore[no-untyped-def]
    archive, _ = published
    for theme in THEMES.values():
        raw = archive.feed(theme.id).read_bytes()
        parsed = feedparser.parse(raw)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert parsed.version == "atom10"
        assert parsed.feed.title == f"Papers Digest: {theme.name}"
        assert parsed.feed.id == f"https://digest.example.org/archive/feeds/{theme.id}.atom"
        assert parsed.feed.updated_parsed[:3] == (2026, 4, 15)
        assert parsed.entries, theme.id
        ids = [entry.id for entry in parsed.entries]
        assert len(ids) == len(set(ids))
        for entry in parsed.entries:
            assert entry.title and entry.summary and entry.updated_parsed
            assert entry.link.startswith("https://huggingface.co/papers")
        # RFC 4287's required elements, checked on the XML itself
        root = etree.fromstring(raw)
        assert root.tag == f"{ATOM}feed"
        for name in ("id", "title", "updated", "author"):
            assert root.find(f"{ATOM}{name}") is not None, name
        for entry in root.iter(f"{ATOM}entry"):
            for name in ("id", "title", "updated"):
                assert entry.find(f"{ATOM}{name}") is not None, name
            alternates = [
                x for x in entry.iter(f"{ATOM}link") if x.get("rel", "alternate") == "alternate"
            ]
            assert len(alternates) == 1


def test_rebuilding_an_unchanged_archive_gives_the_same_bytes(engine: Engine, published) -> None:  # type: ignore[no-untyped-def]
    archive, _ = published
    before = {p: p.read_bytes() for p in archive.folder.rglob("*") if p.is_file()}
    publish_themes(engine, RENDERER, THEMES, archive, date(2026, 4, 15), days=3)
    after = {p: p.read_bytes() for p in archive.folder.rglob("*") if p.is_file()}
    assert after == before


def test_hostile_titles_stay_escaped_in_the_feed() -> None:
    from digest.feeds import FeedInfo, atom_feed
    from digest.template_helpers import summary
    from tests.test_render import HOSTILE

    day = Digest(
        email="theme:agents",
        period=Period.day(date(2026, 3, 6)),
        sections=[
            Section(title="Agents", theme_id="agents", papers=[paper(title=HOSTILE + "\x0b")])
        ],
        candidates=1,
    )
    info = FeedInfo("agents", "Agents", "Agents.", "https://x.org/f.atom", "https://x.org/")
    parsed = feedparser.parse(atom_feed(info, [day], RENDERER.paper_url, summary))
    assert parsed.bozo == 0
    title = parsed.entries[0].title
    assert title.startswith('Attack <script>alert(1)</script> {{ 7*7 }} "quoted"')
    assert "مرحبا" in title and "\x0b" not in title
    assert b"<script>" not in atom_feed(info, [day], RENDERER.paper_url, summary)
