"""Rendering, judged by structure (BeautifulSoup), not snapshots: cards and links, the footer,
inlined CSS, hostile text escaped and intact, headers that cannot be forged."""

from __future__ import annotations

import binascii
from datetime import date
from typing import Any

import pytest
from bs4 import BeautifulSoup
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import BadSignature, URLSafeSerializer

from digest.assemble import Digest, DigestPaper, Section
from digest.mime import _base64_lines
from digest.periods import Period
from digest.render import Renderer
from digest.template_helpers import web_url
from tests.factories import build_digest
from tests.test_assemble import NEWEST, PAPERS, spec

RENDERER = Renderer(
    public_url="https://digest.example.org",
    hf_url="https://huggingface.co",
    sender="Papers Digest <digest@example.org>",
    secret_key="test-key",
)
HOSTILE = (
    'Attack <script>alert(1)</script> {{ 7*7 }} "quoted" \\% x^2 مرحبا\r\nBcc: victim@example.org'
)


LINK = "test-link-id-0123456789"
"""A subscriber's link id for digests made here: personal links need one."""


def personal(digest: Digest) -> Digest:
    """``digest`` as a subscriber's, with their link id (a send run takes it from the store)."""
    return digest.model_copy(update={"link_id": LINK})


def personal_digest(*args: Any, **kwargs: Any) -> Digest:
    """``build_digest`` for a subscriber: the same digest with a link id."""
    return personal(build_digest(*args, **kwargs))


def digest_of(*papers: DigestPaper, email: str = "ada@example.org") -> Digest:
    return Digest(
        email=email,
        period=Period.day(date(2026, 3, 6)),
        sections=[Section(title="Agents", theme_id="agents", papers=list(papers))],
        candidates=len(papers),
        link_id=LINK,
    )


def paper(**fields: object) -> DigestPaper:
    base = {
        "key": "2602.23229",
        "arxiv_id": "2602.23229",
        "title": "Large Multimodal Models as General In-Context Classifiers",
        "abstract": "Which multimodal model should we use? More text.",
        "authors": ("Marco Garosi", "Matteo Farina", "Alessandro Conti", "Massimiliano Mancini"),
        "upvotes": 10,
        "num_comments": 1,
        "github_repo": "https://github.com/marco-garosi/CIRCLE",
        "github_stars": 9,
        "first_listed_on": date(2026, 3, 6),
        "score": 2.5,
        "why": "matches: in-context learning",
    }
    return DigestPaper(**{**base, **fields})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def seeds_email():  # type: ignore[no-untyped-def]
    digest = personal_digest(
        "ada@example.org",
        NEWEST,
        [spec("llm-reasoning-rl", max_items=3), spec("safety-alignment", max_items=2)],
        PAPERS,
    )
    return digest, RENDERER.render(digest)


def test_one_card_per_paper_in_its_section_with_title_link_and_reason(seeds_email) -> None:  # type: ignore[no-untyped-def]
    digest, email = seeds_email
    soup = BeautifulSoup(email.html, "lxml")
    cards = soup.select("td.card")
    assert len(cards) == len(digest.paper_keys) == 5
    assert [td.get_text(strip=True) for td in soup.select("td.section-title")] == [
        s.title for s in digest.sections
    ]
    papers = [p for section in digest.sections for p in section.papers]
    for card, paper in zip(cards, papers, strict=True):
        title = card.select_one("a.title")
        assert title is not None and title.get_text() == paper.title
        assert title["href"].startswith("https://huggingface.co/papers")
        assert card.select_one("p.why").get_text().startswith("Why: matches: ")
    assert soup.title.get_text() == email.subject


def test_footer_has_unsubscribe_preferences_view_in_browser_and_why(seeds_email) -> None:  # type: ignore[no-untyped-def]
    _, email = seeds_email
    footer = BeautifulSoup(email.html, "lxml").select_one("td.footer")
    links = {a.get_text(): a["href"] for a in footer.select("a")}
    assert links["Unsubscribe"].startswith("https://digest.example.org/unsubscribe/")
    assert links["Manage preferences"].startswith("https://digest.example.org/preferences/")
    assert links["View in browser"].startswith("https://digest.example.org/archive/2026-04-15-")
    assert (
        "because you subscribed to LLM reasoning & RL, Safety & alignment as ada@example.org"
        in footer.get_text()
    )


