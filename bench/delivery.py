"""Throughput to a local SMTP sink (aiosmtpd in its own process) for rendered digests, three ways
in one run: our send path (ledger claim / sent / confirm per message, SMTP deliverer, reused
connections); a bare pipelined sender (the same number of smtplib connections pushing pre-built
messages, no ledger: the practical limit of this sink here); and one connection per message
(a plain apprise notify per message, and bare smtplib doing the same), measured on samples.

    .venv/bin/python bench/delivery.py [--messages 10000] [--workers 4] [--database URL]
"""

from __future__ import annotations

import argparse
import dataclasses
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.assemble import Digest  # noqa: E402
from digest.db import (  # noqa: E402
    get_engine,
    ledger,  # noqa: E402
    session_scope,
)
from digest.db.models import Cadence, Subscriber, utcnow  # noqa: E402
from digest.periods import Period  # noqa: E402
from digest.render import Renderer  # noqa: E402
from digest.runtime import SendOptions
from digest.send_summary import SendSummary  # noqa: E402
from digest.workers import Outgoing, deliver_all  # noqa: E402
from tests.smtp_sink import free_port  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import digests  # noqa: E402

DAY = date(2026, 4, 15)


def start_sink() -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    sink = subprocess.Popen(
        [sys.executable, "-m", "tests.smtp_sink", str(port)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    return sink, port


def prepare(url: str, batch: list[Digest], renderer: Renderer) -> list[Outgoing]:
    engine = get_engine(url)
    now = utcnow()
    with session_scope(engine) as session:
        people = [
            Subscriber(email=d.email, created_at=now, updated_at=now, status="confirmed")
            for d in batch
        ]
        session.add_all(people)
        session.flush()
        ids = [p.id for p in people]
    period = Period.day(DAY)
    rows = [
        ledger.IssuePlan(
            subscriber_id=sid,
            issue_id=renderer.issue_id(d),
            cadence=Cadence.daily,
            period_start=DAY,
            period_end=DAY,
            paper_keys=d.paper_keys,
        )
        for sid, d in zip(ids, batch, strict=True)
    ]
    planned = {p.subscriber_id: p for p in ledger.plan(engine, rows)}
    del period
    return [
        Outgoing(planned[sid], renderer.render(d), "") for sid, d in zip(ids, batch, strict=True)
    ]


def bare(port: int, messages: list[tuple[str, str, bytes]], workers: int) -> float:
    chunks = [messages[i::workers] for i in range(workers)]

    def push(chunk: list[tuple[str, str, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for sender, to, data in chunk:
                smtp.sendmail(sender, [to], data)

    threads = [threading.Thread(target=push, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(messages) / (time.perf_counter() - start)


def apprise_per_message(port: int, outgoing: list[Outgoing]) -> float:
    """A plain apprise notify per message: a new Apprise() each time (one connection each;
    reusing one object would add apprise's 5.5 s throttle between notifies)."""
    import apprise

    start = time.perf_counter()
    for item in outgoing:
        notifier = apprise.Apprise()
        notifier.add(
            f"mailto://127.0.0.1:{port}?from=digest@example.org&to={item.email.to}&mode=insecure"
        )
        assert notifier.notify(body=item.email.html, title=item.email.subject)
    return len(outgoing) / (time.perf_counter() - start)


def one_per_message(port: int, messages: list[tuple[str, str, bytes]]) -> float:
    start = time.perf_counter()
    for sender, to, data in messages:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail(sender, [to], data)
    return len(messages) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--sample", type=int, default=300, help="messages for one-per-message")
    parser.add_argument("--apprise-sample", type=int, default=100, help="messages via apprise")
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    url = args.database or f"sqlite:///{folder / 'bench.db'}"
    renderer = Renderer(
        public_url="https://digest.example.org",
        hf_url="https://huggingface.co",
        sender="Papers Digest <digest@example.org>",
        secret_key="bench-key",
    )
    print(f"rendering {args.messages:,} digests and planning their ledger rows ...", flush=True)
    batch = digests(args.messages)
    outgoing = prepare(url, batch, renderer)
    prebuilt = [("digest@example.org", o.email.to, o.email.as_bytes()) for o in outgoing]
    sink, port = start_sink()
    try:
        channel = f"smtp://127.0.0.1:{port}"
        outgoing = [dataclasses.replace(o, channel=channel) for o in outgoing]
        summary = SendSummary(period=DAY.isoformat(), cadence="daily")
        start, cpu = time.perf_counter(), time.process_time()
        deliver_all(
            get_engine(url),
            outgoing,
            summary,
            channel=channel,
            outbox=folder / "outbox",
            options=SendOptions(workers=args.workers),
        )
        ours = len(outgoing) / (time.perf_counter() - start)
        ours_cpu = (time.process_time() - cpu) / len(outgoing) * 1e6
        assert summary.sent == len(outgoing), summary
        pipelined = bare(port, prebuilt, args.workers)
        single = one_per_message(port, prebuilt[: args.sample])
        plain_apprise = apprise_per_message(port, outgoing[: args.apprise_sample])
    finally:
        sink.terminate()
        sink.wait()
    print(f"our deliverer (ledger included) : {ours:8,.0f} msg/s over {len(outgoing):,}")
    print(f"  CPU in this process           : {ours_cpu:8,.0f} µs per message")
    print(f"bare pipelined sender           : {pipelined:8,.0f} msg/s over {len(prebuilt):,}")
    print(
        f"apprise notify per message      : {plain_apprise:8,.0f} msg/s over {args.apprise_sample:,}"
    )
    print(f"smtplib, one connection each    : {single:8,.0f} msg/s over {args.sample:,}")
    print(f"ours / bare                     : {ours / pipelined:8.0%}  (target >= 80%)")
    print(f"ours / apprise per message      : {ours / plain_apprise:8.1f}x (target >= 10x)")
    print(f"ours / smtplib one per message  : {ours / single:8.1f}x")
    print(f"database                        : {url.split(':')[0]}")


if __name__ == "__main__":
    main()
