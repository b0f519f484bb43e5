"""``PaperRecord``: the one typed shape that leaves ``digest.sources``.

A record is one paper as seen in one listing. The paper fields describe the paper (title,
abstract, counters at that moment); the nested ``Sighting`` says where and when it was seen, so
the store can keep one row per paper and one row per appearance.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Organization",
    "PaperRecord",
    "Sighting",
    "abstract_fingerprint",
    "clean_text",
    "normalise_paper_id",
    "title_fingerprint",
]

_NEW_ID = re.compile(r"^\d{4}\.\d{4,5}$")
_OLD_ID = re.compile(r"^[a-z][a-z.-]*(\.[A-Z]{2})?/\d{7}$")
_PREFIXES = re.compile(
    r"^(?:arxiv:|https?://(?:www\.)?(?:huggingface\.co/papers|arxiv\.org/(?:abs|pdf))/)",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Organization(_Frozen):
    """An HF organisation: ``slug`` is the URL name, ``name`` the display name."""

    slug: str
    name: str


class Sighting(_Frozen):
    """One appearance of a paper in a listing (a daily page, a seed file, a paper page)."""

    source: str = Field(description="seeds | hf-api | hf-html")
    listing: str = Field(description="stable name of the listing, e.g. 'day/2026-03-06'")
    listed_on: date | None = Field(description="the listing's own date (Daily Papers day)")
    rank: int | None = Field(None, ge=1, description="1-based position in the listing")
    observed_at: datetime = Field(description="when the counters were read (UTC)")


class PaperRecord(_Frozen):
    """A paper as one source saw it. ``None`` means *unknown*, never zero."""

    paper_id: str | None = Field(description="arXiv id without version; None for the seeds")
    title: str = Field(min_length=1)
    abstract: str = ""
    authors: tuple[str, ...] = ()
    author_count: int | None = Field(None, ge=0)
    organization: Organization | None = None
    published_on: date | None = Field(None, description="arXiv v1 date")
    submitted_on_daily_at: datetime | None = None
    submitted_by: str | None = None
    upvotes: int | None = Field(None, ge=0)
    num_comments: int | None = Field(None, ge=0)
    github_repo: str | None = None
    github_stars: int | None = Field(None, ge=0)
    project_page: str | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    thumbnail: str | None = None
    withdrawn_at: datetime | None = None
    sighting: Sighting

    @property
    def title_key(self) -> str:
        """The normalised-title fingerprint used when no arXiv id is known."""
        return title_fingerprint(self.title)


def normalise_paper_id(raw: str) -> str:
    """Return the bare arXiv id (``2509.24002``) from an id, URL or versioned form.

    Raises ``ValueError`` when the result is not an arXiv id; ids stay strings (never floats,
    which would turn ``2503.02130`` into ``2503.0213``).
    """
    text = _PREFIXES.sub("", raw.strip())
    text = text.split("#", 1)[0].split("?", 1)[0]
    text = text.removesuffix(".pdf")
    text = re.sub(r"v\d+$", "", text)
    if _NEW_ID.match(text) or _OLD_ID.match(text):
        return text
    raise ValueError(f"not an arXiv id: {raw!r}")


def clean_text(text: str) -> str:
    """Join hard wraps and collapse runs of white space; everything else is kept verbatim."""
    return _WHITESPACE.sub(" ", text).strip()


def title_fingerprint(title: str) -> str:
    """NFKC, casefold, anything not ``[a-z0-9]`` to one space: equal for the same title."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return _NON_ALNUM.sub(" ", folded).strip()[:500]


def abstract_fingerprint(abstract: str, length: int = 200) -> str:
    """A short digest of the abstract's normalised start, to confirm a title match."""
    prefix = title_fingerprint(abstract)[:length]
    return hashlib.sha256(prefix.encode()).hexdigest()[:16] if prefix else ""
