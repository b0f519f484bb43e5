"""Operations without a server: the deployments' schedules, send-time buckets, catch-up after
downtime, and one digest for a backfilled range instead of one per day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import Engine

from digest.db.models import Cadence
from digest.errors import ConfigError
from digest.periods import Period
from digest.sending import bucket_of, send_digests
from digest.settings import load_settings
from flows.daily import CATCH_UP_DAYS, catch_up_start
from flows.deployments import deployments
from tests.test_delivery import people, rows, runtime_for
from tests.test_delivery import store as store  # noqa: F401  (fixture)


def test_deployments_schedule_one_daily_run_per_send_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SEND_TIMEZONES", "UTC, America/New_York,Asia/Shanghai")
    monkeypatch.setenv("DIGEST_DAILY_CRON", "15 7 * * *")
    daily, weekly, backfill = deployments(load_settings())
    assert [d.name for d in (daily, weekly, backfill)] == ["daily", "weekly", "backfill"]
    assert [(s.schedule.cron, s.schedule.timezone, s.parameters) for s in daily.schedules] == [
        ("15 7 * * *", zone, {"source": "hf-api", "timezone": zone})
        for zone in ("UTC", "America/New_York", "Asia/Shanghai")
    ]
    [friday] = weekly.schedules
    assert (friday.schedule.cron, friday.schedule.timezone) == ("0 7 * * 5", "UTC")
    assert backfill.schedules == [] and backfill.parameters == {"send": False}


def test_a_bad_send_zone_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SEND_TIMEZONES", "UTC,Mars/Olympus")
    with pytest.raises(
        ConfigError, match="DIGEST_SEND_TIMEZONES: Value error, 'Mars/Olympus' is not a time zone"
    ):
        load_settings()


def test_each_subscriber_goes_with_the_nearest_send_zone() -> None:
    zones = ["UTC", "America/New_York", "Asia/Shanghai"]
    winter = datetime(2026, 1, 15, tzinfo=UTC)
    assert bucket_of("Europe/Berlin", zones, winter) == "UTC"
    assert bucket_of("America/Chicago", zones, winter) == "America/New_York"
    assert bucket_of("Asia/Tokyo", zones, winter) == "Asia/Shanghai"
    assert bucket_of("UTC", ["UTC"], winter) == "UTC"


def test_only_the_zone_bucket_is_sent_by_its_run(store: Engine, tmp_path: Path) -> None:  # noqa: F811

    people(store, 1)  # UTC
    [chicago] = people(store, 1, prefix="chicago", timezone="America/Chicago")
    summary = send_digests(
        runtime_for(store, "outbox", tmp_path, zones=("UTC", "America/New_York")),
        period=Period.day(date(2026, 4, 15)),
        cadence=Cadence.daily,
        bucket="America/New_York",
    )
    assert summary.sent == 1
    [message] = (tmp_path / "outbox").glob("*.eml")
    assert f"To: {chicago}".encode() in message.read_bytes()
    assert len(rows(store)) == 1  # the UTC subscriber waits for the UTC run


def test_after_downtime_one_digest_covers_the_missed_days(store: Engine, tmp_path: Path) -> None:  # noqa: F811

    people(store, 1)
    runtime = runtime_for(store, "outbox", tmp_path)
    assert catch_up_start(store, date(2026, 4, 15)) == date(2026, 4, 15)  # nothing sent yet
    send_digests(runtime, period=Period.day(date(2026, 2, 16)), cadence=Cadence.daily)
    assert catch_up_start(store, date(2026, 2, 17)) == date(2026, 2, 17)  # ran yesterday
    assert catch_up_start(store, date(2026, 2, 20)) == date(2026, 2, 17)  # off for three days
    assert catch_up_start(store, date(2026, 4, 15)) == date(2026, 4, 15 - CATCH_UP_DAYS + 1)

    period = Period.span(date(2026, 4, 10), date(2026, 4, 15))
    assert period.label == "2026-04-10..2026-04-15"
    summary = send_digests(runtime, period=period, cadence=Cadence.daily)
    assert summary.sent == 1
    [file] = (tmp_path / "outbox").glob("2026-04-10..2026-04-15-*.eml")
    message = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
    assert message["Subject"].startswith("Papers Digest · 10 Apr – 15 Apr 2026 · ")


def test_a_range_period_refuses_an_end_before_its_start() -> None:
    with pytest.raises(ConfigError, match="the end is before the start"):
        Period.span(date(2026, 4, 15), date(2026, 4, 10))


def test_prefect_yaml_mirrors_the_deployments_in_code() -> None:
    import yaml

    root = Path(__file__).resolve().parent.parent
    spec = yaml.safe_load((root / "deployments" / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in spec["deployments"]}
    for deployment in deployments(load_settings()):
        entry = by_name[deployment.name]
        path, function = entry["entrypoint"].split(":")
        assert (root / path).exists() and f"def {function}(" in (root / path).read_text()
        assert entry.get("parameters", {}) == deployment.parameters
        assert entry["enforce_parameter_schema"] is deployment.enforce_parameter_schema is True
        ours = [(s.schedule.cron, s.schedule.timezone, s.parameters) for s in deployment.schedules]
        theirs = [
            (s["cron"], s["timezone"], s.get("parameters", {})) for s in entry.get("schedules", [])
        ]
        assert theirs == ours, deployment.name
