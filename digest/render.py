"""Rendering a ``Digest`` into a complete email: subject, HTML, plain text and headers.

Templates live in ``templates/`` (Jinja2, autoescaped HTML, strict undefined). The shared
stylesheet ``templates/email.css`` is inlined into each HTML template's *source* once, when the
template is loaded, so rendering an email never runs the CSS inliner. Template statements in
HTML sit inside comments (``<!--{% for %}-->``) so the HTML parser keeps them in place.
Links that act for a subscriber carry signed, purpose-scoped tokens (itsdangerous).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path

import css_inline
from itsdangerous import URLSafeSerializer
from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict

from digest.assemble import Digest, DigestPaper

__all__ = ["TEMPLATES", "Links", "RenderedEmail", "Renderer"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_SPACE = re.compile(r"\s+")
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


class Links:
    """URLs in one subscriber's email: paper pages, arXiv, and signed personal links."""

    def __init__(
        self, public_url: str, hf_url: str, serializer: URLSafeSerializer, email: str, issue: str
    ) -> None:
        self._public, self._hf = public_url.rstrip("/"), hf_url.rstrip("/")
        self._sign, self._email = serializer, email
        self.view_in_browser = f"{self._public}/archive/{issue}.html"

    def token(self, purpose: str) -> str:
        return self._sign.dumps({"email": self._email, "purpose": purpose}, salt=purpose)

    @property
    def unsubscribe(self) -> str:
        return f"{self._public}/unsubscribe/{self.token('unsubscribe')}"

    @property
    def preferences(self) -> str:
        return f"{self._public}/preferences/{self.token('preferences')}"

    def paper_page(self, paper: DigestPaper) -> str:
        if paper.arxiv_id:
            return f"{self._hf}/papers/{paper.arxiv_id}"
        return f"{self._hf}/papers?q={re.sub(r'[^A-Za-z0-9]+', '+', paper.title).strip('+')}"

    def arxiv_abs(self, paper: DigestPaper) -> str:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"

    def arxiv_pdf(self, paper: DigestPaper) -> str:
        return f"https://arxiv.org/pdf/{paper.arxiv_id}"


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

    def __init__(
        self,
        *,
        public_url: str,
        hf_url: str,
        sender: str,
        secret_key: str,
        templates: Path = TEMPLATES,
    ) -> None:
        self._public_url, self._hf_url, self._sender = public_url, hf_url, sender
        self._serializer = URLSafeSerializer(secret_key)
        self._domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        env = Environment(
            loader=_InliningLoader(templates),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        env.globals.update(byline=byline, summary=summary, stats=stats)
        self._html = env.get_template("digest.html.j2")
        self._text = env.get_template("digest.txt.j2")
        self._subject = env.get_template("subject.txt.j2")

    def render(self, digest: Digest) -> RenderedEmail:
        """The complete email for ``digest`` (which must not be empty)."""
        if digest.is_empty:
            raise ValueError(
                f"{digest.email}: an empty digest is not rendered ({digest.skip_reason})"
            )
        issue = issue_id(digest)
        links = Links(self._public_url, self._hf_url, self._serializer, digest.email, issue)
        first = digest.sections[0].papers[0]
        context = {
            "digest": digest,
            "links": links,
            "count": len(digest.paper_keys),
            "period_text": period_text(digest),
            "topics": ", ".join(s.title for s in digest.sections),
            "lead_title": first.title,
            "preheader": f"{first.title} and {len(digest.paper_keys) - 1} more",
        }
        subject = one_line(self._subject.render(context), limit=160)
        context["subject"] = subject
        return RenderedEmail(
            to=digest.email,
            subject=subject,
            html=self._html.render(context),
            text=self._text.render(context).strip() + "\n",
            headers=self._headers(digest, links, issue),
        )

    def _headers(self, digest: Digest, links: Links, issue: str) -> dict[str, str]:
        mailto = (
            f"mailto:unsubscribe@{self._domain}?subject=unsubscribe%20{links.token('unsubscribe')}"
        )
        return {
            "From": self._sender,
            "To": str(Address(addr_spec=digest.email)),
            "Message-ID": f"<{issue}@{self._domain}>",
            "List-Id": f"Papers Digest <digest.{self._domain}>",
            "List-Unsubscribe": f"<{links.unsubscribe}>, <{mailto}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


def issue_id(digest: Digest) -> str:
    """Stable per subscriber and period: the same issue always has the same Message-ID."""
    seed = f"{digest.email}|{digest.period.kind}|{digest.period.label}"
    return f"{digest.period.label}-{hashlib.sha256(seed.encode()).hexdigest()[:16]}"


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
    return f"{paper.author_count} authors" if paper.author_count else "Authors not listed"


def summary(paper: DigestPaper) -> str:
    """The AI summary when HF has one, else the abstract's first sentence."""
    if paper.ai_summary:
        return paper.ai_summary
    match = _SENTENCE.match(paper.abstract)
    return match[1] if match else one_line(paper.abstract, limit=300)


def stats(paper: DigestPaper) -> str:
    parts = []
    if paper.upvotes is not None:
        parts.append(f"{paper.upvotes} upvotes")
    if paper.num_comments:
        parts.append(f"{paper.num_comments} comments")
    if paper.github_stars is not None:
        parts.append(f"{paper.github_stars} GitHub stars")
    return " · ".join(parts) or "new"
