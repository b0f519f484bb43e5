"""Prefect flows over the ``digest`` library: orchestration only, every task one library call.

Importing this package does nothing. The console script (``flows.cli.main``) first calls
``use_prefect_defaults``, before Prefect is imported; tests and benchmarks call it too.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PREFECT_DEFAULTS", "use_prefect_defaults"]


PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "digest",
    # outside a flow run (the web app, the CLI's own commands) those lines go to the console
    # only, without a warning that there is no run to send them to
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}
"""Set by ``use_prefect_defaults`` where unset, with ``PREFECT_HOME`` (the README lists them)."""


def use_prefect_defaults() -> None:
    """Quiet, project-local defaults for Prefect: no telemetry, its state under
    ``DIGEST_DATA_DIR/prefect``, a startup timeout that suits 2-core machines, and the library's
    own log lines (``digest.*``: "semantic scoring is off…", a source's skipped day) in each
    flow run's log, not only on the console. Anything already set in the environment wins.
    Call it before Prefect is imported: it reads them then."""
    home = Path(os.environ.get("DIGEST_DATA_DIR", "data")).resolve() / "prefect"
    for name, value in {**PREFECT_DEFAULTS, "PREFECT_HOME": str(home)}.items():
        os.environ.setdefault(name, value)
    # Prefect creates its home with a single mkdir; make the parents (the data folder) first.
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
