"""A real browser judges how the email and the archive pages look: headless Debian chromium
(driven by Playwright, no browser download) at a phone's 375 px and the email's 640 px width.
Layout facts, not pixels: nothing overflows sideways, every card is on screen and readable.
Screenshots land in the test's temporary folder for a human to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_archive import big_digest
from tests.test_assemble import NEWEST, PAPERS, spec
from tests.test_render import HOSTILE, RENDERER, digest_of, paper, personal_digest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed"),
]

LAYOUT = """() => {
  const width = document.documentElement.clientWidth;
  const cards = [...document.querySelectorAll('td.card')].map(td => {
    const box = td.getBoundingClientRect();
    const title = td.querySelector('a.title, p.title');
    return {left: box.left, right: box.right, width: box.width, height: box.height,
            visible: getComputedStyle(td).visibility !== 'hidden' && box.height > 20,
            titleFont: title ? parseFloat(getComputedStyle(title).fontSize) : 0};
  });
  const preheader = document.querySelector('.preheader');
  return {width, scrollWidth: document.documentElement.scrollWidth, cards,
          preheaderShown: preheader ? preheader.getBoundingClientRect().height > 0 : false};
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def pages() -> dict[str, str]:
    seeds = personal_digest(
        "ada@example.org",
        NEWEST,
        [spec("llm-reasoning-rl", max_items=4), spec("agents", max_items=3)],
        PAPERS,
    )
    long_words = paper(
        title="A" * 180 + " " + HOSTILE,
        ai_summary="https://example.org/" + "x" * 300,
        authors=("Someone With A Very Long Name Indeed",) * 5,
    )
    return {
        "seeds-email": RENDERER.render(seeds).html,
        "clipped-email": RENDERER.render(big_digest(120)).html,
        "hostile-email": RENDERER.render(digest_of(long_words)).html,
        "theme-page": RENDERER.theme_page(seeds, "LLM reasoning & RL", "https://x.org/f.atom"),
    }


@pytest.mark.parametrize("width", [375, 640])
@pytest.mark.parametrize("name", ["seeds-email", "clipped-email", "hostile-email", "theme-page"])
def test_layout_fits_the_width_and_every_card_shows(
    browser, name: str, width: int, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.set_content(pages()[name], wait_until="load")
        facts = page.evaluate(LAYOUT)
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
    finally:
        page.close()
    assert facts["scrollWidth"] <= facts["width"], f"{name} overflows sideways at {width}px"
    assert facts["cards"], name
    for card in facts["cards"]:
        assert card["visible"]
        assert card["left"] >= 0 and card["right"] <= facts["width"] + 0.5
        assert card["width"] <= 640
        assert card["titleFont"] >= 14
    assert not facts["preheaderShown"]
    assert (tmp_path / f"{name}-{width}.png").stat().st_size > 5_000
