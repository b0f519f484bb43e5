"""The polite client against a real loopback server with fault routes: what is retried, how long
it waits, what is not retried, and conditional GETs."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from digest.errors import FetchError, TransientFetchError
from digest.sources.http import Fetcher, Validators, retry_after_seconds
from tests.site import LocalSite, Reply

OK = Reply(body="[]")


def test_sends_a_descriptive_user_agent(site: LocalSite, fetcher: Fetcher) -> None:
    site.route("/api/x", OK)
    fetcher.get("/api/x")
    [seen] = site.seen
    assert seen.headers["User-Agent"] == "papers-digest-tests/1"


def test_a_429_waits_as_long_as_the_ratelimit_header_says(
    site: LocalSite, fetcher: Fetcher, sleeps: list[float]
) -> None:
    limited = Reply(
        429,
        headers={
            "RateLimit": '"api";r=0;t=7',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        },
    )
    site.route("/api/x", limited, OK)
    assert fetcher.get("/api/x").text == "[]"
    assert sleeps == [7.0]
    assert len(site.seen) == 2


def test_retry_after_is_honoured_and_capped(
    site: LocalSite, fetcher: Fetcher, sleeps: list[float]
) -> None:
    site.route(
        "/api/x",
        Reply(429, headers={"Retry-After": "3"}),
        Reply(503, headers={"Retry-After": "600"}),
        OK,
    )
    fetcher.get("/api/x")
    assert sleeps == [3.0, 60.0]  # the fixture's max_wait is 60 s


def test_5xx_is_retried_with_growing_backoff_then_succeeds(
    site: LocalSite, fetcher: Fetcher, sleeps: list[float]
) -> None:
    site.route("/api/x", Reply(503), Reply(502), OK)
    assert fetcher.get("/api/x").status == 200
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 1.5  # 0.5 * 2**n plus up to 0.5 jitter


def test_5xx_that_persists_gives_a_transient_error_after_the_retries(
    site: LocalSite, fetcher: Fetcher
) -> None:
    site.route("/api/x", Reply(503))
    with pytest.raises(TransientFetchError) as caught:
        fetcher.get("/api/x")
    assert caught.value.status == 503 and caught.value.url.endswith("/api/x")
    assert len(site.seen) == 4  # the first try and 3 retries


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_other_4xx_fail_at_once(site: LocalSite, fetcher: Fetcher, status: int) -> None:
    site.route("/api/x", Reply(status, '{"error":"nope"}'))
    with pytest.raises(FetchError) as caught:
        fetcher.get("/api/x")
    assert not isinstance(caught.value, TransientFetchError)
    assert caught.value.status == status and "nope" in str(caught.value)
    assert len(site.seen) == 1


def test_a_slow_answer_times_out_as_transient(site: LocalSite, sleeps: list[float]) -> None:
    site.route("/api/slow", Reply(body="[]", delay=1.0))
    with Fetcher(
        site.url, user_agent="t", timeout=0.2, retries=1, backoff=0, sleep=sleeps.append
    ) as quick:
        with pytest.raises(TransientFetchError, match="timed out"):
            quick.get("/api/slow")
    assert len(site.requests_to("/api/slow")) == 2


def test_a_cut_off_body_is_transient_and_the_retry_succeeds(
    site: LocalSite, fetcher: Fetcher
) -> None:
    site.route("/api/x", Reply(body='[{"a": 1}, {"b": 2}]', truncate=True), OK)
    assert fetcher.get("/api/x").text == "[]"
    assert len(site.seen) == 2


def test_nobody_listening_is_transient(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Fetcher(
        f"http://127.0.0.1:{port}", user_agent="t", retries=1, backoff=0, sleep=sleeps.append
    ) as client:
        with pytest.raises(TransientFetchError, match="connection failed"):
            client.get("/api/x")


def test_conditional_get_sends_validators_and_reads_304(
    site: LocalSite, sleeps: list[float]
) -> None:
    site.route(
        "/api/x",
        Reply(
            body="[1, 2]",
            headers={"ETag": '"v1"', "Last-Modified": "Fri, 06 Mar 2026 09:00:00 GMT"},
        ),
    )
    with Fetcher(site.url, user_agent="t") as first:
        fresh = first.get("/api/x")
    assert (fresh.text, fresh.etag) == ("[1, 2]", '"v1"')
    remembered = {fresh.url: Validators(fresh.etag, fresh.last_modified, item_count=2)}
    with Fetcher(site.url, user_agent="t", validators=remembered.get) as second:
        again = second.get("/api/x")
    assert again.status == 304 and again.text is None
    assert again.previous == remembered[fresh.url]
    assert site.seen[-1].headers["If-None-Match"] == '"v1"'
    assert site.seen[-1].headers["If-Modified-Since"] == "Fri, 06 Mar 2026 09:00:00 GMT"


def test_retry_after_parsing() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=30)
    assert retry_after_seconds({"RateLimit": '"pages";r=0;t=42'}) == 42.0
    assert retry_after_seconds({"Retry-After": "5"}) == 5.0
    assert (
        25 <= (retry_after_seconds({"Retry-After": format_datetime(soon, usegmt=True)}) or 0) <= 30
    )
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None
