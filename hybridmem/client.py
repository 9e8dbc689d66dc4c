"""`MemoryClient` and `AsyncMemoryClient`: `Memory`'s methods over HTTP, against
`hybridmem serve`.

Same method names, arguments and return shapes as `Memory`, and the same exceptions,
rebuilt from the server's JSON errors (plus `AuthenticationError` and
`PermissionDeniedError` for the key). A request that could not reach the server, or got
503 (busy or restarting), is retried with backoff (`Retry-After` honoured). Every `add`
carries an `Idempotency-Key`, reused by its retries, so an add whose answer was lost is
never stored twice.

    from hybridmem import MemoryClient
    with MemoryClient(api_key="hm_...", host="http://127.0.0.1:8765") as m:
        m.add("My name is Alice", user_id="alice")
        m.search("What is my name?", user_id="alice")["results"]
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import random
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from hybridmem import errors
from hybridmem.errors import ConfigError, HybridMemError, InvalidInputError, UnavailableError

if TYPE_CHECKING:
    import networkx

DEFAULT_HOST = "http://127.0.0.1:8765"


@dataclass
class _Call:
    """One HTTP request a method makes, and how its answer becomes the method's result."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # A method whose repeat after a lost answer is harmless (reads, PUT, keyed adds).
    retry_unanswered: bool = True
    parse: Callable[[httpx.Response], Any] = lambda r: r.json()
    # 404 answered as a result (get -> None) instead of NotFoundError.
    on_404: Callable[[], Any] | None = None


def _ids(user_id: str | None, agent_id: str | None, run_id: str | None) -> dict[str, str]:
    return {k: v for k, v in (("user_id", user_id), ("agent_id", agent_id),
                              ("run_id", run_id)) if v is not None}


def _path_id(memory_id: str) -> str:
    if not isinstance(memory_id, str) or not memory_id.strip() or len(memory_id) > 64:
        raise InvalidInputError("memory_id must be a non-empty string of at most 64 characters")
    return urllib.parse.quote(memory_id, safe="")


