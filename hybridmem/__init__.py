"""hybridmem: memory for AI agents that deal in people and relationships.

    from hybridmem import Memory
    m = Memory()                       # offline: Milvus Lite + Kuzu + local embedder
    m.add("My name is Alice", user_id="alice")
    m.search("What is my name?", user_id="alice")["results"]
"""

from hybridmem.config import MemoryConfig
from hybridmem.errors import (
    AccessError,
    AuthenticationError,
    BusyError,
    ClosedError,
    ConfigError,
    DimensionMismatchError,
    EmbeddingError,
    ExtractionError,
    HybridMemError,
    InvalidInputError,
    LLMError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    ScopeError,
    StoreError,
    StoreLockedError,
    UnavailableError,
)
from hybridmem.memory import Memory

__version__ = "0.1.0"

# Imported on first use: a script that only needs `Memory` does not pay for httpx.
_LAZY = {"AsyncMemory": "hybridmem.async_memory", "MemoryClient": "hybridmem.client",
         "AsyncMemoryClient": "hybridmem.client"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hybridmem' has no attribute {name!r}")


__all__ = [
    "AccessError", "AsyncMemory", "AsyncMemoryClient", "AuthenticationError", "BusyError",
    "ClosedError", "MemoryClient", "PermissionDeniedError", "UnavailableError",
    "ConfigError", "DimensionMismatchError", "EmbeddingError", "ExtractionError",
    "HybridMemError", "InvalidInputError", "LLMError", "Memory", "MemoryConfig",
    "NotFoundError", "ProviderError", "ScopeError", "StoreError", "StoreLockedError",
    "__version__",
]
