"""HTML pages: the real paper page parses exactly; synthetic list pages (labelled so in
tests/factories.py) in both attribute styles; clamped dates, missing or broken islands."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime

import pytest

from digest.errors import DateMismatchError, ParseError
from digest.periods import Period
from digest.records import Organization, clean_text
from digest.sources import RawPage, get_source
from digest.sources.http import Fetcher
from tests.factories import PAPER_PAGE, REAL_ITEM, api_day, list_page_html
from tests.site import LocalSite, Reply

HTML = get_source("hf-html")
FRIDAY = date(2026, 3, 6)


def page_of(text: str, period: Period | None = None, *, dated: bool = True) -> RawPage:
    period = period or (Period.day(FRIDAY) if dated else None)
    return RawPage(
        source="hf-html",
        location="http://test/papers/date/2026-03-06",
        listing=f"{period.kind}/{period.label}" if period else "",
        listed_on=period.start if period and period.kind == "day" else None,
        period=period,
        fetched_at=datetime(2026, 3, 6, 9, tzinfo=UTC),
        text=text,
    )


def test_the_real_paper_page_parses_exactly() -> None:
    [page] = HTML.read(PAPER_PAGE, None)
    [record] = HTML.parse(page)
    assert record.paper_id == "2509.24002"
    assert (
        record.title
        == "MCPMark: A Benchmark for Stress-Testing Realistic and Comprehensive MCP Use"
    )
    assert record.abstract.startswith(
        "MCP standardizes how LLMs interact with external systems, forming the foundation"
    )
    assert "52.56\\% pass@1" in record.abstract and "\n" not in record.abstract
    assert len(record.authors) == record.author_count == 15
    assert record.authors[0] == "Zijian Wu" and record.authors[-1] == "Michael Qizhe Shieh"
    assert record.published_on == date(2025, 9, 28)
    assert record.submitted_on_daily_at == datetime(2025, 10, 1, 1, 58, 54, 337000, tzinfo=UTC)
    assert record.submitted_by == "Jakumetsu"
    assert (record.upvotes, record.num_comments, record.github_stars) == (118, 2, 182)
    assert record.github_repo == "https://github.com/eval-sys/mcpmark"
    assert record.project_page == "https://mcpmark.ai/"
    assert record.ai_summary and record.ai_summary.startswith(
        "MCPMark is a comprehensive benchmark"
    )
    assert len(record.ai_keywords) == 21 and record.ai_keywords[-1] == "tool calls"
    assert record.organization == Organization(
        slug="NationalUniversityofSingapore", name="National University of Singapore"
    )
    assert record.sighting.listing == "paper/2509.24002"
    assert (record.sighting.listed_on, record.sighting.rank) == (date(2025, 10, 1), 1)


@pytest.mark.parametrize("style", ["escaped", "prettify"])
def test_list_page_island_reads_the_same_in_either_attribute_style(style: str) -> None:
    items = api_day(FRIDAY, 3)
    items[0]["paper"]["title"] = "Quotes \"and\" <tags> & apostrophes 'here'"
    records = HTML.parse(page_of(list_page_html(items, "2026-03-06", style=style)))
    assert [r.paper_id for r in records] == [i["paper"]["id"] for i in items]
    assert records[0].title == "Quotes \"and\" <tags> & apostrophes 'here'"
    assert [r.sighting.rank for r in records] == [1, 2, 3]
    assert {(r.sighting.listing, r.sighting.listed_on) for r in records} == {
        ("day/2026-03-06", FRIDAY)
    }


def test_a_clamped_date_is_refused_rather_than_filed_under_the_wrong_day() -> None:
    text = list_page_html(api_day(FRIDAY, 2), "2026-03-06")
    thursday = Period.day(date(2026, 3, 5))
    with pytest.raises(DateMismatchError) as caught:
        HTML.parse(page_of(text, thursday))
    assert (caught.value.requested, caught.value.shown) == ("2026-03-05", "2026-03-06")


def test_a_weekend_that_shows_friday_is_an_empty_day() -> None:
    text = list_page_html(api_day(FRIDAY, 2), "2026-03-06")
    assert HTML.parse(page_of(text, Period.day(date(2026, 3, 7)))) == []


def test_week_page_accepts_a_day_inside_the_week_and_files_items_by_feature_day() -> None:
    items = api_day(date(2026, 3, 3), 1) + api_day(date(2026, 3, 5), 1)
    week = Period(kind="week", start=date(2026, 3, 2), end=date(2026, 3, 8))
    records = HTML.parse(page_of(list_page_html(items, "2026-03-05", period_type="week"), week))
    assert [r.sighting.listed_on for r in records] == [date(2026, 3, 3), date(2026, 3, 5)]
    with pytest.raises(DateMismatchError):
        HTML.parse(page_of(list_page_html(items, "2026-03-12", period_type="week"), week))
    with pytest.raises(DateMismatchError):
        HTML.parse(page_of(list_page_html(items, "2026-03-05", period_type="day"), week))


def test_a_saved_list_page_is_filed_under_its_own_date(tmp_path) -> None:  # type: ignore[no-untyped-def]
    saved = tmp_path / "2026-03-06.html"
    saved.write_text(list_page_html(api_day(FRIDAY, 2), "2026-03-06"))
    [page] = HTML.read(saved, None)
    records = HTML.parse(page)
    assert {(r.sighting.listing, r.sighting.listed_on) for r in records} == {
        ("day/2026-03-06", FRIDAY)
    }


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("<html><body><h1>Daily Papers</h1></body></html>", "DailyPapers island"),
        ('<div data-target="DailyPapers"></div>', "DailyPapers.data-props"),
        ('<div data-target="DailyPapers" data-props="{&quot;dailyPapers&quot;: [">', "body"),
        (
            '<div data-target="DailyPapers" data-props="{&quot;dateString&quot;: &quot;2026-03-06&quot;}">',
            "dailyPapers",
        ),
        (
            '<div data-target="PaperContent" data-props="{&quot;paper&quot;: {&quot;id&quot;: 5}}">',
            "paper.id",
        ),
    ],
)
def test_missing_or_changed_islands_name_the_url_and_field(text: str, field: str) -> None:
    with pytest.raises(ParseError) as caught:
        HTML.parse(page_of(text))
    assert caught.value.where.startswith("http://test/papers/date/2026-03-06")
    assert caught.value.field == field


def test_a_wrongly_typed_item_field_names_its_path() -> None:
    items = api_day(FRIDAY, 2)
    broken = copy.deepcopy(items)
    broken[1]["paper"]["githubStars"] = "many"
    records = HTML.parse(page_of(list_page_html(broken, "2026-03-06")))
    assert [r.paper_id for r in records] == [items[0]["paper"]["id"]]
    [skipped] = records.skipped
    assert skipped.error.field == "dailyPapers[1].paper.githubStars"
    assert skipped.error.got == "'many'"


def test_a_bad_entry_is_skipped_and_named_and_the_others_keep_their_ranks() -> None:
    broken = copy.deepcopy(REAL_ITEM)  # the real API item, as the island carries it
    broken["paper"].update(id="2603.00001", upvotes="10")
    items = [REAL_ITEM, broken, *api_day(FRIDAY, 2)]
    records = HTML.parse(page_of(list_page_html(items, "2026-03-06")))
    assert [r.paper_id for r in records] == ["2602.23229", *(i["paper"]["id"] for i in items[2:])]
    assert [r.sighting.rank for r in records] == [1, 3, 4]  # the page's places, gap included
    assert records[0].title == clean_text(REAL_ITEM["paper"]["title"])
    [skipped] = records.skipped
    assert (skipped.index, skipped.paper_id) == (1, "2603.00001")
    assert skipped.error.where == "http://test/papers/date/2026-03-06 DailyPapers"
    assert skipped.error.field == "dailyPapers[1].paper.upvotes"
    assert "integer" in skipped.error.expected
    assert str(skipped) == (
        "item 1 (paper 2603.00001): dailyPapers[1].paper.upvotes: "
        "expected a valid integer, got \"'10'\""
    )


def test_entries_missing_or_mistyping_paper_fields_are_skipped_alone() -> None:
    items = [
        {"title": "no paper title", "paper": {"id": "2603.00009"}},
        {"title": "numeric id", "paper": {"id": 2602.2323, "title": "x"}},
        REAL_ITEM,
    ]
    records = HTML.parse(page_of(list_page_html(items, "2026-03-06")))
    assert [(r.paper_id, r.sighting.rank) for r in records] == [("2602.23229", 3)]
    assert [(s.index, s.paper_id, s.error.field) for s in records.skipped] == [
        (0, "2603.00009", "dailyPapers[0].paper.title"),
        (1, "2602.2323", "dailyPapers[1].paper.id"),
    ]


def test_a_page_whose_entries_are_all_bad_fails_naming_the_first() -> None:
    broken = copy.deepcopy(REAL_ITEM)
    broken["paper"]["upvotes"] = -1
    other = copy.deepcopy(REAL_ITEM)
    del other["paper"]["title"]
    with pytest.raises(ParseError) as caught:
        HTML.parse(page_of(list_page_html([broken, other], "2026-03-06")))
    assert caught.value.where == "http://test/papers/date/2026-03-06 DailyPapers"
    assert caught.value.field == "dailyPapers[0].paper.upvotes"


def test_an_empty_list_page_is_no_records_not_an_error() -> None:
    records = HTML.parse(page_of(list_page_html([], "2026-03-06")))
    assert (list(records), records.skipped) == ([], [])


def test_fetching_a_day_page_from_the_site(site: LocalSite, fetcher: Fetcher) -> None:
    site.route(
        "/papers/date/2026-03-06",
        Reply(body=list_page_html(api_day(FRIDAY, 4), "2026-03-06"), content_type="text/html"),
    )
    [page] = HTML.fetch(fetcher, Period.day(FRIDAY))
    assert page.location == f"{site.url}/papers/date/2026-03-06"
    assert len(HTML.parse(page)) == 4


def test_a_redirect_to_another_day_is_followed_then_refused(
    site: LocalSite, fetcher: Fetcher
) -> None:
    site.route(
        "/papers/date/2026-03-05", Reply(302, headers={"Location": "/papers/date/2026-03-06"})
    )
    site.route(
        "/papers/date/2026-03-06",
        Reply(body=list_page_html(api_day(FRIDAY, 1), "2026-03-06"), content_type="text/html"),
    )
    [page] = HTML.fetch(fetcher, Period.day(date(2026, 3, 5)))
    with pytest.raises(DateMismatchError):
        HTML.parse(page)


def test_item_json_in_props_survives_html_escaping() -> None:
    items = api_day(FRIDAY, 1)
    items[0]["paper"]["summary"] = 'x < y && z > "w" \' 100\\% </div> <script>alert(1)</script>'
    [record] = HTML.parse(page_of(list_page_html(items, "2026-03-06")))
    assert record.abstract == items[0]["paper"]["summary"]
    assert json.loads(json.dumps(record.abstract)) == record.abstract
