"""Hugging Face HTML pages, read through their Svelte hydration islands.

List pages (``/papers/date/D``, ``/papers/week/W``, ``/papers/month/M``) carry the same items as
the API in ``div[data-target=DailyPapers][data-props]``; paper pages (``/papers/<id>``) carry one
paper in ``PaperContent``. Attributes are read through an HTML parser (lxml), so their order and
quoting do not matter. The site quietly shows the latest day for a date it has no list for, so a
page whose own ``dateString`` is not the requested day is refused (or, on a weekend, is empty).
A list entry that fails validation is skipped and named in the page's ``Records.skipped``; only a
page with no valid entry fails as a whole.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup, Tag
from pydantic_core import to_json

from digest.errors import DateMismatchError, ParseError
from digest.periods import Period
from digest.records import PaperRecord, Sighting
from digest.sources import RawPage, files_in
from digest.sources.hf_items import (
    HfItem,
    HfModel,
    HfOrganization,
    HfPaper,
    Records,
    SkippedItem,
    to_record,
    validate_items,
    validate_json,
)
from digest.sources.http import Fetcher

__all__ = ["HtmlSource"]

NAME = "hf-html"
_PATHS = {"day": "/papers/date/{}", "week": "/papers/week/{}", "month": "/papers/month/{}"}
WEEKEND = (5, 6)


class DailyPapersProps(HfModel):
    dailyPapers: list[Any]  # validated entry by entry, so one bad entry is skipped alone
    dateString: str | None = None
    periodType: str | None = None


class PaperContentProps(HfModel):
    paper: HfPaper
    comments: list[Any] = []
    dailyPaperRank: int | None = None
    submitterOrganization: HfOrganization | None = None


class HtmlSource:
    """Daily papers from the site's HTML, for when the API is unavailable."""

    name = NAME

    def fetch(self, fetcher: Fetcher, period: Period) -> list[RawPage]:
        response = fetcher.get(_PATHS[period.kind].format(period.label))
        return [RawPage.fetched(NAME, response, period)]

    def read(self, path: Path, period: Period | None) -> list[RawPage]:
        listing = f"{period.kind}/{period.label}" if period else ""  # else: the page's own date
        return [RawPage.saved(NAME, file, listing, period) for file in files_in(path, "*.html")]

    def parse(self, page: RawPage) -> Records:
        """A list page's valid entries as records (ranks keep each entry's place); bad entries
        are in ``skipped``. A page whose entries are all bad raises the first one's
        ``ParseError``, as does a page that is neither a list page nor a paper page."""
        if page.text is None:
            return Records()
        soup = BeautifulSoup(page.text, "lxml")
        listing = _island(soup, "DailyPapers")
        if listing is not None:
            return _list_page(page, _props(listing, page.location, "DailyPapers"))
        paper = _island(soup, "PaperContent")
        if paper is not None:
            return Records([_paper_page(page, _props(paper, page.location, "PaperContent"))])
        raise ParseError(
            page.location,
            "DailyPapers island",
            "a div[data-target=DailyPapers] (list page) or PaperContent (paper page) "
            "with data-props; the page structure may have changed",
        )


def _island(soup: BeautifulSoup, target: str) -> Tag | None:
    return soup.select_one(f'[data-target="{target}"]')


def _props(island: Tag, where: str, target: str) -> str:
    props = island.get("data-props")
    if not isinstance(props, str) or not props.strip():
        raise ParseError(where, f"{target}.data-props", "a JSON object in the data-props attribute")
    return props


def _list_page(page: RawPage, props_text: str) -> Records:
    where = f"{page.location} DailyPapers"
    props = validate_json(DailyPapersProps, props_text, where)
    shown = props.dateString or ""
    if page.period and not _shows(page.period, props.periodType, shown):
        if page.period.kind == "day" and page.period.start.weekday() in WEEKEND:
            return Records()
        raise DateMismatchError(page.location, page.period.label, shown or "no dateString")
    own_day = _as_date(shown) if (props.periodType or "day") == "day" else None
    listed_on = page.listed_on or own_day
    listing = page.listing or (f"day/{own_day}" if own_day else f"file/{Path(page.location).stem}")
    items, skipped = validate_items(to_json(props.dailyPapers).decode(), where)
    skipped = [_within_list(bad) for bad in skipped]
    if skipped and not items:
        raise skipped[0].error
    records = Records(skipped=skipped)
    for index, item in items:
        featured = item.paper.submittedOnDailyAt
        sighting = Sighting(
            source=NAME,
            listing=listing,
            listed_on=listed_on or (featured.date() if featured else None),
            rank=index + 1,
            observed_at=page.fetched_at,
        )
        records.append(to_record(item, sighting))
    return records


def _within_list(bad: SkippedItem) -> SkippedItem:
    """The entry's error with its field named from the props: ``dailyPapers[1].paper.id``."""
    error = bad.error
    field = f"dailyPapers{error.field}" if error.field.startswith("[") else error.field
    return replace(bad, error=ParseError(error.where, field, error.expected, error.got))


def _shows(period: Period, period_type: str | None, shown: str) -> bool:
    """Whether the page's own period is the one requested."""
    if (period_type or "day") != period.kind:
        return False
    if shown == period.label:
        return True
    day = _as_date(shown)
    return period.kind != "day" and day is not None and period.contains(day)


def _as_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _paper_page(page: RawPage, props_text: str) -> PaperRecord:
    props = validate_json(PaperContentProps, props_text, f"{page.location} PaperContent")
    featured = props.paper.submittedOnDailyAt
    sighting = Sighting(
        source=NAME,
        listing=f"paper/{props.paper.id}",
        listed_on=featured.date() if featured else None,
        rank=props.dailyPaperRank if props.dailyPaperRank and props.dailyPaperRank > 0 else None,
        observed_at=page.fetched_at,
    )
    item = HfItem(
        paper=props.paper,
        numComments=len(props.comments),
        organization=props.submitterOrganization,
    )
    return to_record(item, sighting)
