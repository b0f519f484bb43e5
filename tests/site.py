"""A real HTTP server on loopback that stands in for huggingface.co in tests and benchmarks.

Routes are keyed by path plus sorted query, each with a queue of replies (the last one repeats),
so a test can say "503, then 200". Fault replies: a status with headers (429 + RateLimit), a
delay (slow), a truncated body (Content-Length promises more than is sent), ETag handling
(304 when If-None-Match matches), and raw bytes with any headers (a gzip bomb). Every request is
recorded with its headers; a client that hangs up mid-body is not an error here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False
    content_type: str = "application/json"

    def payload(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


def route_key(path: str, query: dict[str, str] | None = None) -> str:
    return path + ("?" + urlencode(sorted(query.items())) if query else "")


class LocalSite:
    """Start with ``with LocalSite() as site:``; ``site.url`` is the base URL."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.routes: dict[str, list[Reply]] = {}
        self.fallback: Callable[[str, dict[str, str]], Reply | None] | None = None
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, *replies: Reply, **query: str | int) -> None:
        self.routes[route_key(path, {k: str(v) for k, v in query.items()})] = list(replies)

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def __enter__(self) -> LocalSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _reply_for(self, path: str, query: dict[str, str]) -> Reply:
        with self._lock:
            queue = self.routes.get(route_key(path, query))
            if queue:
                return queue.pop(0) if len(queue) > 1 else queue[0]
        found = self.fallback(path, query) if self.fallback else None
        return found or Reply(404, '{"error":"not found"}')

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up mid-reply: it timed out or hit its size limit

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                with site._lock:
                    site.seen.append(Seen(parts.path, query, dict(self.headers.items())))
                reply = site._reply_for(parts.path, query)
                time.sleep(site.latency + reply.delay)
                etag = reply.headers.get("ETag")
                if etag and self.headers.get("If-None-Match") == etag and reply.status == 200:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = reply.payload()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.truncate:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if reply.truncate else body)
                if reply.truncate:
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler
