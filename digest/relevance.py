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
    keywords   share of the profile's keywords the paper contains (whole words), out of at
               least ``KEYWORD_LIST`` keywords: one match of a two-keyword list weighs as one
               match of a typical list, not as half the subscriber's interest
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
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from scipy import sparse

from digest.paper_index import _STEMMER, PaperIndex
from digest.profiles import Profile
from digest.scoring import ProfileVectors, distinct_rows, vote_model
from digest.vectors import Matrix

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
        """``similarity`` (queries × papers) as z against each query's background cosines.
        Their mean and spread come from the background's mean and covariance (q·μ and
        √(qᵀΣq), the same figures), so 100,000 queries never make a 100,000 × 1,500 matrix."""
        mean, covariance = self._moments
        centre = queries @ mean
        variance = np.einsum("ij,ij->i", queries @ covariance, queries)
        spread = np.sqrt(np.maximum(variance, 0.0)) + np.float32(1e-6)
        z = (similarity - centre[:, None]) / spread[:, None]
        return np.asarray(z, dtype=np.float32)

    @functools.cached_property
    def _moments(self) -> tuple[Matrix, Matrix]:
        vectors = self.vectors.astype(np.float64)
        mean = vectors.mean(axis=0)
        centred = vectors - mean
        covariance = centred.T @ centred / len(vectors)
        return mean.astype(np.float32), covariance.astype(np.float32)


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


KEYWORD_LIST = 7
"""The keyword share's least denominator: the median length of the labelled profiles' keyword
lists (``bench/data`` 5–7, set A 7–8). Fitted on those lists, the share weighs about 8 logits,
so with a plain share one match of a two-keyword list ("video", "benchmark") put any paper
that says "benchmark" over the floor; now it counts as one match of seven."""

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
    return np.stack([part.full() for part in _parts(index, profiles, vectors, reference)], -1)


def estimate_matrix(
    index: PaperIndex,
    profiles: Sequence[Profile],
    vectors: ProfileVectors | None,
    reference: Reference | None = None,
    calibration: Calibration | None = None,
) -> Matrix:
    """The probability each profile wants each paper, (profiles × papers), in [0, 1]. The
    parts are weighed where they are computed, once per distinct profile text, and summed
    per profile (what ``features`` stacks, without the stack)."""
    reference = reference or Reference.bundled()
    calibration = calibration or Calibration.bundled()
    parts = _parts(index, profiles, vectors, reference)
    if len(parts) == len(SEMANTIC_PARTS):
        weights, bias = calibration.semantic, calibration.semantic_bias
    else:
        weights, bias = calibration.lexical, calibration.lexical_bias
    logit = np.full((len(profiles), len(index)), bias, dtype=np.float32)
    for part, weight in zip(parts, weights, strict=True):
        logit += (np.float32(weight) * part.values)[part.rows]
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float32)


@dataclass(frozen=True)
class _Part:
    """One part for every profile, computed once per distinct profile (a row of ``values``)
    and read through ``rows``: profile ``i``'s values are ``values[rows[i]]``."""

    values: Matrix
    rows: NDArray[np.intp]

    def full(self) -> Matrix:
        """(profiles × papers)."""
        return np.asarray(self.values[self.rows], dtype=np.float32)


def _parts(
    index: PaperIndex,
    profiles: Sequence[Profile],
    vectors: ProfileVectors | None,
    reference: Reference,
) -> list[_Part]:
    """The parts in ``SEMANTIC_PARTS`` order with a model, ``LEXICAL_PARTS`` without."""
    words = [p.words for p in profiles]  # each profile's own words, read once
    lexical = [_keywords(index, profiles), *_coverage(index, words, reference)]
    if vectors is None or index.embeddings is None:
        return lexical
    semantic = _semantic(index.embeddings, profiles, words, vectors.query, reference)
    return [semantic, *lexical, _liked(index, vectors, reference)]


def _semantic(
    embeddings: Matrix,
    profiles: Sequence[Profile],
    words: Sequence[str],
    queries: Matrix,
    reference: Reference,
) -> _Part:
    """Each profile's cosines with the papers as z against its background. Profiles with the
    same words (and example papers) share one query vector: each is standardised once."""
    firsts, rows = distinct_rows(list(zip(words, (p.examples for p in profiles), strict=True)))
    distinct = queries[firsts]
    semantic = reference.standardise(distinct, distinct @ embeddings.T)
    semantic[~distinct.any(axis=1)] = 0.0  # a profile with no words has no query
    return _Part(semantic, rows)


def _keywords(index: PaperIndex, profiles: Sequence[Profile]) -> _Part:
    """The share of each profile's keywords (at least ``KEYWORD_LIST``) that each paper
    contains as whole words: a sparse (distinct keyword lists × keywords) matrix of shares
    times (keywords × papers) mentions, so 100,000 profiles cost one product, each distinct
    keyword one scan."""
    firsts, rows = distinct_rows([p.keywords for p in profiles])
    columns: dict[str, int] = {}
    shares = _Shares(len(firsts), least=KEYWORD_LIST)
    for row, first in enumerate(firsts):
        words = [k.lower() for k in profiles[first].keywords if k.strip()]
        shares.add(row, [columns.setdefault(w, len(columns)) for w in words])
    mentions = np.zeros((len(columns), len(index)), dtype=np.float32)
    for word, col in columns.items():
        mentions[col] = index.mentions(word)
    return _Part(shares.times(mentions), rows)


