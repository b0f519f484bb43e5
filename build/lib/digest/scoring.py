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

import functools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import bm25s
import numpy as np
import Stemmer
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse

# bm25s sets its own logger to DEBUG on import, so every index build would be logged.
logging.getLogger("bm25s").setLevel(logging.WARNING)

__all__ = [
    "Embedder",
    "PaperIndex",
    "PaperText",
    "Profile",
    "ProfileVectors",
    "ScoredPaper",
    "Weights",
    "explain",
    "phrases_of",
    "profile_texts",
    "profile_vectors",
    "rank",
    "score_matrix",
    "vote_model",
]

Matrix = NDArray[np.float32]
_STEMMER = Stemmer.Stemmer("english")
_LIKE_THRESHOLD = 0.55


class Embedder(Protocol):
    """Turns texts into unit-length vectors (rows)."""

    def encode(self, texts: Sequence[str]) -> Matrix: ...


class HasText(Protocol):
    """Anything paper-shaped: a ``PaperRecord``, a stored ``Paper``, a ``DigestPaper``."""

    @property
    def title(self) -> str: ...
    @property
    def abstract(self) -> str: ...
    @property
    def ai_keywords(self) -> Sequence[str]: ...
    @property
    def authors(self) -> Sequence[str]: ...
    @property
    def upvotes(self) -> int | None: ...
    @property
    def github_stars(self) -> int | None: ...


class PaperText(BaseModel):
    """What the scorer needs of a paper."""

    model_config = ConfigDict(frozen=True)

    key: str
    title: str
    abstract: str = ""
    keywords: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    upvotes: int | None = None
    github_stars: int | None = None

    @property
    def text(self) -> str:
        return " ".join([self.title, self.abstract, *self.keywords])

    @classmethod
    def of(cls, paper: HasText, key: str) -> PaperText:
        """The scorer's view of a record, a stored paper or a digest paper."""
        return cls(
            key=key,
            title=paper.title,
            abstract=paper.abstract,
            keywords=tuple(paper.ai_keywords),
            authors=tuple(paper.authors),
            upvotes=paper.upvotes,
            github_stars=paper.github_stars,
        )


class Profile(BaseModel):
    """A theme or a personal interest profile, as the scorer sees it."""

    model_config = ConfigDict(frozen=True)

    name: str = ""
    text: str = Field("", description="free-text description of the interest")
    keywords: tuple[str, ...] = Field((), description="soft: they steer the ranking")
    require: tuple[str, ...] = Field((), description="hard: every one must occur")
    exclude: tuple[str, ...] = Field((), description="hard: none may occur")
    authors: tuple[str, ...] = ()
    liked: tuple[str, ...] = Field((), description="keys of papers the subscriber liked")
    disliked: tuple[str, ...] = ()
    liked_texts: tuple[str, ...] = Field(
        (), description="texts of liked papers that are not among the candidates"
    )
    disliked_texts: tuple[str, ...] = ()
    examples: tuple[str, ...] = Field((), description="texts of example papers (query by example)")

    @property
    def query(self) -> str:
        return " ".join([self.words, *self.examples]).strip()

    @property
    def words(self) -> str:
        """The subscriber's own words: name, description and keywords (no example papers)."""
        return " ".join([self.name, self.text, *self.keywords]).strip()

    @property
    def semantic_query(self) -> str:
        """The text embedded for the semantic half. A 2–4-word interest ("robot manipulation")
        is embedded as "papers on robot manipulation": MiniLM then reads it as a topic rather
        than a phrase, which measured +0.01 (dev set) and +0.02 (HF pool) nDCG@10 for short
        names and changed nothing for longer queries (``bench/floor.py``)."""
        query = self.query
        if query and len(query.split()) <= SHORT_QUERY_WORDS:
            return f"papers on {query}"
        return query

    def extended(
        self,
        *,
        text: str = "",
        keywords: Sequence[str] = (),
        require: Sequence[str] = (),
        exclude: Sequence[str] = (),
        authors: Sequence[str] = (),
        liked: Sequence[str] = (),
        disliked: Sequence[str] = (),
        liked_texts: Sequence[str] = (),
        disliked_texts: Sequence[str] = (),
    ) -> Profile:
        """This profile (say, a theme's) with a person's own additions."""
        return self.model_copy(
            update={
                "text": " ".join(filter(None, [self.text, text.strip()])),
                "keywords": (*self.keywords, *keywords),
                "require": (*self.require, *require),
                "exclude": (*self.exclude, *exclude),
                "authors": (*self.authors, *authors),
                "liked": (*self.liked, *liked),
                "disliked": (*self.disliked, *disliked),
                "liked_texts": (*self.liked_texts, *liked_texts),
                "disliked_texts": (*self.disliked_texts, *disliked_texts),
            }
        )


