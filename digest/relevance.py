"""How likely a subscriber wants a paper, on an absolute scale: the floor a digest's sections
must clear. Pure: no database, no network.

The ranking (``digest.scoring``) z-scores every part over the day's candidates, so it says
which papers are best *today*, never whether any is good enough: a thin day would fill a
section with filler. The estimate here depends only on the paper and the profile. Each part is
standardised against a fixed background instead of the day (``Reference``: 1,500 papers
bundled with the package, their MiniLM vectors and their terms' document counts), and a
logistic model (``Calibration``, fitted by ``bench/calibrate.py`` on labelled data) turns the
parts into a probability:

    semantic   cosine of profile and paper, as z against the background papers
    keywords   share of the profile's keywords the paper contains (whole words)
    coverage   share of the profile's words (IDF-weighted by the background) in the paper
    title      the same share, in the title alone
    liked      likeness to liked papers minus disliked (z against the background), if any

Adding or removing other papers changes no paper's estimate. Without a model the semantic
and liked parts are missing and the lexical calibration is used instead.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

import bm25s
import numpy as np
from pydantic import BaseModel, ConfigDict

from digest.scoring import _STEMMER, Matrix, PaperIndex, Profile, ProfileVectors, vote_model

__all__ = [
    "DEFAULT_STRICTNESS",
    "Calibration",
    "Reference",
    "Strictness",
    "estimate_matrix",
    "features",
    "floor_of",
    "reference_terms",
]

REFERENCE = resources.files("digest") / "data" / "reference.npz"


class Strictness(StrEnum):
    """How sure the estimate must be before a paper is sent; per subscription."""

    strict = "strict"
    balanced = "balanced"
    broad = "broad"


DEFAULT_STRICTNESS = Strictness.balanced


def floor_of(strictness: Strictness | str) -> float:
    """The estimate a paper must reach to be sent at ``strictness`` (the calibration's)."""
    return Calibration.bundled().floors[Strictness(strictness)]


@dataclass(frozen=True)
class Reference:
    """The fixed background papers: their vectors and each stemmed term's document count."""

    vectors: Matrix
    df: dict[str, int]
    docs: int

    @classmethod
    @functools.cache
    def bundled(cls) -> Reference:
        with resources.as_file(REFERENCE) as path, np.load(path) as data:
            return cls(
                vectors=data["vectors"].astype(np.float32),
                df=dict(zip(data["terms"].tolist(), data["df"].tolist(), strict=True)),
                docs=int(data["docs"]),
            )

    def idf(self, term: str) -> float:
        return math.log((self.docs + 1) / (self.df.get(term, 0) + 0.5))

    def standardise(self, queries: Matrix, similarity: Matrix) -> Matrix:
        """``similarity`` (queries × papers) as z against each query's background cosines."""
        background = queries @ self.vectors.T
        mean = background.mean(axis=1, keepdims=True)
        spread = background.std(axis=1, keepdims=True) + 1e-6
        return np.asarray((similarity - mean) / spread, dtype=np.float32)


class Calibration(BaseModel):
    """Logistic weights over the parts, one set with the model and one without."""

    model_config = ConfigDict(frozen=True)

    semantic: tuple[float, ...]
    semantic_bias: float
    lexical: tuple[float, ...]
    lexical_bias: float
    floors: dict[Strictness, float]

    @classmethod
    @functools.cache
    def bundled(cls) -> Calibration:
        text = (resources.files("digest") / "data" / "calibration.json").read_text()
        return cls.model_validate(json.loads(text))


SEMANTIC_PARTS = ("semantic", "keywords", "coverage", "title", "liked")
LEXICAL_PARTS = ("keywords", "coverage", "title")


def features(
    index: PaperIndex,
    profiles: Sequence[Profile],
    vectors: ProfileVectors | None,
    reference: Reference,
) -> Matrix:
    """The parts of every (profile, paper): (profiles × papers × parts), in ``SEMANTIC_PARTS``
    order with a model, ``LEXICAL_PARTS`` without."""
    lexical = np.stack(
        [_keywords(index, profiles), *_coverage(index, profiles, reference)], axis=-1
    )
    if vectors is None or index.embeddings is None:
        return lexical
    semantic = reference.standardise(vectors.query, vectors.query @ index.embeddings.T)
    semantic[~vectors.query.any(axis=1)] = 0.0  # a profile with no words has no query
    liked = _liked(index, vectors, reference)
    return np.concatenate([semantic[..., None], lexical, liked[..., None]], axis=-1)


def estimate_matrix(
    index: PaperIndex,
    profiles: Sequence[Profile],
    vectors: ProfileVectors | None,
    reference: Reference | None = None,
    calibration: Calibration | None = None,
) -> Matrix:
    """The probability each profile wants each paper, (profiles × papers), in [0, 1]."""
    reference = reference or Reference.bundled()
    calibration = calibration or Calibration.bundled()
    parts = features(index, profiles, vectors, reference)
    if parts.shape[-1] == len(SEMANTIC_PARTS):
        weights, bias = calibration.semantic, calibration.semantic_bias
    else:
        weights, bias = calibration.lexical, calibration.lexical_bias
    logit = parts @ np.asarray(weights, dtype=np.float32) + np.float32(bias)
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float32)


