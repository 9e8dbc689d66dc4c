"""Building the `openai` client for any OpenAI-compatible endpoint, and turning its
exceptions into ours. Retries (with exponential backoff and Retry-After) are the client's
own; we bound them with `max_retries` and name what failed when they run out."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TypeVar

from hybridmem.errors import ConfigError, ProviderError

PROVIDER = "openai"
T = TypeVar("T")


def build_client(
    *, api_key: str | None, base_url: str | None, timeout: float, max_retries: int
):
    """An `openai.OpenAI` client; api_key/base_url fall back to OPENAI_API_KEY/OPENAI_BASE_URL."""
    import openai

    try:
        return openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
    except openai.OpenAIError as exc:
        raise ConfigError(
            f"cannot configure the OpenAI-compatible client: {exc} "
            "(set api_key in the config or OPENAI_API_KEY)"
        ) from exc


def endpoint(client) -> str:
    """The base URL a client sends to, for error messages ("http://host:8000/v1")."""
    return str(client.base_url).rstrip("/")


def call(fn: Callable[[], T], *, max_retries: int, what: str,
         error_type: type[ProviderError], url: str) -> T:
    """Run one client call to the endpoint at `url`. The client retries
    429/5xx/timeouts/refused connections itself; a 200 whose body is not JSON it does not,
    so those are retried here, with the same bound and exponential backoff. Every failure
    leaves as `error_type`."""
    import openai

    for attempt in range(max_retries + 1):
        try:
            return fn()
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            if attempt == max_retries:
                raise translate_error(exc, what=what, error_type=error_type, url=url) from exc
            time.sleep(min(0.5 * 2**attempt, 8.0))
        except Exception as exc:  # noqa: BLE001 - every client failure is translated
            raise translate_error(exc, what=what, error_type=error_type, url=url) from exc
    raise AssertionError("unreachable")


def translate_error(exc: Exception, *, what: str, error_type: type[ProviderError],
                    url: str) -> ProviderError:
    """Map an exception from the openai client to a `ProviderError` subclass naming the
    endpoint, the failure and, for a connection that failed, its cause."""
    import openai

    failure, detail = "bad_response", str(exc)
    if isinstance(exc, openai.RateLimitError):
        failure = "rate_limit"
    elif isinstance(exc, openai.APITimeoutError):
        failure = "timeout"
        detail = _with_cause(exc)
    elif isinstance(exc, openai.APIConnectionError):
        failure = "connection"
        detail = _with_cause(exc)
    elif isinstance(exc, openai.InternalServerError):
        failure = "server_error"
    elif isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        failure = "auth"
    elif isinstance(exc, openai.APIStatusError):
        failure = "server_error" if exc.status_code >= 500 else "bad_request"
    elif isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
        detail = f"the endpoint answered with a body that is not valid JSON ({exc})"
    status = getattr(exc, "status_code", None)
    where = f" (HTTP {status})" if status else ""
    return error_type(f"{PROVIDER} {what} at {url} failed: {failure}{where}: {detail}",
                      provider=PROVIDER, failure=failure)


def _with_cause(exc: BaseException) -> str:
    """The client's words and the innermost cause's: "Connection error." alone hides
    whether the name did not resolve or the port refused."""
    inner, seen = exc, {id(exc)}
    while (deeper := inner.__cause__ or inner.__context__) is not None and id(deeper) not in seen:
        seen.add(id(deeper))
        inner = deeper
    cause = re.sub(r"^\[Errno -?\d+\]\s*", "", str(inner)) or type(inner).__name__
    said = str(exc)
    return said if inner is exc or cause in said else f"{said} ({cause})"
