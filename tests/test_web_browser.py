"""A subscriber's whole journey in a real browser (headless Debian chromium via Playwright)
against the web app served by uvicorn on loopback, with mail going through a real SMTP server
(aiosmtpd): subscribe, read the confirmation mail, open its link and press "confirm", change
preferences, receive a digest, click "less like this", and unsubscribe from the email's
footer."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.archive import Archive
from digest.db import get_engine
from digest.db.models import Cadence, Subscriber, SubscriberStatus, Subscription
from digest.ingest import ingest_pages, read_pages
from digest.periods import Period
from digest.render import Renderer
from digest.runtime import Runtime, SendOptions
from digest.sending import send_digests
from digest.settings import Settings, load_settings
from digest.themes import load_themes
from digest.web import create_app
from tests.conftest import SEEDS
from tests.smtp_sink import Sink, free_port
from tests.test_browser import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed"),
]

DAY = date(2026, 4, 15)
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


class Served:
    """The app under uvicorn in a thread of this process, on a free loopback port."""

    def __init__(self, settings: Settings, engine: Engine, port: int) -> None:
        config = uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def world(clean_environ: Path) -> Iterator[tuple[Settings, Engine, Sink]]:
    port = free_port()
    with Sink() as sink:
        settings = load_settings(
            public_url=f"http://127.0.0.1:{port}",
            delivery=sink.url,
            secret_key="walk-" + "k3y-0123456789abcdefghijklmnopqrstuvwxyz",
        )
        engine = get_engine(settings.db_url)
        ingest_pages(read_pages("seeds", SEEDS, None), settings.db_url)
        with Served(settings, engine, port):
            yield settings, engine, sink


def mail_to(sink: Sink, address: str, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + 10
    while True:
        found = [m for m in sink.handler.parsed() if m["To"] == address]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def subscriber(engine: Engine, address: str) -> tuple[Subscriber, list[Subscription]]:
    with Session(engine) as session:
        person = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
        rows = session.exec(
            select(Subscription).where(Subscription.subscriber_id == person.id)
        ).all()
        return person, [r for r in rows if r.active]


def submit(page: Any, selector: str) -> None:
    """Click what leads to another page, and wait until that page has loaded."""
    with page.expect_navigation():
        page.click(selector)


def test_subscribe_confirm_manage_read_vote_and_unsubscribe(
    world: tuple[Settings, Engine, Sink], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    settings, engine, sink = world
    address = "walker@example.org"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 375, "height": 900})
        try:
            page.goto(settings.public_url + "/")
            assert page.evaluate(OVERFLOW) <= 0, "the sign-up form fits a phone"
            page.screenshot(path=str(tmp_path / "1-subscribe.png"), full_page=True)
            page.fill('input[name="email"]', address)
            page.check('input[value="agents"]')
            submit(page, "button[type=submit]")
            assert "Check your inbox" in page.inner_text("h1")
            (confirmation,) = mail_to(sink, address, 1)
            assert subscriber(engine, address)[0].status == SubscriberStatus.unconfirmed

            text = confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            link = re.search(r"http://\S+/confirm/\S+", text)
            assert link is not None
            page.goto(link[0])  # opening the link (as a link scanner would) confirms nothing
            assert "Confirm" in page.inner_text("h1")
            assert address in page.inner_text("form")
            assert subscriber(engine, address)[0].status == SubscriberStatus.unconfirmed
            submit(page, "button[type=submit]")
            assert "subscribed" in page.inner_text("h1")
            assert subscriber(engine, address)[0].status == SubscriberStatus.confirmed

            submit(page, "text=Choose themes and cadence")
            page.check('input[value="robotics-embodied"]')
            page.fill('input[name="max_items"]', "4")
            assert page.evaluate(OVERFLOW) <= 0, "the preferences page fits a phone"
            submit(page, "text=Save preferences")  # (a full-page screenshot first eats the click)
            assert "Saved." in page.inner_text("form")
            page.screenshot(path=str(tmp_path / "2-preferences.png"), full_page=True)
            _, rows = subscriber(engine, address)
            assert sorted(r.theme_id or "" for r in rows) == ["agents", "robotics-embodied"]
            assert {r.max_items for r in rows} == {4}

            summary = send_digests(
                Runtime(
                    engine=engine,
                    themes=load_themes(),
                    renderer=Renderer.from_settings(settings),
                    archive=Archive(settings.archive_dir, settings.public_url),
                    channel=settings.delivery.get_secret_value(),
                    outbox=settings.outbox_dir,
                    options=SendOptions(workers=1),
                ),
                period=Period.day(DAY),
                cadence=Cadence.daily,
            )
            assert summary.sent == 1
            digest = mail_to(sink, address, 2)[-1]
            html = digest.get_body(("html",)).get_content()  # type: ignore[union-attr]

            page.set_content(html)
            first_title = page.inner_text("a.title >> nth=0")
            submit(page, "text=Less like this >> nth=0")
            assert "Fewer papers like this?" in page.inner_text("h1")
            submit(page, "button[type=submit]")
            assert "Thanks, noted" in page.inner_text("h1")
            _, rows = subscriber(engine, address)
            disliked = {key for r in rows for key in r.disliked}
            assert len(disliked) == 1
            with Session(engine) as session:
                from digest.db.models import Paper

                paper = session.exec(select(Paper).where(Paper.key == disliked.pop())).one()
            assert paper.title == first_title

            page.set_content(html)
            submit(page, "td.footer >> text=Unsubscribe")
            assert "Unsubscribe" in page.inner_text("h1")
            assert subscriber(engine, address)[0].status == SubscriberStatus.confirmed
            submit(page, "button[type=submit]")
            assert "unsubscribed" in page.inner_text("h1")
            page.screenshot(path=str(tmp_path / "4-unsubscribed.png"), full_page=True)
            assert subscriber(engine, address)[0].status == SubscriberStatus.unsubscribed
        finally:
            browser.close()


def test_digest_web_serves_the_app_on_the_configured_port(clean_environ: Path) -> None:
    """The README's `digest web`, as a process: it answers on loopback and stops on SIGTERM."""
    import http.cookiejar
    import os
    import signal
    import subprocess
    import sys
    import urllib.parse
    import urllib.request

    from bs4 import BeautifulSoup

    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from flows.cli import main; main()",
        "web",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command, env={**os.environ, "DIGEST_SIGNUP_RATE": "3/minute"}, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
                    page = response.read().decode()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "digest web did not answer"
                time.sleep(0.2)
        assert "Get trending papers in your email inbox" in page
        assert (clean_environ / "digest.db").exists()  # embedded defaults: SQLite in DATA_DIR
        # a sign-up is answered at once; the app's own mail worker writes the email after
        cookies = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
        with opener.open(f"http://127.0.0.1:{port}/") as response:
            field = BeautifulSoup(response.read(), "lxml").select_one('input[name="csrf"]')
        assert field is not None
        form = {"email": "proc@example.org", "themes": "agents", "csrf": str(field["value"])}
        with opener.open(f"http://127.0.0.1:{port}/", urllib.parse.urlencode(form).encode()) as r:
            assert "Check your inbox" in r.read().decode()
        outbox = load_settings().outbox_dir
        deadline = time.monotonic() + 30
        while not list(outbox.glob("signup-*.eml")):
            assert time.monotonic() < deadline, "the confirmation email was not written"
            time.sleep(0.1)
        assert b"proc@example.org" in next(outbox.glob("signup-*.eml")).read_bytes()
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=20)
    # uvicorn shuts down cleanly, then re-raises the signal it caught
    assert process.returncode in (0, -signal.SIGTERM)
    assert b"Finished server process" in errors
