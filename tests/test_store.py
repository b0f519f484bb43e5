"""The store on SQLite and PostgreSQL alike: dedupe, merge, idempotence, counters, rollback."""

from __future__ import annotations

import copy
import json
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel, select

from digest.db import MIGRATIONS, get_engine, list_papers, save_page
from digest.db.models import FetchLog, HttpValidator, Paper, Sighting
from digest.errors import StoreError
from digest.ingest import ingest_pages, read_pages
from digest.records import PaperRecord
from digest.sources import RawPage, get_source
from tests.conftest import SEEDS
from tests.factories import REAL_ITEM

SEED_PAGES = read_pages("seeds", SEEDS, None)


def snapshot(engine: Engine) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    with Session(engine) as session:
        papers = [p.model_dump() for p in session.exec(select(Paper).order_by(Paper.id)).all()]
        sightings = [
            s.model_dump() for s in session.exec(select(Sighting).order_by(Sighting.id)).all()
        ]
    return papers, sightings


def api_page(items: list[dict[str, object]], day: date, fetched: datetime) -> RawPage:
    return RawPage(
        source="hf-api",
        location=f"http://test/api/daily_papers?date={day}",
        listing=f"day/{day}",
        listed_on=day,
        period=None,
        fetched_at=fetched,
        text=json.dumps(items),
        etag='"e1"',
    )


def test_the_schema_comes_from_migrations_and_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        version = connection.execute(text("select version_num from alembic_version")).scalar()
    assert diff == []
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert heads == [version]  # one line of history, fully applied


def test_seeds_store_301_papers_and_340_sightings(database_url: str, engine: Engine) -> None:
    summary = ingest_pages(SEED_PAGES, database_url)
    assert (summary.counts.new, summary.counts.updated, summary.counts.unchanged) == (301, 39, 0)
    papers, sightings = snapshot(engine)
    assert len(papers) == 301 and len(sightings) == 340
    b_star = [p for p in papers if str(p["title"]).startswith("B-STaR")]
    assert len(b_star) == 1
    assert sum(1 for s in sightings if s["paper_id"] == b_star[0]["id"]) == 4


def test_ingesting_the_same_input_twice_changes_nothing(database_url: str, engine: Engine) -> None:
    ingest_pages(SEED_PAGES, database_url)
    before = snapshot(engine)
    again = ingest_pages(SEED_PAGES, database_url)
    assert (again.counts.new, again.counts.updated, again.counts.unchanged) == (0, 0, 340)
    assert snapshot(engine) == before


def test_counters_follow_the_newest_observation_whatever_the_order(
    database_url: str, engine: Engine
) -> None:
    newest_first = list(reversed(SEED_PAGES))  # the 2026 pages before the 2025 ones
    ingest_pages(newest_first, database_url)
    [couch] = [p for p in list_papers(engine) if p.title.startswith("When AI Takes the Couch")]
    assert couch.num_comments == 5  # Apr 2026's count, not Dec 2025's 3
    assert couch.first_listed_on == date(2025, 12, 25) and couch.last_listed_on == date(2026, 4, 15)


def test_an_id_less_seed_paper_is_upgraded_when_a_record_brings_its_id(
    database_url: str, engine: Engine
) -> None:
    ingest_pages(SEED_PAGES, database_url)
    seeds = {p.title: p for p in list_papers(engine)}
    title = "Metacognitive Reuse: Turning Recurring LLM Reasoning Into Concise Behaviors"
    seed_row = seeds[title]
    item = copy.deepcopy(REAL_ITEM)
    item["paper"].update(
        id="2509.13237",
        title=title.replace(" Into", "\n  Into"),
        summary=seed_row.abstract,
        upvotes=77,
    )
    fetched = datetime(2026, 5, 1, tzinfo=UTC)
    counts = save_page(
        engine,
        api_page([item], date(2026, 5, 1), fetched),
        get_source("hf-api").parse(api_page([item], date(2026, 5, 1), fetched)),
    )
    assert (counts.new, counts.updated) == (0, 1)
    merged = {p.title: p for p in list_papers(engine)}[title]
    assert merged.id == seed_row.id and merged.arxiv_id == merged.key == "2509.13237"
    assert merged.upvotes == 77 and merged.github_stars == 9  # API fields filled in
    assert merged.author_count == 5 and merged.authors
    assert len(list_papers(engine)) == 301
    # and a later seed ingest still lands on the same, now id-keyed row
    again = ingest_pages(SEED_PAGES, database_url)
    assert again.counts.new == 0 and len(list_papers(engine)) == 301


