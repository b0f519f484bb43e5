"""Relevance: the one scorer behind digests, ``digest rank`` and the evaluation. Pure: no
database, no network; the embedding model, when there is one, is handed in.

Hybrid score of a paper for a profile, all per-profile z-scores over the candidate papers:

    lexical   BM25 (bm25s, Snowball-stemmed) of the profile's words over title+abstract+AI keywords
  + semantic  cosine of sentence embeddings of the profile's words and the paper
  + liked     likeness to the papers the subscriber liked (cosine, or BM25 without a model),
              its own part rather than mixed into the query: measured, mixing the liked papers'
              titles into the BM25 query (Rocchio) made rankings worse, a separate part better
  - disliked  likeness to disliked papers, only where above the mean (their look-alikes drop)
  + author    a fixed boost when a followed author wrote it
  + prior     popularity (HF upvotes, GitHub stars) scaled to [0, 1] times a small weight, so it
              only reorders close calls
Required keywords must all occur and excluded ones must not (hard filters). Many profiles are
scored at once as matrix products (profiles × terms @ terms × papers), not a loop per pair.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from digest.paper_index import PaperIndex
from digest.profiles import Profile
from digest.reasons import explain
from digest.vectors import Embedder, Matrix

__all__ = [
    "distinct_rows",
    "MIN_VOTES",
    "ProfileVectors",
    "ScoredPaper",
    "Weights",
    "phrases_of",
    "profile_texts",
    "profile_vectors",
    "rank",
    "score_matrix",
    "vote_model",
]


class Weights(BaseModel):
    """Fusion weights, fixed a priori (equal z-score fusion) rather than tuned on test data."""

    model_config = ConfigDict(frozen=True)

    lexical: float = 1.0
    semantic: float = 1.0
    liked: float = 1.0
    disliked: float = 1.0
    author: float = 1.0
    popularity: float = 0.1


@dataclass(frozen=True)
class ProfileVectors:
    """The embeddings the semantic half needs: each profile's query (a row of ``query``) and,
    per profile, the rows of the papers it liked and disliked (empty when none)."""

    query: Matrix
    liked: tuple[Matrix, ...] = ()
    disliked: tuple[Matrix, ...] = ()
    phrases: tuple[tuple[tuple[str, ...], Matrix], ...] = ()
    """Per profile, its own short phrases (name, keywords, clauses of its text) and their
    vectors: a reason for a paper found by meaning names the closest one."""

    def examples(self, row: int, liked: bool) -> Matrix | None:
        found = self.liked if liked else self.disliked
        return found[row] if row < len(found) and len(found[row]) else None

    def parts_of(self, row: int) -> tuple[tuple[str, ...], Matrix] | None:
        return self.phrases[row] if row < len(self.phrases) and self.phrases[row][0] else None


class ScoredPaper(BaseModel):
    """One paper's score for one profile, with the reason in words."""

    key: str
    title: str
    score: float
    why: str


def score_matrix(
    index: PaperIndex,
    profiles: Sequence[Profile],
    vectors: ProfileVectors | None = None,
    weights: Weights = Weights(),  # noqa: B008 (an immutable value)
) -> Matrix:
    """Scores of every paper for every profile, (profiles × papers); filtered papers get -inf.

    ``vectors`` are the profiles' embeddings (see ``profile_vectors``); without them, or without
    paper embeddings, the score is lexical only (likes and dislikes then count by BM25).
    """
    semantic = vectors if index.embeddings is not None else None
    total = _by_query(index, profiles, semantic, weights)
    for row, profile in enumerate(profiles):
        if not _personal(profile):
            continue
        learned = _learned(semantic, row, index)
        if learned is not None:  # enough votes: the subscriber's own model replaces Rocchio
            total[row] += weights.liked * learned
        for liked, weight in ((True, weights.liked), (False, weights.disliked)):
            if learned is not None:
                break
            likeness = (
                _likeness(semantic.examples(row, liked), index)
                if semantic is not None
                else _lexical_likeness(profile, index, liked)
            )
            if likeness is not None:
                total[row] += weight * (likeness if liked else -np.maximum(likeness, 0.0))
        if profile.authors:
            total[row] += weights.author * _by_followed(index, profile)
        if profile.require or profile.exclude:
            total[row, ~_passes_filters(index, profile)] = -np.inf
    return total


