"""The relevance floor: an absolute estimate per (profile, paper) that no other paper of the day
moves, sections that hold only what clears the subscriber's floor, honest reasons, votes that
move ranking and floor, and MiniLM on onnxruntime agreeing with the torch model it replaces."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from digest import minilm
from digest.assemble import DigestPaper, SectionSpec
from digest.embeddings import load_cached_embedder, load_embedder
from digest.errors import EmbeddingError, SubscriptionError
from digest.minilm import OnnxMiniLM, model_files_ok
from digest.paper_index import PaperIndex, PaperText
from digest.periods import Period
from digest.profiles import Profile
from digest.reasons import explain
from digest.relevance import (
    KEYWORD_LIST,
    Reference,
    Strictness,
    estimate_matrix,
    features,
    floor_of,
)
from digest.requests import request_from
from digest.scoring import MIN_VOTES, profile_vectors, score_matrix, vote_model
from digest.settings import load_settings
from flows.cli import build_app
from tests.factories import build_digest
from tests.test_assemble import NEWEST, PAPERS

app = build_app()
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROBOTS = Profile(
    name="Robot manipulation",
    text="Robots that learn to grasp and manipulate objects from demonstrations.",
    keywords=("robot manipulation", "grasping", "imitation learning"),
)


@pytest.fixture(scope="module")
def model() -> OnnxMiniLM:
    found = load_embedder()
    assert found is not None, "MiniLM on onnxruntime is part of the default install"
    return found


def day_papers() -> list[PaperText]:
    return [p.text for p in PAPERS if p.first_listed_on == NEWEST.start]


def unrelated(count: int) -> list[PaperText]:
    return [
        PaperText(
            key=f"other-{i}",
            title=f"Soil moisture in alpine meadows, site {i}",
            abstract="We measure soil moisture and nitrogen over three summers of fieldwork.",
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("semantic", [True, False])
def test_no_other_paper_of_the_day_moves_an_estimate_or_a_verdict(
    semantic: bool, model: OnnxMiniLM
) -> None:
    """A paper must not clear the bar because the day is thin, nor miss it because the day
    is rich: the same papers alone and among 40 unrelated ones get the same estimates."""
    papers = day_papers()
    crowd = [*unrelated(40), *papers]
    profiles = [ROBOTS, Profile(name="LLM reasoning", keywords=("reasoning", "GRPO"))]

    def estimates(pool: list[PaperText]) -> np.ndarray:
        vectors = model.encode([p.text for p in pool]) if semantic else None
        index = PaperIndex(pool, vectors)
        own = profile_vectors(profiles, model, index) if semantic else None
        return estimate_matrix(index, profiles, own)

    alone, among = estimates(papers), estimates(crowd)[:, 40:]
    np.testing.assert_allclose(alone, among, atol=1e-5)
    floor = floor_of(Strictness.balanced)
    assert ((alone >= floor) == (among >= floor)).all()
    # the seeds' newest day is mostly about reasoning, with a robot paper or two
    assert (alone[1] >= floor).sum() > (alone[0] >= floor).sum() >= 1


@pytest.mark.parametrize("semantic", [True, False])
def test_a_profile_gets_the_same_estimates_alone_as_among_thousands(
    semantic: bool, model: OnnxMiniLM
) -> None:
    """The estimate is computed for every subscriber at once (sparse products over their
    distinct words, each distinct query standardised once): no profile's figures may depend
    on who else is in the batch, duplicates and keyword repeats included."""
    papers = day_papers()
    vectors = model.encode([p.text for p in papers]) if semantic else None
    index = PaperIndex(papers, vectors)
    odd = Profile(keywords=("RL", "rl", "robot", "robot"))  # repeats count, case does not
    crowd = [ROBOTS, Profile(), odd, Profile(name="LLM reasoning"), ROBOTS] * 40

    def estimates(profiles: list[Profile]) -> np.ndarray:
        own = profile_vectors(profiles, model, index) if semantic else None
        return estimate_matrix(index, profiles, own)

    together = estimates(crowd)
    for row in range(5):
        np.testing.assert_allclose(together[row], estimates([crowd[row]])[0], atol=1e-5)
    np.testing.assert_allclose(together[0], together[4], atol=1e-6)
    keyword_share = features(index, [odd], None, Reference.bundled())[0, :, 0]
    expected = np.sum([index.mentions(k) for k in odd.keywords], axis=0) / KEYWORD_LIST
    np.testing.assert_allclose(keyword_share, expected, atol=1e-6)


def test_one_generic_keyword_of_a_short_list_does_not_clear_the_floor(model: OnnxMiniLM) -> None:
    """Grace asks for "video understanding with vision-language models" with the keywords
    video and benchmark. A code benchmark says "benchmark" and nothing she asked for: it must
    not reach her digest, while a video benchmark for vision-language models must. (With a
    plain share, one match of two keywords weighed half her interest and sent any benchmark.)"""
    grace = Profile(
        text="video understanding with vision-language models", keywords=("video", "benchmark")
    )
    papers = [
        PaperText(
            key="code",
            title="RepoFix: a benchmark for repository-level program repair",
            abstract="We introduce a benchmark of 2,000 GitHub issues for evaluating code agents "
            "that localise and fix bugs across large Python repositories.",
        ),
        PaperText(
            key="video",
            title="LongVid: a benchmark for long video understanding",
            abstract="We evaluate vision-language models on hour-long videos with questions "
            "about events, their order and their causes.",
        ),
    ]
    index = PaperIndex(papers, model.encode([p.text for p in papers]))
    estimate = estimate_matrix(index, [grace], profile_vectors([grace], model, index))[0]
    floor = floor_of(Strictness.balanced)
    assert estimate[0] < floor <= estimate[1], estimate


def test_the_background_z_is_the_one_over_all_background_papers(model: OnnxMiniLM) -> None:
    """``Reference.standardise`` takes each query's background mean and spread from the
    background's moments instead of 1,500 cosines per query: the same figures."""
    reference = Reference.bundled()
    queries = model.encode(["robot grasping", "speech synthesis", "papers on LLM reasoning"])
    similarity = queries @ model.encode([p.text for p in day_papers()]).T
    background = queries @ reference.vectors.T
    expected = (similarity - background.mean(axis=1, keepdims=True)) / background.std(
        axis=1, keepdims=True
    )
    np.testing.assert_allclose(reference.standardise(queries, similarity), expected, atol=1e-3)


