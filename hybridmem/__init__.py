"""hybridmem: memory for AI agents that deal in people and relationships.

    from hybridmem import Memory
    m = Memory()                       # offline: Milvus Lite + Kuzu + local embedder
    m.add("My name is Alice", user_id="alice")
    m.search("What is my name?", user_id="alice")["results"]
"""

from hybridmem.config import MemoryConfig
from hybridmem.errors import (
    ConfigError,
    DimensionMismatchError,
    EmbeddingError,
    ExtractionError,
    HybridMemError,
    InvalidInputError,
    LLMError,
    NotFoundError,
    ProviderError,
    ScopeError,
    StoreError,
    StoreLockedError,
)
from hybridmem.memory import Memory

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DimensionMismatchError", "EmbeddingError", "ExtractionError",
    "HybridMemError", "InvalidInputError", "LLMError", "Memory", "MemoryConfig",
    "NotFoundError", "ProviderError", "ScopeError", "StoreError", "StoreLockedError",
    "__version__",
]
