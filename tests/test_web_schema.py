"""schemathesis against the web app's OpenAPI schema: generated requests (odd lengths, types,
encodings, tokens) to every documented operation never make the server fail (5xx).

The app is built when the module loads (schemathesis needs it to read the schema); its store
is a SQLite file in a temporary folder, filled with the seeds before the first case."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from digest.db import get_engine
from digest.ingest import ingest_pages, read_pages
from digest.requests import request_from
from digest.settings import load_settings
from digest.subscriptions import subscribe
from digest.themes import load_themes
from digest.web import create_app
from tests.conftest import SEEDS

CONFIG = load_settings(
    data_dir=Path(tempfile.mkdtemp(prefix="digest-schemathesis-")),
    signup_rate="10000/minute",
    signup_resend=0,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(CONFIG))


@pytest.fixture(scope="module", autouse=True)
def filled_store() -> None:
    engine = get_engine(CONFIG.db_url)
    ingest_pages(read_pages("seeds", SEEDS, None), CONFIG.db_url)
    wanted = request_from({"email": "a@example.org", "themes": ["agents"]}, "schemathesis")
    subscribe(engine, wanted, load_themes())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_the_server_fail(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