def test_a_section_holds_only_papers_above_its_floor_and_a_day_with_none_is_skipped() -> None:
    spec = SectionSpec(
        title="Reasoning", theme_id=None, profile=Profile(name="LLM reasoning"), max_items=10
    )
    open_floor = build_digest("ada@example.org", NEWEST, [spec], PAPERS)
    strict = build_digest(
        "ada@example.org", NEWEST, [spec.model_copy(update={"floor": 0.97})], PAPERS
    )
    everything = open_floor.sections[0].papers
    kept = strict.sections[0].papers if strict.sections else []
    assert len(everything) == 10  # no floor: the old behaviour, a full section
    assert len(kept) < len(everything)
    assert all(p.estimate >= 0.97 for p in kept)
    nothing = build_digest(
        "ada@example.org",
        NEWEST,
        [spec.model_copy(update={"floor": 1.0, "profile": ROBOTS})],
        PAPERS,
    )
    assert nothing.is_empty and nothing.skip_reason == "no new paper reached your relevance floor"


def test_strictness_levels_are_ordered_and_unknown_ones_are_refused() -> None:
    assert floor_of("strict") > floor_of("balanced") > floor_of("broad") > 0
    request = request_from({"email": "ada@example.org", "strictness": "strict"}, "test")
    assert request.strictness is Strictness.strict
    with pytest.raises(SubscriptionError) as refused:
        request_from({"email": "ada@example.org", "strictness": "lenient"}, "people.csv")
    assert "strict" in str(refused.value) and "broad" in str(refused.value)