SHORT_QUERY_WORDS = 5
"""Queries of at most this many words are embedded as a topic (``Profile.semantic_query``)."""


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


class PaperIndex:
    """The candidate papers, tokenised and weighted once (and embedded, when a model is given)."""

    def __init__(self, papers: Sequence[PaperText], embeddings: Matrix | None = None) -> None:
        self.papers = list(papers)
        self.embeddings = embeddings
        tokens = bm25s.tokenize(
            [p.text for p in self.papers] or [""],
            stopwords="en",
            stemmer=_STEMMER,
            show_progress=False,
        )
        self.vocab: dict[str, int] = tokens.vocab
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        scores = retriever.scores
        self.weights = sparse.csr_matrix(
            (scores["data"], scores["indices"], scores["indptr"]),
            shape=(len(scores["indptr"]) - 1, scores["num_docs"]),
        )
        self.keys = {p.key: i for i, p in enumerate(self.papers)}
        self._ids: dict[str, NDArray[np.int64]] = {}
        self._mentions: dict[str, NDArray[np.bool_]] = {}
        self._authors: dict[str, NDArray[np.bool_]] = {}

    def __len__(self) -> int:
        return len(self.papers)

    @cached_property
    def popularity(self) -> Matrix:
        """log-scaled upvotes and stars, min-max scaled to [0, 1]; unknown counts as 0."""
        raw = np.array(
            [
                math.log1p(p.upvotes or 0) + 0.5 * math.log1p(p.github_stars or 0)
                for p in self.papers
            ],
            dtype=np.float32,
        )
        span = float(raw.max() - raw.min()) if len(raw) else 0.0
        return (raw - raw.min()) / span if span > 0 else np.zeros_like(raw)

    @cached_property
    def lowered(self) -> list[str]:
        return [p.text.lower() for p in self.papers]

    @staticmethod
    def query_terms(query: str) -> tuple[str, ...]:
        """The stemmed, stop-word-free terms BM25 sees in ``query`` (cached per query text, so
        an unchanged profile is tokenised once)."""
        return _query_terms(query)

    def lexical(self, queries: Sequence[str]) -> Matrix:
        """BM25 of each query over every paper: a (queries × papers) matrix."""
        arrays = [self._term_ids(query) for query in queries]
        lengths = np.fromiter((len(ids) for ids in arrays), dtype=np.int64, count=len(arrays))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        counts = sparse.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(len(queries), self.weights.shape[0]),
        )
        counts.sum_duplicates()  # a word twice in a query counts twice, as in BM25
        return np.asarray((counts @ self.weights).toarray(), dtype=np.float32)

    def _term_ids(self, query: str) -> NDArray[np.int64]:
        ids = self._ids.get(query)
        if ids is None:
            vocab = self.vocab
            ids = np.array([vocab[w] for w in _query_terms(query) if w in vocab], dtype=np.int64)
            self._ids[query] = ids
        return ids

    def shares_terms(self, query: str, position: int) -> bool:
        """Whether the paper at ``position`` has any of the query's terms (stemmed)."""
        ids = self._term_ids(query)
        return bool(len(ids)) and bool(self.weights[ids, position].count_nonzero())

    def mentions(self, keyword: str) -> NDArray[np.bool_]:
        """Which papers contain ``keyword`` as a whole word (case-insensitive); once per word."""
        found = self._mentions.get(keyword.lower())
        if found is None:
            found = np.array([_occurs(keyword, text) for text in self.lowered], dtype=bool)
            self._mentions[keyword.lower()] = found
        return found

    def words_in(self, text: str, position: int) -> list[str]:
        """The words of ``text`` whose stems the paper at ``position`` contains, rarest in the
        candidates first ("speech" before "models"); stop words, and words in over half the
        candidates ("from", "learn"), explain nothing and never count."""
        found = []
        for word in dict.fromkeys(re.findall(r"[\w-]+", text.lower())):
            ids = self._term_ids(word)
            if not len(ids) or len(ids) != len(_query_terms(word)):
                continue
            rows = self.weights[ids]
            papers = [rows.indices[rows.indptr[r] : rows.indptr[r + 1]] for r in range(len(ids))]
            common = max(len(found_in) for found_in in papers) > len(self) / 2
            if not common and all(position in found_in for found_in in papers):
                found.append((int(rows.getnnz()), word))
        return [word for _, word in sorted(found)]

    def written_by(self, author: str) -> NDArray[np.bool_]:
        """Which papers list ``author`` (case-insensitive); once per name."""
        name = author.casefold()
        found = self._authors.get(name)
        if found is None:
            found = np.array(
                [name in {a.casefold() for a in p.authors} for p in self.papers], dtype=bool
            )
            self._authors[name] = found
        return found


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
    total = weights.lexical * _zscore(index.lexical([p.query for p in profiles]))
    semantic = vectors if index.embeddings is not None else None
    if semantic is not None and index.embeddings is not None:
        total += weights.semantic * _zscore(semantic.query @ index.embeddings.T)
    total += weights.popularity * index.popularity[None, :]
    for row, profile in enumerate(profiles):
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


