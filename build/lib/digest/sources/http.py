"""A polite HTTP client for huggingface.co: one place for User-Agent, timeouts, connection
limits, retries and conditional GET, and the only place httpx errors are translated.

Retries (tenacity) cover only what can succeed later: 429, 5xx, timeouts and dropped
connections. A 429's ``RateLimit: "api";r=0;t=N`` or ``Retry-After`` decides the wait; otherwise
the wait doubles from ``backoff`` with jitter, never beyond ``max_wait``. This is the only retry
layer: callers (flows included) do not retry fetches again, so one URL costs at most
``1 + retries`` requests.

Bodies are streamed and un-gzipped here, ``max_bytes`` at most: a small gzip body can inflate a
thousandfold, so the limit is checked while inflating, never after.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from digest.errors import FetchError, TransientFetchError
from digest.settings import Settings

__all__ = ["Fetcher", "Response", "Validators", "ValidatorLookup", "retry_after_seconds"]

log = logging.getLogger("digest.http")
_RATELIMIT_RESET = re.compile(r"(?:^|;)\s*t=(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Validators:
    """What a previous 200 response said, for a conditional GET (and the item count behind it)."""

    etag: str | None
    last_modified: str | None
    item_count: int | None = None


ValidatorLookup = Callable[[str], Validators | None]


@dataclass(frozen=True)
class Response:
    """A successful answer; ``text`` is None for 304 Not Modified."""

    url: str
    status: int
    text: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: datetime
    previous: Validators | None = None


class Fetcher:
    """GETs pages from one site. Thread-safe: a backfill shares one across its workers."""

    def __init__(
        self,
        base_url: str,
        *,
        user_agent: str,
        timeout: float = 20.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 120.0,
        max_connections: int = 4,
        max_bytes: int = 20_000_000,
        validators: ValidatorLookup | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._validators = validators
        self._max_bytes = max_bytes
        self._client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip"},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=True,
            transport=transport,
        )
        self._retrying = Retrying(
            retry=retry_if_exception_type(TransientFetchError),
            stop=stop_after_attempt(retries + 1),
            wait=self._wait_for(
                wait_exponential_jitter(multiplier=backoff, max=max_wait, jitter=backoff), max_wait
            ),
            sleep=sleep,
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, validators: ValidatorLookup | None = None
    ) -> Fetcher:
        return cls(
            settings.hf_base_url,
            user_agent=settings.user_agent,
            timeout=settings.http_timeout,
            retries=settings.http_retries,
            backoff=settings.http_backoff,
            max_wait=settings.http_max_wait,
            max_connections=settings.http_concurrency,
            max_bytes=settings.http_max_bytes,
            validators=validators,
        )

    def url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        """The absolute URL for ``path`` with ``params``, as used for the validator cache."""
        return str(httpx.URL(self.base_url + path, params=dict(params or {})))

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Response:
        """GET ``path``; retries transient failures, raises ``FetchError`` for the rest."""
        url = self.url(path, params)
        previous = self._validators(url) if self._validators else None
        response: Response = self._retrying(self._get_once, url, previous)
        return response

    def _get_once(self, url: str, previous: Validators | None) -> Response:
        headers = {}
        if previous and previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous and previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
        try:
            with self._client.stream("GET", url, headers=headers) as answer:
                return _check(url, answer, previous, self._max_bytes)
        except httpx.TimeoutException as exc:
            raise TransientFetchError(url, None, f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise TransientFetchError(url, None, f"connection failed: {reason}") from exc

    @staticmethod
    def _wait_for(
        fallback: Callable[[RetryCallState], float], max_wait: float
    ) -> Callable[[RetryCallState], float]:
        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            hinted = getattr(error, "retry_after", None)
            return min(float(hinted), max_wait) if hinted is not None else fallback(state)

        return wait

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check(
    url: str, answer: httpx.Response, previous: Validators | None, max_bytes: int
) -> Response:
    status = answer.status_code
    if status == 429 or status >= 500:
        reason = "rate limited" if status == 429 else answer.reason_phrase or "server error"
        raise TransientFetchError(url, status, reason, retry_after_seconds(answer.headers))
    if status == 304:
        return _response(url, answer, None, previous)
    text = _read_text(url, answer, max_bytes)
    if status >= 400:
        detail = text[:200].strip() or answer.reason_phrase
        raise FetchError(url, status, detail)
    return _response(str(answer.url), answer, text, previous)


def _read_text(url: str, answer: httpx.Response, max_bytes: int) -> str:
    """The streamed body, un-gzipped and decoded; more than ``max_bytes`` (counted while
    inflating, chunk by chunk) is a ``FetchError``, so a gzip bomb never fills memory."""
    inflater = _inflater(url, answer)
    body = bytearray()
    try:
        for chunk in answer.iter_raw():
            # max_length stops one chunk inflating past the limit (it is never 0: no limit)
            body += inflater.decompress(chunk, max_bytes + 1 - len(body)) if inflater else chunk
            _within(url, answer, len(body), max_bytes)
        body += inflater.flush() if inflater else b""
    except zlib.error as exc:
        raise FetchError(url, answer.status_code, f"body is not valid gzip: {exc}") from exc
    _within(url, answer, len(body), max_bytes)
    return body.decode(answer.encoding or "utf-8", errors="replace")


def _within(url: str, answer: httpx.Response, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        reason = f"body exceeds the {max_bytes}-byte limit (DIGEST_HTTP_MAX_BYTES) once un-gzipped"
        raise FetchError(url, answer.status_code, reason)


def _inflater(url: str, answer: httpx.Response) -> zlib._Decompress | None:
    """A gzip decompressor for a gzip body, None for an unencoded one; we ask for gzip only, so
    any other coding is refused rather than handed to a decoder without a size limit."""
    coding = answer.headers.get("Content-Encoding", "").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    raise FetchError(url, answer.status_code, f"Content-Encoding {coding!r}: expected gzip")


def _response(
    url: str, answer: httpx.Response, text: str | None, previous: Validators | None
) -> Response:
    return Response(
        url=url,
        status=answer.status_code,
        text=text,
        etag=answer.headers.get("ETag") or (previous.etag if previous else None),
        last_modified=answer.headers.get("Last-Modified")
        or (previous.last_modified if previous else None),
        fetched_at=datetime.now(UTC),
        previous=previous,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``RateLimit: ...;t=N`` or ``Retry-After`` (seconds or a date)."""
    match = _RATELIMIT_RESET.search(headers.get("RateLimit", ""))
    if match:
        return float(match[1])
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
