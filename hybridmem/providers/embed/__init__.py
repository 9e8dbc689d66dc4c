"""Embedders: `local` (default, offline ONNX MiniLM), `openai`, `hash` (tests)."""

from __future__ import annotations

from hybridmem.config import EmbedderConfig, VectorStoreConfig
from hybridmem.errors import ConfigError
from hybridmem.providers.embed.base import Embedder

__all__ = ["Embedder", "create_embedder"]


def create_embedder(config: EmbedderConfig, vector: VectorStoreConfig | None = None) -> Embedder:
    """Build the embedder a config names.

    Raises:
        ConfigError: the dimension asked for cannot be produced by that embedder.
    """
    dims = config.embedding_dims or (vector.embedding_model_dims if vector else None)
    if config.provider == "local":
        from hybridmem.providers.embed.local import DIMS, LocalEmbedder

        if dims not in (None, DIMS):
            key = ("embedder.config.embedding_dims" if config.embedding_dims
                   else "vector_store.config.embedding_model_dims")
            raise ConfigError(
                f"the local embedder makes {DIMS}-d vectors, but {key} asks for {dims}: set "
                f"it to {DIMS} (or leave it out), or use an embedder that makes {dims}-d "
                "vectors (embedder provider 'openai')")
        return LocalEmbedder(batch_size=config.batch_size)
    if config.provider == "hash":
        from hybridmem.providers.embed.hashing import HashEmbedder

        return HashEmbedder(dims or 384)
    from hybridmem.providers.embed.openai import OpenAIEmbedder

    return OpenAIEmbedder(
        model=config.model, dims=dims, api_key=config.api_key, base_url=config.base_url,
        timeout=config.timeout, max_retries=config.max_retries,
    )
