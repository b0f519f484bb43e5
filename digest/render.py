"""Rendering a ``Digest`` into a complete email: subject, HTML, plain text and headers.

Templates live in ``templates/`` (Jinja2, autoescaped HTML, strict undefined). The shared
stylesheet ``templates/email.css`` is inlined into each HTML template's *source* once, when the
template is loaded, so rendering an email never runs the CSS inliner. Template statements in
HTML sit inside comments (``<!--{% for %}-->``) so the HTML parser keeps them in place.
Links that act for a subscriber carry signed, purpose-scoped tokens (itsdangerous).
"""

from __future__ import annotations

import binascii
import email.policy
import functools
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import css_inline
import numpy as np
from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict

from digest.assemble import QUIET, Digest, DigestPaper
from digest.issues import IssueNames
from digest.settings import Settings
from digest.tokens import Purpose, Tokens

__all__ = ["TEMPLATES", "Links", "RenderedEmail", "Renderer", "ThemeEntry"]

TEMPLATES = Path(str(resources.files("digest.templates")))
"""The templates shipped inside the package (top-level ``templates/`` in a checkout)."""
WIRE = email.policy.SMTP.clone(max_line_length=998)
_SPACE = re.compile(r"\s+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)")


class RenderedEmail(BaseModel):
    """Everything needed to send one digest; nothing here is half-built."""

    model_config = ConfigDict(frozen=True)

    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]

    def message(self) -> EmailMessage:
        """A MIME multipart/alternative message: the text part first, then the HTML."""
        message = EmailMessage()
        for name, value in self.headers.items():
            message[name] = value
        message["Subject"] = self.subject
        message["Date"] = formatdate(usegmt=True)
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message

    def addressed(self, to: str) -> RenderedEmail:
        """The same message to ``to`` (an address's ASCII form, its domain in IDNA)."""
        return self.model_copy(update={"to": to, "headers": {**self.headers, "To": to}})

    def as_bytes(self, utf8: bool = False) -> bytes:
        """The message as sent: multipart/alternative, CRLF line ends, base64 parts.

        Built directly (about 20 times faster than ``email``'s generator, which would cost more
        than the whole SMTP exchange); ``message()`` builds the same thing with the standard
        library, which a test holds this to, and is used when a header is not plain ASCII.
        Headers are never folded below RFC 5322's 998 characters: folding at 78 would turn
        the long ``List-Unsubscribe`` URLs into encoded words, unreadable as links."""
        if utf8:  # an internationalised address, for a server that takes SMTPUTF8
            return self.message().as_bytes(policy=WIRE.clone(utf8=True))
        if not all(v.isascii() for v in self.headers.values()):
            return self.message().as_bytes(policy=WIRE)
        boundary = f"=_pd_{uuid.uuid4().hex}"  # "_" never occurs in base64
        subject = self.subject
        if not subject.isascii():
            subject = encoded_words(subject)
        lines = [f"{name}: {value}" for name, value in self.headers.items()]
        lines += [
            f"Subject: {subject}",
            f"Date: {formatdate(usegmt=True)}",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "",
        ]
        out = ["\r\n".join(lines).encode("ascii")]
        for subtype, body in (("plain", self.text), ("html", self.html)):
            out.append(
                f"\r\n--{boundary}\r\nContent-Type: text/{subtype}; charset=utf-8\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n".encode("ascii")
            )
            if "\r" in body:
                body = _LINE_BREAK.sub("\n", body)
            canonical = body.replace("\n", "\r\n")  # RFC 2045: CRLF before encoding
            out.append(_base64_lines(canonical.encode("utf-8")))
        out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
        return b"".join(out)


def _base64_lines(data: bytes) -> bytes:
    """``data`` in base64, in CRLF-separated lines of 76 characters (RFC 2045), the lines cut
    as one numpy reshape instead of a Python slice per line (a tenth of the time)."""
    raw = binascii.b2a_base64(data, newline=False)
    full = len(raw) // 76
    lines = np.empty((full, 78), dtype=np.uint8)
    lines[:, :76] = np.frombuffer(raw, dtype=np.uint8, count=full * 76).reshape(full, 76)
    lines[:, 76:] = (13, 10)
    wrapped = lines.tobytes() + raw[full * 76 :]
    return wrapped[:-2] if len(raw) == full * 76 and full else wrapped


class ThemeEntry(BaseModel):
    """A theme as the archive index lists it: its feed and its pages, oldest first."""

    name: str
    description: str
    feed: str
    days: list[tuple[date, str]]


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


def encoded_words(text: str) -> str:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), each within the 75-character limit
    and never splitting a character, one per folded line."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > 45:  # 45 bytes -> 60 base64 characters + 12 of framing
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    words.append("".join(chunk))
    encoded = (binascii.b2a_base64(w.encode("utf-8"), newline=False).decode() for w in words)
    return "\r\n ".join(f"=?utf-8?b?{word}?=" for word in encoded)


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


def one_line(text: str, limit: int) -> str:
    """Collapse every kind of line break and space: a title can never become a header."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def period_text(digest: Digest) -> str:
    period = digest.period
    if period.start == period.end:
        return f"{period.start:%a %d %b %Y}"
    return f"{period.start:%d %b} – {period.end:%d %b %Y}"


def byline(paper: DigestPaper) -> str:
    if paper.authors:
        shown = ", ".join(paper.authors[:3])
        return shown + (" et al." if len(paper.authors) > 3 else "")
    if paper.organization:
        return paper.organization.name
    return plural(paper.author_count, "author") if paper.author_count else "Authors not listed"


def summary(paper: DigestPaper) -> str:
    """The AI summary when HF has one, else the abstract's first sentence."""
    if paper.ai_summary:
        return paper.ai_summary
    match = _SENTENCE.match(paper.abstract)
    return match[1] if match else one_line(paper.abstract, limit=300)


_WEB_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f/?#\\]+[^\s\x00-\x1f\x7f]*", re.IGNORECASE)


def web_url(url: str | None) -> str | None:
    """``url`` when it is a plain http(s) address, else None. Code and project links come
    from source data: a ``javascript:`` or ``data:`` one must never become a link, and one
    with a line break must never add a line to the text part. Every template shows such a
    link only through this filter."""
    return url if url is not None and _WEB_URL.fullmatch(url) else None


def stats(paper: DigestPaper) -> str:
    parts = []
    if paper.upvotes is not None:
        parts.append(plural(paper.upvotes, "upvote"))
    if paper.num_comments:
        parts.append(plural(paper.num_comments, "comment"))
    if paper.github_stars is not None:
        parts.append(plural(paper.github_stars, "GitHub star"))
    return " · ".join(parts)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def headline(digest: Digest, count: int, theme: str | None) -> str:
    """The header line: what this issue holds, in words."""
    if theme:
        return f"{period_text(digest)} · {plural(count, 'pick')} in {theme}"
    if digest.quiet:
        checked = plural(digest.candidates, "new paper")
        return f"{period_text(digest)} · a quiet day: none of {checked} matched your interests"
    return f"{period_text(digest)} · {plural(count, 'new paper')} for you"
