"""Where papers come from. Each source turns pages into ``PaperRecord``s in two steps:

``fetch`` (network, retried) or ``read`` (saved files) yields ``RawPage``s; ``parse`` (pure) turns
one page into records. Keeping the steps apart lets flows retry I/O without re-parsing, and lets
tests parse real samples without a network.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from digest.errors import ConfigError, ParseError
from digest.periods import Period
from digest.records import PaperRecord
from digest.sources.http import Fetcher, Response

__all__ = ["SOURCE_NAMES", "RawPage", "Source", "get_source"]


class RawPage(BaseModel):
    """One fetched or read page, before parsing. ``text`` is None when the server said 304."""

    model_config = ConfigDict(frozen=True)

    source: str
    location: str
    listing: str
    listed_on: date | None
    period: Period | None
    fetched_at: datetime
    text: str | None
    etag: str | None = None
    last_modified: str | None = None
    rank_offset: int = 0
    item_count: int | None = None

    @property
    def not_modified(self) -> bool:
        return self.text is None

    @classmethod
    def fetched(
        cls,
        source: str,
        response: Response,
        period: Period,
        *,
        rank_offset: int = 0,
        item_count: int | None = None,
    ) -> RawPage:
        """The page an HTTP response carried for ``period`` (a day's listing is dated)."""
        return cls(
            source=source,
            location=response.url,
            listing=f"{period.kind}/{period.label}",
            listed_on=period.start if period.kind == "day" else None,
            period=period,
            fetched_at=response.fetched_at,
            text=response.text,
            etag=response.etag,
            last_modified=response.last_modified,
            rank_offset=rank_offset,
            item_count=item_count,
        )

    @classmethod
    def saved(cls, source: str, file: Path, listing: str, period: Period | None) -> RawPage:
        """A page saved in ``file``; its counters were true when the file was written."""
        return cls(
            source=source,
            location=str(file),
            listing=listing,
            listed_on=period.start if period and period.kind == "day" else None,
            period=period,
            fetched_at=file_time(file),
            text=read_text(file),
        )


class Source(Protocol):
    """The three operations every source offers."""

    name: str

    def fetch(self, fetcher: Fetcher, period: Period) -> list[RawPage]:
        """Download the listing for ``period`` (all pages of it)."""
        ...

    def read(self, path: Path, period: Period | None) -> list[RawPage]:
        """Read saved pages from a file or folder instead of the network."""
        ...

    def parse(self, page: RawPage) -> list[PaperRecord]:
        """Records in the page, or ``ParseError`` naming where and what was expected."""
        ...


SOURCE_NAMES = ("seeds", "hf-api", "hf-html")


def get_source(name: str) -> Source:
    """The source called ``name`` (``seeds``, ``hf-api`` or ``hf-html``)."""
    from digest.sources import hf_api, hf_html, seeds

    sources: dict[str, Source] = {
        "seeds": seeds.SeedSource(),
        "hf-api": hf_api.ApiSource(),
        "hf-html": hf_html.HtmlSource(),
    }
    try:
        return sources[name]
    except KeyError:
        raise ConfigError(f"source {name!r}: expected one of {', '.join(SOURCE_NAMES)}") from None


def files_in(path: Path, pattern: str) -> list[Path]:
    """``path`` itself, or the files matching ``pattern`` in it, sorted; a clear error if none."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"{path}: no such file or folder")
    found = sorted(p for p in path.glob(pattern) if p.is_file())
    if not found:
        raise ConfigError(f"{path}: no files matching {pattern}")
    return found


def read_text(path: Path) -> str:
    """A file's text as UTF-8, or a ``ParseError`` naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{path}", "bytes", "UTF-8 text", f"byte {exc.start}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc


def file_time(path: Path) -> datetime:
    """When a saved page was written (UTC): the moment its counters were true."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
