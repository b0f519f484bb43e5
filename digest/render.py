"""Rendering a ``Digest`` into a complete email: subject, HTML, plain text and headers.

Templates live in ``templates/`` (Jinja2, autoescaped HTML, strict undefined). The shared
stylesheet ``templates/email.css`` is inlined into each HTML template's *source* once, when the
template is loaded, so rendering an email never runs the CSS inliner. Template statements in
HTML sit inside comments (``<!--{% for %}-->``) so the HTML parser keeps them in place.
Links that act for a subscriber carry signed, purpose-scoped tokens (itsdangerous).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from email.utils import parseaddr
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import css_inline
from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pydantic import BaseModel

from digest.assemble import QUIET, Digest, DigestPaper
from digest.issues import IssueNames
from digest.links import Links
from digest.mime import RenderedEmail, one_line
from digest.settings import Settings
from digest.template_helpers import (
    byline,
    headline,
    period_text,
    plural,
    stats,
    summary,
    web_url,
)
from digest.tokens import Tokens

__all__ = ["TEMPLATES", "Renderer", "ThemeEntry"]

TEMPLATES = Path(str(resources.files("digest.templates")))
"""The templates shipped inside the package (top-level ``templates/`` in a checkout)."""


class ThemeEntry(BaseModel):
    """A theme as the archive index lists it: its feed and its pages, oldest first."""

    name: str
    description: str
    feed: str
    days: list[tuple[date, str]]


class _Cards:
    """A paper's card, rendered once per run and reused: most subscribers of a day share most
    papers, and the card holds nothing personal but the reason it matched."""

    def __init__(self, macro: Callable[..., str], links: Links, size: int = 20_000) -> None:
        self._macro, self._links, self._size = macro, links, size
        self._done: dict[tuple[object, ...], str] = {}

    def __call__(self, paper: DigestPaper) -> str:
        key = (
            paper.key,
            paper.title,
            paper.why,
            paper.upvotes,
            paper.num_comments,
            paper.github_stars,
        )
        card = self._done.get(key)
        if card is None:
            if len(self._done) >= self._size:
                self._done.clear()
            card = self._done[key] = self._macro(paper, self._links)
        return card


class _InliningLoader(BaseLoader):
    """Loads templates, inlining the stylesheet into HTML ones once (Jinja caches the result)."""

    def __init__(self, folder: Path) -> None:
        self._files = FileSystemLoader(folder)
        self._css = (folder / "email.css").read_text(encoding="utf-8")
        self._inliner = css_inline.CSSInliner(
            keep_style_tags=False, keep_at_rules=True, load_remote_stylesheets=False
        )

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self._files.get_source(environment, template)
        if template.endswith(".html.j2"):
            if source.lstrip().startswith("{% macro"):
                source = self._inliner.inline_fragment(source, self._css)
            else:
                source = self._inliner.inline(
                    source.replace("</head>", f"<style>{self._css}</style></head>", 1)
                )
        return source, filename, uptodate


class Renderer:
    """Renders digests; build one per process and reuse it (templates compile once)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Renderer:
        return cls(
            public_url=settings.public_url,
            hf_url=settings.hf_base_url,
            sender=settings.sender,
            secret_key=settings.key_ring().keys,
        )

    def __init__(
        self,
        *,
        public_url: str,
        hf_url: str,
        sender: str,
        secret_key: str | Sequence[str],
        templates: Path = TEMPLATES,
        max_bytes: int = 95_000,
    ) -> None:
        self.max_bytes = max_bytes
        self._public_url, self._hf_url, self._sender = public_url, hf_url, sender
        self._tokens = Tokens(secret_key)
        self._domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        env = Environment(
            loader=_InliningLoader(templates),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        env.globals.update(byline=byline, summary=summary, stats=stats, plural=plural)
        env.filters["web_url"] = web_url
        self._public = public = Links(public_url, hf_url, None, None, None)
        self._card_html = _Cards(env.get_template("_macros.html.j2").module.card, public)  # type: ignore[attr-defined]
        self._card_text = _Cards(env.get_template("_macros.txt.j2").module.card, public)  # type: ignore[attr-defined]
        self.issues = IssueNames(secret_key)
        self._html = env.get_template("digest.html.j2")
        self._text = env.get_template("digest.txt.j2")
        self._subject = env.get_template("subject.txt.j2")
        self._index = env.get_template("index.html.j2")
        self._notice_html = env.get_template("notice.html.j2")
        self._notice_text = env.get_template("notice.txt.j2")

    def render(self, digest: Digest) -> RenderedEmail:
        """The complete email for ``digest`` (which must not be empty).

        When the HTML would pass ``max_bytes`` (Gmail clips at about 102 KB) the lowest-scored
        papers move to the web version, and both parts end with a "N more papers" link to it."""
        return self._render(digest, page=False)[0]

    def render_issue(self, digest: Digest) -> tuple[RenderedEmail, str]:
        """The email and its "view in browser" page (``web_page``) together: one set of
        signed links and one subject for both, as a send run needs."""
        email, page = self._render(digest, page=True)
        assert page is not None
        return email, page

    def _render(self, digest: Digest, *, page: bool) -> tuple[RenderedEmail, str | None]:
        if digest.is_empty:
            raise ValueError(
                f"{digest.email}: an empty digest is not rendered ({digest.skip_reason})"
            )
        issue = self.issue_id(digest)
        links = Links(self._public_url, self._hf_url, self._tokens, digest.link_id, issue)
        context = self._context(digest, links, web=False)
        subject = one_line(self._subject.render(context), limit=160)
        context["subject"] = subject
        web = self._html.render({**context, "web": True}) if page else None
        html = self._html.render(context)
        total = len(digest.paper_keys)
        shown = total
        while len(html.encode()) > self.max_bytes and shown > 1:
            size = len(html.encode())
            shown = max(1, min(shown - 1, int(shown * self.max_bytes / size)))
            context = self._context(clipped(digest, shown), links, web=False, more=total - shown)
            context["subject"] = subject
            html = self._html.render(context)
        email = RenderedEmail(
            to=digest.email,
            subject=subject,
            html=html,
            text=self._text.render(context).strip() + "\n",
            headers=self._headers(digest, links, issue),
        )
        return email, web

    def notice(
        self, to: str, *, subject: str, body: str, action: str, url: str, footnote: str
    ) -> RenderedEmail:
        """A one-off account email (confirm your address, manage your subscription): one
        button, no list headers, a fresh Message-ID."""
        context = {"subject": subject, "body": body, "action": action, "url": url}
        context["footnote"] = footnote
        return RenderedEmail(
            to=to,
            subject=one_line(subject, limit=160),
            html=self._notice_html.render(context),
            text=self._notice_text.render(context).strip() + "\n",
            headers={
                "From": self._sender,
                "To": to,
                "Message-ID": f"<{uuid.uuid4().hex}@{self._domain}>",
                "Auto-Submitted": "auto-generated",
            },
        )

    def web_page(self, digest: Digest) -> str:
        """The subscriber's issue as its "view in browser" page: every paper, never clipped."""
        issue = self.issue_id(digest)
        links = Links(self._public_url, self._hf_url, self._tokens, digest.link_id, issue)
        context = self._context(digest, links, web=True)
        context["subject"] = one_line(self._subject.render(context), limit=160)
        return self._html.render(context)

    def theme_page(self, digest: Digest, theme_name: str, feed_url: str) -> str:
        """A theme's picks for one period, public (no personal links): the archive's page."""
        context = self._context(digest, self._public, web=True, theme=theme_name)
        context.update(subject=f"{theme_name} · {context['period_text']}", feed=feed_url)
        return self._html.render(context)

    def paper_url(self, paper: DigestPaper) -> str:
        return self._public.paper_page(paper)

    def archive_index(self, themes: list[ThemeEntry]) -> str:
        """The archive's front page: every theme with its newest pages and its feed."""
        return self._index.render(
            themes=themes, links=self._public, subject="Papers Digest archive"
        )

    def issue_id(self, digest: Digest) -> str:
        """The digest's issue name (``digest.issues``): its Message-ID and page address."""
        return self.issues.name(digest.email, digest.period)

    def _context(
        self, digest: Digest, links: Links, *, web: bool, more: int = 0, theme: str | None = None
    ) -> dict[str, Any]:
        """Everything the templates show, worked out here once (a call from inside a template
        costs several times a plain lookup, and this runs for every subscriber)."""
        html_cards, text_cards = self._card_html, self._card_text
        papers = [p for section in digest.sections for p in section.papers]
        lead = papers[0].title if papers else ""

        base = links.feedback_base if links.personal else ""

        def html_votes(paper: DigestPaper) -> tuple[Markup, Markup] | tuple[None, None]:
            """The per-paper ends of the feedback links, escaped and cached once per paper;
            the template puts the subscriber's ``vote_base`` in front of them."""
            if not base:
                return None, None
            return _vote_query_html(paper.key, "more"), _vote_query_html(paper.key, "less")

        def text_votes(paper: DigestPaper) -> tuple[str, str] | tuple[None, None]:
            if not base:
                return None, None
            more, less = _vote_query(paper.key, "more"), _vote_query(paper.key, "less")
            return base + more, base + less

        count = len(papers) + more
        return {
            "digest": digest,
            "links": links,
            "web": web,
            "theme": theme,
            "feed": None,
            "more": more,
            "count": count,
            "headline": headline(digest, count, theme),
            "html_sections": [
                (s.title, [(html_cards(p), *html_votes(p)) for p in s.papers])
                for s in digest.sections
            ],
            "text_sections": [
                (s.title, [(text_cards(p), *text_votes(p)) for p in s.papers])
                for s in digest.sections
            ],
            "vote_base": Markup(escape(base)),
            "period_text": period_text(digest),
            "topics": ", ".join(s.title for s in digest.sections if s.theme_id != QUIET),
            "floors": " / ".join(sorted({s.strictness for s in digest.sections if s.strictness})),
            "lead_title": lead,
            "preheader": f"{lead} and {count - 1} more" if papers else "",
        }

    def _headers(self, digest: Digest, links: Links, issue: str) -> dict[str, str]:
        mailto = (
            f"mailto:unsubscribe@{self._domain}?subject=unsubscribe%20{links.unsubscribe_token}"
        )
        return {
            "From": self._sender,
            "To": digest.email,
            "Message-ID": f"<{issue}@{self._domain}>",
            "List-Id": f"Papers Digest <digest.{self._domain}>",
            "List-Unsubscribe": f"<{links.unsubscribe}>, <{mailto}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


@functools.lru_cache(maxsize=65_536)
def _vote_query(key: str, vote: str) -> str:
    """``?paper=KEY&vote=VOTE`` (cached: every subscriber's cards share the papers, and
    quoting costs more than the rest of the link)."""
    return f"?paper={quote(key, safe=':')}&vote={vote}"


@functools.lru_cache(maxsize=65_536)
def _vote_query_html(key: str, vote: str) -> Markup:
    return escape(_vote_query(key, vote))


def clipped(digest: Digest, keep: int) -> Digest:
    """``digest`` with only its ``keep`` best-scored papers, each still in its own section."""
    papers = [p for section in digest.sections for p in section.papers]
    best = sorted(papers, key=lambda p: -p.score)[:keep]
    kept = {id(p) for p in best}
    sections = [
        section.model_copy(update={"papers": [p for p in section.papers if id(p) in kept]})
        for section in digest.sections
    ]
    return digest.model_copy(update={"sections": [s for s in sections if s.papers]})
