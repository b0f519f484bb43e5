"""A real `digest send` on the README's set-up (no PREFECT_API_URL: a temporary Prefect server),
killed with SIGKILL mid-send: its temporary server dies with it, and the next `digest send`
completes within a lease, sending each message once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digest.ingest import ingest_pages, read_pages
from digest.requests import request_from
from digest.subscriptions import subscribe
from digest.themes import load_themes
from tests.conftest import SEEDS
from tests.smtp_sink import Sink

ROOT = Path(__file__).resolve().parent.parent
LEASE = 60
DIGEST = [sys.executable, "-c", "from flows.cli import main; main()"]


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.mark.timeout(600)
def test_a_killed_send_blocks_nothing_and_its_temporary_server_dies_with_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'digest.db'}"
    ingest_pages(read_pages("seeds", SEEDS, None), url)
    from digest.db import get_engine

    engine = get_engine(url)
    emails = [f"reader{i:02d}@example.org" for i in range(30)]
    for email in emails:
        subscribe(
            engine, request_from({"email": email, "themes": ["agents"]}, email), load_themes()
        )
    engine.dispose()
    with Sink() as sink:
        sink.handler.slow_seconds = 45  # still waiting when the run is killed
        sink.handler.faults[emails[0]] = ["slow"]  # holds the first run mid-send
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PREFECT_API", "PREFECT_HOME"))
        }
        env |= {
            "DIGEST_DATA_DIR": str(data),
            "DIGEST_DELIVERY": f"{sink.url}?timeout=120",
            "DIGEST_SEND_LEASE": str(LEASE),
            "DIGEST_SEMANTIC": "false",
            "DIGEST_SEND_BACKOFF": "0.1",
        }
        first = subprocess.Popen([*DIGEST, "send", "--newest"], cwd=ROOT, env=env)
        try:
            wait_for(lambda: sink.handler.connections > 0, 180, "the first run to connect")
            wait_for(lambda: len(sink.handler.messages) >= 5, 60, "a few messages")
            servers = children(first.pid)
            assert servers, "the temporary Prefect server should be a child of the run"
            first.send_signal(signal.SIGKILL)
            first.wait()
            wait_for(lambda: not any(alive(p) for p in servers), 30, "the server to die with it")
        finally:
            if first.poll() is None:
                first.kill()
        sink.handler.faults.clear()
        started = time.monotonic()
        rerun = subprocess.run(
            [*DIGEST, "send", "--newest"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=LEASE + 240,
        )
        took = time.monotonic() - started
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        print(f"rerun after SIGKILL took {took:.1f} s (lease {LEASE} s)")
        received = sink.handler.recipients()
        # The killed run's message in DATA was cut with it (its server discarded it): the
        # ledger says sent with no reply, never resent by a run, listed for the operator.
        assert received == dict.fromkeys(emails[1:], 1)
        listed = subprocess.run(
            [*DIGEST, "unconfirmed"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert emails[0] in listed.stdout, listed.stdout + listed.stderr
        lost = next(line for line in listed.stdout.splitlines() if emails[0] in line)
        resend = subprocess.run(
            [*DIGEST, "unconfirmed", "--resend", lost.split()[0]],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert resend.returncode == 0, resend.stdout + resend.stderr
        assert "Reopened 1" in resend.stdout
    assert sink.handler.recipients() == dict.fromkeys(emails, 1)  # all, once
