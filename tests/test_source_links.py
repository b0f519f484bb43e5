"""Code and project links come from source data, so the store may hold any scheme: only
http(s) ones may reach a reader as links, in the email (HTML and text), its web page, the
archive's theme pages and the Atom feeds. Real store, real composing, real rendering."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import feedparser
from bs4 import BeautifulSoup
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from digest.archive import Archive, publish_themes
from digest.compose import compose_digest
from digest.db.models import Paper
from digest.ingest import ingest_pages, read_pages
from digest.render import Renderer
from digest.requests import request_from
from digest.subscriptions import subscribe
from digest.themes import load_themes
from tests.conftest import SEEDS

THEMES = load_themes()
DAY = date(2026, 4, 15)
UNSAFE = ("javascript:alert(1)", "data:text/html,<script>alert(1)</script>")


def store_links(engine: Engine) -> None:
    """Every other paper gets unsafe links, the rest plain https ones."""
    with Session(engine) as session, session.begin():
        ids = list(session.exec(select(Paper.id).order_by(col(Paper.id))).all())
        for number, paper_id in enumerate(ids):
            project, code = (
                UNSAFE
                if number % 2
                else (f"https://example.org/project-{paper_id}", f"https://github.com/x/{paper_id}")
            )
            session.execute(
                update(Paper)
                .where(col(Paper.id) == paper_id)
                .values(project_page=project, github_repo=code)
            )


def assert_safe_html(html: str) -> None:
    soup = BeautifulSoup(html, "lxml")
    hrefs = [str(tag["href"]) for tag in soup.select("[href]")]
    assert all(href.startswith(("https://", "http://")) for href in hrefs), hrefs
    assert "javascript:" not in html and "data:text" not in html
    assert any(href.startswith("https://github.com/x/") for href in hrefs)
    assert any(href.startswith("https://example.org/project-") for href in hrefs)


def test_unsafe_stored_links_never_become_links_anywhere(engine: Engine, tmp_path: Path) -> None:
    ingest_pages(read_pages("seeds", SEEDS, None), str(engine.url))
    store_links(engine)
    renderer = Renderer(
        public_url="https://digest.example.org",
        hf_url="https://huggingface.co",
        sender="Papers Digest <digest@example.org>",
        secret_key="test-key",
    )
    themes = ["agents", "llm-reasoning-rl", "multimodal-vlm"]
    subscribe(engine, request_from({"email": "ada@example.org", "themes": themes}, "t"), THEMES)
    digest = compose_digest(engine, "ada@example.org", DAY, THEMES)
    assert len(digest.paper_keys) >= 4

    email, page = renderer.render_issue(digest)
    assert_safe_html(email.html)
    assert_safe_html(page)
    assert "javascript:" not in email.text and "data:text" not in email.text
    assert "Code: https://github.com/x/" in email.text
    assert "Project page: https://example.org/project-" in email.text

    archive = Archive(tmp_path / "archive", "https://digest.example.org")
    publish_themes(engine, renderer, THEMES, archive, DAY, days=1)
    pages = sorted(archive.folder.glob("themes/*/*.html"))
    assert pages  # the themes with picks that day
    for path in pages:
        html = path.read_text()
        soup = BeautifulSoup(html, "lxml")
        hrefs = [str(tag["href"]) for tag in soup.select("[href]")]
        assert all(href.startswith(("https://", "http://")) for href in hrefs), (path, hrefs)
        assert "javascript:" not in html and "data:text" not in html, path
    assert_safe_html("".join(path.read_text() for path in pages))
    for feed in archive.folder.glob("feeds/*.atom"):
        raw = feed.read_text()
        assert "javascript:" not in raw and "data:text" not in raw, feed
        parsed = feedparser.parse(raw)
        assert parsed.bozo == 0
        links = [link.href for entry in parsed.entries for link in entry.links]
        assert all(link.startswith("https://") for link in links), links
