"""A deterministic lexical embedder (hashed words and character trigrams). Tests only:
it captures word overlap, not meaning."""

from __future__ import annotations

import hashlib

import numpy as np

from hybridmem.providers.embed.base import l2_normalise
from hybridmem.text import tokenize


class HashEmbedder:
    """Signed feature hashing of words and character trigrams into `dims` buckets."""

    def __init__(self, dims: int = 384) -> None:
        self.dims = dims
        self.name = f"hash:{dims}"

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed `texts`; identical texts give identical vectors on every machine."""
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            words = tokenize(text)
            features = list(words)
            for word in words:
                padded = f"#{word}#"
                features.extend(padded[i : i + 3] for i in range(len(padded) - 2))
            for feature in features:
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                weight = 1.0 if feature in words else 0.5
                out[row, (value >> 1) % self.dims] += sign * weight
        return l2_normalise(out)
