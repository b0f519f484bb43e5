"""A run's parts, built once from ``Settings``: the store's engine, the theme catalogue, the
renderer, the archive, the delivery channel with its outbox and send options, and the
embedding model (loaded only when a run has papers to score). A send run, a flow, a CLI
command and the web app each take one ``Runtime`` instead of wiring these themselves; tests
build one from test parts the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from digest.archive import Archive
from digest.db import Engine, get_engine
from digest.embeddings import CachedEmbedder, load_cached_embedder
from digest.render import Renderer
from digest.settings import Settings
from digest.themes import Theme, load_themes

__all__ = ["Runtime", "SendOptions"]


@dataclass(frozen=True)
class SendOptions:
    """How a run sends; defaults suit a small list on one machine."""

    workers: int = 4
    batch: int = 500
    rate: float = 0.0
    hourly: int = 0
    attempts: int = 4
    backoff: float = 5.0
    lease: float = 300.0
    max_bounces: int = 3
    claim_batch: int = 20

    @classmethod
    def from_settings(cls, settings: Settings, shards: int = 1) -> SendOptions:
        """The configured options for one of ``shards`` runs sharing the rate limits."""
        return cls(
            workers=settings.send_workers,
            batch=settings.send_batch,
            rate=settings.send_rate / shards,
            hourly=settings.send_hourly // shards if settings.send_hourly else 0,
            attempts=settings.send_attempts,
            backoff=settings.send_backoff,
            lease=settings.send_lease,
            max_bounces=settings.max_bounces,
        )


def _no_model() -> CachedEmbedder | None:
    return None


@dataclass(frozen=True)
class Runtime:
    """Everything a run is made of. ``embedder`` is called only when there is something to
    embed (loading the model takes seconds); ``zones`` are the send-time zones."""

    engine: Engine
    themes: dict[str, Theme]
    renderer: Renderer
    archive: Archive
    channel: str = "outbox"
    outbox: Path = Path("data/outbox")
    options: SendOptions = field(default_factory=SendOptions)
    embedder: Callable[[], CachedEmbedder | None] = _no_model
    zones: tuple[str, ...] = ()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        shards: int = 1,
        archive: Path | None = None,
        engine: Engine | None = None,
        themes: dict[str, Theme] | None = None,
    ) -> Runtime:
        """The configured runtime; ``shards`` runs share the rate limits, ``archive`` moves
        the archive folder (``digest archive --out``); ``engine`` and ``themes`` replace the
        configured store and catalogue (an app over a given store)."""
        return cls(
            engine=engine or get_engine(settings.db_url),
            themes=themes or load_themes(),
            renderer=Renderer.from_settings(settings),
            archive=Archive(archive or settings.archive_dir, settings.public_url),
            channel=settings.delivery.get_secret_value(),
            outbox=settings.outbox_dir,
            options=SendOptions.from_settings(settings, shards),
            embedder=lambda: load_cached_embedder(settings),
            zones=tuple(settings.zones),
        )
