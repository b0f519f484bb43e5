"""The embedding seam: the array type scores and vectors travel in, and the protocol of a model
that makes them. Its own module so the scorer, the embeddings cache and the model runtime share
one definition without importing one another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["Embedder", "Matrix"]

Matrix = NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length vectors (rows)."""

    def encode(self, texts: Sequence[str]) -> Matrix: ...
