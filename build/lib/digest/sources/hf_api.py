"""Hugging Face's documented JSON API: ``/api/daily_papers?date=D&limit=100&p=N``.

The answer is a bare JSON array, at most ``limit`` (max 100) items a page; pages are fetched
until one comes back short. ``week=YYYY-Www`` and ``month=YYYY-MM`` list longer periods, whose
items are filed under the day each was featured (``submittedOnDailyAt``). An item that fails
validation is skipped and named in the page's ``Records.skipped``; only a page with no valid item
fails as a whole.
"""

from __future__ import annotations

import json
from pathlib import Path

from digest.errors import ParseError
from digest.periods import Period
from digest.records import Sighting
from digest.sources import RawPage, files_in
from digest.sources.hf_items import Records, to_record, validate_items
from digest.sources.http import Fetcher, Response

__all__ = ["ApiSource", "PAGE_SIZE"]

NAME = "hf-api"
PATH = "/api/daily_papers"
PAGE_SIZE = 100
MAX_PAGES = 50


class ApiSource:
    """Daily papers through the JSON API, one request per 100 items."""

    name = NAME

    def fetch(self, fetcher: Fetcher, period: Period) -> list[RawPage]:
        pages: list[RawPage] = []
        for number in range(MAX_PAGES):
            params: dict[str, str | int] = {
                _PARAM[period.kind]: period.label,
                "limit": PAGE_SIZE,
                "p": number,
            }
            response = fetcher.get(PATH, params)
            count = _item_count(response)
            offset = number * PAGE_SIZE
            pages.append(
                RawPage.fetched(NAME, response, period, rank_offset=offset, item_count=count)
            )
            if count is None or count < PAGE_SIZE:
                break
        return pages

    def read(self, path: Path, period: Period | None) -> list[RawPage]:
        return [
            RawPage.saved(NAME, file, _listing(period) if period else f"file/{file.stem}", period)
            for file in files_in(path, "*.json")
        ]

    def parse(self, page: RawPage) -> Records:
        """The page's valid items as records (ranks keep each item's place); bad items are in
        ``skipped``. A page whose items are all bad raises the first one's ``ParseError``."""
        if page.text is None:
            return Records()
        items, skipped = validate_items(page.text, page.location)
        if skipped and not items:
            raise skipped[0].error
        records = Records(skipped=skipped)
        for index, item in items:
            featured = item.paper.submittedOnDailyAt
            sighting = Sighting(
                source=NAME,
                listing=page.listing,
                listed_on=page.listed_on or (featured.date() if featured else None),
                rank=page.rank_offset + index + 1,
                observed_at=page.fetched_at,
            )
            records.append(to_record(item, sighting))
        return records


_PARAM = {"day": "date", "week": "week", "month": "month"}


def _item_count(response: Response) -> int | None:
    """How many items the page holds, to decide whether to ask for the next one."""
    if response.text is None:
        return response.previous.item_count if response.previous else None
    try:
        body = json.loads(response.text)
    except json.JSONDecodeError as exc:
        raise ParseError(response.url, "body", "a JSON array of items", exc.msg) from exc
    if not isinstance(body, list):
        raise ParseError(response.url, "body", "a JSON array of items", type(body).__name__)
    return len(body)


def _listing(period: Period) -> str:
    return f"{period.kind}/{period.label}"
