"""The exception hierarchy. Every error hybridmem raises on purpose is a `HybridMemError`.

```
HybridMemError
├── ConfigError                 unknown provider or key, bad value
├── InvalidInputError           empty/non-text messages, bad metadata, bad limit, bad filter
│   └── ScopeError              missing or malformed user_id / agent_id / run_id
├── NotFoundError               no memory with that id in that scope
├── StoreError                  an engine refused or failed
│   ├── StoreLockedError        the data dir is held by another process
│   └── DimensionMismatchError  the collection's vectors have another size than the embedder's
├── ProviderError               an LLM or embedding endpoint failed after its retries
│   ├── LLMError
│   │   └── ExtractionError     the LLM answered, but not with what the schema asks for
│   └── EmbeddingError
├── UnavailableError            the memory cannot take the call now (HTTP 503)
│   ├── ClosedError             it is closed, or the server is shutting down
│   └── BusyError               too many writes are waiting; retry after a moment
└── AccessError                 the server refused the key (raised by the clients)
    ├── AuthenticationError     no key, an unknown or revoked key (HTTP 401)
    │   └── TooManyAttemptsError  too many failed keys from one address (HTTP 429)
    └── PermissionDeniedError   the key may not act in that scope (HTTP 403)
```
"""

from __future__ import annotations


class HybridMemError(Exception):
    """Base class of every error raised by hybridmem."""


class ConfigError(HybridMemError, ValueError):
    """The configuration names an unknown provider or key, or holds a bad value."""


class InvalidInputError(HybridMemError, ValueError):
    """An argument of a public call is not acceptable; the store was not changed."""


class ScopeError(InvalidInputError):
    """No scope id was given, or a scope id is not a non-empty string."""


class NotFoundError(HybridMemError, KeyError):
    """No memory with that id exists (in the caller's scope)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class StoreError(HybridMemError):
    """A storage engine (Milvus, Kuzu or SQLite) failed."""


class StoreLockedError(StoreError):
    """The data directory is in use by another process (one writer per data dir)."""


class DimensionMismatchError(StoreError):
    """The existing collection stores vectors of another dimension than the embedder makes."""


class ProviderError(HybridMemError):
    """A remote model provider failed after bounded retries.

    Attributes:
        provider: the provider's name, e.g. "openai".
        failure: a short machine-readable kind: "rate_limit", "server_error", "timeout",
            "connection", "bad_response", "schema", "auth", "bad_request".
    """

    def __init__(self, message: str, *, provider: str, failure: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.failure = failure


class LLMError(ProviderError):
    """The chat-completion endpoint failed."""


class ExtractionError(LLMError):
    """The LLM answered, but its answer was not valid against the extraction schema."""


class EmbeddingError(ProviderError):
    """The embedding endpoint failed or returned vectors of the wrong size."""


class UnavailableError(HybridMemError):
    """The memory cannot take this call now; the same call may succeed later.

    Attributes:
        retry_after: seconds to wait before trying again, when known.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClosedError(UnavailableError):
    """The Memory is closed (or the server that holds it is shutting down)."""


class BusyError(UnavailableError):
    """Too many writes are already waiting; nothing of this call was stored."""


class AccessError(HybridMemError):
    """A server refused the request's key (raised by `MemoryClient`)."""


class AuthenticationError(AccessError):
    """No key, an unknown or revoked key, or too many failed attempts from this address."""


class TooManyAttemptsError(AuthenticationError):
    """Too many failed keys came from this address lately; wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDeniedError(AccessError):
    """The key is bound to a scope and the request names another, or needs an admin key."""
