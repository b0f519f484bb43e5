"""Operator alerts: the checks decide (pure), apprise carries them (to a real local endpoint)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from digest.alerts import daily_alerts, notify
from digest.send_summary import SendSummary

MONDAY, SATURDAY = date(2026, 3, 2), date(2026, 3, 7)


def summary(sent: int, failed: int, suppressed: int = 0) -> SendSummary:
    result = SendSummary(period="2026-03-02", cadence="daily", sent=sent, failed=failed)
    result.suppressed = suppressed
    result.failures = [f"reader{i}@example.org: 554 rejected" for i in range(failed)]
    if suppressed:
        result.failures.append("reader0@example.org: suppressed after bounces")
    return result


def titles(alerts: list) -> list[str]:  # type: ignore[type-arg]
    return [a.title for a in alerts]


def test_a_clean_weekday_raises_nothing_unless_a_heartbeat_is_wanted() -> None:
    assert daily_alerts(MONDAY, 12, [], summary(40, 0), failure_rate=0.05) == []
    [beat] = daily_alerts(MONDAY, 12, [], summary(40, 0), failure_rate=0.05, heartbeat=True)
    assert beat.level == "info" and beat.title == "papers-digest: all well for 2026-03-02"
    assert "12 paper(s) listed; daily 2026-03-02: 40 sent" in beat.body


def test_no_papers_on_a_weekday_warns_but_a_quiet_weekend_does_not() -> None:
    [alert] = daily_alerts(MONDAY, 0, [], None, failure_rate=0.05)
    assert alert.level == "warning" and alert.title == "papers-digest: no papers for 2026-03-02"
    assert daily_alerts(SATURDAY, 0, [], None, failure_rate=0.05) == []


def test_failed_sources_and_failing_sends_and_suppressions_each_alert() -> None:
    alerts = daily_alerts(
        MONDAY,
        5,
        ["day/2026-03-02: https://hf.co/api: HTTP 503: retries exhausted"],
        summary(sent=90, failed=10, suppressed=1),
        failure_rate=0.05,
        heartbeat=True,
    )
    assert titles(alerts) == [
        "papers-digest: ingest failed for 2026-03-02",
        "papers-digest: 10 of 100 digests failed",
        "papers-digest: 1 subscriber(s) suppressed",
    ]
    assert "HTTP 503" in alerts[0].body and "reader0@example.org: 554 rejected" in alerts[1].body
    assert alerts[2].body == "reader0@example.org: suppressed after bounces"


def test_a_failure_rate_under_the_threshold_is_not_an_alert() -> None:
    assert daily_alerts(MONDAY, 5, [], summary(sent=99, failed=1), failure_rate=0.05) == []


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    yield f"json://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


def test_alerts_go_out_through_apprise(hook: str) -> None:
    alerts = daily_alerts(MONDAY, 0, ["day/2026-03-02: HTTP 503"], None, failure_rate=0.05)
    assert notify(hook, alerts) == 2
    assert [(m["title"], m["type"]) for m in _Hook.received] == [
        ("papers-digest: ingest failed for 2026-03-02", "failure"),
        ("papers-digest: no papers for 2026-03-02", "warning"),
    ]


def test_without_a_url_alerts_are_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    alerts = daily_alerts(MONDAY, 0, [], None, failure_rate=0.05)
    assert notify(None, alerts) == 0
    assert "papers-digest: no papers for 2026-03-02" in caplog.text
