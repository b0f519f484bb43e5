"""What every request passes through before a route sees it, and what keeps personal links out
of logs: the body limit, the security headers (with the site's own 500 page), the CSRF cookie's
MAC, and the access-log filter that drops tokens.

The CSRF scheme is a double submit: the cookie holds a nonce with its MAC under a key derived
from the signing key, and a form's hidden field repeats it. Only a page of this site can read
the cookie into the field, and only this site can mint a cookie that verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, MutableMapping
from typing import Any

from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException

MAX_BODY = 32_768
"""Bytes a request body may hold; every form here fits in a fraction of it."""
CSRF_COOKIE = "pd_csrf"
HSTS = "max-age=31536000"
"""Strict-Transport-Security, sent when the public URL is https (one year; this host only)."""

_PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_ARCHIVE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class BodyLimit:
    """ASGI middleware: refuse bodies over ``MAX_BODY`` with 413, whether or not the client
    declared a length (a chunked upload is counted as it arrives)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await _too_large(send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise HTTPException(413, "request body too large")
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Any) -> None:
    """The 413 for a declared length over the limit, sent before the app reads a byte."""
    body = b"request body too large"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"22")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """ASGI middleware, the outermost of the app's own: the security headers on every response,
    whoever made it (a route, an error handler, the body limit, the archive's files), and for
    an unhandled exception the site's own 500 page with them, before the exception goes on to
    the server's log (Starlette's fallback answer would carry none)."""

    def __init__(self, app: Any, *, hsts: bool, error_page: Callable[[], Response]) -> None:
        self.app, self.hsts, self.error_page = app, hsts, error_page

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._headers(str(scope.get("path", "")).startswith("/archive"))
        started = False

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            if not started:
                await self.error_page()(scope, receive, with_headers)
            raise

    def _headers(self, archived: bool) -> dict[str, str]:
        """The archive's static pages have inline styles and remote images, and may be cached;
        the app's own pages have neither and may not (they carry personal links)."""
        extra = {
            "Content-Security-Policy": _ARCHIVE_CSP if archived else _PAGE_CSP,
            "Referrer-Policy": "no-referrer",  # tokens are in our URLs
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        }
        if not archived:
            extra["Cache-Control"] = "no-store"
        if self.hsts:
            extra["Strict-Transport-Security"] = HSTS
        return extra


def csrf_key(signing: str) -> bytes:
    """The CSRF cookies' MAC key, derived from the signing key so it never doubles as it."""
    return hashlib.sha256(b"csrf:" + signing.encode()).digest()


def csrf_cookie(current: str, key: bytes) -> str:
    """The CSRF cookie a page sets: the browser's ``current`` one if genuine (forms open in
    other tabs stay valid), else a fresh nonce with its MAC."""
    if _valid_cookie(current, key):
        return current
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_mac(nonce, key)}"


def csrf_matches(cookie: str, field: str, key: bytes) -> bool:
    """Whether a form's CSRF ``field`` repeats the browser's genuine ``cookie``."""
    return _valid_cookie(cookie, key) and hmac.compare_digest(cookie, field)


def _mac(nonce: str, key: bytes) -> str:
    """The nonce's MAC: what makes a cookie one this site minted."""
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()[:32]


def _valid_cookie(cookie: str, key: bytes) -> bool:
    """Whether ``cookie`` is a nonce with its MAC under ``key``."""
    nonce, _, mac = cookie.partition(".")
    return bool(nonce) and hmac.compare_digest(mac, _mac(nonce, key))


_PERSONAL = re.compile(r"/(confirm|preferences|unsubscribe|feedback)/[^/?\s]+")


class RedactTokens(logging.Filter):
    """Access-log lines keep the page, never the personal link's token or its query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact(text: str) -> str:
    """``/preferences/<token>?saved=true`` as ``/preferences/…``."""
    if not _PERSONAL.search(text):
        return text
    return _PERSONAL.sub(r"/\1/…", text.split("?", 1)[0])


REDACT = RedactTokens()
"""The one filter the app's lifespan puts on uvicorn's access log (and takes off again)."""