class _Requests:
    """The HTTP request behind each of `Memory`'s methods (shared by both clients)."""

    @staticmethod
    def add(messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            run_id: str | None = None, metadata: dict[str, Any] | None = None,
            infer: bool = True, idempotency_key: str | None = None,
            timestamp: Any = None) -> _Call:
        body = {"messages": messages, **_ids(user_id, agent_id, run_id), "infer": infer}
        if metadata is not None:
            body["metadata"] = metadata
        if timestamp is not None:  # a datetime travels as ISO 8601
            body["timestamp"] = (timestamp.isoformat() if hasattr(timestamp, "isoformat")
                                 else timestamp)
        return _Call("POST", "/memories", body=body,
                     headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex})

    @staticmethod
    def search(query: str, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, limit: int = 100,
               filters: dict[str, Any] | None = None, threshold: float | None = None) -> _Call:
        body = {"query": query, **_ids(user_id, agent_id, run_id), "limit": limit}
        if filters is not None:
            body["filters"] = filters
        if threshold is not None:
            body["threshold"] = threshold
        return _Call("POST", "/search", body=body)

    @staticmethod
    def get(memory_id: str) -> _Call:
        return _Call("GET", f"/memories/{_path_id(memory_id)}", on_404=lambda: None)

    @staticmethod
    def get_all(*, user_id: str | None = None, agent_id: str | None = None,
                run_id: str | None = None, filters: dict[str, Any] | None = None,
                limit: int = 100, include_invalid: bool = False,
                as_of: str | None = None) -> _Call:
        params: dict[str, Any] = {**_ids(user_id, agent_id, run_id), "limit": limit,
                                  "include_invalid": str(include_invalid).lower()}
        if filters is not None:
            params["filters"] = json.dumps(filters)
        if as_of is not None:
            params["as_of"] = as_of if isinstance(as_of, str) else as_of.isoformat()
        return _Call("GET", "/memories", params=params)

    @staticmethod
    def update(memory_id: str, data: str, *, metadata: dict[str, Any] | None = None) -> _Call:
        body: dict[str, Any] = {"text": data}
        if metadata is not None:
            body["metadata"] = metadata
        return _Call("PUT", f"/memories/{_path_id(memory_id)}", body=body)

    @staticmethod
    def delete(memory_id: str) -> _Call:
        return _Call("DELETE", f"/memories/{_path_id(memory_id)}", retry_unanswered=False)

    @staticmethod
    def delete_all(*, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> _Call:
        return _Call("DELETE", "/memories", params=_ids(user_id, agent_id, run_id))

    @staticmethod
    def history(memory_id: str) -> _Call:
        return _Call("GET", f"/memories/{_path_id(memory_id)}/history")

    @staticmethod
    def graph(*, user_id: str | None = None, agent_id: str | None = None,
              run_id: str | None = None, include_invalid: bool = False,
              as_of: str | None = None) -> _Call:
        params: dict[str, Any] = {**_ids(user_id, agent_id, run_id),
                                  "include_invalid": str(include_invalid).lower()}
        if as_of is not None:
            params["as_of"] = as_of
        return _Call("GET", "/graph", params=params, parse=_graph_of)

    @staticmethod
    def reset() -> _Call:
        return _Call("POST", "/reset", parse=lambda r: None)

    @staticmethod
    def stats() -> _Call:
        return _Call("GET", "/stats")

    @staticmethod
    def pending() -> _Call:
        return _Call("GET", "/pending")

    @staticmethod
    def check() -> _Call:
        return _Call("POST", "/check")


def _graph_of(response: httpx.Response) -> networkx.MultiDiGraph:
    import networkx as nx

    return nx.node_link_graph(response.json(), edges="edges", multigraph=True, directed=True)


def _error_from(response: httpx.Response) -> HybridMemError:
    """The exception a JSON error answer stands for (the server's class, by name)."""
    try:
        error = response.json()["error"]
        name, message = str(error["type"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return HybridMemError(f"the server answered {response.status_code} without a "
                              f"hybridmem error: {response.text[:200]!r}")
    kind = getattr(errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, HybridMemError)):
        kind = HybridMemError
    if issubclass(kind, errors.ProviderError):
        return kind(message, provider=str(error.get("provider") or "?"),
                    failure=str(error.get("failure") or "?"))
    if issubclass(kind, UnavailableError | errors.TooManyAttemptsError):
        return kind(message, retry_after=_retry_after(response))
    return kind(message)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _Base:
    def __init__(self, api_key: str | None, host: str | None, timeout: float,
                 max_retries: int) -> None:
        self.host = (host or os.environ.get("HYBRIDMEM_URL") or DEFAULT_HOST).rstrip("/")
        if not self.host.startswith(("http://", "https://")):
            raise ConfigError(f"host must be an http(s) URL, got {self.host!r}")
        self.api_key = api_key if api_key is not None else os.environ.get("HYBRIDMEM_API_KEY")
        self.timeout = timeout
        self.max_retries = max_retries
        self._headers = {"User-Agent": "hybridmem-client"}
        if self.api_key:
            self._headers["Authorization"] = f"Bearer {self.api_key}"

    def _outcome(self, call: _Call, response: httpx.Response) -> tuple[bool, Any]:
        """(done, result-or-error) for one answer; not done: retry it."""
        if response.status_code < 300:
            return True, call.parse(response)
        if response.status_code == 404 and call.on_404 is not None:
            return True, call.on_404()
        error = _error_from(response)
        return (response.status_code != 503, error)

    def _delay(self, attempt: int, error: Any) -> float:
        hinted = getattr(error, "retry_after", None)
        if hinted:
            return min(float(hinted), 30.0)
        return min(0.25 * 2**attempt, 8.0) * (0.5 + random.random() / 2)

    def _unreachable(self, exc: httpx.HTTPError) -> UnavailableError:
        return UnavailableError(f"cannot reach the hybridmem server at {self.host}: "
                                f"{type(exc).__name__}: {exc} (is `hybridmem serve` running?)")


def _retryable(call: _Call, exc: httpx.HTTPError) -> bool:
    # A request that never reached the server may always be sent again; one whose answer
    # was lost only when repeating it is harmless.
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout) or (
        call.retry_unanswered and isinstance(exc, httpx.TransportError))


def _method(name: str, *, asynchronous: bool) -> Callable[..., Any]:
    """`Memory.<name>` over HTTP: its request from `_Requests`, its docstring and return
    annotation from `Memory`."""
    from hybridmem.memory import Memory

    build = getattr(_Requests, name)
    target = getattr(Memory, name)
    if asynchronous:
        async def method(self: AsyncMemoryClient, *args: Any, **kwargs: Any) -> Any:
            return await self._send(build(*args, **kwargs))
    else:
        def method(self: MemoryClient, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            return self._send(build(*args, **kwargs))
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`Memory.{name}` over HTTP.\n\n{target.__doc__ or ''}"
    signature = inspect.signature(build)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
                    *signature.parameters.values()],
        return_annotation=inspect.signature(target).return_annotation)
    return method


