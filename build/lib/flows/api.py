"""The Prefect API a command's flows report to: the configured server, else a temporary one that
lives and dies with this process.

Prefect's own temporary server outlives a killed parent (its uvicorn child keeps running), and
its concurrency leases live in that server's memory: a slot taken by a run that was killed stays
taken in ``prefect.db`` for ever, and the next run waits on it. So ``digest`` starts the
temporary server itself, asks the kernel to kill it when this process dies (``PR_SET_PDEATHSIG``),
and ``uses_temporary_server`` tells the send flow not to take a slot there (the ledger's own
leases already keep overlapping runs from sending anything twice).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import prefect
from prefect.logging.handlers import APILogWorker
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)

from digest.errors import ConfigError

__all__ = ["prefect_api", "uses_temporary_server"]

_PR_SET_PDEATHSIG = 1
_TEMPORARY: set[str] = set()
"""API URLs of the temporary servers this process started and still runs."""


def uses_temporary_server() -> bool:
    """Whether flows report to a temporary server of this process (whose state dies with it)."""
    return get_current_settings().api.url in _TEMPORARY


@contextmanager
def prefect_api() -> Iterator[str]:
    """The API URL flows use inside the block: ``PREFECT_API_URL`` when one is configured (or
    a test harness set it), else a temporary server started here and stopped at the end."""
    configured = get_current_settings().api.url
    if configured:
        yield configured
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    server = _start(port)
    try:
        _wait_healthy(server, url)
        _TEMPORARY.add(url)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        _TEMPORARY.discard(url)
        APILogWorker.drain_all(timeout=5)  # the runs' last log lines, while the server is up
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _start(port: int) -> subprocess.Popen[bytes]:
    parent = os.getpid()
    settings = get_current_settings().to_environment_variables(exclude_unset=True)
    env = {
        **os.environ,
        **settings,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(prefect.__file__).parent.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env=env,
        preexec_fn=lambda: _die_with(parent),  # noqa: PLW1509  (no threads yet in the child)
    )


def _die_with(parent: int) -> None:
    """In the child, before it runs uvicorn: be killed when the parent dies, however it dies
    (SIGKILL included); if it already died in between, go now."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _wait_healthy(server: subprocess.Popen[bytes], url: str) -> None:
    limit = float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    deadline = time.monotonic() + limit
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise ConfigError(
                    f"the temporary Prefect server exited with code {server.returncode}"
                )
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise ConfigError(
        f"the temporary Prefect server did not answer within {limit:.0f} s "
        "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
