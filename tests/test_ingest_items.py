"""One invalid item on an API page: the valid ones are fetched over loopback and stored, the bad
one is named (listing, URL, index, paper id, field) in the summary and on the page's fetch-log
row; a page with only bad items fails as a whole and writes no paper."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from sqlmodel import Session, col, select

from digest.db import count_rows, get_engine, list_papers
from digest.db.models import FetchLog
from digest.errors import ParseError
from digest.ingest import ingest_pages
from digest.periods import Period
from digest.settings import load_settings
from digest.sources import get_source
from digest.sources.http import Fetcher
from flows.ingest import ingest
from tests.factories import REAL_ITEM, api_item, json_body
from tests.site import LocalSite, Reply

FRIDAY = date(2026, 3, 6)
API = get_source("hf-api")


def broken(paper_id: str) -> dict[str, Any]:
    """The real item under another id, with upvotes as a string (as a site bug might send)."""
    item = copy.deepcopy(REAL_ITEM)
    item["paper"].update(id=paper_id, upvotes="10")
    return item


def serve(site: LocalSite, items: list[dict[str, Any]]) -> None:
    site.route("/api/daily_papers", Reply(body=json_body(items)), date=str(FRIDAY), limit=100, p=0)


def fetch_log(engine: Any) -> list[FetchLog]:
    with Session(engine) as session:
        return list(session.exec(select(FetchLog).order_by(col(FetchLog.id))).all())


def test_valid_items_are_stored_and_the_bad_one_is_named(
    site: LocalSite, fetcher: Fetcher, database_url: str
) -> None:
    serve(site, [REAL_ITEM, broken("2603.00001"), api_item(2, FRIDAY)])
    summary = ingest_pages(API.fetch(fetcher, Period.day(FRIDAY)), database_url)
    assert summary.failures == [] and summary.counts.new == 2
    [line] = summary.skipped
    assert line.startswith(f"day/2026-03-06: {site.url}/api/daily_papers?date=2026-03-06")
    assert line.endswith(
        "item 1 (paper 2603.00001): [1].paper.upvotes: expected a valid integer, got \"'10'\""
    )
    assert "1 invalid item(s) skipped" in str(summary)
    engine = get_engine(database_url)
    assert {p.key for p in list_papers(engine)} == {"2602.23229", "2603.06002"}
    [row] = fetch_log(engine)
    assert (row.status, row.new, row.listing) == ("stored", 2, "day/2026-03-06")
    assert row.error == (
        "1 invalid item(s) skipped: item 1 (paper 2603.00001): [1].paper.upvotes: "
        "expected a valid integer, got \"'10'\""
    )


def test_a_page_of_only_bad_items_fails_clearly_and_stores_nothing(
    site: LocalSite, fetcher: Fetcher, database_url: str
) -> None:
    engine = get_engine(database_url)
    serve(site, [REAL_ITEM])
    ingest_pages(API.fetch(fetcher, Period.day(FRIDAY)), database_url)
    before = count_rows(engine)
    serve(site, [broken("2603.00001"), broken("2603.00002")])
    pages = API.fetch(fetcher, Period.day(FRIDAY))
    with pytest.raises(ParseError, match=r"daily_papers\?date=2026-03-06.*: \[0\]\.paper\.upvotes"):
        API.parse(pages[0])
    summary = ingest_pages(pages, database_url)
    assert summary.pages == 0 and summary.skipped == []
    [failure] = summary.failures
    assert failure.startswith("day/2026-03-06: ") and "[0].paper.upvotes" in failure
    assert count_rows(engine) == before
    assert [(r.status, "[0].paper.upvotes" in (r.error or "")) for r in fetch_log(engine)] == [
        ("stored", False),
        ("failed", True),
    ]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_ingest_flow_stores_a_page_with_a_bad_item_and_does_not_fail(
    site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_HF_BASE_URL", site.url)
    serve(site, [REAL_ITEM, broken("2603.00001")])
    summary = ingest(source="hf-api", period=str(FRIDAY))
    assert summary.counts.new == 1 and summary.failures == []
    assert len(summary.skipped) == 1 and "item 1 (paper 2603.00001)" in summary.skipped[0]
    engine = get_engine(load_settings().db_url)
    assert [p.key for p in list_papers(engine)] == ["2602.23229"]