def test_rank_json_gives_each_paper_its_estimate_and_verdict_at_a_strictness() -> None:
    runner = CliRunner()
    args = ["rank", "--interest", "reinforcement learning for LLM reasoning", "--json"]
    broad = json.loads(runner.invoke(app, [*args, "--strictness", "broad"]).stdout)
    strict = json.loads(runner.invoke(app, [*args, "--strictness", "strict"]).stdout)
    assert {"estimate", "sent", "score", "why"} <= set(broad[0])
    assert [r["estimate"] for r in broad] == [r["estimate"] for r in strict]
    assert sum(r["sent"] for r in strict) <= sum(r["sent"] for r in broad)
    assert all(r["sent"] == (r["estimate"] >= floor_of("strict")) for r in strict)
    refused = runner.invoke(app, [*args, "--strictness", "lenient"])
    assert refused.exit_code != 0 and "strict" in refused.output


def test_a_paper_with_no_abstract_still_scores_on_its_title(model: OnnxMiniLM) -> None:
    papers = [
        PaperText(key="bare", title="Learning robot manipulation and grasping from demonstrations"),
        *unrelated(3),
    ]
    index = PaperIndex(papers, model.encode([p.text for p in papers]))
    estimates = estimate_matrix(index, [ROBOTS], profile_vectors([ROBOTS], model, index))[0]
    assert estimates[0] >= floor_of("balanced") > estimates[1:].max()


def test_reasons_name_only_evidence_the_scorer_used(model: OnnxMiniLM) -> None:
    paper = PaperText(
        key="p", title="Dexterous in-hand object reorientation", abstract="A five-finger hand."
    )
    lexical = PaperIndex([paper])
    assert "meaning" not in explain(ROBOTS, lexical, 0)  # no model: never a semantic reason
    semantic = PaperIndex([paper], model.encode([paper.text]))
    phrases = profile_vectors([ROBOTS], model, semantic).parts_of(0)
    reason = explain(ROBOTS, semantic, 0, phrases)
    assert reason.startswith("close in meaning to ")
    quoted = reason.split('"')[1]
    assert quoted in (ROBOTS.name, *ROBOTS.keywords) or quoted in ROBOTS.text


def test_enough_votes_train_the_subscribers_own_model(model: OnnxMiniLM) -> None:
    half = MIN_VOTES // 2
    texts = {
        "liked": [f"Robot arm grasping with a learned policy, variant {i}" for i in range(half)],
        "disliked": [f"Large language model math reasoning benchmark {i}" for i in range(half)],
    }
    liked, disliked = (model.encode(texts[k]) for k in ("liked", "disliked"))
    assert vote_model(liked[:-1], disliked) is None  # one vote short: Rocchio still
    learned = vote_model(liked, disliked)
    assert learned is not None
    weights, bias = learned
    robot, llm = model.encode(["A robot learns to pick objects", "Chain-of-thought for LLMs"])
    assert robot @ weights + bias > 0 > llm @ weights + bias
    papers = [PaperText(key="robot", title="A robot learns to pick objects"), *unrelated(4)]
    papers.append(PaperText(key="llm", title="Chain-of-thought for LLMs"))
    voted = Profile(name="papers", liked=("l",), disliked=("d",))
    index = PaperIndex(papers, model.encode([p.text for p in papers]))
    vectors = replace(profile_vectors([voted], model, index), liked=(liked,), disliked=(disliked,))
    scores = score_matrix(index, [voted], vectors)[0]
    assert scores[0] > scores[-1]


