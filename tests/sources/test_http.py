"""The polite client against a real loopback server with fault routes: what is retried, how long
it waits, what is not retried, and conditional GETs."""

from __future__ import annotations

import gzip
import socket
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from digest.errors import ConfigError, FetchError, TransientFetchError
from digest.settings import load_settings
from digest.sources.http import Fetcher, Validators, retry_after_seconds
from tests.factories import API_SAMPLE
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


# --- body size limit: a small gzip body must not inflate without bound ----------------------------


def gzip_bomb(inflated: int) -> bytes:
    """``inflated`` zero bytes, gzipped: about a thousandth of that on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    return b"".join(packer.compress(block) for _ in range(inflated >> 20)) + packer.flush()


class CountingTransport(httpx.HTTPTransport):
    """httpx's own transport, counting the body bytes it hands over (as sent, still gzipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.body_bytes = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        inner = response.stream
        assert isinstance(inner, httpx.SyncByteStream)
        transport = self

        class Counted(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for chunk in inner:
                    transport.body_bytes += len(chunk)
                    yield chunk

            def close(self) -> None:
                inner.close()

        response.stream = Counted()
        return response


def test_a_gzip_bomb_is_refused_while_inflating_and_not_read_to_the_end(
    site: LocalSite, sleeps: list[float]
) -> None:
    bomb = gzip_bomb(128 << 20)  # ~130 KB on the wire, 128 MiB inflated
    site.route("/api/bomb", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    counting = CountingTransport()
    with Fetcher(
        site.url, user_agent="t", max_bytes=1_000_000, transport=counting, sleep=sleeps.append
    ) as client:
        with pytest.raises(FetchError) as caught:
            client.get("/api/bomb")
    assert not isinstance(caught.value, TransientFetchError)  # retrying cannot make it smaller
    assert caught.value.url.endswith("/api/bomb") and caught.value.status == 200
    assert "exceeds the 1000000-byte limit (DIGEST_HTTP_MAX_BYTES)" in str(caught.value)
    assert len(site.seen) == 1
    assert 0 < counting.body_bytes < len(bomb)  # stopped reading part-way


def test_a_gzipped_answer_is_inflated_to_the_real_sample(site: LocalSite, fetcher: Fetcher) -> None:
    text = API_SAMPLE.read_text(encoding="utf-8")
    site.route(
        "/api/x", Reply(body=gzip.compress(text.encode()), headers={"Content-Encoding": "gzip"})
    )
    assert fetcher.get("/api/x").text == text


def test_the_limit_allows_a_body_of_exactly_that_size(site: LocalSite, sleeps: list[float]) -> None:
    body = API_SAMPLE.read_bytes()
    site.route("/api/x", Reply(body=body))
    with Fetcher(site.url, user_agent="t", max_bytes=len(body), sleep=sleeps.append) as exact:
        assert exact.get("/api/x").text == body.decode()
    with Fetcher(site.url, user_agent="t", max_bytes=len(body) - 1, sleep=sleeps.append) as less:
        with pytest.raises(FetchError, match=f"exceeds the {len(body) - 1}-byte limit"):
            less.get("/api/x")


def test_the_limit_comes_from_digest_http_max_bytes(
    site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.route("/api/x", Reply(body="[" + "0, " * 100 + "0]"))
    monkeypatch.setenv("DIGEST_HF_BASE_URL", site.url)
    monkeypatch.setenv("DIGEST_HTTP_MAX_BYTES", "100")
    with Fetcher.from_settings(load_settings()) as client:
        with pytest.raises(FetchError, match=r"/api/x: HTTP 200: body exceeds the 100-byte limit"):
            client.get("/api/x")
    monkeypatch.setenv("DIGEST_HTTP_MAX_BYTES", "0")
    with pytest.raises(ConfigError, match="DIGEST_HTTP_MAX_BYTES"):
        load_settings()


def test_a_coding_we_did_not_ask_for_or_broken_gzip_is_refused(
    site: LocalSite, fetcher: Fetcher
) -> None:
    site.route("/api/br", Reply(body=b"\x1b\x00", headers={"Content-Encoding": "br"}))
    site.route("/api/bad", Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError, match="Content-Encoding 'br': expected gzip"):
        fetcher.get("/api/br")
    with pytest.raises(FetchError, match="/api/bad: HTTP 200: body is not valid gzip"):
        fetcher.get("/api/bad")
    assert len(site.seen) == 2  # neither is retried
