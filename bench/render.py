"""Rendering personalised digests (10 papers each: subject, inlined HTML, plain text, headers with
signed links) on one core, beside the naive way: the same templates with the stylesheet left in
a <style> tag and css-inline run on every email. Both run in this process on the same digests.

    .venv/bin/python bench/render.py [--digests 100000] [--baseline 3000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date
from pathlib import Path

import css_inline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.assemble import Digest, DigestPaper, Section  # noqa: E402
from digest.ingest import read_pages  # noqa: E402
from digest.periods import Period  # noqa: E402
from digest.render import TEMPLATES, Renderer, _InliningLoader  # noqa: E402
from digest.settings import BUNDLED_SEEDS_DIR  # noqa: E402
from digest.sources import get_source  # noqa: E402


class _StyleTagLoader(_InliningLoader):
    """The naive variant: the stylesheet goes into a <style> tag, inlined later per email."""

    def get_source(self, environment, template):  # type: ignore[no-untyped-def]
        source, filename, uptodate = self._files.get_source(environment, template)
        if template.endswith(".html.j2") and "</head>" in source:
            source = source.replace("</head>", f"<style>{self._css}</style></head>", 1)
        return source, filename, uptodate


def digests(count: int) -> list[Digest]:
    records = [
        r
        for page in read_pages("seeds", BUNDLED_SEEDS_DIR, None)
        for r in get_source("seeds").parse(page)
    ]
    papers = [
        DigestPaper(
            key=r.title_key,
            arxiv_id=f"2604.{n:05d}",  # the seeds have none; real listings do
            title=r.title,
            abstract=r.abstract,
            authors=r.authors,
            author_count=r.author_count,
            organization=r.organization,
            num_comments=r.num_comments,
            upvotes=random.randint(0, 300),
            first_listed_on=date(2026, 4, 15),
            score=random.uniform(0, 5),
            why="matches: reasoning, reinforcement learning",
        )
        for n, r in enumerate(records)
    ]
    out = []
    for i in range(count):
        picked = random.sample(papers, 10)
        out.append(
            Digest(
                email=f"reader{i}@example.org",
                link_id=f"bench-link-{i:08d}",  # the subscriber's handle in personal links
                period=Period.day(date(2026, 4, 15)),
                sections=[
                    Section(
                        title="LLM reasoning & RL", theme_id="llm-reasoning-rl", papers=picked[:6]
                    ),
                    Section(title="Your interests", theme_id=None, papers=picked[6:]),
                ],
                candidates=32,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=3_000, help="digests for the naive way")
    args = parser.parse_args()
    random.seed(7)
    print(f"building {args.digests:,} digests of 10 papers from the seeds ...", flush=True)
    batch = digests(args.digests)
    options = {
        "public_url": "https://digest.example.org",
        "hf_url": "https://huggingface.co",
        "sender": "Papers Digest <digest@example.org>",
        "secret_key": "bench-key",
    }
    ours = Renderer(**options)  # type: ignore[arg-type]
    naive = Renderer(**options)  # type: ignore[arg-type]
    naive_env = naive._html.environment
    naive_env.loader = _StyleTagLoader(TEMPLATES)
    naive_env.cache = {}
    naive._html = naive_env.get_template("digest.html.j2")
    inliner = css_inline.CSSInliner(keep_style_tags=False, keep_at_rules=True)

    ours.render(batch[0])  # warm the template cache
    start = time.perf_counter()
    size = 0
    for digest in batch:
        size += len(ours.render(digest).html)
    ours_rate = len(batch) / (time.perf_counter() - start)

    sample = batch[: args.baseline]
    start = time.perf_counter()
    for digest in sample:
        email = naive.render(digest)
        inliner.inline(email.html)
    naive_rate = len(sample) / (time.perf_counter() - start)

    print(f"inlined once per template : {ours_rate:8,.0f} digests/s over {len(batch):,} digests")
    print(f"inlined per email (naive) : {naive_rate:8,.0f} digests/s over {len(sample):,} digests")
    print(f"ratio                     : {ours_rate / naive_rate:8.1f}x")
    print(f"mean HTML size            : {size / len(batch) / 1024:8.1f} KiB (budget 95 KB)")
    print(f"target >= 5,000 digests/s : {'met' if ours_rate >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    main()
