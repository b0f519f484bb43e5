"""The bundled seed pages: text renderings of Hugging Face ``/papers?q=`` result pages.

Grammar (see shared notes, source-formats §1.2): an 11-line header ending in the page date
("Apr 15", no year), then entries of ``title``, ``abstract`` and an optional meta block
``byline`` / ``·`` / ``date [comments]``. The year is inferred as one more than the latest explicit
year on the page, because dates in the render year are printed without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from digest.errors import ConfigError, ParseError
from digest.periods import Period
from digest.records import Organization, PaperRecord, Sighting, clean_text
from digest.sources import RawPage, files_in
from digest.sources.http import Fetcher

__all__ = ["SeedSource", "parse_seed_text"]

NAME = "seeds"
MAX_TITLE = 300
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_MONTH = "(" + "|".join(_MONTHS) + ")"
_PAGE_DATE = re.compile(rf"^{_MONTH} (\d{{1,2}})$")
_DATE_LINE = re.compile(rf"^{_MONTH} (\d{{1,2}})(?:, (\d{{4}}))?(?: (\d+))?$")
_AUTHORS = re.compile(r"^  \u2022 (\d+) authors$")
_SEPARATOR = "\u00b7"
_HEADER = (
    ("new", "the word 'new'"),
    ("", "a blank line"),
    ("Get trending papers in your email inbox!", "the subscribe banner"),
    ("", "a blank line"),
    ("Subscribe", "'Subscribe'"),
    ("", "a blank line"),
    ("Daily Papers", "'Daily Papers'"),
    ("", "a blank line"),
    (None, "the 'by AK and the research community' line"),
    ("", "a blank line"),
)


@dataclass(frozen=True)
class _Line:
    number: int
    text: str


@dataclass(frozen=True)
class _Meta:
    byline: _Line
    date_line: _Line


@dataclass(frozen=True)
class _Entry:
    title: _Line
    abstract: _Line
    meta: _Meta | None


class SeedSource:
    """Reads ``*.txt`` seed pages; there is nothing to fetch."""

    name = NAME

    def fetch(self, fetcher: Fetcher, period: Period) -> list[RawPage]:
        raise ConfigError("source seeds reads files only: use --path (default: bundled seeds/)")

    def read(self, path: Path, period: Period | None) -> list[RawPage]:
        return [
            RawPage.saved(NAME, file, f"seed/{file.stem}", period)
            for file in files_in(path, "*.txt")
        ]

    def parse(self, page: RawPage) -> list[PaperRecord]:
        if page.text is None:
            return []
        return parse_seed_text(
            page.text, where=page.location, listing=page.listing, fallback_year=page.fetched_at.year
        )


def parse_seed_text(
    text: str, *, where: str, listing: str, fallback_year: int
) -> list[PaperRecord]:
    """All entries of one seed page, in page order, or ``ParseError`` naming ``where:line``."""
    lines = [_Line(number, line) for number, line in enumerate(text.split("\n"), start=1)]
    page_month, page_day = _header(lines, where)
    entries = _entries([line for line in lines[11:] if line.text.strip()], where)
    year = _render_year(entries, where, fallback_year)
    page_date = _make_date(year, page_month, page_day, where, lines[10])
    observed = datetime.combine(page_date, time(), UTC)
    records = []
    for rank, entry in enumerate(entries, start=1):
        sighting = Sighting(
            source=NAME, listing=listing, listed_on=page_date, rank=rank, observed_at=observed
        )
        records.append(_record(entry, sighting, year, page_date, where))
    return records


def _header(lines: list[_Line], where: str) -> tuple[int, int]:
    if len(lines) < 12:
        raise ParseError(f"{where}:{len(lines)}", "header", "11 header lines then entries")
    for line, (expected, description) in zip(lines, _HEADER, strict=False):
        ok = line.text.startswith("by") if expected is None else line.text == expected
        if not ok:
            raise ParseError(f"{where}:{line.number}", "header", description, line.text)
    match = _PAGE_DATE.match(lines[10].text)
    if not match:
        raise ParseError(f"{where}:11", "page date", "'Mon D' such as 'Apr 15'", lines[10].text)
    return _MONTHS.index(match[1]) + 1, int(match[2])


def _entries(content: list[_Line], where: str) -> list[_Entry]:
    """Pair text lines into (title, abstract); each ``·`` closes the pair just before it."""
    entries: list[_Entry] = []
    pending: list[_Line] = []
    index = 0
    while index < len(content):
        line = content[index]
        if line.text == _SEPARATOR:
            if not pending or index + 1 >= len(content):
                raise ParseError(f"{where}:{line.number}", "meta block", "byline, '·', date line")
            byline, date_line = pending.pop(), content[index + 1]
            entries.extend(_pairs(pending, where, _Meta(byline, date_line)))
            pending = []
            index += 2
            continue
        pending.append(line)
        index += 1
    entries.extend(_pairs(pending, where, None))
    return entries


def _pairs(lines: list[_Line], where: str, meta: _Meta | None) -> list[_Entry]:
    if len(lines) % 2:
        last = lines[-1] if lines else None
        spot = f"{where}:{last.number}" if last else where
        raise ParseError(spot, "entry", "a title line followed by an abstract line")
    entries = []
    for start in range(0, len(lines), 2):
        title, abstract = lines[start], lines[start + 1]
        if len(title.text) > MAX_TITLE:
            raise ParseError(
                f"{where}:{title.number}", "title", f"at most {MAX_TITLE} characters", title.text
            )
        is_last = start + 2 == len(lines)
        entries.append(_Entry(title, abstract, meta if is_last else None))
    return entries


def _render_year(entries: list[_Entry], where: str, fallback_year: int) -> int:
    years = []
    for entry in entries:
        if entry.meta:
            match = _date_match(entry.meta.date_line, where)
            if match[3]:
                years.append(int(match[3]))
    return max(years) + 1 if years else fallback_year


def _date_match(line: _Line, where: str) -> re.Match[str]:
    match = _DATE_LINE.match(line.text)
    if not match:
        expected = "'Mon D[, YYYY] [comments]' such as 'Dec 2, 2025 5'"
        raise ParseError(f"{where}:{line.number}", "date", expected, line.text)
    return match


def _make_date(year: int, month: int, day: int, where: str, line: _Line) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ParseError(
            f"{where}:{line.number}", "date", "a real calendar day", line.text
        ) from exc


def _record(
    entry: _Entry, sighting: Sighting, year: int, page_date: date, where: str
) -> PaperRecord:
    fields: dict[str, object] = {}
    if entry.meta:
        fields.update(_byline(entry.meta.byline, where))
        match = _date_match(entry.meta.date_line, where)
        explicit = int(match[3]) if match[3] else None
        published = _make_date(
            explicit or year,
            _MONTHS.index(match[1]) + 1,
            int(match[2]),
            where,
            entry.meta.date_line,
        )
        if explicit is None and published > page_date:
            raise ParseError(
                f"{where}:{entry.meta.date_line.number}",
                "date",
                f"a day on or before the page date {page_date}",
                entry.meta.date_line.text,
            )
        fields["published_on"] = published
        fields["num_comments"] = int(match[4]) if match[4] else 0
    return PaperRecord(
        paper_id=None,
        title=clean_text(entry.title.text),
        abstract=clean_text(entry.abstract.text),
        sighting=sighting,
        **fields,
    )


def _byline(line: _Line, where: str) -> dict[str, object]:
    match = _AUTHORS.match(line.text)
    if match:
        return {"author_count": int(match[1])}
    slug, _, name = line.text.partition(" ")
    if not slug or not name.strip() or line.text != line.text.strip():
        raise ParseError(
            f"{where}:{line.number}", "byline", "'  • N authors' or 'org-slug Org Name'", line.text
        )
    return {"organization": Organization(slug=slug, name=name.strip())}
