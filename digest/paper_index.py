"""The candidate papers as the scorer sees them: their text tokenised (Snowball-stemmed, stop
words out) and BM25-weighted once per run, so every profile's lexical score, filter and reason
is a lookup rather than another pass over the text."""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Sequence
from functools import cached_property
from typing import Protocol

import bm25s
import numpy as np
import Stemmer
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from scipy import sparse

from digest.vectors import Matrix

# bm25s sets its own logger to DEBUG on import, so every index build would be logged.
logging.getLogger("bm25s").setLevel(logging.WARNING)

__all__ = ["HasText", "PaperIndex", "PaperText", "occurs"]

_STEMMER = Stemmer.Stemmer("english")


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
            found = np.array([occurs(keyword, text) for text in self.lowered], dtype=bool)
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


@functools.lru_cache(maxsize=262_144)
def _query_terms(query: str) -> tuple[str, ...]:
    terms: list[list[str]] = bm25s.tokenize(
        [query], stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False
    )
    return tuple(terms[0])


def occurs(keyword: str, lowered_text: str) -> bool:
    """Whole-word, case-insensitive occurrence (``RL`` does not match ``world``)."""
    return re.search(rf"(?<!\w){re.escape(keyword.lower())}(?!\w)", lowered_text) is not None