def test_css_is_inlined_and_only_dark_mode_rules_stay_in_a_style_tag(seeds_email) -> None:  # type: ignore[no-untyped-def]
    _, email = seeds_email
    soup = BeautifulSoup(email.html, "lxml")
    assert all("padding: 12px 24px" in td["style"] for td in soup.select("td.card"))
    assert "max-width: 640px" in soup.select_one("table.wrap")["style"]
    styles = " ".join(tag.get_text() for tag in soup.select("style"))
    assert "prefers-color-scheme: dark" in styles and ".card {" not in styles.replace(".card,", "")
    assert len(email.html.encode()) < 100_000
    assert "<!--{%" not in email.html and "{{" not in email.html


def test_hostile_text_is_escaped_in_html_intact_in_text_and_flat_in_the_subject() -> None:
    email = RENDERER.render(digest_of(paper(title=HOSTILE, why="matches: <b>bold</b>")))
    soup = BeautifulSoup(email.html, "lxml")
    assert soup.select("script") == []
    title = soup.select_one("a.title").get_text()
    assert "<script>alert(1)</script>" in title and "{{ 7*7 }}" in title and "49" not in title
    assert '"quoted"' in title and "\\%" in title and "مرحبا" in title
    assert soup.select_one("p.why").get_text() == "Why: matches: <b>bold</b>"
    assert "<script>alert(1)</script> {{ 7*7 }}" in email.text
    assert "\r" not in email.subject and "\n" not in email.subject
    assert "Attack <script>alert(1)</script> {{ 7*7 }}" in email.subject
    assert all("\n" not in v and "\r" not in v for v in email.headers.values())


def test_list_headers_and_a_stable_message_id() -> None:
    one = RENDERER.render(digest_of(paper()))
    again = RENDERER.render(digest_of(paper(upvotes=99)))
    other = RENDERER.render(digest_of(paper(), email="bob@example.org"))
    assert one.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = one.headers["List-Unsubscribe"].split(", ")
    assert https.startswith("<https://digest.example.org/unsubscribe/") and mailto.startswith(
        "<mailto:unsubscribe@example.org?subject=unsubscribe%20"
    )
    assert one.headers["List-Id"] == "Papers Digest <digest.example.org>"
    assert one.headers["Message-ID"] == again.headers["Message-ID"] != other.headers["Message-ID"]
    assert one.headers["To"] == "ada@example.org"


def test_personal_links_carry_signed_purpose_scoped_tokens() -> None:
    email = RENDERER.render(digest_of(paper()))
    token = email.headers["List-Unsubscribe"].split("/unsubscribe/")[1].split(">")[0]
    signer = URLSafeSerializer("test-key")
    assert signer.loads(token, salt="unsubscribe") == {"link": LINK, "purpose": "unsubscribe"}
    assert "ada@example.org" not in email.headers["List-Unsubscribe"]  # never the address
    with pytest.raises(BadSignature):
        signer.loads(token, salt="preferences")  # another purpose
    with pytest.raises(BadSignature):
        URLSafeSerializer("other-key").loads(token, salt="unsubscribe")
    with pytest.raises(BadSignature):
        signer.loads(
            token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], salt="unsubscribe"
        )


def test_the_text_part_has_the_same_papers_and_links() -> None:
    email = RENDERER.render(
        digest_of(
            paper(),
            paper(key="2601.00001", arxiv_id="2601.00001", title="Second paper", github_repo=None),
        )
    )
    for expected in (
        "Large Multimodal Models as General In-Context Classifiers",
        "Second paper",
        "https://huggingface.co/papers/2602.23229",
        "https://arxiv.org/abs/2602.23229",
        "https://arxiv.org/pdf/2601.00001",
        "Code: https://github.com/marco-garosi/CIRCLE",
        "Unsubscribe: https://digest.example.org/unsubscribe/",
        "10 upvotes · 1 comment · 9 GitHub stars",
    ):
        assert expected in email.text
    assert "Marco Garosi, Matteo Farina, Alessandro Conti et al." in email.text


def test_an_empty_digest_is_never_rendered() -> None:
    empty = Digest(
        email="ada@example.org",
        period=Period.day(date(2026, 3, 6)),
        sections=[],
        candidates=0,
        skip_reason="no new papers",
    )
    with pytest.raises(ValueError, match="an empty digest is not rendered"):
        RENDERER.render(empty)


