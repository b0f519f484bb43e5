"""The five real seed pages parse completely, with every documented edge case."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from digest.errors import ConfigError, ParseError
from digest.periods import Period
from digest.records import PaperRecord
from digest.sources import get_source
from digest.sources.seeds import parse_seed_text
from tests.conftest import SEEDS

FILES = {
    "000_6d09fc0bd1ba692f": (32, date(2026, 4, 15), 4, 11),
    "001_1a9e531d162ff0f6": (52, date(2026, 2, 16), 4, 18),
    "002_7649c6a361207e6b": (108, date(2025, 11, 3), 1, 33),
    "003_7b01e2259d983354": (97, date(2025, 10, 30), 5, 28),
    "004_b8f848620a3d5935": (51, date(2025, 12, 25), 4, 14),
}


def parse_file(stem: str) -> list[PaperRecord]:
    source = get_source("seeds")
    [page] = source.read(SEEDS / f"{stem}.txt", None)
    return source.parse(page)


@pytest.fixture(scope="module")
def by_file() -> dict[str, list[PaperRecord]]:
    return {stem: parse_file(stem) for stem in FILES}


@pytest.mark.parametrize("stem", FILES)
def test_each_file_has_its_documented_entries(
    by_file: dict[str, list[PaperRecord]], stem: str
) -> None:
    entries, page_date, orgs, with_comments = FILES[stem]
    records = by_file[stem]
    assert len(records) == entries
    assert {r.sighting.listed_on for r in records} == {page_date}
    assert sum(1 for r in records if r.organization) == orgs
    assert sum(1 for r in records if r.num_comments) == with_comments
    assert [r.sighting.rank for r in records] == list(range(1, entries + 1))
    assert all(r.sighting.listing == f"seed/{stem}" and r.paper_id is None for r in records)


def test_all_files_hold_340_entries_and_301_papers(by_file: dict[str, list[PaperRecord]]) -> None:
    records = [r for rs in by_file.values() for r in rs]
    assert len(records) == 340
    assert len({r.title_key for r in records}) == 301
    assert sum(1 for r in records if r.author_count is not None) == 286
    assert sum(1 for r in records if r.organization) == 18
    assert sum(1 for r in records if r.published_on is None) == 36  # 34 without meta + 2 at EOF


def test_year_is_inferred_from_the_latest_explicit_year(
    by_file: dict[str, list[PaperRecord]],
) -> None:
    couch = "When AI Takes the Couch"
    rendered_2026 = next(r for r in by_file["000_6d09fc0bd1ba692f"] if r.title.startswith(couch))
    rendered_2025 = next(r for r in by_file["004_b8f848620a3d5935"] if r.title.startswith(couch))
    # "Dec 2, 2025 5" in a 2026 page and "Dec 2 3" in a 2025 page: the same day, 5 vs 3 comments.
    assert rendered_2026.published_on == rendered_2025.published_on == date(2025, 12, 2)
    assert (rendered_2026.num_comments, rendered_2025.num_comments) == (5, 3)
    for stem, records in by_file.items():
        page_date = FILES[stem][1]
        assert all(r.published_on <= page_date for r in records if r.published_on)


def test_entries_without_meta_have_no_byline_date_or_comments(
    by_file: dict[str, list[PaperRecord]],
) -> None:
    records = by_file["000_6d09fc0bd1ba692f"]
    bare = next(
        r for r in records if r.title == "Privileged Information Distillation for Language Models"
    )
    assert (bare.author_count, bare.organization, bare.published_on, bare.num_comments) == (
        None,
    ) * 4
    assert bare.upvotes is None  # the seeds carry no upvotes: unknown, not zero
    assert by_file["002_7649c6a361207e6b"][-1].title == "Agent Learning via Early Experience"
    assert by_file["003_7b01e2259d983354"][-1].title == "Kwai Keye-VL Technical Report"
    assert by_file["003_7b01e2259d983354"][-1].published_on is None
    assert len(by_file["003_7b01e2259d983354"][-1].abstract) > 1000


def test_bylines_organisations_and_author_counts(by_file: dict[str, list[PaperRecord]]) -> None:
    records = [r for rs in by_file.values() for r in rs]
    orgs = {(r.organization.slug, r.organization.name) for r in records if r.organization}
    assert ("NJU-LINK", "NJU-LINK Lab") in orgs
    assert ("kaist-ai", "KAIST AI") in orgs
    assert ("Skywork", "Skywork") in orgs
    assert max(r.author_count or 0 for r in records) == 445
    assert by_file["000_6d09fc0bd1ba692f"][0].author_count == 1  # "1 authors"


def test_tex_unicode_quotes_and_broken_urls_are_kept_verbatim(
    by_file: dict[str, list[PaperRecord]],
) -> None:
    records = [r for rs in by_file.values() for r in rs]
    titles = {r.title for r in records}
    abstracts = " ".join(r.abstract for r in records)
    assert any(t.startswith("PATIENT-Ψ: Using Large Language Models") for t in titles)
    assert "PATIENT-{\\Psi}" in abstracts
    assert "caf\\'e" in abstracts
    assert "\\%" in abstracts
    assert "mathcal{O}(mathcal{C_Phi/m}" in abstracts
    assert "https: //github.com/reds-lab/" in abstracts
    assert 'LLMs Can Get "Brain Rot"!' in titles
    assert any("Exploitation Is All You Need... for Exploration" in t for t in titles)
    assert "π" in abstracts and "ε" in abstracts


def test_reading_a_folder_reads_every_page_in_order() -> None:
    pages = get_source("seeds").read(SEEDS, None)
    assert [Path(p.location).stem for p in pages] == list(FILES)


def test_seeds_cannot_be_fetched() -> None:
    with pytest.raises(ConfigError, match="reads files only"):
        get_source("seeds").fetch(None, Period.day(date(2026, 1, 5)))  # type: ignore[arg-type]


REAL = (SEEDS / "000_6d09fc0bd1ba692f.txt").read_text()


def parse(text: str) -> list[PaperRecord]:
    return parse_seed_text(text, where="page.txt", listing="seed/page", fallback_year=2026)


@pytest.mark.parametrize(
    ("text", "where", "field"),
    [
        (REAL.replace("Daily Papers", "Weekly Papers", 1), "page.txt:7", "header"),
        (REAL.replace("\nApr 15\n", "\nApril 15\n", 1), "page.txt:11", "page date"),
        (REAL.replace("May 29, 2024", "29 May 2024", 1), "page.txt:19", "date"),
        (REAL.replace("  • 5 authors", "  • five authors", 1), "page.txt:25", "byline"),
        (REAL.replace("May 29, 2024", "Feb 30, 2024", 1), "page.txt:19", "date"),
        ("\n".join(REAL.split("\n")[:13]), "page.txt:13", "entry"),
        ("new\n\nGet trending", "page.txt:3", "header"),
    ],
)
def test_bad_input_names_file_line_and_field(text: str, where: str, field: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert caught.value.where == where
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{where}: {field}: expected ")


def test_a_year_less_date_after_the_page_date_is_refused() -> None:
    with pytest.raises(ParseError, match="on or before the page date 2026-04-15"):
        parse(REAL.replace("May 29, 2024", "Dec 24", 1))


def test_without_any_explicit_year_the_file_year_is_used() -> None:
    lines = REAL.split("\n")
    title, abstract = lines[12], lines[14]
    text = "\n".join(lines[:12] + [title, "", abstract, "", "  • 2 authors", "·", "Mar 3 7"])
    [record] = parse_seed_text(text, where="p.txt", listing="seed/p", fallback_year=2031)
    assert record.published_on == date(2031, 3, 3)
    assert record.sighting.listed_on == date(2031, 4, 15)
    assert (record.author_count, record.num_comments) == (2, 7)


def test_a_non_utf8_file_is_a_parse_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"new\n\xff\xfe")
    with pytest.raises(ParseError, match="bad.txt: bytes: expected UTF-8 text"):
        get_source("seeds").read(bad, None)
