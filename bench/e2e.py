"""The whole daily job for many synthetic subscribers, Prefect included: ``daily`` ingests the
seeds, refreshes the archive and sends every subscriber their digest for the newest day (to the
outbox, or with ``--smtp`` to a local aiosmtpd sink in its own process). Prints wall time, peak
RSS and the send run's time per stage, beside the baseline this machine allows: the sink's own
rate for pre-built messages (bench/delivery.py's bare sender) when ``--smtp`` is given.

The flow runs against a Prefect server started first, in its own process, as in production
(`prefect server start`, or the one `digest serve` keeps up): every flow and task run, state
change, log line and artifact goes through its API, but the server's start is timed apart.
``--ephemeral`` instead lets Prefect start its temporary server inside the run (what the first
`digest run` on a new machine does), and that start is then part of the flow's time.

With MiniLM (the default), the embeddings cache starts as yesterday's run left it: every paper
listed before the newest seed day and every subscriber's profile already embedded, so the run
embeds the newest day's papers, in a child process, as a real day does. ``--cold`` starts
with an empty cache instead (a new machine's first run: all 301 papers and every profile).

    .venv/bin/python bench/e2e.py [--subscribers 10000] [--smtp] [--shards 1] [--lexical]
                                  [--cold] [--ephemeral]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from digest.compose import composer_for  # noqa: E402
from digest.db import get_engine  # noqa: E402
from digest.db.models import Cadence, Subscriber, SubscriberStatus, Subscription, utcnow  # noqa: E402
from digest.db.papers import newest_listing_day
from digest.db.subscribers import due_subscribers
from digest.embeddings import ModelProcess, load_cached_embedder  # noqa: E402
from digest.ingest import ingest_pages, read_pages  # noqa: E402
from digest.periods import Period  # noqa: E402
from digest.settings import Settings, load_settings  # noqa: E402
from digest.themes import load_themes  # noqa: E402

KEYWORDS = [
    "GRPO",
    "diffusion",
    "agents",
    "speculative decoding",
    "quantization",
    "robot",
    "jailbreak",
    "speech",
    "video generation",
    "reward model",
    "retrieval",
    "benchmark",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai"]


def add_subscribers(url: str, count: int, seed: int = 7) -> None:
    """``count`` confirmed subscribers, 1-3 themes each; one in ten adds a keyword profile
    (from a small vocabulary, as real interests repeat). Inserted in bulk."""
    rng = random.Random(seed)
    themes = list(load_themes())
    now = utcnow()
    engine = get_engine(url)
    people = [
        {
            "email": f"reader{i:06d}@example.org",
            "name": "",
            "timezone": rng.choice(ZONES),
            "status": SubscriberStatus.confirmed,
            "quiet_days": False,
            "bounces": 0,
            "paused": False,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Subscriber), people)
        rows = []
        for person_id in range(1, count + 1):
            common = {
                "subscriber_id": person_id,
                "liked": [],
                "disliked": [],
                "require": [],
                "exclude": [],
                "authors": [],
                "cadence": Cadence.daily,
                "max_items": 10,
                "threshold": 0.0,
                "active": True,
                "created_at": now,
            }
            for theme in rng.sample(themes, rng.randint(1, 3)):
                rows.append({**common, "theme_id": theme, "interest": "", "keywords": []})
            if rng.random() < 0.1:
                rows.append(
                    {
                        **common,
                        "theme_id": None,
                        "interest": "",
                        "keywords": rng.sample(KEYWORDS, 2),
                    }
                )
        connection.execute(insert(Subscription), rows)


def warm_as_yesterday(settings: Settings, count: int) -> int:
    """Fill the embeddings cache as yesterday's daily run leaves it: the papers first listed
    before the newest seed day and the subscribers' profiles. Works on a scratch store (the
    seeds and the same synthetic subscribers), deleted after; returns the vectors cached."""
    scratch = Path(tempfile.mkdtemp(prefix="digest-e2e-yesterday-"))
    url = f"sqlite:///{scratch}/digest.db"
    ingest_pages(read_pages("seeds", settings.seeds_dir, None), url)
    add_subscribers(url, count)
    engine = get_engine(url)
    newest = newest_listing_day(engine)
    assert newest is not None
    model = load_cached_embedder(settings)
    assert model is not None, "the semantic extra is not installed: use --lexical"
    yesterday = Period.span(date(2000, 1, 1), newest - timedelta(days=1))
    composer = composer_for(engine, yesterday, load_themes(), lambda: model)
    composer.prepare([subscriptions for _, subscriptions in due_subscribers(engine, Cadence.daily)])
    engine.dispose()
    shutil.rmtree(scratch)
    return len(model)


def start_prefect_server(home: Path) -> subprocess.Popen[bytes]:
    """``prefect server start`` on a free loopback port; sets ``PREFECT_API_URL`` to it."""
    from tests.smtp_sink import free_port

    port = free_port()
    os.environ.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_UI_ENABLED="false",
    )
    prefect = str(Path(sys.executable).parent / "prefect")
    log = (home.parent / "prefect-server.log").open("wb")
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit(f"the Prefect server did not start; see {log.name}")


def sink_limit(port: int, workers: int, count: int = 3000) -> float:
    """What the SMTP sink takes from bench/delivery.py's bare pipelined sender: ``count``
    rendered digests, pre-built, over ``workers`` connections, no ledger."""
    from delivery import bare
    from render import digests

    from digest.render import Renderer

    renderer = Renderer(
        public_url="https://digest.example.org",
        hf_url="https://huggingface.co",
        sender="Papers Digest <digest@example.org>",
        secret_key="bench-key",
    )
    messages = [
        ("digest@example.org", d.email, renderer.render(d).as_bytes()) for d in digests(count)
    ]
    return bare(port, messages, workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--smtp", action="store_true", help="deliver to a local SMTP sink")
    parser.add_argument("--shards", type=int, default=1, help="DIGEST_SEND_SHARDS")
    parser.add_argument("--lexical", action="store_true", help="no MiniLM (DIGEST_SEMANTIC=0)")
    parser.add_argument("--cold", action="store_true", help="start with no embeddings cached")
    parser.add_argument("--warm-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--ephemeral", action="store_true", help="Prefect's temporary server, started in the run"
    )
    args = parser.parse_args()
    if args.warm_only:  # the run's preparation, in a process of its own
        print(warm_as_yesterday(load_settings(), args.subscribers))
        return

    data = Path(tempfile.mkdtemp(prefix="digest-e2e-"))
    os.environ.update(
        DIGEST_DATA_DIR=str(data),
        DIGEST_SEND_SHARDS=str(args.shards),
        DIGEST_SEMANTIC="0" if args.lexical else "1",
    )
    cached = 0
    if not args.lexical and not args.cold:  # in its own process: it must not count in the peak
        warm = [sys.executable, __file__, "--warm-only", "--subscribers", str(args.subscribers)]
        cached = int(subprocess.run(warm, check=True, capture_output=True).stdout.split()[-1])
    sink = None
    if args.smtp:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from delivery import start_sink

        sink, port = start_sink()
        os.environ["DIGEST_DELIVERY"] = f"smtp://127.0.0.1:{port}"
    server, booted = None, 0.0
    if not args.ephemeral:
        clock = time.perf_counter()
        server = start_prefect_server(data / "prefect")
        booted = time.perf_counter() - clock
    from flows import use_prefect_defaults

    use_prefect_defaults()  # before Prefect is imported
    from flows.daily import daily

    settings = load_settings()
    started = time.perf_counter()
    add_subscribers(settings.db_url, args.subscribers)
    seeded = time.perf_counter()
    limit = 0.0
    try:
        send = daily(source="seeds")
        finished = time.perf_counter()
        if sink is not None:  # the sink's own limit, measured now, on the same sink
            limit = sink_limit(port, settings.send_workers)
    finally:
        for process in (sink, server):
            if process is not None:
                process.terminate()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch = "torch" in sys.modules
    print(f"subscribers               : {args.subscribers:,} ({'SMTP sink' if sink else 'outbox'})")
    if server is not None:
        print(f"Prefect server start      : {booted:8.1f} s (its own process, before the run)")
    print(f"create subscribers (bulk) : {seeded - started:8.1f} s")
    prefect = "temporary server start incl." if args.ephemeral else "via the server's API"
    print(f"daily flow, Prefect {prefect}: {finished - seeded:8.1f} s")
    print(f"  sent / skipped / failed : {send.sent:,} / {send.skipped:,} / {send.failed:,}")
    for stage, seconds in send.seconds.items():
        label = "deliver (wait left)" if stage == "deliver" else stage
        print(f"  {label:23} : {seconds:8.1f} s")
    rest = finished - seeded - sum(send.seconds.values())
    print(f"  ingest, archive, Prefect: {rest:8.1f} s")
    print("  (a batch is delivered while the next is prepared: deliver is the wait left over)")
    flow_rate = send.sent / (finished - seeded)
    send_rate = send.sent / sum(send.seconds.values())
    print(f"  whole flow              : {flow_rate:8,.0f} msg/s")
    print(f"  send run alone          : {send_rate:8,.0f} msg/s (embed to deliver)")
    if limit:
        print(f"  sink's limit (bare)     : {limit:8,.0f} msg/s (pre-built messages, no ledger)")
        print(f"  whole flow / limit      : {flow_rate / limit:8.0%}")
        print(f"  send run / limit        : {send_rate / limit:8.0%}")
    if not args.lexical:
        cache = "empty (--cold)" if args.cold else f"{cached} vectors, as yesterday left it"
        print(f"embeddings cache at start : {cache}")
        print(f"embedding child peak RSS  : {ModelProcess.peak_mib:8.0f} MiB (0: not needed)")
        print(f"embedding child wall time : {ModelProcess.seconds:8.1f} s (in the flow's time)")
        print(f"torch in the flow process : {'yes' if torch else 'no'}")
    print(f"peak RSS (this process)   : {peak:8.0f} MiB")
    if sink is None:  # the targets are for the outbox; the sink run reports its ratio
        target = 30 if args.subscribers <= 10_000 else 300
        verdict = "met" if finished - seeded < target and peak < 1024 else "NOT met"
        print(f"target < {target} s, < 1 GiB    : {verdict}")


if __name__ == "__main__":
    main()
