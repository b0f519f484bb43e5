"""Faults that must stop, duplicate or misdirect nothing, against a real aiosmtpd server on
loopback: internationalised addresses (with and without SMTPUTF8), an error nobody foresaw in
one message, and a server that keeps a message and then never answers (reset or clean close).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from digest.db import unconfirmed
from digest.db.models import DeliveryStatus
from digest.errors import UndeliverableError
from digest.mime import RenderedEmail
from digest.requests import request_from
from digest.smtp import envelope_address
from digest.subscriptions import subscribe
from tests.smtp_sink import Sink
from tests.test_delivery import (  # noqa: F401
    FAST,
    THEMES,
    people,
    rows,
    send,
    sink,
    store,
    subscriber,
)

NON_ASCII = "josé@exämple.org"


def join(engine: Engine, address: str) -> None:
    subscribe(engine, request_from({"email": address, "themes": ["agents"]}, address), THEMES)


def test_envelope_addresses_use_idna_domains_and_say_when_smtputf8_is_needed() -> None:
    assert envelope_address("ada@exämple.org") == ("ada@xn--exmple-cua.org", False)
    assert envelope_address(NON_ASCII) == ("josé@xn--exmple-cua.org", True)
    assert envelope_address("plain@example.org") == ("plain@example.org", False)
    with pytest.raises(UndeliverableError, match="not a deliverable address"):
        envelope_address("no-at-sign")


def test_a_non_ascii_address_fails_alone_where_the_server_has_no_smtputf8(
    store: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    with Sink(smtputf8=False) as server:
        first = people(store, 1, prefix="a")  # subscribed before: sent first
        join(store, NON_ASCII)
        after = people(store, 30, prefix="z")
        summary = send(store, server.url, tmp_path)
        rerun = send(store, server.url, tmp_path)
    assert sorted(server.handler.recipients()) == sorted(first + after)  # everyone else, once
    assert (summary.sent, summary.failed, summary.suppressed) == (31, 1, 0)
    [failure] = summary.failures
    assert NON_ASCII in failure and "SMTPUTF8" in failure
    failed = [r for r in rows(store) if r.status == DeliveryStatus.failed]
    assert len(failed) == 1 and "SMTPUTF8" in (failed[0].last_error or "")
    assert subscriber(store, NON_ASCII).bounces == 0  # not the subscriber's fault
    assert (rerun.sent, rerun.earlier) == (0, 32)  # the rerun neither crashes nor resends


def test_a_non_ascii_address_is_delivered_with_smtputf8_and_an_idna_domain(
    store: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    for address in (NON_ASCII, "ada@exämple.org"):
        join(store, address)
    with Sink(smtputf8=True) as server:
        summary = send(store, server.url, tmp_path)
    assert (summary.sent, summary.failed) == (2, 0)
    received = dict(server.handler.recipients())
    assert received == {"josé@xn--exmple-cua.org": 1, "ada@xn--exmple-cua.org": 1}
    recipients = [r for r, _ in server.handler.messages]
    options = dict(zip(recipients, server.handler.mail_options, strict=True))
    assert "SMTPUTF8" in options["josé@xn--exmple-cua.org"]
    assert "SMTPUTF8" not in options["ada@xn--exmple-cua.org"]  # IDNA alone needs no extension
    to = {str(m["To"]) for m in server.handler.parsed()}
    assert to == {NON_ASCII, "ada@xn--exmple-cua.org"}  # raw UTF-8 header only with SMTPUTF8


def test_an_unexpected_error_fails_that_message_alone_and_resets_the_connection(
    store: Engine,  # noqa: F811
    tmp_path: Path,
    sink: Sink,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in building one message (here: its bytes raise) must not stop the run, nor leave a
    half-used connection that the next subscriber's message would be charged for."""
    emails = people(store, 12)
    poison = emails[3]
    real = RenderedEmail.as_bytes

    def as_bytes(self: RenderedEmail, utf8: bool = False) -> bytes:
        if self.to == poison:
            raise ValueError("a bug nobody foresaw")
        return real(self, utf8)

    monkeypatch.setattr(RenderedEmail, "as_bytes", as_bytes)
    summary = send(store, sink.url, tmp_path)
    assert sorted(sink.handler.recipients()) == sorted(set(emails) - {poison})
    assert (summary.sent, summary.failed, summary.suppressed, summary.retries) == (11, 1, 0, 0)
    assert "unexpected ValueError: a bug nobody foresaw" in summary.failures[0]
    assert all(subscriber(store, e).bounces == 0 for e in emails)


