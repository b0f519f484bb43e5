"""The daily-papers JSON API: the real item parses exactly; paging, weekends and bad shapes."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime

import pytest

from digest.errors import ConfigError, FetchError, ParseError
from digest.periods import Period, parse_period
from digest.records import Organization
from digest.sources import RawPage, get_source
from digest.sources.hf_api import PAGE_SIZE
from digest.sources.http import Fetcher
from tests.factories import API_SAMPLE, REAL_ITEM, api_day, api_item, json_body
from tests.site import LocalSite, Reply

API = get_source("hf-api")
DAY = date(2026, 3, 6)


def page_of(text: str, period: Period | None = None) -> RawPage:
    period = period or Period.day(DAY)
    return RawPage(
        source="hf-api",
        location="http://test/api/daily_papers?date=2026-03-06",
        listing="day/2026-03-06",
        listed_on=DAY,
        period=period,
        fetched_at=datetime(2026, 3, 6, 9, tzinfo=UTC),
        text=text,
    )


def test_the_real_item_parses_exactly() -> None:
    [page] = API.read(API_SAMPLE, parse_period("2026-03-06", today=date(2026, 11, 22)))
    [record] = API.parse(page)
    assert record.paper_id == "2602.23229"
    assert record.title == "Large Multimodal Models as General In-Context Classifiers"
    assert record.abstract.startswith("Which multimodal model should we use for classification?")
    assert record.abstract.endswith("a flexible alternative to specialized models.")
    assert record.authors == (
        "Marco Garosi",
        "Matteo Farina",
        "Alessandro Conti",
        "Massimiliano Mancini",
        "Elisa Ricci",
    )
    assert record.author_count == 5
    assert record.published_on == date(2026, 2, 26)  # paper.publishedAt, not the outer one
    assert record.submitted_on_daily_at == datetime(2026, 3, 6, 3, 55, 12, 777000, tzinfo=UTC)
    assert record.submitted_by == "marco-garosi"
    assert (record.upvotes, record.num_comments) == (10, 1)
    assert (record.github_repo, record.github_stars) == (
        "https://github.com/marco-garosi/CIRCLE",
        9,
    )
    assert record.project_page == "https://circle-lmm.github.io/"
    assert record.ai_summary and record.ai_summary.startswith("Large Multimodal Models demonstrate")
    assert record.ai_keywords[:2] == ("Vision-Language Models", "Large Multimodal Models")
    assert len(record.ai_keywords) == 9
    assert record.organization == Organization(
        slug="MHUGLab", name="Multimedia and Human Understanding Group"
    )
    assert (
        record.thumbnail
        == "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2602.23229.png"
    )
    assert record.withdrawn_at is None
    assert (record.sighting.listing, record.sighting.listed_on, record.sighting.rank) == (
        "day/2026-03-06",
        DAY,
        1,
    )


def test_hard_wrapped_titles_and_summaries_are_unwrapped_and_hidden_authors_skipped() -> None:
    item = copy.deepcopy(REAL_ITEM)
    item["paper"]["title"] = (
        "MCPMark: A Benchmark for Stress-Testing Realistic and Comprehensive MCP\n  Use"
    )
    item["paper"]["summary"] = "Line one\nline two with 52.56\\% pass@1."
    item["paper"]["authors"][0]["hidden"] = True
    item["paper"]["withdrawnAt"] = "2026-03-07T00:00:00.000Z"
    [record] = API.parse(page_of(json.dumps([item])))
    assert record.title.endswith("Comprehensive MCP Use")
    assert record.abstract == "Line one line two with 52.56\\% pass@1."
    assert "Marco Garosi" not in record.authors and record.author_count == 5
    assert record.withdrawn_at == datetime(2026, 3, 7, tzinfo=UTC)


def test_week_items_are_filed_under_the_day_each_was_featured() -> None:
    week = Period(kind="week", start=date(2026, 3, 2), end=date(2026, 3, 8))
    items = api_day(date(2026, 3, 3), 2) + api_day(date(2026, 3, 5), 1)
    page = page_of(json_body(items), week).model_copy(
        update={"listing": "week/2026-W10", "listed_on": None}
    )
    records = API.parse(page)
    assert [r.sighting.listed_on for r in records] == [date(2026, 3, 3)] * 2 + [date(2026, 3, 5)]
    assert {r.sighting.listing for r in records} == {"week/2026-W10"}


@pytest.mark.parametrize(
    ("mutate", "field", "expected"),
    [
        (lambda items: {"items": items}, "body", "a valid array"),
        (
            lambda items: [{**items[0], "paper": {**items[0]["paper"], "upvotes": "10"}}],
            "[0].paper.upvotes",
            "integer",
        ),
        (
            lambda items: [{**items[0], "paper": {**items[0]["paper"], "id": 2602.2323}}],
            "[0].paper.id",
            "string",
        ),
        (
            lambda items: [{**items[0], "paper": {**items[0]["paper"], "id": "not-an-id"}}],
            "[0].paper.id",
            "not an arxiv id",
        ),
        (
            lambda items: [{**items[0], "paper": {**items[0]["paper"], "title": "  "}}],
            "[0].paper.title",
            "blank",
        ),
        (
            lambda items: [{k: v for k, v in items[0].items() if k != "paper"}],
            "[0].paper",
            "missing",
        ),
        (
            lambda items: [{**items[0], "numComments": -1}, {**items[0], "paper": None}],
            "[0].numComments",
            "greater than or equal to 0",
        ),
    ],
)
def test_wrong_shapes_and_types_name_the_field(mutate, field: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParseError) as caught:
        API.parse(page_of(json.dumps(mutate([REAL_ITEM]))))
    assert caught.value.where.startswith("http://test/api/daily_papers")
    assert caught.value.field == field
    assert expected in caught.value.expected.lower()


def test_a_bad_item_is_skipped_and_named_and_the_others_keep_their_ranks() -> None:
    broken = copy.deepcopy(REAL_ITEM)
    broken["paper"].update(id="2603.00001", upvotes="10")
    items = [REAL_ITEM, broken, api_item(2, DAY)]
    records = API.parse(page_of(json.dumps(items)))
    assert [r.paper_id for r in records] == ["2602.23229", "2603.06002"]
    assert [r.sighting.rank for r in records] == [1, 3]  # the site's places, gap included
    [skipped] = records.skipped
    assert (skipped.index, skipped.paper_id) == (1, "2603.00001")
    assert skipped.error.where == "http://test/api/daily_papers?date=2026-03-06"
    assert skipped.error.field == "[1].paper.upvotes" and "integer" in skipped.error.expected
    assert str(skipped) == (
        "item 1 (paper 2603.00001): [1].paper.upvotes: expected a valid integer, got \"'10'\""
    )


def test_items_that_are_not_objects_or_have_no_paper_are_skipped_alone() -> None:
    items = [5, {"title": "no paper"}, REAL_ITEM, {"paper": {"id": 2602.2323, "title": "x"}}]
    records = API.parse(page_of(json.dumps(items)))
    assert [r.sighting.rank for r in records] == [3]
    assert [(s.index, s.paper_id, s.error.field) for s in records.skipped] == [
        (0, None, "[0]"),
        (1, None, "[1].paper"),
        (3, "2602.2323", "[3].paper.id"),
    ]


def test_truncated_json_is_a_parse_error() -> None:
    text = json.dumps([REAL_ITEM])
    with pytest.raises(ParseError, match="body: expected valid JSON"):
        API.parse(page_of(text[: len(text) // 2]))


def test_pages_are_fetched_until_a_short_one(site: LocalSite, fetcher: Fetcher) -> None:
    items = api_day(DAY, PAGE_SIZE + 7)
    site.route(
        "/api/daily_papers", Reply(body=json_body(items[:100])), date=str(DAY), limit=100, p=0
    )
    site.route(
        "/api/daily_papers", Reply(body=json_body(items[100:])), date=str(DAY), limit=100, p=1
    )
    pages = API.fetch(fetcher, Period.day(DAY))
    records = [r for page in pages for r in API.parse(page)]
    assert [s.query["p"] for s in site.requests_to("/api/daily_papers")] == ["0", "1"]
    assert len(records) == 107
    assert [r.sighting.rank for r in records] == list(range(1, 108))
    assert {r.sighting.listed_on for r in records} == {DAY}


def test_exactly_one_full_page_asks_once_more_and_gets_an_empty_one(
    site: LocalSite, fetcher: Fetcher
) -> None:
    site.route(
        "/api/daily_papers", Reply(body=json_body(api_day(DAY, 100))), date=str(DAY), limit=100, p=0
    )
    site.route("/api/daily_papers", Reply(body="[]"), date=str(DAY), limit=100, p=1)
    pages = API.fetch(fetcher, Period.day(DAY))
    assert [p.item_count for p in pages] == [100, 0]


def test_a_weekend_is_an_empty_day(site: LocalSite, fetcher: Fetcher) -> None:
    sunday = date(2026, 3, 8)
    site.route("/api/daily_papers", Reply(body="[]"), date=str(sunday), limit=100, p=0)
    pages = API.fetch(fetcher, Period.day(sunday))
    assert len(pages) == 1 and API.parse(pages[0]) == []


def test_a_400_is_a_fetch_error_naming_the_url_and_is_not_retried(
    site: LocalSite, fetcher: Fetcher
) -> None:
    site.route(
        "/api/daily_papers", Reply(400, '{"error":"Invalid date"}'), date=str(DAY), limit=100, p=0
    )
    with pytest.raises(FetchError) as caught:
        API.fetch(fetcher, Period.day(DAY))
    assert caught.value.status == 400
    assert "date=2026-03-06" in caught.value.url and "Invalid date" in str(caught.value)
    assert len(site.requests_to("/api/daily_papers")) == 1


def test_a_future_date_is_refused_before_any_request() -> None:
    with pytest.raises(ConfigError, match="in the future"):
        parse_period("2026-11-23", today=date(2026, 11, 22))


def test_a_page_that_is_not_an_array_stops_paging_with_a_parse_error(
    site: LocalSite, fetcher: Fetcher
) -> None:
    site.route("/api/daily_papers", Reply(body='{"error":"x"}'), date=str(DAY), limit=100, p=0)
    with pytest.raises(ParseError, match="expected a JSON array of items, got 'dict'"):
        API.fetch(fetcher, Period.day(DAY))