def test_same_title_different_abstract_stays_two_papers(database_url: str, engine: Engine) -> None:
    first = copy.deepcopy(REAL_ITEM)
    first["paper"].update(
        id="2601.00001", title="Technical Report", summary="Model A does one thing."
    )
    second = copy.deepcopy(REAL_ITEM)
    second["paper"].update(
        id="2601.00002", title="Technical Report", summary="Model B does another."
    )
    page = api_page([first, second], date(2026, 1, 5), datetime(2026, 1, 5, tzinfo=UTC))
    counts = save_page(engine, page, get_source("hf-api").parse(page))
    assert counts.new == 2


def test_id_less_papers_with_a_generic_title_but_other_abstracts_stay_apart(
    database_url: str, engine: Engine
) -> None:
    [one] = get_source("seeds").parse(SEED_PAGES[0])[:1]
    two = one.model_copy(update={"abstract": "A different report about a different model."})
    counts = save_page(engine, SEED_PAGES[0], [one, two])
    assert counts.new == 2
    assert len({p.key for p in list_papers(engine)}) == 2


def test_text_keeps_the_richest_version_and_counters_update(
    database_url: str, engine: Engine
) -> None:
    day = date(2026, 3, 6)
    full = copy.deepcopy(REAL_ITEM)
    thin = copy.deepcopy(REAL_ITEM)
    thin["paper"].update(summary="Short.", ai_summary=None, ai_keywords=[], upvotes=25)
    thin["numComments"] = 4
    save_page(
        engine,
        api_page([full], day, datetime(2026, 3, 6, 9, tzinfo=UTC)),
        get_source("hf-api").parse(api_page([full], day, datetime(2026, 3, 6, 9, tzinfo=UTC))),
    )
    later = api_page([thin], day, datetime(2026, 3, 7, 9, tzinfo=UTC))
    counts = save_page(engine, later, get_source("hf-api").parse(later))
    assert counts.updated == 1
    [paper] = list_papers(engine)
    assert paper.abstract.startswith("Which multimodal model") and len(paper.ai_keywords) == 9
    assert (paper.upvotes, paper.num_comments) == (25, 4)
    with Session(engine) as session:
        [sighting] = session.exec(select(Sighting)).all()
    assert (sighting.upvotes, sighting.num_comments) == (25, 4)


def test_a_failing_page_leaves_no_partial_write(database_url: str, engine: Engine) -> None:
    [good] = get_source("seeds").parse(SEED_PAGES[0])[:1]
    poisoned = good.model_copy(
        update={"sighting": good.sighting.model_copy(update={"listing": None})}
    )
    with pytest.raises(StoreError, match="saving a page failed"):
        save_page(engine, SEED_PAGES[0], [good, poisoned])  # type: ignore[list-item]
    papers, sightings = snapshot(engine)
    assert papers == [] and sightings == []
    with Session(engine) as session:
        assert session.exec(select(FetchLog)).all() == []


