"""Typed configuration read from ``DIGEST_*`` environment variables (and an optional ``.env``).

Callers at the edges (CLI, flows, benchmarks) build one ``Settings`` and pass plain values down;
there is deliberately no module-level instance, so tests and flows never share hidden state.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse as parse_rate
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from digest.errors import ConfigError
from digest.keys import KeyRing, load_keys

__all__ = ["BUNDLED_SEEDS_DIR", "Settings", "load_settings"]

BUNDLED_SEEDS_DIR = Path(str(resources.files("digest.seeds")))
"""The seed pages shipped inside the package (top-level ``seeds/`` in a checkout)."""
"""The five sample pages shipped with the repository (``seeds/``)."""

DEFAULT_USER_AGENT = "papers-digest/0.1 (research-paper newsletter; polite bot)"


class Settings(BaseSettings):
    """Every knob, with a default that works on a fresh machine (SQLite under ``./data``)."""

    model_config = SettingsConfigDict(env_prefix="DIGEST_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder for the SQLite file, outbox, archive.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is SQLite at DATA_DIR/digest.db."
    )
    seeds_dir: Path = Field(BUNDLED_SEEDS_DIR, description="Where `--source seeds` reads pages.")
    hf_base_url: str = Field("https://huggingface.co", description="Hugging Face site root.")
    user_agent: str = Field(DEFAULT_USER_AGENT, description="User-Agent sent to the site.")
    http_timeout: float = Field(20.0, gt=0, description="Seconds per request (connect and read).")
    http_retries: int = Field(4, ge=0, le=10, description="Retries for 429/5xx/timeouts.")
    http_backoff: float = Field(1.0, ge=0, description="First backoff in seconds; doubles.")
    http_max_wait: float = Field(120.0, ge=0, description="Longest single wait (caps Retry-After).")
    http_concurrency: int = Field(4, ge=1, le=32, description="Parallel requests in a backfill.")
    http_max_bytes: int = Field(
        20_000_000, ge=1, description="Largest response body accepted, in bytes once un-gzipped."
    )
    semantic: bool = Field(True, description="Use sentence embeddings in scoring when installed.")
    public_url: str = Field("http://localhost:8000", description="Where the web app is reached.")
    sender: str = Field("Papers Digest <digest@localhost>", description="From: of every email.")
    secret_key: SecretStr | None = Field(
        None,
        description="Signs links in emails (HMAC): one key or several, newest first; unset, "
        "a random key made in DATA_DIR/secret.key on first use.",
    )
    delivery: SecretStr = Field(
        SecretStr("outbox"), description="outbox, smtp[s]://user:pass@host:port or apprise:URL."
    )
    send_workers: int = Field(4, ge=1, le=64, description="Parallel connections per send run.")
    send_batch: int = Field(500, ge=1, description="Subscribers composed and planned at a time.")
    send_rate: float = Field(0.0, ge=0, description="Messages per second at most (0: no limit).")
    send_hourly: int = Field(0, ge=0, description="Messages per hour at most (0: no limit).")
    send_attempts: int = Field(4, ge=1, le=20, description="Tries per message on 4xx/drops.")
    send_backoff: float = Field(5.0, ge=0, description="First retry wait in seconds; doubles.")
    send_lease: float = Field(
        300.0,
        ge=60,  # also the Prefect slot's lease_duration, which refuses less than 60 s
        description="Seconds a run holds a claimed message (at least 60).",
    )
    max_bounces: int = Field(3, ge=1, description="Hard bounces in a row before suppression.")
    alerts: SecretStr | None = Field(None, description="apprise URL for operator alerts.")
    alert_failure_rate: float = Field(
        0.05, ge=0, le=1, description="Alert when more of a run's digests fail than this."
    )
    heartbeat: bool = Field(False, description="Send an 'all well' alert after a clean run.")
    daily_cron: str = Field("30 6 * * *", description="Daily run, in each send time zone.")
    weekly_cron: str = Field("0 7 * * 5", description="Weekly run (Fridays), first send zone.")
    send_timezones: str = Field(
        "UTC", description="Comma-separated IANA zones; one daily run at each one's morning."
    )
    daily_source: str = Field("hf-api", description="Source the scheduled daily run ingests.")
    send_shards: int = Field(
        1, ge=1, le=256, description="Subscriber shards a send run fans out as Prefect tasks."
    )
    task_runner: Literal["threads", "dask"] = Field(
        "threads", description="Runs the send shards: threads, or Dask (prefect-dask)."
    )
    dask_address: str | None = Field(
        None, description="A Dask scheduler (tcp://host:8786); default: an in-process cluster."
    )
    web_host: str = Field("127.0.0.1", description="Address `digest web` listens on.")
    web_port: int = Field(8000, ge=1, le=65535, description="Port `digest web` listens on.")
    signup_rate: str = Field(
        "5/10 minutes", description="Sign-ups allowed per client address (limits syntax)."
    )
    signup_resend: float = Field(
        3600.0, ge=0, description="Seconds before one address can get another sign-up email."
    )

    @field_validator("signup_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_rate(value)
        except ValueError:
            raise ValueError("expected a rate such as '5/10 minutes' or '20/hour'") from None
        return value

    @field_validator("send_timezones")
    @classmethod
    def _zones(cls, value: str) -> str:
        zones = [z.strip() for z in value.split(",") if z.strip()]
        if not zones:
            raise ValueError("name at least one time zone, e.g. UTC,America/New_York")
        for zone in zones:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{zone!r} is not a time zone such as Europe/Berlin") from None
        return ",".join(zones)

    @property
    def zones(self) -> list[str]:
        return self.send_timezones.split(",")

    @field_validator("hf_base_url", "public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def outbox_dir(self) -> Path:
        """Where the outbox channel writes ``.eml`` files."""
        return self.data_dir / "outbox"

    @property
    def archive_dir(self) -> Path:
        """The static web archive (issue pages, theme pages, feeds)."""
        return self.data_dir / "archive"

    def key_ring(self) -> KeyRing:
        """The secret keys: DIGEST_SECRET_KEY's, else the data folder's (made on first use)."""
        configured = self.secret_key.get_secret_value() if self.secret_key else None
        return load_keys(configured, self.data_dir)

    @property
    def db_url(self) -> str:
        """The database to use: the explicit URL, else SQLite inside the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'digest.db').resolve()}"


def load_settings(**overrides: object) -> Settings:
    """Build ``Settings`` from the environment, turning validation errors into ``ConfigError``."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "DIGEST_" + "_".join(str(part) for part in first["loc"]).upper()
        raise ConfigError(f"setting {key}: {first['msg']}") from exc
