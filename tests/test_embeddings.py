"""The embeddings cache and the model's child process: runs read vectors from the cache, only
misses reach the model, and the model (torch) lives in a short-lived child, never in the flow
or send process."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from digest.compose import composer_for
from digest.db.models import Cadence
from digest.db.subscribers import due_subscribers
from digest.embeddings import DIMENSIONS, CachedEmbedder, ModelProcess, semantic_installed
from digest.errors import EmbeddingError
from digest.ingest import ingest_pages, read_pages
from digest.periods import Period
from digest.requests import request_from
from digest.runtime import SendOptions
from digest.subscriptions import subscribe
from digest.themes import load_themes
from digest.vectors import Matrix
from tests.conftest import SEEDS
from tests.test_delivery import send

ROOT = Path(__file__).resolve().parent.parent
THEMES = load_themes()
DAY = date(2026, 4, 15)
NEWEST_PAGE = SEEDS / "000_6d09fc0bd1ba692f.txt"  # Apr 15, 23 papers
semantic = pytest.mark.skipif(
    not semantic_installed(), reason="onnxruntime or the MiniLM package is not installed"
)


class Words:
    """A small real embedder: a hashed bag of words, unit rows of the model's width (a text
    without words is a zero row)."""

    def __init__(self, width: int = DIMENSIONS) -> None:
        self.width = width

    def counts(self, texts: Sequence[str]) -> Matrix:
        vectors = np.zeros((len(texts), self.width), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.width] += 1
        return vectors

    def encode(self, texts: Sequence[str]) -> Matrix:
        vectors = self.counts(texts)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=vectors, where=norms > 0)


class NaiveWords(Words):
    """The same, normalised without a guard: a text without words comes out as NaN (0/0)."""

    def encode(self, texts: Sequence[str]) -> Matrix:
        vectors = self.counts(texts)
        with np.errstate(invalid="ignore"):
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Counting:
    """A real (hashed bag-of-words) embedder that counts its calls and texts."""

    made = 0

    def __init__(self) -> None:
        Counting.made += 1
        self.calls: list[int] = []
        self._words = Words()

    def encode(self, texts: Sequence[str]) -> Matrix:
        self.calls.append(len(texts))
        return self._words.encode(texts)


@pytest.fixture
def counting() -> type[Counting]:
    Counting.made = 0
    return Counting


def test_a_warm_cache_never_makes_the_model(counting: type[Counting], tmp_path: Path) -> None:
    first = CachedEmbedder(counting, tmp_path)
    vectors = first.encode(["a b", "c d", "a b"])
    assert counting.made == 1 and len(first) == 2
    again = CachedEmbedder(counting, tmp_path)  # another run, reading the file
    assert np.array_equal(again.encode(["c d", "a b"]), vectors[[1, 0]])
    assert counting.made == 1  # every text was cached: no model made
    again.encode(["a b", "e f"])
    assert counting.made == 2 and len(CachedEmbedder(counting, tmp_path)) == 3


def test_a_send_run_embeds_everything_it_lacks_in_one_model_call(
    engine: Engine, counting: type[Counting], tmp_path: Path
) -> None:
    """On a cold cache, batches of two must not each call the model (each call is a child
    process in production): the run embeds papers and every section up front, once."""
    ingest_pages(read_pages("seeds", SEEDS, None), str(engine.url))
    interests = ["robot arms", "speech synthesis", "math proofs", "video diffusion", "agents"]
    for i, interest in enumerate(interests):
        fields = {"email": f"r{i}@example.org", "themes": ["agents"], "interest": interest}
        subscribe(engine, request_from(fields, "test"), THEMES)
    model = CachedEmbedder(counting, tmp_path / "embeddings")
    summary = send(engine, "outbox", tmp_path, options=SendOptions(batch=2), embedder=lambda: model)
    assert summary.sent == 5
    made = model._embedder
    assert isinstance(made, Counting) and counting.made == 1
    # the day's papers, the theme, the five interests (each short one embedded as a topic,
    # "papers on robot arms", and as the phrase reasons quote), and the theme's 13 own phrases
    # (name, keywords, clauses)
    assert made.calls == [23 + 1 + 5 * 2 + 13]
    # a composer over the same period now scores everyone from the cache alone
    composer = composer_for(engine, Period.day(DAY), THEMES, lambda: model)
    composer.prepare(subscriptions for _, subscriptions in due_subscribers(engine, Cadence.daily))
    assert made.calls == [47]


def test_a_child_that_cannot_start_or_fails_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="could not start the embedding process"):
        ModelProcess(python=str(tmp_path / "no-python")).encode(["a"])
    with pytest.raises(EmbeddingError, match=r"failed \(exit 1\) on 1 text"):
        ModelProcess(python="/bin/false").encode(["a"])


@semantic
def test_the_child_process_gives_the_in_process_model_s_vectors() -> None:
    from digest.embeddings import load_embedder

    texts = ["Speculative decoding with draft models", "Robots that fold laundry", ""]
    child = ModelProcess().encode(texts)
    model = load_embedder()
    assert model is not None
    assert child.shape == (3, 384)
    assert np.allclose(child, model.encode(texts), atol=1e-5)
    assert ModelProcess.peak_mib > 100  # the child reported its own peak


SEND_IN_A_PROCESS = """
import json, sys
from datetime import date
from pathlib import Path
from digest.archive import Archive
from digest.compose import compose_digest
from digest.embeddings import ModelProcess, load_cached_embedder
from digest.ingest import ingest_pages, read_pages
from digest.db.models import Cadence
from digest.periods import Period
from digest.sending import send_digests
from digest.runtime import Runtime
from digest.settings import load_settings
from digest.db import get_engine
from digest.subscriptions import subscribe
from digest.requests import request_from
from digest.themes import load_themes
from tests.test_render import RENDERER

