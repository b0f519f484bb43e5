"""Shared fixtures: a clean environment per test, real databases, a real loopback site, and one
Prefect test harness per session (it costs ~18 s to start, so only flow tests ask for it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# Prefect's INFO lines (e.g. "Stopping temporary server") would be written at session end to
# pytest's capture stream after it is closed; tests read results, not Prefect's log.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from flows import use_prefect_defaults  # noqa: E402

use_prefect_defaults()  # before Prefect is imported

from digest.db import get_engine  # noqa: E402
from digest.settings import BUNDLED_SEEDS_DIR  # noqa: E402
from digest.sources.http import Fetcher  # noqa: E402
from tests.site import LocalSite  # noqa: E402

SEEDS = BUNDLED_SEEDS_DIR

# In CI the same examples run every time, so a red run is reproducible and not luck.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
KEEP = {"DIGEST_TEST_DATABASE_URL"}


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No DIGEST_* setting leaks in from the shell; data goes to this test's temp folder."""
    for name in list(os.environ):
        if name.startswith("DIGEST_") and name not in KEEP:
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv("DIGEST_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    return data


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a throwaway schema in PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        yield url
        _forget(url)
        return
    base = os.environ.get("DIGEST_TEST_DATABASE_URL")
    if not base:
        pytest.skip("PostgreSQL: DIGEST_TEST_DATABASE_URL is not set")
    yield from _postgres_schema(base)


def _postgres_schema(base: str) -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    schema = "t_" + uuid.uuid4().hex[:12]
    parsed = make_url(base)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    try:
        yield url
    finally:
        _forget(url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _forget(url: str) -> None:
    """Close the cached engine for ``url`` so its connections do not outlive the test."""
    get_engine(url).dispose()
    get_engine.cache_clear()


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    return get_engine(database_url)


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    """Waits the fetcher would have slept, recorded instead of slept."""
    return []


@pytest.fixture
def fetcher(site: LocalSite, sleeps: list[float]) -> Iterator[Fetcher]:
    with Fetcher(
        site.url,
        user_agent="papers-digest-tests/1",
        timeout=2.0,
        retries=3,
        backoff=0.5,
        max_wait=60,
        sleep=sleeps.append,
    ) as client:
        yield client


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
