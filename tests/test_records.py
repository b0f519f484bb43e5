"""Ids, fingerprints and text cleaning: the keys every dedupe decision rests on."""

from __future__ import annotations

import pytest

from digest.records import abstract_fingerprint, clean_text, normalise_paper_id, title_fingerprint


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2509.24002", "2509.24002"),
        ("2509.24002v3", "2509.24002"),
        ("arXiv:2503.02130", "2503.02130"),  # the trailing zero stays: ids are never floats
        ("https://arxiv.org/abs/2503.02130v2", "2503.02130"),
        ("https://arxiv.org/pdf/2503.02130v2.pdf", "2503.02130"),
        ("https://huggingface.co/papers/2509.24002#community", "2509.24002"),
        ("https://huggingface.co/papers/2509.24002?ref=x", "2509.24002"),
        ("1802.08979", "1802.08979"),
        ("hep-th/9901001v1", "hep-th/9901001"),
        ("math.AG/0601001", "math.AG/0601001"),
    ],
)
def test_arxiv_ids_are_normalised(raw: str, expected: str) -> None:
    assert normalise_paper_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "2509", "25.09.24002", "abc", "2509.240021", "https://example.org/2509.24002"]
)
def test_non_ids_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="not an arXiv id"):
        normalise_paper_id(raw)


def test_title_fingerprints_ignore_case_punctuation_spacing_and_width() -> None:
    assert (
        title_fingerprint("B-STaR:  Monitoring\nand Balancing") == "b star monitoring and balancing"
    )
    assert title_fingerprint("ＧＰＴ-4 Technical Report") == title_fingerprint(
        "GPT-4 technical report"
    )
    assert title_fingerprint('Do LLMs "Feel"?') == "do llms feel"
    assert title_fingerprint("v1.5 Report") != title_fingerprint("v1 Report")


def test_clean_text_only_joins_wraps() -> None:
    assert clean_text("MCP\n  Use") == "MCP Use"
    assert clean_text("  PATIENT-{\\Psi} \\% caf\\'e  ") == "PATIENT-{\\Psi} \\% caf\\'e"


def test_abstract_fingerprint_is_stable_and_empty_for_empty() -> None:
    assert abstract_fingerprint("We study X.") == abstract_fingerprint("we  study x")
    assert abstract_fingerprint("") == ""
    assert abstract_fingerprint("We study X.") != abstract_fingerprint("We study Y.")