folder, page, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
settings, themes = load_settings(), load_themes()
engine = get_engine(settings.db_url)
if mode == "send":
    ingest_pages(read_pages("seeds", page, None), settings.db_url)
    fields = {"email": "ada@example.org", "themes": ["agents"], "interest": "robot arms"}
    subscribe(engine, request_from(fields, "test"), themes)
    runtime = Runtime(
        engine=engine, themes=themes, renderer=RENDERER,
        archive=Archive(folder / "archive", "https://digest.example.org"),
        channel="outbox", outbox=folder / "outbox", embedder=lambda: load_cached_embedder(settings),
    )
    summary = send_digests(runtime, period=Period.day(date(2026, 4, 15)), cadence=Cadence.daily)
    result = {"sent": summary.sent}
else:
    digest = compose_digest(
        engine, "ada@example.org", None, themes, lambda: load_cached_embedder(settings)
    )
    result = {"papers": len(digest.paper_keys)}
result.update(torch="torch" in sys.modules, child=ModelProcess.peak_mib > 0)
print(json.dumps(result))
"""


@semantic
def test_semantic_runs_never_load_torch_in_their_own_process(tmp_path: Path) -> None:
    """The send process stays small: a cold cache is filled by a child; a warm one is read."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_SEMANTIC": "1",
        "PYTHONPATH": str(ROOT),
    }

    def run(mode: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-c", SEND_IN_A_PROCESS, str(tmp_path), str(NEWEST_PAGE), mode],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return answer

    cold = run("send")
    assert cold == {"sent": 1, "torch": False, "child": True}
    warm = run("preview")
    assert warm["torch"] is False and warm["child"] is False and warm["papers"]


def test_vectors_another_writer_saved_are_read_before_the_model_is_made(
    counting: type[Counting], tmp_path: Path
) -> None:
    """Shards of a run each hold a cache; the second to need a text finds the first's."""
    first, second = CachedEmbedder(counting, tmp_path), CachedEmbedder(counting, tmp_path)
    first.encode(["shared text"])
    assert np.array_equal(second.encode(["shared text"]), first.encode(["shared text"]))
    assert counting.made == 1


def test_an_unreadable_cache_file_is_re_embedded_and_replaced(
    counting: type[Counting], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "all-MiniLM-L6-v2.npz").write_bytes(b"not a zip file")
    cache = CachedEmbedder(counting, tmp_path)
    assert "unreadable embeddings cache" in caplog.text and len(cache) == 0
    vectors = cache.encode(["a b"])
    assert np.array_equal(CachedEmbedder(counting, tmp_path).encode(["a b"]), vectors)
    assert counting.made == 1


def cache_file(folder: Path) -> Path:
    return folder / "all-MiniLM-L6-v2.npz"


def write_cache(folder: Path, texts: Sequence[str], vectors: Matrix) -> Path:
    """A cache file as ``CachedEmbedder`` writes one (keys: the texts' hashes)."""
    keys = [hashlib.sha256(text.encode()).hexdigest()[:24] for text in texts]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(cache_file(folder), keys=np.array(keys), vectors=vectors)
    return cache_file(folder)


@pytest.mark.parametrize("damage", ["empty", "truncated", "npy"])
def test_a_damaged_cache_file_is_a_cold_cache_logged_by_name(
    damage: str, counting: type[Counting], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    CachedEmbedder(counting, tmp_path).encode(["a b", "c d"])
    path = cache_file(tmp_path)
    whole = path.read_bytes()
    if damage == "empty":  # a full disk at the wrong moment
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(whole[: len(whole) // 2])
    else:  # a plain array, not an archive
        np.save(tmp_path / "plain.npy", np.ones(3))
        (tmp_path / "plain.npy").replace(path)
    cache = CachedEmbedder(counting, tmp_path)
    assert len(cache) == 0
    assert f"{path}: unreadable embeddings cache" in caplog.text
    vectors = cache.encode(["a b"])
    assert counting.made == 2  # re-embedded, and the file replaced
    again = CachedEmbedder(counting, tmp_path)
    assert len(again) == 1 and np.array_equal(again.encode(["a b"]), vectors)
    assert counting.made == 2


def test_cached_vectors_of_another_width_are_re_embedded_not_used(
    counting: type[Counting], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another model's cache under this name (256 wide) must not mix into 384-wide scoring."""
    path = write_cache(tmp_path, ["a b"], Words(256).encode(["a b"]))
    cache = CachedEmbedder(counting, tmp_path)
    assert len(cache) == 0
    assert f"{path}: vectors have 256 dimensions, expected 384" in caplog.text
    assert cache.encode(["a b"]).shape == (1, DIMENSIONS) and counting.made == 1
    assert CachedEmbedder(counting, tmp_path).encode(["a b"]).shape == (1, DIMENSIONS)
    assert counting.made == 1
    other = write_cache(tmp_path / "other", ["a b"], Words(256).encode(["a b"])).parent
    assert len(CachedEmbedder(lambda: Words(256), other, dimensions=256)) == 1  # its own width


def test_cached_vectors_with_nan_or_infinity_are_re_embedded_not_used(
    counting: type[Counting], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts = ["a b", "c d", "e f"]
    stored = Words().encode(texts)
    stored[0, 0], stored[2, 5] = np.nan, np.inf
    path = write_cache(tmp_path, texts, stored)
    cache = CachedEmbedder(counting, tmp_path)
    assert len(cache) == 1
    assert f"{path}: 2 vector(s) hold NaN or infinite values; re-embedding them" in caplog.text
    vectors = cache.encode(texts)
    assert np.isfinite(vectors).all() and np.allclose(vectors, Words().encode(texts))
    made = cache._embedder
    assert isinstance(made, Counting) and made.calls == [2]
    reread = CachedEmbedder(counting, tmp_path)
    assert len(reread) == 3 and np.isfinite(reread.encode(texts)).all()
    assert counting.made == 1


def test_a_model_answer_with_nan_or_of_another_width_is_refused_and_never_cached(
    tmp_path: Path,
) -> None:
    naive = CachedEmbedder(NaiveWords, tmp_path)
    with pytest.raises(EmbeddingError, match=r"NaN or infinite values for 1 of 2 text\(s\)"):
        naive.encode(["a b", "  "])  # no words: 0/0
    assert len(naive) == 0 and not cache_file(tmp_path).exists()
    narrow = CachedEmbedder(lambda: Words(256), tmp_path)
    with pytest.raises(EmbeddingError, match=r"shape \(1, 256\), expected \(texts, 384\)"):
        narrow.encode(["a b"])
    assert len(narrow) == 0 and not cache_file(tmp_path).exists()
    assert np.isfinite(CachedEmbedder(Words, tmp_path).encode(["a b", "  "])).all()