def test_validators_and_a_log_line_are_saved_with_the_page(
    database_url: str, engine: Engine
) -> None:
    page = api_page([REAL_ITEM], date(2026, 3, 6), datetime(2026, 3, 6, 9, tzinfo=UTC))
    save_page(engine, page.model_copy(update={"item_count": 1}), get_source("hf-api").parse(page))
    with Session(engine) as session:
        validator = session.get(HttpValidator, page.location)
        [line] = session.exec(select(FetchLog)).all()
    assert validator is not None and (validator.etag, validator.item_count) == ('"e1"', 1)
    assert (line.status, line.new, line.listing) == ("stored", 1, "day/2026-03-06")


def test_papers_listed_on_a_day(database_url: str, engine: Engine) -> None:
    ingest_pages(SEED_PAGES, database_url)
    assert len(list_papers(engine, listed_on=date(2026, 4, 15))) == 32
    assert list_papers(engine, listed_on=date(2020, 1, 1)) == []


def test_an_unreachable_database_is_a_clear_store_error() -> None:
    with pytest.raises(
        StoreError,
        match=r"database postgresql\+psycopg://nobody:\*\*\*@127.0.0.1:1/x: migrating failed",
    ):
        get_engine("postgresql+psycopg://nobody:secret@127.0.0.1:1/x")


def test_a_record_is_a_frozen_typed_value() -> None:
    [record] = get_source("seeds").parse(SEED_PAGES[0])[:1]
    assert isinstance(record, PaperRecord)
    with pytest.raises(Exception, match="frozen"):
        record.title = "changed"  # type: ignore[misc]
    later = record.sighting.observed_at + timedelta(days=1)
    assert (
        record.model_copy(
            update={"sighting": record.sighting.model_copy(update={"observed_at": later})}
        )
        != record
    )


def test_concurrent_writers_of_the_same_page_end_with_one_row_per_paper(
    database_url: str, engine: Engine
) -> None:
    import threading

    from tests.factories import api_day

    day = date(2026, 3, 6)
    page = api_page(api_day(day, 20), day, datetime(2026, 3, 6, 9, tzinfo=UTC))
    records = get_source("hf-api").parse(page)
    start = threading.Barrier(4)
    outcomes: list[object] = []

    def write() -> None:
        start.wait()
        try:
            outcomes.append(save_page(engine, page, records))
        except Exception as exc:  # collected, then asserted on below
            outcomes.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert sum(o.new for o in outcomes) == 20  # type: ignore[attr-defined]
    papers, sightings = snapshot(engine)
    assert len(papers) == 20 and len(sightings) == 20


def damage(path: Path, where: str) -> None:
    """Overwrite part of a store's SQLite file as a failing disk or a half-copied backup would:
    ``schema`` its schema page (page 1 after the 100-byte header), ``papers`` the paper
    table's first page, ``garbage`` the whole file."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
        size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'paper'").fetchone()[0]
    data = bytearray(path.read_bytes())
    if where == "garbage":
        path.write_bytes(b"this is not a database, it only has its name\n" * 200)
        return
    start = 100 if where == "schema" else (root - 1) * size
    end = size if where == "schema" else root * size
    data[start:end] = b"\xab" * (end - start)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("schema", "database disk image is malformed"),
        ("papers", "database disk image is malformed"),
        ("garbage", "file is not a database"),
    ],
)
def test_a_damaged_sqlite_file_is_one_line_naming_it_and_the_way_out(
    tmp_path: Path, where: str, reason: str
) -> None:
    path = tmp_path / "damaged.db"
    url = f"sqlite:///{path}"
    ingest_pages(SEED_PAGES, url)
    get_engine(url).dispose()
    get_engine.cache_clear()
    damage(path, where)
    engine: Engine | None = None
    try:
        with pytest.raises(StoreError) as caught:
            engine = get_engine(url)  # opening and migrating read the schema page
            list_papers(engine)  # reading the papers reads their pages
    finally:
        if engine is not None:
            engine.dispose()
        get_engine.cache_clear()
    assert str(caught.value) == (
        f"database {path} is damaged ({reason}): restore it from a backup, "
        "or move it aside to start an empty store"
    )
