"""Small data factories, and digests built the way a send run builds them.

Every item built here is SYNTHETIC and says so: items are the one real API item
(tests/fixtures/hf-samples) with id, title, summary, upvotes and day changed, and list pages
follow the documented ``DailyPapers`` island markup (shared notes, source-formats §2.3); no real
list page exists in stored material.
"""

from __future__ import annotations

import copy
import html
import json
from collections.abc import Collection, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from digest.assemble import Digest, DigestPaper, SectionSpec
from digest.compose import Composer
from digest.periods import Period

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = FIXTURES / "hf-samples"
API_SAMPLE = SAMPLES / "api_daily_papers_item_2602.23229.json"
PAPER_PAGE = SAMPLES / "paper_page_2509.24002.html"
REAL_ITEM: dict[str, Any] = json.loads(API_SAMPLE.read_text())[0]


def api_item(
    number: int, day: date, *, upvotes: int | None = None, title: str | None = None
) -> dict[str, Any]:
    """SYNTHETIC item ``YYMM.NNNNN`` featured on ``day``."""
    item = copy.deepcopy(REAL_ITEM)
    paper_id = f"{day:%y%m}.{day.day:02d}{number:03d}"
    title = title or f"Synthetic paper {paper_id}: sparse attention for topic {number % 7}"
    summary = f"We study synthetic problem {number} listed on {day}. " * 3
    item["paper"].update(
        id=paper_id,
        title=title,
        summary=summary,
        upvotes=upvotes if upvotes is not None else 200 - number,
        submittedOnDailyAt=f"{day}T03:55:12.777Z",
    )
    item.update(title=title, summary=summary, numComments=number % 4)
    return item


def api_day(day: date, count: int) -> list[dict[str, Any]]:
    """SYNTHETIC day of ``count`` items, most upvoted first (as the site orders them)."""
    return [api_item(number, day) for number in range(count)]


def list_page_html(
    items: list[dict[str, Any]],
    date_string: str,
    *,
    period_type: str = "day",
    style: str = "escaped",
) -> str:
    """SYNTHETIC ``/papers/date/D`` page. ``style="escaped"`` writes the island as the server does
    (``data-target`` first, ``&quot;`` escaping); ``"prettify"`` as BeautifulSoup's prettify wrote
    the real sample (``data-props`` first, single quotes, raw JSON)."""
    props = {
        "authLight": None,
        "canSubmit": False,
        "dateString": date_string,
        "dailyPapers": items,
        "prevDate": str(date.fromisoformat(date_string) - timedelta(days=1))
        if period_type == "day"
        else None,
        "periodType": period_type,
        "query": "",
        "isTrending": False,
    }
    text = json.dumps(props, ensure_ascii=False)
    if style == "escaped":
        island = f'<div class="SVELTE_HYDRATER contents" data-target="DailyPapers" data-props="{html.escape(text)}">'
    else:
        raw = html.escape(text, quote=False).replace("'", "&#39;")
        island = (
            f'<div class="SVELTE_HYDRATER contents" data-props=\'{raw}\' data-target="DailyPapers">'
        )
    cards = "".join(
        f'<article class="relative flex flex-col"><h3><a href="/papers/{i["paper"]["id"]}">'
        f"{html.escape(i['title'])}</a></h3></article>"
        for i in items
    )
    return (
        "<!DOCTYPE html>\n<!-- SYNTHETIC test fixture modelled on the documented markup -->\n"
        "<html><head><title>Daily Papers - Hugging Face</title></head><body><main>"
        "<h1>Daily Papers</h1>"
        f'<div class="w-24 whitespace-nowrap text-center text-sm font-semibold">{date_string}</div>'
        f"{island}<section>{cards}</section></div></main></body></html>"
    )


def json_body(items: list[dict[str, Any]]) -> str:
    return json.dumps(items)


def build_digest(
    email: str,
    period: Period,
    specs: Sequence[SectionSpec],
    papers: Sequence[DigestPaper],
    already_sent: Collection[str] = (),
    *,
    quiet_day: bool = False,
) -> Digest:
    """The digest a send run composes (``Composer``, the production path, lexical scoring)
    for ``email`` with these sections, over the papers first listed in ``period``."""
    in_period = [p for p in papers if period.contains(p.first_listed_on)]
    composer = Composer(period, in_period, themes={})
    return composer.compose_sections(email, specs, already_sent, quiet_days=quiet_day)
