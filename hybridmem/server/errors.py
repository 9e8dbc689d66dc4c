"""hybridmem's errors as HTTP answers: a status from the errors tree, and a JSON body

    {"error": {"type": "InvalidInputError", "message": "...", "failure": null,
               "request_id": "..."}}

that `MemoryClient` turns back into the same exception. Never a traceback: anything that
is not a `HybridMemError` is logged with its traceback and answered as an internal error.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse

from hybridmem.errors import (
    AuthenticationError,
    ConfigError,
    HybridMemError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    StoreError,
    TooManyAttemptsError,
    UnavailableError,
)

log = logging.getLogger("hybridmem.server")

# Most specific first.
_STATUS: list[tuple[type[HybridMemError], int]] = [
    (TooManyAttemptsError, 429),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (InvalidInputError, 400),
    (ConfigError, 400),
    (UnavailableError, 503),
    (StoreError, 409),
]


def status_of(exc: HybridMemError) -> int:
    """The HTTP status an error is answered with."""
    if isinstance(exc, ProviderError):
        return 504 if exc.failure == "timeout" else 502
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error_response(exc: HybridMemError, request_id: str | None = None) -> JSONResponse:
    """The JSON answer to a hybridmem error (with `Retry-After` when there is one)."""
    message = str(exc)
    notes = getattr(exc, "__notes__", None)
    if notes:
        message += " (" + "; ".join(notes) + ")"
    body: dict[str, Any] = {"type": type(exc).__name__, "message": message,
                            "failure": getattr(exc, "failure", None)}
    if isinstance(exc, ProviderError):
        body["provider"] = exc.provider
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
        body["retry_after"] = retry_after
    if isinstance(exc, AuthenticationError) and not isinstance(exc, TooManyAttemptsError):
        headers["WWW-Authenticate"] = "Bearer"
    return plain_error(status_of(exc), body, request_id, headers)


def plain_error(status: int, error: dict[str, Any], request_id: str | None = None,
                headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error answer from its parts (`type`, `message`, ...)."""
    body = {"type": "HybridMemError", "message": "", "failure": None, **error}
    if request_id is not None:
        body["request_id"] = request_id
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def internal_error(exc: BaseException, request_id: str | None) -> JSONResponse:
    """A bug: logged with its traceback, answered without one."""
    log.error("internal error in request %s", request_id, exc_info=exc)
    return plain_error(500, {"type": "InternalError",
                             "message": f"internal error (request {request_id}); the server "
                                        "log has the details"}, request_id)
