"""What a subscriber wants, as the scorer reads it: a theme's or a person's words, hard
filters, followed authors and votes. Apart from the scorer so themes and subscriptions can
build one without depending on how it is scored."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SHORT_QUERY_WORDS", "Profile"]


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
