"""One send run in its own process, for the crash and concurrency tests:

    python -m tests.send_run DATABASE_URL CHANNEL FOLDER DAY RATE LEASE

Prints the run's summary as JSON on its last line.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from digest.archive import Archive
from digest.db import get_engine
from digest.db.models import Cadence
from digest.periods import Period
from digest.runtime import Runtime, SendOptions
from digest.sending import send_digests
from digest.themes import load_themes
from tests.test_render import RENDERER


def main() -> None:
    url, channel, folder, day, rate, lease = sys.argv[1:7]
    summary = send_digests(
        Runtime(
            engine=get_engine(url),
            themes=load_themes(),
            renderer=RENDERER,
            archive=Archive(Path(folder) / "archive", "https://digest.example.org"),
            channel=channel,
            outbox=Path(folder) / "outbox",
            options=SendOptions(
                workers=4, batch=250, rate=float(rate), lease=float(lease), backoff=0.01
            ),
        ),
        period=Period.day(date.fromisoformat(day)),
        cadence=Cadence.daily,
    )
    print(json.dumps({"sent": summary.sent, "earlier": summary.earlier, "failed": summary.failed}))


if __name__ == "__main__":
    main()
