"""Parse rate of the seed pages and of a 100-item API page, each beside a floor measured in the
same run: splitting the seed text into lines, and json.loads of the API page without validation.

    .venv/bin/python bench/parse.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.periods import Period  # noqa: E402
from digest.settings import BUNDLED_SEEDS_DIR  # noqa: E402
from digest.sources import RawPage, get_source  # noqa: E402
from tests.factories import api_day  # noqa: E402

ROUNDS = 30


def rate(action: Callable[[], int], rounds: int = ROUNDS) -> tuple[float, int]:
    """Items per second over ``rounds`` calls (best of three batches)."""
    best = float("inf")
    items = 0
    for _ in range(3):
        start = time.perf_counter()
        items = sum(action() for _ in range(rounds))
        best = min(best, time.perf_counter() - start)
    return items / best, items // rounds


def main() -> None:
    seeds = get_source("seeds")
    pages = seeds.read(BUNDLED_SEEDS_DIR, None)
    texts = [p.text or "" for p in pages]
    parsed, per_round = rate(lambda: sum(len(seeds.parse(p)) for p in pages))
    floor, _ = rate(lambda: sum(len([ln for ln in t.split("\n") if ln]) for t in texts))
    print(f"seeds: {per_round} entries per pass, {parsed:,.0f} entries/s parsed")
    print(
        f"       floor (split into non-empty lines): {floor:,.0f} lines/s; ratio {floor / parsed:.1f}x"
    )

    api = get_source("hf-api")
    text = json.dumps(api_day(date(2026, 3, 6), 100))
    page = RawPage(
        source="hf-api",
        location="bench",
        listing="day/2026-03-06",
        listed_on=date(2026, 3, 6),
        period=Period.day(date(2026, 3, 6)),
        fetched_at=datetime.now(UTC),
        text=text,
    )
    validated, per_page = rate(lambda: len(api.parse(page)))
    bare, _ = rate(lambda: len(json.loads(text)))
    print(
        f"api:   {per_page}-item page ({len(text) / 1024:.0f} KiB), {validated:,.0f} items/s parsed and validated"
    )
    print(
        f"       floor (json.loads only): {bare:,.0f} items/s; validation costs {bare / validated:.1f}x"
    )


if __name__ == "__main__":
    main()