MIN_VOTES = 8
"""Votes (at least two of each kind) before a subscriber's own model replaces Rocchio."""


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


def explain(
    profile: Profile,
    index: PaperIndex,
    position: int,
    phrases: tuple[tuple[str, ...], Matrix] | None = None,
) -> str:
    """Why a paper matched, in words: only evidence the scorer used. Keywords it contains,
    followed authors, a liked paper it resembles; else, for a paper found by meaning alone,
    the closest of the subscriber's own ``phrases`` (never meaning without a model)."""
    reasons = []
    matched = [k for k in (*profile.keywords, *profile.require) if index.mentions(k)[position]]
    for words in (profile.name, profile.text):  # else its rarest words the paper has (stemmed)
        matched = matched or index.words_in(words, position)[:3]
    if matched:
        reasons.append("matches: " + ", ".join(list(dict.fromkeys(matched))[:4]))
    followed = [a for a in profile.authors if index.written_by(a)[position]]
    if followed:
        reasons.append("by " + ", ".join(followed) + " (followed)")
    liked = _most_like(profile, index, position)
    if liked:
        reasons.append(f'like "{liked}", which you liked')
    if reasons:
        return "; ".join(reasons)
    if index.embeddings is not None and phrases is not None:
        own, their_vectors = phrases
        closest = own[int(np.argmax(their_vectors @ index.embeddings[position]))]
        return f'close in meaning to "{closest}"'
    if index.shares_terms(profile.query, position):
        return "shares common words with your interests"
    return "no word of your interests"


def _most_like(profile: Profile, index: PaperIndex, position: int) -> str | None:
    if index.embeddings is None or not profile.liked:
        return None
    found = [index.keys[k] for k in profile.liked if k in index.keys and index.keys[k] != position]
    if not found:
        return None
    similarity = index.embeddings[found] @ index.embeddings[position]
    best = int(np.argmax(similarity))
    return index.papers[found[best]].title if similarity[best] >= _LIKE_THRESHOLD else None


@functools.lru_cache(maxsize=262_144)
def _query_terms(query: str) -> tuple[str, ...]:
    terms: list[list[str]] = bm25s.tokenize(
        [query], stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False
    )
    return tuple(terms[0])


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


def _occurs(keyword: str, lowered_text: str) -> bool:
    """Whole-word, case-insensitive occurrence (``RL`` does not match ``world``)."""
    return re.search(rf"(?<!\w){re.escape(keyword.lower())}(?!\w)", lowered_text) is not None