class MemoryClient(_Base):
    """`Memory`'s methods against a `hybridmem serve` (`host`, default `$HYBRIDMEM_URL`
    or http://127.0.0.1:8765; `api_key`, default `$HYBRIDMEM_API_KEY`).

    `timeout` bounds each request (an add waits on the LLM: keep it generous);
    `max_retries` bounds the retries of a request that could not be answered."""

    def __init__(self, api_key: str | None = None, host: str | None = None, *,
                 timeout: float = 120.0, max_retries: int = 4,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(api_key, host, timeout, max_retries)
        self._http = httpx.Client(base_url=self.host, headers=self._headers, timeout=timeout,
                                  transport=transport)

    # Memory's methods, over HTTP
    add = _method("add", asynchronous=False)
    search = _method("search", asynchronous=False)
    get = _method("get", asynchronous=False)
    get_all = _method("get_all", asynchronous=False)
    update = _method("update", asynchronous=False)
    delete = _method("delete", asynchronous=False)
    delete_all = _method("delete_all", asynchronous=False)
    history = _method("history", asynchronous=False)
    graph = _method("graph", asynchronous=False)
    reset = _method("reset", asynchronous=False)
    stats = _method("stats", asynchronous=False)
    pending = _method("pending", asynchronous=False)
    check = _method("check", asynchronous=False)

    def _send(self, call: _Call) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.request(call.method, call.path, params=call.params,
                                              json=call.body, headers=call.headers)
            except httpx.HTTPError as exc:
                if attempt == self.max_retries or not _retryable(call, exc):
                    raise self._unreachable(exc) from None
                time.sleep(self._delay(attempt, None))
                continue
            done, outcome = self._outcome(call, response)
            if done or attempt == self.max_retries:
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            time.sleep(self._delay(attempt, outcome))
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMemoryClient(_Base):
    """`MemoryClient` for asyncio: the same methods, awaitable (`await m.search(...)`)."""

    def __init__(self, api_key: str | None = None, host: str | None = None, *,
                 timeout: float = 120.0, max_retries: int = 4,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(api_key, host, timeout, max_retries)
        self._http = httpx.AsyncClient(base_url=self.host, headers=self._headers,
                                       timeout=timeout, transport=transport)

    # Memory's methods, over HTTP, awaitable
    add = _method("add", asynchronous=True)
    search = _method("search", asynchronous=True)
    get = _method("get", asynchronous=True)
    get_all = _method("get_all", asynchronous=True)
    update = _method("update", asynchronous=True)
    delete = _method("delete", asynchronous=True)
    delete_all = _method("delete_all", asynchronous=True)
    history = _method("history", asynchronous=True)
    graph = _method("graph", asynchronous=True)
    reset = _method("reset", asynchronous=True)
    stats = _method("stats", asynchronous=True)
    pending = _method("pending", asynchronous=True)
    check = _method("check", asynchronous=True)

    async def _send(self, call: _Call) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._http.request(call.method, call.path, params=call.params,
                                                    json=call.body, headers=call.headers)
            except httpx.HTTPError as exc:
                if attempt == self.max_retries or not _retryable(call, exc):
                    raise self._unreachable(exc) from None
                await asyncio.sleep(self._delay(attempt, None))
                continue
            done, outcome = self._outcome(call, response)
            if done or attempt == self.max_retries:
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            await asyncio.sleep(self._delay(attempt, outcome))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMemoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