@pytest.mark.parametrize("fault", ["keep-reset", "keep-close"])
def test_a_server_that_keeps_the_message_then_never_answers_gets_it_once(
    store: Engine,  # noqa: F811
    sink: Sink,  # noqa: F811
    tmp_path: Path,
    fault: str,
) -> None:
    """No reply after the final "." (a reset or a clean close) is an unknown outcome: the row
    stays sent, marked unconfirmed, listed on its own, and no run sends it again by itself."""
    emails = people(store, 20)
    unlucky = emails[::5]
    for address in unlucky:
        sink.handler.faults[address] = [fault]
    summary = send(store, sink.url, tmp_path)
    again = send(store, sink.url, tmp_path)
    assert sink.handler.recipients() == dict.fromkeys(emails, 1)  # kept once, never twice
    assert (summary.sent, summary.unconfirmed, summary.retries) == (20, 4, 0)
    assert sorted(summary.unconfirmed_to) == sorted(unlucky)
    assert "digest unconfirmed" in str(summary) and unlucky[0] in str(summary)
    assert (again.sent, again.earlier) == (0, 20)
    listed = unconfirmed.listed(store)
    assert sorted(u.email for u in listed) == sorted(unlucky)
    assert all(u.reply.startswith("unconfirmed:") for u in listed)


def test_the_operator_can_deliberately_resend_unconfirmed_messages(
    store: Engine,  # noqa: F811
    sink: Sink,  # noqa: F811
    tmp_path: Path,
) -> None:
    emails = people(store, 6)
    sink.handler.faults[emails[0]] = ["drop"]  # closed without a reply, nothing kept
    send(store, sink.url, tmp_path)
    [lost] = unconfirmed.listed(store)
    assert lost.email == emails[0] and sink.handler.recipients()[emails[0]] == 0
    assert unconfirmed.reopen(store, [lost.delivery_id, 999_999]) == 1
    assert unconfirmed.reopen(store, [lost.delivery_id]) == 0  # only once
    resent = send(store, sink.url, tmp_path)
    assert (resent.sent, resent.earlier) == (1, 5)
    assert sink.handler.recipients() == dict.fromkeys(emails, 1)
    assert unconfirmed.listed(store) == []


def test_a_run_waiting_on_another_finishes_soon_after_it_not_a_lease_later(
    store: Engine,  # noqa: F811
    sink: Sink,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The second run finds the first run's rows held; once the first is done, the second
    must see so and end, not idle out the rest of a 120 s lease."""
    emails = people(store, 8)
    sink.handler.slow_seconds = 3.0
    sink.handler.faults[emails[0]] = ["slow"]
    options = replace(FAST, lease=120.0, workers=1, claim_batch=50)
    ended: dict[str, float] = {}

    def first() -> None:
        send(store, sink.url, tmp_path, options=options)
        ended["first"] = time.monotonic()

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 30
    while not any(r.status == DeliveryStatus.sending for r in rows(store)):
        assert time.monotonic() < deadline, "the first run never claimed its rows"
        time.sleep(0.05)
    second = send(store, sink.url, tmp_path, options=options)
    ended["second"] = time.monotonic()
    thread.join()
    assert (second.sent, second.failed) == (0, 0) and second.earlier == 8
    assert sink.handler.recipients() == dict.fromkeys(emails, 1)
    assert ended["second"] - ended["first"] < options.lease / 4  # seconds, not a lease