def _by_query(
    index: PaperIndex,
    profiles: Sequence[Profile],
    vectors: ProfileVectors | None,
    weights: Weights,
) -> Matrix:
    """The lexical, semantic and popularity parts of every profile's scores, computed once per
    distinct query (most subscribers share theirs, a theme's above all) and read per profile."""
    queries = [p.query for p in profiles]
    firsts, rows = distinct_rows(queries)
    base = weights.lexical * _zscore(index.lexical([queries[i] for i in firsts]))
    if vectors is not None and index.embeddings is not None:
        base += weights.semantic * _zscore(vectors.query[firsts] @ index.embeddings.T)
    base += weights.popularity * index.popularity[None, :]
    return np.asarray(base[rows], dtype=np.float32)


def distinct_rows(keys: Sequence[Hashable]) -> tuple[list[int], NDArray[np.intp]]:
    """For work done once per distinct key (most subscribers share a theme's words): the
    position of each distinct key's first occurrence, and each key's row among the distinct."""
    first: dict[Hashable, int] = {}
    rows = np.fromiter(
        (first.setdefault(key, len(first)) for key in keys), dtype=np.intp, count=len(keys)
    )
    return np.unique(rows, return_index=True)[1].tolist(), rows


def _personal(profile: Profile) -> bool:
    """Whether the profile has anything scored per subscriber: votes, authors, filters."""
    return bool(
        profile.liked
        or profile.disliked
        or profile.liked_texts
        or profile.disliked_texts
        or profile.authors
        or profile.require
        or profile.exclude
    )


MIN_VOTES = 20
"""Votes (at least two of each kind) before a subscriber's own model replaces Rocchio. Measured
with simulated votes (``bench/floor.py``'s learning curve, full profiles and 2–4-word names, on
both labelled sets): at 10 and 15 votes Rocchio ranked better in 3 of the 4 cells; from 20 on
the model is as good on average (better for short names, worse for full profiles)."""


def vote_model(liked: Matrix | None, disliked: Matrix | None) -> tuple[Matrix, float] | None:
    """Weights and bias of an L2-regularised logistic regression on the voted papers'
    embeddings (liked = 1), by Newton's method in the dual-sized problem; None with too few
    votes. Few samples in 384 dimensions: the regularisation keeps it near Rocchio's
    direction while it learns which of the liked papers' traits matter."""
    if liked is None or disliked is None or len(liked) < 2 or len(disliked) < 2:
        return None
    if len(liked) + len(disliked) < MIN_VOTES:
        return None
    x = np.concatenate([liked, disliked]).astype(np.float64)
    y = np.concatenate([np.ones(len(liked)), np.zeros(len(disliked))])
    x = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], _VOTE_L2)
    penalty[-1] = 1e-6  # the bias is not shrunk
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(x @ weights)))
        gradient = x.T @ (p - y) + penalty * weights
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        weights -= np.linalg.solve(hessian, gradient)
    return weights[:-1].astype(np.float32), float(weights[-1])


_VOTE_L2 = 1.0


def profile_texts(profiles: Sequence[Profile]) -> list[str]:
    """Every text ``profile_vectors`` embeds for these profiles: to embed them in one call."""
    texts = (
        t
        for p in profiles
        for t in (p.semantic_query, *p.liked_texts, *p.disliked_texts, *phrases_of(p))
    )
    return list(dict.fromkeys(t for t in texts if t))


def phrases_of(profile: Profile) -> tuple[str, ...]:
    """The profile's own short phrases: its name, its keywords, the clauses of its text."""
    clauses = [c.strip() for c in re.split(r"[.;:,()]| and ", profile.text) if c.strip()]
    found = [profile.name, *profile.keywords, *[" ".join(c.split()[:8]) for c in clauses]]
    return tuple(dict.fromkeys(p.strip() for p in found if p.strip()))[:16]