def _keywords(index: PaperIndex, profiles: Sequence[Profile]) -> Matrix:
    """The share of each profile's keywords that each paper contains as whole words."""
    out = np.zeros((len(profiles), len(index)), dtype=np.float32)
    for row, profile in enumerate(profiles):
        words = [k for k in profile.keywords if k.strip()]
        if words:
            out[row] = np.mean([index.mentions(k) for k in words], axis=0)
    return out


def _coverage(
    index: PaperIndex, profiles: Sequence[Profile], reference: Reference
) -> tuple[Matrix, Matrix]:
    """IDF-weighted share of each profile's terms in each paper's text, and in its title."""
    text = np.zeros((len(profiles), len(index)), dtype=np.float32)
    title = np.zeros_like(text)
    present = index.weights > 0
    titles = _title_terms(index)
    for row, profile in enumerate(profiles):
        terms = list(
            dict.fromkeys(
                PaperIndex.query_terms(" ".join([profile.name, profile.text, *profile.keywords]))
            )
        )
        if not terms:
            continue
        idf = np.array([reference.idf(t) for t in terms], dtype=np.float32)
        total = float(idf.sum())
        for term, weight in zip(terms, idf, strict=True):
            position = index.vocab.get(term)
            if position is not None:
                text[row] += weight * present[position].toarray().ravel()
            title[row] += weight * np.fromiter((term in t for t in titles), dtype=np.float32)
        text[row] /= total
        title[row] /= total
    return text, title


def _title_terms(index: PaperIndex) -> list[set[str]]:
    return [set(PaperIndex.query_terms(p.title)) for p in index.papers]


def _liked(index: PaperIndex, vectors: ProfileVectors, reference: Reference) -> Matrix:
    """What the subscriber's votes say of each paper, as z against the background; 0 for a
    profile with none. With few votes, Rocchio: likeness to liked papers minus likeness to
    disliked ones (mean z-scored cosines). With enough votes of both kinds, their own model
    (``scoring.vote_model``) takes over."""
    assert index.embeddings is not None
    out = np.zeros((vectors.query.shape[0], len(index)), dtype=np.float32)
    for row in range(vectors.query.shape[0]):
        liked, disliked = vectors.examples(row, True), vectors.examples(row, False)
        model = vote_model(liked, disliked)
        if model is not None:
            background = reference.vectors @ model[0] + model[1]
            raw = index.embeddings @ model[0] + model[1]
            out[row] = (raw - background.mean()) / (background.std() + 1e-6)
            continue
        for examples, sign in ((liked, 1.0), (disliked, -1.0)):
            if examples is not None and len(examples):
                z = reference.standardise(examples, examples @ index.embeddings.T)
                out[row] += sign * z.mean(axis=0)
    return out


def reference_terms(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """Each stemmed term of ``texts`` and the number of texts it occurs in, as the scorer
    tokenises (stop words out, Snowball stems)."""
    tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=_STEMMER, show_progress=False)
    counts = np.zeros(len(tokens.vocab), dtype=np.int64)
    for ids in tokens.ids:
        counts[list(set(ids))] += 1
    by_id = {i: term for term, i in tokens.vocab.items()}
    return [by_id[i] for i in range(len(counts))], counts.tolist()
