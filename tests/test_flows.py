"""Real Prefect runs (one harness per session): ingest and backfill end to end, then again to
show nothing changes; failures are retried, recorded and reported, never half-stored."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from digest.db import count_rows, get_engine, list_papers
from digest.db.models import Delivery, FetchLog
from digest.errors import ConfigError, PartialFailure
from digest.ingest import ingest_pages, read_pages
from digest.requests import request_from
from digest.settings import BUNDLED_SEEDS_DIR, load_settings
from digest.subscriptions import import_subscribers, subscribe
from digest.themes import load_themes
from flows.backfill import backfill
from flows.ingest import ingest
from tests.conftest import SEEDS
from tests.factories import api_day, json_body, list_page_html
from tests.site import LocalSite, Reply

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
MONDAY = date(2026, 3, 2)
THEMES = load_themes()


@pytest.fixture
def hf(site: LocalSite, monkeypatch: pytest.MonkeyPatch) -> LocalSite:
    """The loopback site as the configured Hugging Face, with no real waiting between retries."""
    monkeypatch.setenv("DIGEST_HF_BASE_URL", site.url)
    monkeypatch.setenv("DIGEST_HTTP_BACKOFF", "0")
    return site


def serve_week(site: LocalSite) -> None:
    """Mon-Fri have 3, 4, 5, 6, 7 papers (etag'd); the weekend is empty."""
    for offset in range(7):
        day = MONDAY + timedelta(days=offset)
        items = api_day(day, 3 + offset) if offset < 5 else []
        site.route(
            "/api/daily_papers",
            Reply(body=json_body(items), headers={"ETag": f'"{day}"'}),
            date=str(day),
            limit=100,
            p=0,
        )


def test_ingest_seeds_then_again_changes_nothing() -> None:
    first = ingest(source="seeds")
    assert (first.pages, first.counts.new, first.counts.updated) == (5, 301, 39)
    again = ingest(source="seeds")
    assert (again.counts.new, again.counts.updated, again.counts.unchanged) == (0, 0, 340)
    assert count_rows(get_engine(load_settings().db_url)) == {"papers": 301, "sightings": 340}


def test_ingest_one_api_day_then_a_conditional_refetch(hf: LocalSite) -> None:
    serve_week(hf)
    first = ingest(source="hf-api", period="2026-03-04")
    assert first.counts.new == 5
    again = ingest(source="hf-api", period="2026-03-04")
    assert again.not_modified == 1 and again.counts.total == 0
    assert hf.seen[-1].headers.get("If-None-Match") == '"2026-03-04"'


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def test_backfill_a_week_with_a_flaky_day_then_again(hf: LocalSite) -> None:
    serve_week(hf)
    wednesday = str(MONDAY + timedelta(days=2))
    hf.routes["/api/daily_papers?date=" + wednesday + "&limit=100&p=0"].insert(0, Reply(503))
    lines = Lines()
    runs = logging.getLogger("prefect.flow_runs")
    level = runs.level
    runs.addHandler(lines)
    runs.setLevel(logging.INFO)
    try:
        summary = backfill(
            start=MONDAY, end=MONDAY + timedelta(days=6), source="hf-api", concurrency=3
        )
    finally:
        runs.removeHandler(lines)
        runs.setLevel(level)
    assert summary.pages == 7 and summary.counts.new == 3 + 4 + 5 + 6 + 7 and not summary.failures
    progress = [line for line in lines.seen if line.startswith("backfill hf-api: ")]
    assert len(progress) == 7  # off a terminal: one line per day, in order, with an ETA
    assert progress[0].startswith(f"backfill hf-api: {MONDAY} 3 new, 0 updated; 1/7 days")
    assert "7/7 days, 25 new, 0 updated papers, ETA 0:00" in progress[-1]
    engine = get_engine(load_settings().db_url)
    assert len(list_papers(engine, listed_on=MONDAY + timedelta(days=4))) == 7
    assert list_papers(engine, listed_on=MONDAY + timedelta(days=5)) == []
    before = count_rows(engine)
    again = backfill(start=MONDAY, end=MONDAY + timedelta(days=6), source="hf-api")
    assert again.counts.new == again.counts.updated == 0 and again.not_modified == 7
    assert count_rows(engine) == before


def test_a_day_that_fails_for_good_is_recorded_and_the_rest_is_stored(hf: LocalSite) -> None:
    serve_week(hf)
    hf.route(
        "/api/daily_papers",
        Reply(400, '{"error":"Invalid date"}'),
        date="2026-03-03",
        limit=100,
        p=0,
    )
    with pytest.raises(PartialFailure, match="1 failed: day/2026-03-03: .*HTTP 400"):
        backfill(start=MONDAY, end=MONDAY + timedelta(days=2), source="hf-api")
    engine = get_engine(load_settings().db_url)
    assert count_rows(engine)["papers"] == 3 + 5
    with Session(engine) as session:
        [failed] = session.exec(select(FetchLog).where(FetchLog.status == "failed")).all()
    assert failed.listing == "day/2026-03-03" and "HTTP 400" in (failed.error or "")


def test_html_backfill_refuses_clamped_days_and_treats_clamped_weekends_as_empty(
    hf: LocalSite,
) -> None:
    friday = MONDAY + timedelta(days=4)
    page = list_page_html(api_day(friday, 4), str(friday))
    # The site answers Thursday (no list yet) and the weekend with Friday's page, as HF does.
    for offset in (3, 4, 5, 6):
        day = MONDAY + timedelta(days=offset)
        hf.route(f"/papers/date/{day}", Reply(body=page, content_type="text/html"))
    with pytest.raises(
        PartialFailure,
        match="1 failed: day/2026-03-05: http://.*/papers/date/2026-03-05: dateString: expected the requested period 2026-03-05, got '2026-03-06'",
    ):
        backfill(start=MONDAY + timedelta(days=3), end=MONDAY + timedelta(days=6), source="hf-html")
    engine = get_engine(load_settings().db_url)
    assert len(list_papers(engine, listed_on=friday)) == 4
    assert list_papers(engine, listed_on=MONDAY + timedelta(days=3)) == []
    assert count_rows(engine) == {"papers": 4, "sightings": 4}


def test_a_page_that_does_not_parse_fails_the_run_after_storing_the_others(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "a.json").write_text(json_body(api_day(MONDAY, 2)))
    (folder / "b.json").write_text('{"not": "a list"}')
    with pytest.raises(PartialFailure, match="b.json: body: expected a valid array"):
        ingest(source="hf-api", path=str(folder))
    assert count_rows(get_engine(load_settings().db_url))["papers"] == 2


def test_an_impossible_range_is_refused_before_any_request(hf: LocalSite) -> None:
    with pytest.raises(ConfigError, match="the end is before the start"):
        backfill(start=MONDAY, end=MONDAY - timedelta(days=1))
    assert hf.seen == []


def test_the_send_flow_on_a_local_dask_cluster_matches_the_thread_runner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Three shards of subscribers as Prefect tasks, on threads and then on an in-process Dask
    cluster (prefect-dask), over identical stores: the same digests, ledgers and files."""
    from prefect_dask.task_runners import DaskTaskRunner

    from flows.send import send_digests, task_runner

    results = {}
    # one key for both stores, so that the same issue gets the same name in each
    monkeypatch.setenv("DIGEST_SECRET_KEY", "flows-test-" + "k3y-0123456789abcdefghijklmnop")
    for runner in ("threads", "dask"):
        monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path / runner))
        monkeypatch.setenv("DIGEST_TASK_RUNNER", runner)
        monkeypatch.setenv("DIGEST_SEND_SHARDS", "3")
        settings = load_settings()
        assert isinstance(task_runner(settings), DaskTaskRunner) is (runner == "dask")
        ingest_pages(read_pages("seeds", SEEDS, None), settings.db_url)
        engine = get_engine(settings.db_url)
        import_subscribers(engine, BUNDLED_SEEDS_DIR / "subscribers.yaml", THEMES)
        for i, theme in enumerate(THEMES):
            subscribe(
                engine, request_from({"email": f"r{i}@example.org", "themes": [theme]}, "t"), THEMES
            )
        summary = send_digests(cadence="daily", anchor_at_newest=True)
        with Session(engine) as session:
            ledger = sorted(
                (row.issue_id, row.status.value, tuple(row.paper_keys))
                for row in session.exec(select(Delivery)).all()
            )
        files = sorted(p.name for p in settings.outbox_dir.glob("*.eml"))
        results[runner] = (summary.sent, summary.skipped, ledger, files)
    assert results["dask"] == results["threads"]
    # 12 daily subscribers; those whose sections hold nothing above their floor are skipped
    assert results["dask"][0] >= 5 and len(results["dask"][3]) == results["dask"][0]
    assert results["dask"][0] + results["dask"][1] == 12  # the daily ones


def test_a_damaged_model_reaches_the_flow_runs_log_and_the_run_sends_lexically(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator watches runs in Prefect, not the worker's console: the library's warning
    that semantic scoring is off (naming the damaged file) must be in the run's own log, and
    the run still sends, on words alone."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    from digest import minilm
    from flows.send import send_digests

    monkeypatch.setattr(minilm, "TOKENIZER", ("digest", "data/themes.yaml"))  # a wrong file
    settings = load_settings()
    ingest_pages(read_pages("seeds", SEEDS, None), settings.db_url)
    import_subscribers(get_engine(settings.db_url), BUNDLED_SEEDS_DIR / "subscribers.yaml", THEMES)
    state = send_digests(cadence="daily", anchor_at_newest=True, return_state=True)
    summary = state.result()
    assert summary.sent >= 1 and summary.failed == 0
    APILogWorker.drain_all(timeout=5)
    with get_client(sync_client=True) as client:
        run = LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
        lines = [log.message for log in client.read_logs(LogFilter(flow_run_id=run))]
    off = [line for line in lines if "semantic scoring is off" in line]
    assert off and "digest/data/themes.yaml" in off[0] and "lexical" in off[0], lines
