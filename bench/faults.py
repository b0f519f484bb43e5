"""Duplicates and losses per SMTP fault mode: 2,000 subscribers sent to a real aiosmtpd server
on loopback that misbehaves on 5 % of them, then a second run (what an operator's rerun does).
Counts, per mode, messages the server kept twice or more, messages it never kept, and what the
ledger calls unconfirmed. Run by hand:

    .venv/bin/python bench/faults.py [--subscribers 2000] [--share 0.05]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.archive import Archive  # noqa: E402
from digest.db import get_engine, unconfirmed  # noqa: E402
from digest.db.models import Cadence  # noqa: E402
from digest.ingest import ingest_pages, read_pages  # noqa: E402
from digest.periods import Period  # noqa: E402
from digest.render import Renderer  # noqa: E402
from digest.runtime import (
    Runtime,  # noqa: E402
    SendOptions,  # noqa: E402
)
from digest.sending import send_digests  # noqa: E402
from digest.settings import BUNDLED_SEEDS_DIR  # noqa: E402
from digest.subscriptions import import_subscribers  # noqa: E402
from digest.themes import load_themes  # noqa: E402
from tests.smtp_sink import Sink  # noqa: E402

MODES = {
    "keep-reset": "keeps the message, then resets the connection",
    "keep-close": "keeps the message, then closes without a reply",
    "drop": "closes without a reply, keeps nothing",
    "cut": "closes in the middle of DATA",
    "451": "answers 451 (try later)",
}


def run(mode: str, count: int, share: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        engine = get_engine(f"sqlite:///{root / 'bench.db'}")
        ingest_pages(read_pages("seeds", BUNDLED_SEEDS_DIR, None), str(engine.url))
        people = root / "people.csv"
        rows = [f"reader{i:05d}@example.org,llm-reasoning-rl,broad" for i in range(count)]
        people.write_text("email,themes,strictness\n" + "\n".join(rows) + "\n")
        themes = load_themes()
        import_subscribers(engine, people, themes)
        emails = [r.split(",")[0] for r in rows]
        unlucky = random.Random(mode).sample(emails, int(count * share))
        renderer = Renderer(
            public_url="https://digest.example.org",
            hf_url="https://huggingface.co",
            sender="Papers Digest <digest@example.org>",
            secret_key="bench-" + "k" * 40,
        )
        options = SendOptions(workers=4, backoff=0.01, lease=60)
        with Sink() as sink:
            for address in unlucky:
                sink.handler.faults[address] = [mode]
            started = time.perf_counter()
            summaries = [
                send_digests(
                    Runtime(
                        engine=engine,
                        themes=themes,
                        renderer=renderer,
                        archive=Archive(root / "archive", "https://digest.example.org"),
                        channel=sink.url,
                        outbox=root / "outbox",
                        options=options,
                    ),
                    period=Period.day(date(2026, 4, 15)),
                    cadence=Cadence.daily,
                )
                for _ in range(2)
            ]
            seconds = time.perf_counter() - started
            kept = sink.handler.recipients()
        sent_rows = count - summaries[0].skipped
        return {
            "sent": summaries[0].sent + summaries[1].sent,
            "skipped": summaries[0].skipped,
            "duplicates": sum(1 for n in kept.values() if n > 1),
            "lost": sum(1 for e in emails if kept[e] == 0) - summaries[0].skipped,
            "unconfirmed": len(unconfirmed.listed(engine)),
            "unconfirmed but kept": sum(1 for u in unconfirmed.listed(engine) if kept[u.email]),
            "rows": sent_rows,
            "seconds": seconds,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--share", type=float, default=0.05)
    args = parser.parse_args()
    print(f"{args.subscribers} subscribers, {args.share:.0%} of them hit by the fault, two runs")
    print(f"{'fault':12}{'duplicates':>11}{'lost':>6}{'unconfirmed':>13}{' (kept)':>9}{'s':>7}")
    for mode, what in MODES.items():
        r = run(mode, args.subscribers, args.share)
        print(
            f"{mode:12}{r['duplicates']:>11}{r['lost']:>6}{r['unconfirmed']:>13}"
            f"{r['unconfirmed but kept']:>9}{r['seconds']:>7.1f}   {what}"
        )


if __name__ == "__main__":
    main()
