"""The README's second way to run: a real Prefect server on loopback, a process work pool, the
deployments from ``deployments/prefect.yaml`` and ``prefect worker start``. A backfill started
with ``prefect deployment run`` completes in the worker's own process and stores the days from
a loopback copy of the site; a parameter of the wrong type is refused before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from digest.db import count_rows, get_engine
from tests.site import LocalSite
from tests.smtp_sink import free_port
from tests.test_flows import MONDAY, serve_week

pytestmark = [pytest.mark.prefect]

REPO = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).parent / "prefect")


def prefect(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def run_backfill(
    env: dict[str, str], start: str, end: str, *more: str, watch: bool = True
) -> subprocess.CompletedProcess[str]:
    """``prefect deployment run 'backfill/backfill'``, waiting for the end of the run."""
    wait = ("--watch", "--watch-timeout", "240") if watch else ()
    command = ("deployment", "run", "backfill/backfill", "-p", f"start={start}", "-p", f"end={end}")
    return prefect(env, *command, *more, *wait)


class Background:
    """A long-running command (server, worker), stopped with SIGTERM and its output kept."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self._file = log.open("w")
        self.process = subprocess.Popen(
            [PREFECT, *args], env=env, cwd=REPO, stdout=self._file, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._file.close()


@pytest.fixture
def server(tmp_path: Path, clean_environ: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "DIGEST_DATA_DIR": str(clean_environ),
    }
    running = Background(
        env, tmp_path / "server.log", "server", "start", "--host", "127.0.0.1", "--port", str(port)
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert running.process.poll() is None, running.log.read_text()
            assert time.monotonic() < deadline, "the Prefect server did not start"
            time.sleep(0.5)
        yield env
    finally:
        running.stop()


def test_a_backfill_deployment_runs_on_a_process_worker(
    server: dict[str, str], site: LocalSite, tmp_path: Path, clean_environ: Path
) -> None:
    serve_week(site)
    env = {**server, "DIGEST_HF_BASE_URL": site.url, "DIGEST_HTTP_BACKOFF": "0"}
    created = prefect(env, "work-pool", "create", "papers-digest", "--type", "process")
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = prefect(
        env, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    for name in ("daily/daily", "weekly/weekly", "backfill/backfill"):
        assert name in deployed.stdout

    refused = run_backfill(
        env, str(MONDAY), str(MONDAY), "-p", "concurrency=many", watch=False
    )  # the wrong JSON type: the server refuses to create the run
    assert refused.returncode != 0
    assert "concurrency" in refused.stdout + refused.stderr
    worker = Background(env, tmp_path / "worker.log", "worker", "start", "--pool", "papers-digest")
    try:
        bad_date = run_backfill(
            env, "not-a-date", str(MONDAY)
        )  # a string that is no date: the run fails as it starts, before any request
        assert bad_date.returncode != 0
        assert site.seen == []
        end = MONDAY + timedelta(days=2)
        run = run_backfill(env, str(MONDAY), str(end))
    finally:
        worker.stop()
    assert "- start: Input should be a valid date" in worker.log.read_text()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output + worker.log.read_text()
    assert "Completed" in output
    assert [s.path for s in site.seen].count("/api/daily_papers") >= 3
    assert (
        count_rows(get_engine(f"sqlite:///{(clean_environ / 'digest.db').resolve()}"))["papers"]
        == 3 + 4 + 5
    )


def test_digest_serve_runs_a_backfill_triggered_from_the_prefect_cli(
    server: dict[str, str], site: LocalSite, tmp_path: Path, clean_environ: Path
) -> None:
    serve_week(site)
    env = {**server, "DIGEST_HF_BASE_URL": site.url, "DIGEST_HTTP_BACKOFF": "0"}
    serving = subprocess.Popen(
        [sys.executable, "-c", "from flows.cli import main; main()", "serve"],
        env=env,
        cwd=REPO,
        stdout=(tmp_path / "serve.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while "backfill" not in prefect(env, "deployment", "ls").stdout:
            assert serving.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "digest serve registered no deployments"
            time.sleep(1)
        listed = prefect(env, "deployment", "ls").stdout
        assert "daily/daily" in listed and "weekly/weekly" in listed
        run = run_backfill(env, str(MONDAY), str(MONDAY))
    finally:
        serving.send_signal(signal.SIGTERM)
        try:
            serving.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serving.kill()
    assert run.returncode == 0, run.stdout + run.stderr + (tmp_path / "serve.log").read_text()
    assert "Completed" in run.stdout
    engine = get_engine(f"sqlite:///{(clean_environ / 'digest.db').resolve()}")
    assert count_rows(engine)["papers"] == 3
