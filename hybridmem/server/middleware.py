"""The ASGI layer every request passes through before a route: its request id and log
line, the closing gate, the Host check of a loopback server, and the body limit.

A body is read here, whole, before any route sees it: one over the limit is refused by
its Content-Length before it is read (413), a chunked one as soon as it passes the limit,
and a client that sends it too slowly gets 408. Routes then parse bytes already in memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybridmem.server.errors import internal_error, plain_error

log = logging.getLogger("hybridmem.server")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_LOOPBACK_HOSTS = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:\d+)?", re.IGNORECASE)


@dataclass
class Gate:
    """Server-wide switches the middleware reads."""

    # Set on SIGINT/SIGTERM: requests still arriving get 503 while running ones finish.
    closing: bool = False
    max_body_bytes: int = 8 * 2**20
    body_timeout: float = 30.0
    # A loopback server answers only requests addressed to a loopback name (a web page
    # that rebinds its DNS name to 127.0.0.1 cannot reach it).
    loopback_only: bool = True
    # Requests in flight at most (each holds its body): past it, 503 at once, so a flood
    # queues nowhere without bound.
    max_active: int = 256
    active: int = 0


class RequestLayer:
    """Wraps the app: request id, one log line, closing gate, Host check, body limit."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = [0]  # 0 until the response starts

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        self.gate.active += 1  # one event loop: no lock needed
        try:
            refusal = self._refusal(scope, headers, request_id)
            if refusal is None:
                body = await self._read_body(receive, headers, request_id)
                if isinstance(body, bytes):
                    await self.app(scope, _replay(body, receive), send_with_id)
                else:
                    refusal = body
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - a bug below: answered without a traceback
            if not status[0]:
                await internal_error(exc, request_id)(scope, receive, send_with_id)
        finally:
            self.gate.active -= 1
            # Never the query string or a header: a key must not reach the log.
            log.info("%s %s %d %.1fms id=%s", scope["method"], scope["path"], status[0],
                     (time.perf_counter() - started) * 1000, request_id)

    def _refusal(self, scope: Scope, headers: dict[str, str], request_id: str):
        if self.gate.closing and scope["path"] != "/health":
            return plain_error(503, {"type": "ClosedError",
                                     "message": "the server is shutting down; retry shortly",
                                     "retry_after": 2}, request_id, {"Retry-After": "2"})
        if self.gate.active > self.gate.max_active and scope["path"] != "/health":
            return plain_error(503, {"type": "BusyError",
                                     "message": f"over {self.gate.max_active} requests are "
                                                "in flight; retry shortly", "retry_after": 1},
                               request_id, {"Retry-After": "1"})
        if self.gate.loopback_only and not _LOOPBACK_HOSTS.fullmatch(headers.get("host", "")):
            return plain_error(421, {"type": "PermissionDeniedError",
                                     "message": "this server listens on loopback and answers "
                                                "requests for 127.0.0.1 or localhost only"},
                               request_id)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return plain_error(400, {"type": "InvalidInputError",
                                         "message": "Content-Length is not a number"},
                                   request_id)
            if int(length) > self.gate.max_body_bytes:
                return self._too_large(request_id)
        return None

    async def _read_body(self, receive: Receive, headers: dict[str, str], request_id: str):
        """The whole body, or the answer that refuses it."""
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.gate.body_timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                return plain_error(408, {"type": "InvalidInputError",
                                         "message": f"the request body did not arrive within "
                                                    f"{self.gate.body_timeout:.0f} s"},
                                   request_id, {"Connection": "close"})
            if message["type"] == "http.disconnect":
                return plain_error(400, {"type": "InvalidInputError",
                                         "message": "the client went away"}, request_id)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.gate.max_body_bytes:
                return self._too_large(request_id)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, request_id: str):
        return plain_error(413, {"type": "InvalidInputError",
                                 "message": f"the request body is over the server's limit of "
                                            f"{self.gate.max_body_bytes} bytes (serve "
                                            "--max-body-mb)"},
                           request_id, {"Connection": "close"})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the real stream (for
    the disconnect a streaming response waits for)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
