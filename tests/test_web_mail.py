"""Sign-up emails go out off the request path, through a real SMTP server (aiosmtpd) that is
slow, dead, or without SMTPUTF8: no page ever waits for the mail server, every email still
arrives, and a failure to send is logged and recorded (the next sign-up sends at once), never
an HTTP 500. Against the app under uvicorn on loopback, and in process (FastAPI's TestClient,
with the app's lifespan)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest import web
from digest.db import get_engine
from digest.db.models import Subscriber, SubscriberStatus
from digest.ingest import ingest_pages, read_pages
from digest.settings import Settings, load_settings
from digest.web import create_app
from tests.conftest import SEEDS
from tests.smtp_sink import Sink, free_port
from tests.test_web_browser import Served

SLOW = 5.0
"""Seconds the slow mail server takes to answer each message."""
SIGNUPS = 50
"""Concurrent sign-ups: more than the server's thread pool (40) holds at once."""


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def csrf_of(html: str) -> str:
    field = BeautifulSoup(html, "lxml").select_one('input[name="csrf"]')
    assert field is not None
    return str(field["value"])


def settled(client: TestClient) -> None:
    """Wait until the app's mail worker has sent (or given up on) every queued email."""
    queue = getattr(client.app.state, "signup_mail", None)  # type: ignore[attr-defined]
    if queue is not None:
        assert queue.wait_idle(timeout=30), "the sign-up emails were not sent"


def people(engine: Engine) -> dict[str, Subscriber]:
    with Session(engine) as session:
        return {p.email: p for p in session.exec(select(Subscriber)).all()}


KEY = "mail-test-key-Vq3Zr8Lw1Np6Xs0Jd4Hk7Cf2"


def configured(sink_url: str, public_url: str = "https://digest.example.org") -> Settings:
    return load_settings(
        public_url=public_url, delivery=sink_url, secret_key=KEY, signup_rate="500/minute"
    )


@pytest.fixture
def served(clean_environ: Path) -> Iterator[tuple[Settings, Engine, Sink]]:
    port = free_port()
    with Sink() as sink:
        settings = configured(sink.url, f"http://127.0.0.1:{port}")
        engine = get_engine(settings.db_url)
        ingest_pages(read_pages("seeds", SEEDS, None), settings.db_url)
        with Served(settings, engine, port):
            yield settings, engine, sink


def test_a_slow_mail_server_slows_no_page_and_every_email_still_arrives(
    served: tuple[Settings, Engine, Sink],
) -> None:
    """50 sign-ups at once while the mail server takes 5 s a message: every sign-up and a
    /healthz are answered before the mail server has answered even once; then all 50 confirmation
    emails arrive."""
    settings, engine, sink = served
    sink.handler.slow_seconds = SLOW
    addresses = [f"reader{i}@example.org" for i in range(SIGNUPS)]
    for address in addresses:
        sink.handler.faults[address] = ["slow"]
    limits = httpx.Limits(max_connections=SIGNUPS + 5)
    with httpx.Client(base_url=settings.public_url, timeout=120, limits=limits) as browser:
        field = csrf_of(browser.get("/").text)

        def sign_up(address: str) -> tuple[int, int]:
            data = {"email": address, "themes": ["agents"], "csrf": field}
            response = browser.post("/", data=data)
            return response.status_code, len(sink.handler.messages)

        with ThreadPoolExecutor(SIGNUPS) as pool:
            pending = [pool.submit(sign_up, address) for address in addresses]
            # every sign-up answered or talking to the mail server (or half the slow reply gone)
            wait_until(
                lambda: sum(f.done() for f in pending) + sink.handler.connections >= SIGNUPS,
                SLOW / 2,
            )
            with httpx.Client(base_url=settings.public_url, timeout=120) as monitor:
                health = monitor.get("/healthz")
            accepted_by_then = len(sink.handler.messages)
            answers = [f.result() for f in pending]
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert accepted_by_then == 0, "/healthz waited for the slow mail server"
    assert answers == [(200, 0)] * SIGNUPS, "a sign-up waited for the slow mail server"

    sink.handler.slow_seconds = 0.05  # (those already waiting still take SLOW)
    expected = Counter(addresses)
    assert wait_until(lambda: sink.handler.recipients() == expected, 60), sink.handler.recipients()
    for message in sink.handler.parsed():
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f"{settings.public_url}/confirm/" in text
    stored = people(engine)
    assert all(stored[a].status == SubscriberStatus.unconfirmed for a in addresses)
    assert all(stored[a].confirm_sent_at is not None for a in addresses)  # none failed


