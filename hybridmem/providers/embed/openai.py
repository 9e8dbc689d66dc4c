"""Embeddings from any OpenAI-compatible `/embeddings` endpoint."""

from __future__ import annotations

import numpy as np

from hybridmem.errors import ConfigError, EmbeddingError
from hybridmem.providers.embed.base import l2_normalise
from hybridmem.providers.openai_client import build_client, call, endpoint

KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """One `/embeddings` request per `embed` call; asks for `dimensions` when configured."""

    def __init__(
        self,
        *,
        model: str | None,
        dims: int | None,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
    ) -> None:
        self.model = model or "text-embedding-3-small"
        resolved = dims or KNOWN_DIMS.get(self.model)
        if resolved is None:
            raise ConfigError(
                f"embedder model {self.model!r} has no known dimension: set embedder.config."
                "embedding_dims (or vector_store.config.embedding_model_dims)"
            )
        self.dims = resolved
        self._send_dims = dims is not None
        self._max_retries = max_retries
        self.name = f"openai:{self.model}"
        self._client = build_client(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self.url = endpoint(self._client)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` in one request.

        Raises:
            EmbeddingError: the endpoint failed after retries, or returned vectors of
                another count or dimension than asked.
        """
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        kwargs = {"dimensions": self.dims} if self._send_dims else {}
        response = call(
            lambda: self._client.embeddings.create(input=texts, model=self.model, **kwargs),
            max_retries=self._max_retries, what="embedding", error_type=EmbeddingError,
            url=self.url,
        )
        try:
            rows = sorted(response.data, key=lambda d: d.index)
            vectors = np.asarray([r.embedding for r in rows], dtype=np.float32)
        except (AttributeError, TypeError, ValueError) as exc:
            raise EmbeddingError(
                f"openai embedding at {self.url} failed: bad_response: {exc}", provider="openai",
                failure="bad_response",
            ) from exc
        if vectors.ndim != 2 or vectors.shape != (len(texts), self.dims):
            raise EmbeddingError(
                f"openai embedding at {self.url} failed: bad_response: expected {len(texts)} "
                f"vectors of dimension {self.dims}, got shape {tuple(vectors.shape)}",
                provider="openai", failure="bad_response",
            )
        return l2_normalise(vectors)
