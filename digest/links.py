"""The URLs one email carries: public paper pages and arXiv, and the subscriber's personal
links (unsubscribe, preferences, feedback), each signed with a token scoped to one purpose
(itsdangerous), so a forwarded email cannot do more than its links allow."""

from __future__ import annotations

import re
from functools import cached_property

from digest.assemble import DigestPaper
from digest.tokens import Purpose, Tokens

__all__ = ["Links"]


class Links:
    """URLs in one subscriber's email: paper pages, arXiv, and signed personal links."""

    def __init__(
        self,
        public_url: str,
        hf_url: str,
        tokens: Tokens | None,
        link_id: str | None,
        issue: str | None,
    ) -> None:
        self._public, self._hf = public_url.rstrip("/"), hf_url.rstrip("/")
        self._tokens, self._link = tokens, link_id
        self.home = self._public + "/"
        self.view_in_browser = f"{self._public}/archive/{issue}.html"

    @property
    def personal(self) -> bool:
        return self._tokens is not None

    def token(self, purpose: Purpose) -> str:
        if self._tokens is None or self._link is None:
            raise ValueError(
                "a public page, or a digest without a subscriber, has no personal links"
            )
        return self._tokens.make(self._link, purpose)

    @cached_property
    def unsubscribe_token(self) -> str:
        return self.token(Purpose.unsubscribe)

    @cached_property
    def unsubscribe(self) -> str:
        return f"{self._public}/unsubscribe/{self.unsubscribe_token}"

    @cached_property
    def preferences(self) -> str:
        return f"{self._public}/preferences/{self.token(Purpose.preferences)}"

    @cached_property
    def feedback_base(self) -> str:
        """The start of every "more / less like this" link: one token per email, the paper
        and the vote follow in the query (the token steers only its holder's profile)."""
        return f"{self._public}/feedback/{self.token(Purpose.feedback)}"

    def paper_page(self, paper: DigestPaper) -> str:
        if paper.arxiv_id:
            return f"{self._hf}/papers/{paper.arxiv_id}"
        return f"{self._hf}/papers?q={re.sub(r'[^A-Za-z0-9]+', '+', paper.title).strip('+')}"

    def arxiv_abs(self, paper: DigestPaper) -> str:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"

    def arxiv_pdf(self, paper: DigestPaper) -> str:
        return f"https://arxiv.org/pdf/{paper.arxiv_id}"
