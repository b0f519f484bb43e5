"""Property-based: whatever bytes arrive, each parser returns records or raises ParseError,
never another exception or a hang (pytest-timeout), and a failing page writes nothing."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from digest.db import get_engine, save_page
from digest.db.models import Paper, Sighting
from digest.errors import ParseError, StoreError
from digest.periods import Period
from digest.records import PaperRecord
from digest.sources import RawPage, get_source
from tests.conftest import SEEDS
from tests.factories import PAPER_PAGE, REAL_ITEM, api_day, list_page_html

FRIDAY = date(2026, 3, 6)
SEED_TEXT = (SEEDS / "000_6d09fc0bd1ba692f.txt").read_text()
API_TEXT = json.dumps([REAL_ITEM, *api_day(FRIDAY, 3)])
LIST_HTML = list_page_html(api_day(FRIDAY, 3), "2026-03-06")
PAPER_HTML = PAPER_PAGE.read_text()
SAMPLES = {"seeds": SEED_TEXT, "hf-api": API_TEXT, "hf-html": LIST_HTML}
# Health checks that depend on machine load (slow or large generated inputs) are off: the
# shuffled 240-line page is large by design, and CI machines are shared.
LOAD_DEPENDENT = [HealthCheck.too_slow, HealthCheck.data_too_large]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=LOAD_DEPENDENT)


def page(source: str, text: str) -> RawPage:
    return RawPage(
        source=source,
        location=f"fuzz://{source}",
        listing="day/2026-03-06",
        listed_on=FRIDAY,
        period=Period.day(FRIDAY),
        fetched_at=datetime(2026, 3, 6, tzinfo=UTC),
        text=text,
    )


def records_or_parse_error(source: str, text: str) -> list[PaperRecord]:
    try:
        records = get_source(source).parse(page(source, text))
    except ParseError as exc:
        assert str(exc).startswith("fuzz://")
        return []
    assert all(isinstance(r, PaperRecord) and r.title.strip() for r in records)
    return records


def mutate(text: str, edits: list[tuple[int, str]]) -> str:
    for position, replacement in edits:
        at = position % (len(text) + 1)
        text = text[:at] + replacement + text[at + 1 :]
    return text


EDITS = st.lists(
    st.tuples(
        st.integers(min_value=0),
        st.sampled_from(
            [
                "",
                "\n",
                "·",
                '"',
                "{",
                "}",
                "<",
                ">",
                "&",
                "x",
                "9",
                "  • 3 authors\n",
                "\\",
                "\x00",
                "é",
            ]
        ),
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.parametrize("source", SAMPLES)
@FUZZ
@given(cut=st.floats(min_value=0, max_value=1))
def test_truncated_input(source: str, cut: float) -> None:
    text = SAMPLES[source]
    records_or_parse_error(source, text[: int(len(text) * cut)])


@pytest.mark.parametrize("source", SAMPLES)
@FUZZ
@given(edits=EDITS)
def test_mutated_input(source: str, edits: list[tuple[int, str]]) -> None:
    records_or_parse_error(source, mutate(SAMPLES[source], edits))


SEED_LINES = SEED_TEXT.split("\n")


@FUZZ
@given(order=st.permutations(range(11, len(SEED_LINES))))
def test_shuffled_seed_lines(order: list[int]) -> None:
    # line numbers, not the lines: a failing example stays small enough to print
    records_or_parse_error("seeds", "\n".join(SEED_LINES[:11] + [SEED_LINES[i] for i in order]))


@pytest.mark.parametrize("source", SAMPLES)
@FUZZ
@given(text=st.text(max_size=2000))
def test_random_text(source: str, text: str) -> None:
    records_or_parse_error(source, text)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    value=JSON,
    path=st.lists(
        st.sampled_from(
            [
                "paper",
                "id",
                "title",
                "upvotes",
                "authors",
                "organization",
                "numComments",
                "summary",
                "ai_keywords",
                "publishedAt",
            ]
        ),
        min_size=1,
        max_size=2,
    ),
)
def test_api_items_with_any_value_in_any_field(value: object, path: list[str]) -> None:
    item = json.loads(json.dumps(REAL_ITEM))
    target = item
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else {}
    if isinstance(target, dict):
        target[path[-1]] = value
    records_or_parse_error("hf-api", json.dumps([item]))


@settings(max_examples=15, deadline=None, suppress_health_check=LOAD_DEPENDENT)
@given(edits=EDITS)
def test_mutated_real_paper_page(edits: list[tuple[int, str]]) -> None:
    records_or_parse_error("hf-html", mutate(PAPER_HTML, edits))


@settings(max_examples=25, deadline=None, suppress_health_check=LOAD_DEPENDENT)
@given(edits=EDITS, store_first=st.booleans())
def test_a_page_either_stores_whole_or_not_at_all(
    edits: list[tuple[int, str]], store_first: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = get_engine(f"sqlite:///{Path(folder) / 'fuzz.db'}")
        try:
            if store_first:
                save_page(
                    engine,
                    page("hf-api", API_TEXT),
                    get_source("hf-api").parse(page("hf-api", API_TEXT)),
                )
            before = _counts(engine)
            text = mutate(SEED_TEXT, edits)
            try:
                records = get_source("seeds").parse(page("seeds", text))
            except ParseError:
                assert _counts(engine) == before
                return
            # poison the last record so the transaction must fail part-way through
            last = records[-1] if records else None
            bad = (
                last.model_copy(
                    update={"sighting": last.sighting.model_copy(update={"listing": None})}
                )
                if last
                else None
            )
            poisoned = [*records, bad] if bad else []
            if poisoned:
                with pytest.raises(StoreError):
                    save_page(engine, page("seeds", text), poisoned)
                assert _counts(engine) == before
        finally:
            engine.dispose()
            get_engine.cache_clear()


def _counts(engine: Callable[..., object] | object) -> tuple[int, int]:
    with Session(engine) as session:  # type: ignore[arg-type]
        return (
            session.exec(select(func.count()).select_from(Paper)).one(),
            session.exec(select(func.count()).select_from(Sighting)).one(),
        )