def test_a_dead_mail_server_is_logged_and_recorded_not_an_error_page(
    clean_environ: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the mail port: the person still gets their page at once, the failure
    is logged, and their address may sign up again straight away (no resend throttle)."""
    settings = configured(f"smtp://127.0.0.1:{free_port()}")
    engine = get_engine(settings.db_url)
    caplog.set_level(logging.WARNING, logger="digest.web")
    with TestClient(create_app(settings, engine), base_url=settings.public_url) as client:
        data = {
            "email": "dead@example.org",
            "themes": ["agents"],
            "csrf": csrf_of(client.get("/").text),
        }
        response = client.post("/", data=data)
        assert response.status_code == 200 and "Check your inbox" in response.text
        settled(client)
    found = people(engine)["dead@example.org"]
    assert found.status == SubscriberStatus.unconfirmed and found.confirm_sent_at is None
    assert any(
        "sign-up email" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "no-smtputf8"])
def test_a_non_ascii_address_signs_up_without_an_error_page(
    clean_environ: Path, smtputf8: bool
) -> None:
    """josé@exämple.org: delivered where the server takes SMTPUTF8, else recorded as failed."""
    with Sink(smtputf8=smtputf8) as sink:
        settings = configured(sink.url)
        engine = get_engine(settings.db_url)
        with TestClient(create_app(settings, engine), base_url=settings.public_url) as client:
            field = csrf_of(client.get("/").text)
            data = {"email": "josé@exämple.org", "themes": ["agents"], "csrf": field}
            response = client.post("/", data=data)
            assert response.status_code == 200, response.text
            assert "Check your inbox" in response.text
            settled(client)
        (found,) = people(engine).values()
        assert found.email.startswith("josé@")
        if smtputf8:
            assert sum(sink.handler.recipients().values()) == 1
            assert found.confirm_sent_at is not None
        else:
            assert sink.handler.recipients() == Counter()
            assert found.confirm_sent_at is None  # recorded: a later sign-up tries again


def test_a_full_mail_queue_refuses_the_sign_up_and_lets_it_try_again(
    clean_environ: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue is bounded: past it a sign-up says "try again soon" (503) and is recorded as
    unsent, while the queued ones still go out."""
    monkeypatch.setattr(web, "MAIL_WORKERS", 1, raising=False)
    monkeypatch.setattr(web, "MAIL_QUEUE", 1, raising=False)
    with Sink() as sink:
        sink.handler.slow_seconds = 2.0
        sink.handler.faults["first@example.org"] = ["slow"]
        settings = configured(sink.url)
        engine = get_engine(settings.db_url)
        with TestClient(create_app(settings, engine), base_url=settings.public_url) as client:
            field = csrf_of(client.get("/").text)

            def sign_up(address: str) -> int:
                data = {"email": address, "themes": ["agents"], "csrf": field}
                return client.post("/", data=data).status_code

            assert sign_up("first@example.org") == 200
            assert wait_until(lambda: sink.handler.connections >= 1, 10)  # the worker is busy
            assert sign_up("second@example.org") == 200  # waits in the queue
            assert sign_up("third@example.org") == 503  # the queue is full
            settled(client)
        assert sink.handler.recipients() == Counter(["first@example.org", "second@example.org"])
        stored = people(engine)
        assert stored["third@example.org"].confirm_sent_at is None
        assert stored["second@example.org"].confirm_sent_at is not None
