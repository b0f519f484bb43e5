"""What the templates say about a paper or a digest (byline, summary, counts, period,
headline) and the filter that keeps source links safe. Plain functions the renderer hands to
Jinja, so templates hold no logic and tests can call them directly."""

from __future__ import annotations

import re

from digest.assemble import Digest, DigestPaper
from digest.mime import one_line

__all__ = ["byline", "headline", "period_text", "plural", "stats", "summary", "web_url"]

_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)")


def period_text(digest: Digest) -> str:
    period = digest.period
    if period.start == period.end:
        return f"{period.start:%a %d %b %Y}"
    return f"{period.start:%d %b} – {period.end:%d %b %Y}"


def byline(paper: DigestPaper) -> str:
    if paper.authors:
        shown = ", ".join(paper.authors[:3])
        return shown + (" et al." if len(paper.authors) > 3 else "")
    if paper.organization:
        return paper.organization.name
    return plural(paper.author_count, "author") if paper.author_count else "Authors not listed"


def summary(paper: DigestPaper) -> str:
    """The AI summary when HF has one, else the abstract's first sentence."""
    if paper.ai_summary:
        return paper.ai_summary
    match = _SENTENCE.match(paper.abstract)
    return match[1] if match else one_line(paper.abstract, limit=300)


_WEB_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f/?#\\]+[^\s\x00-\x1f\x7f]*", re.IGNORECASE)


def web_url(url: str | None) -> str | None:
    """``url`` when it is a plain http(s) address, else None. Code and project links come
    from source data: a ``javascript:`` or ``data:`` one must never become a link, and one
    with a line break must never add a line to the text part. Every template shows such a
    link only through this filter."""
    return url if url is not None and _WEB_URL.fullmatch(url) else None


def stats(paper: DigestPaper) -> str:
    parts = []
    if paper.upvotes is not None:
        parts.append(plural(paper.upvotes, "upvote"))
    if paper.num_comments:
        parts.append(plural(paper.num_comments, "comment"))
    if paper.github_stars is not None:
        parts.append(plural(paper.github_stars, "GitHub star"))
    return " · ".join(parts)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def headline(digest: Digest, count: int, theme: str | None) -> str:
    """The header line: what this issue holds, in words."""
    if theme:
        return f"{period_text(digest)} · {plural(count, 'pick')} in {theme}"
    if digest.quiet:
        checked = plural(digest.candidates, "new paper")
        return f"{period_text(digest)} · a quiet day: none of {checked} matched your interests"
    return f"{period_text(digest)} · {plural(count, 'new paper')} for you"