def test_the_wire_bytes_carry_what_the_standard_library_builds() -> None:
    from email import message_from_bytes, policy

    rendered = RENDERER.render(
        digest_of(paper(title=HOSTILE), paper(key="2601.00001", arxiv_id="2601.00001"))
    )
    fast = message_from_bytes(rendered.as_bytes(), policy=policy.default)
    slow = rendered.message()
    for name in (
        "From",
        "To",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Subject",
    ):
        assert fast[name] == slow[name], name
    assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
    for kind in ("plain", "html"):  # the same text; ours keeps RFC 2045's canonical CRLF
        ours = fast.get_body((kind,)).get_content().replace("\r\n", "\n").rstrip("\n")
        theirs = slow.get_body((kind,)).get_content().replace("\r", "\n").rstrip("\n")
        assert ours == theirs
    raw = rendered.as_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    unsubscribe = next(line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:"))
    assert unsubscribe.startswith(b"List-Unsubscribe: <https://digest.example.org/unsubscribe/")


def test_a_non_ascii_sender_name_falls_back_to_the_standard_library() -> None:
    from email import message_from_bytes, policy

    renderer = Renderer(
        public_url="https://digest.example.org",
        hf_url="https://huggingface.co",
        sender="Papiers Récents <digest@example.org>",
        secret_key="test-key",
    )
    rendered = renderer.render(digest_of(paper()))
    parsed = message_from_bytes(rendered.as_bytes(), policy=policy.default)
    assert parsed["From"] == "Papiers Récents <digest@example.org>"
    assert rendered.as_bytes().isascii()


@given(st.binary(max_size=3000))
def test_base64_bodies_are_76_character_crlf_lines_that_decode_back(data: bytes) -> None:
    wire = _base64_lines(data)
    lines = wire.split(b"\r\n")
    assert all(len(line) == 76 for line in lines[:-1]) and 0 < len(lines[-1]) <= 76 or not data
    assert binascii.a2b_base64(wire.replace(b"\r\n", b"")) == data


UNSAFE = {"project_page": "javascript:alert(1)", "github_repo": "data:text/html,<script>1</script>"}


def fresh_renderer() -> Renderer:
    """Cards are cached per renderer by paper key: these tests must not share them."""
    return Renderer(
        public_url="https://digest.example.org",
        hf_url="https://huggingface.co",
        sender="Papers Digest <digest@example.org>",
        secret_key="test-key",
    )


def test_only_http_and_https_source_links_become_links() -> None:
    """Code and project links come from source data: a ``javascript:`` or ``data:`` one is
    dropped from every rendering (email HTML and text, its web page, a theme's page)."""
    renderer = fresh_renderer()
    digest = digest_of(
        paper(**UNSAFE),
        paper(
            key="2601.00001",
            arxiv_id="2601.00001",
            title="Second paper",
            project_page="https://example.org/second",
        ),
    )
    email, page = renderer.render_issue(digest)
    theme_page = renderer.theme_page(digest, "Agents", "https://digest.example.org/f.atom")
    for html in (email.html, page, theme_page):
        soup = BeautifulSoup(html, "lxml")
        hrefs = [str(a["href"]) for a in soup.select("[href]")]
        assert all(href.startswith(("https://", "http://")) for href in hrefs), hrefs
        assert "https://example.org/second" in hrefs
        assert "javascript:" not in html and "data:text" not in html
        cards = soup.select("td.card")
        assert [a.get_text() for a in cards[0].select("p.stats a")] == ["arXiv", "PDF"]
    assert "javascript:" not in email.text and "data:text" not in email.text
    assert "Project page: https://example.org/second" in email.text
    assert email.text.count("Code: ") == 1  # the second paper's; the first one's was unsafe


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example.org/x",
        "https:evil.example.org",
        "http://",
        " https://example.org",
        "https://example.org/a b",
        "https://example.org\nBcc: victim@example.org",
        "https://example.org\x00",
        "ftp://example.org/paper.pdf",
    ],
)
def test_web_url_refuses_anything_but_a_plain_http_address(url: str) -> None:
    assert web_url(url) is None


@pytest.mark.parametrize(
    "url",
    ["https://github.com/a/b", "http://example.org", "HTTPS://Example.org/p?q=1#top"],
)
def test_web_url_keeps_http_addresses_as_they_are(url: str) -> None:
    assert web_url(url) == url
