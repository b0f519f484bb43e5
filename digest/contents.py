"""What an issue held, compactly: its sections, their papers (by key) with the reasons and
estimates shown. A send run stores it with the issue's ledger row instead of writing a static
"view in browser" page per subscriber per day (at 100,000 subscribers, gigabytes a day of
pages holding addresses and personal links, kept forever); the web app rebuilds the digest
from it and the papers' stored rows when the page is asked for. Pure: no store, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from digest.assemble import Digest, DigestPaper, Section
from digest.periods import Period

__all__ = ["contents_of", "rebuild"]


def contents_of(digest: Digest) -> dict[str, Any]:
    """The digest as a small JSON-able mapping: its period, per section its title, theme and
    strictness, and per paper ``[key, why, estimate, score]``."""
    return {
        "period": digest.period.model_dump(mode="json"),
        "sections": [
            {
                "title": section.title,
                "theme": section.theme_id,
                "strictness": section.strictness,
                "papers": [
                    [p.key, p.why, round(p.estimate, 4), round(p.score, 4)] for p in section.papers
                ],
            }
            for section in digest.sections
        ],
        "candidates": digest.candidates,
        "quiet": digest.quiet,
    }


def rebuild(
    contents: Mapping[str, Any],
    papers: Mapping[str, DigestPaper],
    *,
    email: str,
    link_id: str | None,
) -> Digest:
    """The digest ``contents_of`` recorded, with each paper as the store holds it now (newer
    upvotes and stars); a paper no longer stored is left out."""
    sections = []
    for entry in contents.get("sections", []):
        shown = [
            papers[key].model_copy(update={"why": why, "estimate": estimate, "score": score})
            for key, why, estimate, score in entry["papers"]
            if key in papers
        ]
        sections.append(
            Section(
                title=entry["title"],
                theme_id=entry["theme"],
                strictness=entry.get("strictness", ""),
                papers=shown,
            )
        )
    return Digest(
        email=email,
        period=Period.model_validate(contents["period"]),
        sections=sections,
        link_id=link_id,
        candidates=int(contents.get("candidates", 0)),
        quiet=bool(contents.get("quiet", False)),
    )
