"""Prefect flows over the ``digest`` library: orchestration only, every task one library call.

Importing this package starts nothing. It only sets quiet, project-local defaults for Prefect
(no telemetry, state under ``DIGEST_DATA_DIR/prefect``, a startup timeout that suits 2-core
machines) before Prefect is first imported; anything already set in the environment wins.
"""

from __future__ import annotations

import os
from pathlib import Path

_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_HOME": str(Path(os.environ.get("DIGEST_DATA_DIR", "data")).resolve() / "prefect"),
}
for _name, _value in _DEFAULTS.items():
    os.environ.setdefault(_name, _value)
# Prefect creates its home with a single mkdir; make the parents (the data folder) first.
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
