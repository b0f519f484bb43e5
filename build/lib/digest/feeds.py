"""An Atom feed per theme (feedgen), pure: the same daily picks as the theme's archive pages.

Entry ids are stable per theme and paper, and the feed's ``updated`` is its newest entry's, so
rebuilding an unchanged feed gives the same bytes and feed readers see nothing new.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time

from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]

from digest.assemble import Digest, DigestPaper

__all__ = ["FeedInfo", "atom_feed"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class FeedInfo:
    """Where a theme's feed and pages live, and what it is called."""

    def __init__(self, theme_id: str, name: str, description: str, feed_url: str, home: str):
        self.theme_id, self.name, self.description = theme_id, name, description
        self.feed_url, self.home = feed_url, home


def atom_feed(
    info: FeedInfo,
    days: Sequence[Digest],
    paper_url: Callable[[DigestPaper], str],
    summary: Callable[[DigestPaper], str],
) -> bytes:
    """Atom XML for a theme's picks over ``days`` (one single-section digest per day).

    Each entry has exactly one link, to the paper's page: feedgen 1.0 drops ``rel`` on entry
    links, and two links would then both count as ``alternate``, which Atom forbids."""
    feed = FeedGenerator()
    feed.id(info.feed_url)
    feed.title(_xml(f"Papers Digest: {info.name}"))
    feed.subtitle(_xml(info.description) or info.name)
    feed.author({"name": "Papers Digest", "uri": info.home})
    feed.link(href=info.feed_url, rel="self", type="application/atom+xml")
    feed.link(href=info.home, rel="alternate", type="text/html")
    feed.language("en")
    newest = datetime(2000, 1, 1, tzinfo=UTC)
    for day in sorted(days, key=lambda d: d.period.start):
        when = datetime.combine(day.period.end, time(0, 0), tzinfo=UTC)
        newest = max(newest, when)
        for paper in (p for section in day.sections for p in section.papers):
            entry = feed.add_entry()  # prepends: the newest day ends up first
            entry.id(f"{info.feed_url}#{info.theme_id}/{paper.key}")
            entry.title(_xml(paper.title))
            entry.updated(when)
            entry.published(when)
            entry.link(href=paper_url(paper), rel="alternate", type="text/html")
            for name in paper.authors[:5] or (
                [paper.organization.name] if paper.organization else []
            ):
                entry.author({"name": _xml(name)})
            entry.summary(_xml(f"{summary(paper)} (Why: {paper.why})"))
            for keyword in paper.ai_keywords[:5]:
                entry.category(term=_xml(keyword))
    feed.updated(newest)
    xml: bytes = feed.atom_str(pretty=True)
    return xml


def _xml(text: str) -> str:
    """Drop the few characters XML 1.0 cannot carry (lxml refuses them)."""
    return _NOT_XML.sub("", text)