def test_minilm_on_onnxruntime_agrees_with_the_torch_model(model: OnnxMiniLM) -> None:
    reference = json.loads((FIXTURES / "minilm_torch_vectors.json").read_text())["rows"]
    ours = model.encode([row["text"] for row in reference])
    theirs = np.array([row["vector"] for row in reference], dtype=np.float32)
    assert ours.shape == (len(reference), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float((ours * theirs).sum(axis=1).min()) >= 0.999


def test_a_damaged_model_file_is_named_and_the_run_falls_back_to_words(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(minilm, "TOKENIZER", ("digest", "data/themes.yaml"))  # a wrong file
    with pytest.raises(EmbeddingError, match="digest/data/themes.yaml: corrupt or replaced"):
        model_files_ok()
    with caplog.at_level(logging.WARNING, logger="digest.embeddings"):
        assert load_cached_embedder(load_settings()) is None
    assert "digest/data/themes.yaml" in caplog.text and "lexical" in caplog.text


def test_strictness_is_named_in_the_digest_footer() -> None:
    from tests.test_render import RENDERER

    spec = SectionSpec(
        title="Reasoning",
        theme_id=None,
        profile=Profile(name="LLM reasoning"),
        strictness="broad",
    )
    digest = build_digest("ada@example.org", NEWEST, [spec], PAPERS)
    digest = digest.model_copy(update={"link_id": "L" * 22})
    email = RENDERER.render(digest)
    assert "relevance floor (broad)" in email.text and "relevance floor (broad)" in email.html
    footer = email.text.split("\n--\n")[-1].splitlines()  # one link a line, after the why
    assert footer[0].endswith("are sent.") and footer[1].startswith("View in browser: ")


def test_a_thin_day_gives_a_short_digest() -> None:
    """Two matching papers on a day: the digest holds those two, not ten."""
    day = date(2030, 1, 2)
    matching = [
        DigestPaper(key=f"m{i}", title=t, first_listed_on=day)
        for i, t in enumerate(
            ["GRPO for LLM reasoning with verifiable rewards", "Chain-of-thought reasoning RL"]
        )
    ]
    filler = [
        DigestPaper(key=f"f{i}", title=f"Soil moisture in alpine meadows {i}", first_listed_on=day)
        for i in range(12)
    ]
    spec = SectionSpec(
        title="Reasoning",
        theme_id=None,
        profile=Profile(name="LLM reasoning", keywords=("reasoning", "GRPO")),
        floor=floor_of("balanced"),
    )
    digest = build_digest("ada@example.org", Period.day(day), [spec], [*matching, *filler])
    assert {p.key for s in digest.sections for p in s.papers} <= {"m0", "m1"}


def test_strictness_is_set_by_subscribe_and_by_import(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(
        app, ["subscribe", "ada@example.org", "--theme", "agents", "--strictness", "strict"]
    )
    assert done.exit_code == 0, done.output
    people = tmp_path / "people.csv"
    people.write_text("email,themes,strictness\nbo@example.org,agents;speech-audio,broad\n")
    done = runner.invoke(app, ["import-subscribers", str(people)])
    assert done.exit_code == 0, done.output
    listed = json.loads(runner.invoke(app, ["subscribers", "--json"]).stdout)
    levels = {p["email"]: {s["strictness"] for s in p["subscriptions"]} for p in listed}
    assert levels == {"ada@example.org": {"strict"}, "bo@example.org": {"broad"}}
    people.write_text("email,themes,strictness\ncy@example.org,agents,lenient\n")
    refused = runner.invoke(app, ["import-subscribers", str(people)])
    assert refused.exit_code != 0 and "strict" in refused.output and "people.csv" in refused.output


def test_the_model_runtime_sends_and_stores_no_telemetry(tmp_path: Path) -> None:
    """onnxruntime 1.29+ writes a device id and queues usage events under ~/.cache/Microsoft
    unless told not to: a process that embeds leaves nothing there."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    code = "from digest.minilm import OnnxMiniLM; print(OnnxMiniLM().encode(['hello']).shape)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "(1, 384)" in done.stdout, done.stderr
    assert not (tmp_path / ".cache" / "Microsoft").exists()