def profile_vectors(
    profiles: Sequence[Profile], embedder: Embedder, index: PaperIndex
) -> ProfileVectors:
    """Each profile's query embedding and those of its liked and disliked papers (from the
    index when they are candidates, else embedded from their texts). Recompute only when a
    profile changes."""
    worded = [row for row, p in enumerate(profiles) if p.query]
    found = embedder.encode([profiles[row].semantic_query for row in worded]) if worded else None
    width = found.shape[1] if found is not None else _width(index)
    # a profile of liked papers alone has no query: a zero row, so it scores by likeness only
    query = np.zeros((len(profiles), width), np.float32)
    if found is not None:
        query[worded] = found
    if index.embeddings is None:
        return ProfileVectors(query)
    phrases = tuple(phrases_of(p) for p in profiles)
    vectors = {profiles[row].semantic_query: query[row] for row in worded}
    wanted = list(dict.fromkeys(t for ps in phrases for t in ps if t not in vectors))
    if wanted:
        vectors.update(zip(wanted, embedder.encode(wanted), strict=True))
    parts = tuple(
        (ps, np.stack([vectors[t] for t in ps]) if ps else np.zeros((0, width), np.float32))
        for ps in phrases
    )
    examples: dict[bool, list[Matrix]] = {True: [], False: []}
    for profile in profiles:
        for liked in (True, False):
            rows, texts = _examples(profile, index, liked)
            stacked = [index.embeddings[rows]]
            if texts:
                stacked.append(embedder.encode(list(texts)).astype(np.float32))
            examples[liked].append(np.concatenate(stacked, axis=0))
    return ProfileVectors(query, tuple(examples[True]), tuple(examples[False]), parts)


def rank(
    profile: Profile,
    index: PaperIndex,
    embedder: Embedder | None = None,
    weights: Weights = Weights(),  # noqa: B008
) -> list[ScoredPaper]:
    """Every candidate that passes the filters, best first, each with a short explanation."""
    vectors = profile_vectors([profile], embedder, index) if embedder else None
    scores = score_matrix(index, [profile], vectors, weights)[0]
    phrases = vectors.parts_of(0) if vectors else None
    order = sorted(
        (i for i in range(len(index)) if np.isfinite(scores[i])),
        key=lambda i: (-scores[i], index.papers[i].key),
    )
    return [
        ScoredPaper(
            key=index.papers[i].key,
            title=index.papers[i].title,
            score=round(float(scores[i]), 4),
            why=explain(profile, index, i, phrases),
        )
        for i in order
    ]


def _width(index: PaperIndex) -> int:
    return index.embeddings.shape[1] if index.embeddings is not None else 0


def _learned(vectors: ProfileVectors | None, row: int, index: PaperIndex) -> Matrix | None:
    """The vote model's scores of the papers, z-scored, when the profile has one."""
    if vectors is None or index.embeddings is None:
        return None
    model = vote_model(vectors.examples(row, True), vectors.examples(row, False))
    if model is None:
        return None
    learned: Matrix = _zscore((index.embeddings @ model[0] + model[1])[None, :])[0]
    return learned


def _likeness(examples: Matrix | None, index: PaperIndex) -> Matrix | None:
    """How like the example papers each paper is: the mean of its per-example z-scored
    cosines, z-scored again (None without examples)."""
    if examples is None or index.embeddings is None:
        return None
    return _mean_z(examples @ index.embeddings.T)


def _lexical_likeness(profile: Profile, index: PaperIndex, liked: bool) -> Matrix | None:
    """``_likeness`` without a model: each example paper's text is a BM25 query."""
    rows, texts = _examples(profile, index, liked)
    queries = [*(index.papers[r].text for r in rows), *texts]
    return _mean_z(index.lexical(queries)) if queries else None


def _examples(profile: Profile, index: PaperIndex, liked: bool) -> tuple[list[int], list[str]]:
    """The liked (or disliked) papers: positions of those among the candidates, and the texts
    of those that are not."""
    keys, texts = (
        (profile.liked, profile.liked_texts)
        if liked
        else (profile.disliked, profile.disliked_texts)
    )
    return [index.keys[k] for k in keys if k in index.keys], list(texts)


def _mean_z(similarity: Matrix) -> Matrix:
    """One row from (examples × papers): the z-scored mean of the z-scored rows."""
    row: Matrix = _zscore(_zscore(similarity).mean(axis=0, keepdims=True))[0]
    return row


def _zscore(values: Matrix) -> Matrix:
    """Per row (profile): how many standard deviations each paper is above the mean."""
    mean = values.mean(axis=1, keepdims=True)
    spread = values.std(axis=1, keepdims=True)
    scaled: Matrix = np.divide(values - mean, spread, out=np.zeros_like(values), where=spread > 0)
    return scaled


def _by_followed(index: PaperIndex, profile: Profile) -> Matrix:
    followed = np.zeros(len(index), dtype=bool)
    for author in profile.authors:
        followed |= index.written_by(author)
    return followed.astype(np.float32)


def _passes_filters(index: PaperIndex, profile: Profile) -> NDArray[np.bool_]:
    keep = np.ones(len(index), dtype=bool)
    for keyword in profile.require:
        keep &= index.mentions(keyword)
    for keyword in profile.exclude:
        keep &= ~index.mentions(keyword)
    return keep
