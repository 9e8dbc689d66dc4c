"""The Embedder protocol every embedding backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one batch per call."""

    #: Short name for logs and errors, e.g. "local:all-MiniLM-L6-v2".
    name: str
    #: Vector dimension.
    dims: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` in one call; returns an array of shape (len(texts), dims)."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)
