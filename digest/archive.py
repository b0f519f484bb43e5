"""The static web archive: every issue's "view in browser" page, each theme's picks per day, an
Atom feed per theme and an index, as plain files any static web server can serve.

Layout under the archive folder (served at ``PUBLIC_URL/archive/``)::

    index.html                      themes, their newest page and feed
    <issue-id>.html                 one subscriber's issue (unguessable id)
    themes/<theme>/<YYYY-MM-DD>.html
    feeds/<theme>.atom

Every file is written to a temporary name and renamed, so a reader never sees half a page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from digest.assemble import Digest
from digest.compose import compose_theme_days
from digest.db import Engine
from digest.db.papers import listing_days
from digest.embeddings import CachedEmbedder
from digest.feeds import FeedInfo, atom_feed
from digest.files import write_atomic
from digest.render import Renderer, ThemeEntry
from digest.template_helpers import summary
from digest.themes import Theme

__all__ = ["Archive", "Published", "publish_themes"]

FEED_DAYS = 30
"""Listing days a theme's feed covers."""


@dataclass(frozen=True)
class Published:
    """What one publishing run wrote."""

    days: list[date]
    pages: int
    feeds: int
    index: Path


class Archive:
    """Paths and atomic writes under one archive folder, and the public URLs they map to."""

    def __init__(self, folder: Path, public_url: str) -> None:
        self.folder = folder
        self.url = public_url.rstrip("/") + "/archive"

    def issue(self, issue_id: str) -> Path:
        return self.folder / f"{issue_id}.html"

    def remove_issues(self, issue_ids: Iterable[str]) -> int:
        """Delete subscribers' issue pages (each holds its subscriber's address and personal
        links), as their account is deleted; returns how many there were. An id that is not
        a plain file name is refused, so nothing outside the archive folder can go."""
        removed = 0
        for issue_id in issue_ids:
            if not issue_id or issue_id.startswith(".") or Path(issue_id).name != issue_id:
                raise ValueError(f"not an issue id: {issue_id!r}")
            try:
                self.issue(issue_id).unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    def theme_day(self, theme_id: str, day: date) -> Path:
        return self.folder / "themes" / theme_id / f"{day.isoformat()}.html"

    def feed(self, theme_id: str) -> Path:
        return self.folder / "feeds" / f"{theme_id}.atom"

    def url_of(self, path: Path) -> str:
        return f"{self.url}/{path.relative_to(self.folder).as_posix()}"

    def write(self, path: Path, content: str | bytes) -> Path:
        """Write ``content`` to ``path`` atomically (temporary file, then rename)."""
        return write_atomic(path, content.encode("utf-8") if isinstance(content, str) else content)


def publish_themes(
    engine: Engine,
    renderer: Renderer,
    themes: dict[str, Theme],
    archive: Archive,
    until: date,
    embedder: Callable[[], CachedEmbedder | None] = lambda: None,
    days: int = FEED_DAYS,
) -> Published:
    """Write each theme's page for each of the last ``days`` listing days up to ``until``, its
    Atom feed over them, and the index. Rewriting unchanged days gives the same files."""
    listed = listing_days(engine, until, days)
    picks = compose_theme_days(engine, themes, listed, embedder)
    pages = 0
    for theme in themes.values():
        info = FeedInfo(
            theme.id,
            theme.name,
            theme.description,
            archive.url_of(archive.feed(theme.id)),
            archive.url + "/index.html",
        )
        for day in picks[theme.id]:
            html = renderer.theme_page(day, theme.name, info.feed_url)
            archive.write(archive.theme_day(theme.id, day.period.start), html)
            pages += 1
        xml = atom_feed(
            info,
            picks[theme.id],
            renderer.paper_url,
            summary,
        )
        archive.write(archive.feed(theme.id), xml)
    index = archive.write(
        archive.folder / "index.html", renderer.archive_index(_index_rows(themes, picks, archive))
    )
    return Published(days=listed, pages=pages, feeds=len(themes), index=index)


def _index_rows(
    themes: dict[str, Theme], picks: dict[str, list[Digest]], archive: Archive
) -> list[ThemeEntry]:
    rows = []
    for theme in themes.values():
        days = sorted(d.period.start for d in picks[theme.id])
        rows.append(
            ThemeEntry(
                name=theme.name,
                description=theme.description,
                feed=archive.url_of(archive.feed(theme.id)),
                days=[(day, archive.url_of(archive.theme_day(theme.id, day))) for day in days],
            )
        )
    return rows