def _coverage(index: PaperIndex, words: Sequence[str], reference: Reference) -> tuple[_Part, _Part]:
    """IDF-weighted share of each profile's terms in each paper's text, and in its title; as
    in ``_keywords``, one sparse product over the distinct texts' terms."""
    firsts, rows = distinct_rows(words)
    columns: dict[str, int] = {}
    shares = _Shares(len(firsts))
    for row, first in enumerate(firsts):
        terms = dict.fromkeys(PaperIndex.query_terms(words[first]))
        shares.add(row, [columns.setdefault(t, len(columns)) for t in terms])
    idf = np.array([reference.idf(t) for t in columns], dtype=np.float32)
    in_text = np.zeros((len(columns), len(index)), dtype=np.float32)
    in_title = np.zeros_like(in_text)
    present = (index.weights > 0).tocsr()
    for term, col in columns.items():
        position = index.vocab.get(term)
        if position is not None:
            in_text[col] = present[position].toarray().ravel()
    for paper, title_terms in enumerate(_title_terms(index)):
        found = [columns[t] for t in title_terms if t in columns]
        in_title[found, paper] = 1.0
    both = shares.times(np.hstack([in_text, in_title]), idf)
    return _Part(both[:, : len(index)], rows), _Part(both[:, len(index) :], rows)


class _Shares:
    """A sparse (rows × columns) matrix, built row by row from each row's columns (keywords
    or terms), each row's weights divided by their sum, or by ``least`` if that is more."""

    def __init__(self, rows: int, least: float = 0.0) -> None:
        self.lengths = np.zeros(rows, dtype=np.int64)
        self.cols: list[int] = []
        self.least = least

    def add(self, row: int, cols: list[int]) -> None:
        """Row ``row``'s columns; rows are added in order."""
        self.cols.extend(cols)
        self.lengths[row] = len(cols)

    def times(self, dense: Matrix, weights: Matrix | None = None) -> Matrix:
        """This matrix (column ``c`` weighing ``weights[c]``, or 1) times ``dense`` (columns ×
        papers): (rows × papers). A column listed twice in a row counts twice."""
        rows = len(self.lengths)
        if not self.cols:
            return np.zeros((rows, dense.shape[1]), dtype=np.float32)
        cols = np.array(self.cols, dtype=np.int64)
        values = np.ones(len(cols), dtype=np.float32) if weights is None else weights[cols]
        row_of = np.repeat(np.arange(rows), self.lengths)
        totals = np.maximum(np.bincount(row_of, weights=values, minlength=rows), self.least)
        values = (values / totals[row_of]).astype(np.float32)
        indptr = np.concatenate([[0], np.cumsum(self.lengths)])
        matrix = sparse.csr_matrix((values, cols, indptr), shape=(rows, dense.shape[0]))
        return np.asarray(matrix @ dense, dtype=np.float32)


def _title_terms(index: PaperIndex) -> list[set[str]]:
    return [set(PaperIndex.query_terms(p.title)) for p in index.papers]


def _liked(index: PaperIndex, vectors: ProfileVectors, reference: Reference) -> _Part:
    """What the subscriber's votes say of each paper, as z against the background; 0 for a
    profile with none (one shared zero row). With few votes, Rocchio: likeness to liked papers
    minus likeness to disliked ones (mean z-scored cosines). With enough votes of both kinds,
    their own model (``scoring.vote_model``) takes over."""
    assert index.embeddings is not None
    voted = {r for r, m in enumerate(vectors.liked) if len(m)}
    voted |= {r for r, m in enumerate(vectors.disliked) if len(m)}
    order = sorted(voted)
    out = np.zeros((len(order) + 1, len(index)), dtype=np.float32)
    rows = np.zeros(vectors.query.shape[0], dtype=np.intp)
    for slot, row in enumerate(order, start=1):
        rows[row] = slot
        liked, disliked = vectors.examples(row, True), vectors.examples(row, False)
        model = vote_model(liked, disliked)
        if model is not None:
            background = reference.vectors @ model[0] + model[1]
            raw = index.embeddings @ model[0] + model[1]
            out[slot] = (raw - background.mean()) / (background.std() + 1e-6)
            continue
        for examples, sign in ((liked, 1.0), (disliked, -1.0)):
            if examples is not None and len(examples):
                z = reference.standardise(examples, examples @ index.embeddings.T)
                out[slot] += sign * z.mean(axis=0)
    return _Part(out, rows)


def reference_terms(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """Each stemmed term of ``texts`` and the number of texts it occurs in, as the scorer
    tokenises (stop words out, Snowball stems)."""
    tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=_STEMMER, show_progress=False)
    counts = np.zeros(len(tokens.vocab), dtype=np.int64)
    for ids in tokens.ids:
        counts[list(set(ids))] += 1
    by_id = {i: term for term, i in tokens.vocab.items()}
    return [by_id[i] for i in range(len(counts))], counts.tolist()
