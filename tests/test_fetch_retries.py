"""One retry layer: a URL that keeps failing costs exactly 1 + DIGEST_HTTP_RETRIES requests
through the flows' fetch task (the HTTP client retries; the Prefect task must not retry again)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from digest.errors import PartialFailure, TransientFetchError
from flows.backfill import backfill
from flows.ingest import ingest
from tests.site import LocalSite, Reply

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
FRIDAY = date(2026, 3, 6)


def run_ingest() -> object:
    return ingest(source="hf-api", period=str(FRIDAY))


def run_backfill() -> object:
    return backfill(start=FRIDAY, end=FRIDAY, source="hf-api")


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize(
    ("run", "raised"), [(run_ingest, TransientFetchError), (run_backfill, PartialFailure)]
)
def test_a_url_that_keeps_failing_costs_one_request_plus_the_http_retries(
    site: LocalSite,
    monkeypatch: pytest.MonkeyPatch,
    retries: int,
    run: Callable[[], object],
    raised: type[Exception],
) -> None:
    monkeypatch.setenv("DIGEST_HF_BASE_URL", site.url)
    monkeypatch.setenv("DIGEST_HTTP_BACKOFF", "0")
    monkeypatch.setenv("DIGEST_HTTP_RETRIES", str(retries))
    site.route("/api/daily_papers", Reply(503), date=str(FRIDAY), limit=100, p=0)
    with pytest.raises(raised, match="HTTP 503"):
        run()
    assert len(site.requests_to("/api/daily_papers")) == 1 + retries
