"""The HTTP app: mem0's OSS REST routes (and ours) over `ScopedMemory`, plus MCP at /mcp.

Routes only translate: they take the caller from the key (`Access`), call one
`ScopedMemory` method, and answer its dict as JSON. Errors are JSON from
`server/errors.py`. Bodies are strict: an unknown or mistyped field is a 422 naming it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hybridmem import __version__
from hybridmem.async_memory import AsyncMemory
from hybridmem.errors import HybridMemError, InvalidInputError, NotFoundError
from hybridmem.server.access import Access, Principal
from hybridmem.server.errors import error_response, plain_error
from hybridmem.server.middleware import Gate, RequestLayer
from hybridmem.server.scoped import ScopedMemory

_SCOPE_HELP = "scope ids: a user's key implies its own user_id; an admin key names one"


# async: a key check is one indexed SQLite read, cheaper than a hop to a thread
async def _caller(request: Request) -> ScopedMemory:
    """The store as this request's key sees it."""
    state = request.app.state
    return ScopedMemory(state.memory, state.access.authenticate(request.headers,
                                                                _address(request.scope)))


Caller = Annotated[ScopedMemory, Depends(_caller)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageIn(_Body):
    """One chat message."""

    role: StrictStr = Field(description="user, assistant or system")
    content: StrictStr


class AddRequest(_Body):
    """`POST /memories`: what `Memory.add` takes."""

    messages: StrictStr | MessageIn | list[MessageIn] = Field(
        description="a text, one message, or a list of role/content messages")
    user_id: StrictStr | None = None
    agent_id: StrictStr | None = None
    run_id: StrictStr | None = None
    metadata: dict[str, Any] | None = None
    infer: StrictBool = Field(True, description="extract facts and relations (false: store "
                                                "each message verbatim)")
    timestamp: StrictStr | StrictFloat | StrictInt | None = Field(
        None, description="when the messages were said: ISO 8601 or unix seconds")


class SearchRequest(_Body):
    """`POST /search`: what `Memory.search` takes."""

    query: StrictStr
    user_id: StrictStr | None = None
    agent_id: StrictStr | None = None
    run_id: StrictStr | None = None
    filters: dict[str, Any] | None = Field(None, description="mem0's metadata filter grammar")
    limit: StrictInt = 100
    threshold: StrictFloat | StrictInt | None = None


class UpdateRequest(_Body):
    """`PUT /memories/{memory_id}`: the new text (and metadata)."""

    text: StrictStr
    metadata: dict[str, Any] | None = None


def create_app(memory: AsyncMemory, access: Access, gate: Gate | None = None, *,
               mcp: bool = True) -> RequestLayer:
    """The ASGI app serving `memory`: REST routes, OpenAPI at /docs, MCP at /mcp.

    `gate` carries the server-wide switches (closing, body limit, loopback Host check);
    the returned app is the FastAPI app wrapped in `RequestLayer`.
    """
    gate = gate or Gate()
    mcp_server = None
    if mcp:
        from hybridmem.server.mcp import build_mcp

        mcp_server = build_mcp(
            lambda ctx: ScopedMemory(memory, ctx.request_context.request.scope["state"]
                                     ["principal"]))
        # Stateless JSON: every POST is answered whole, no session or stream outlives a
        # request (so shutdown never waits on an idle client); Host checks are ours.
        from mcp.server.transport_security import TransportSecuritySettings

        mcp_server.streamable_http_app(
            stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if mcp_server is None:
            yield
            return
        async with mcp_server.session_manager.run():
            yield

    app = FastAPI(title="hybridmem", version=__version__, lifespan=lifespan,
                  description="Memory for AI agents: facts in Milvus, people and relations "
                              "in Kuzu, one ranked search. Routes in mem0's REST shapes; "
                              "send `Authorization: Bearer KEY` (or `X-API-Key: KEY`).")
    _install_error_handlers(app)

    app.state.memory, app.state.access = memory, access
    @app.get("/health", tags=["server"])
    async def health() -> dict[str, str]:
        """200 once the store is open (no key needed)."""
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.post("/memories", tags=["memories"])
    async def add_memories(body: AddRequest, me: Caller,
                           idempotency_key: Annotated[str | None, Header()] = None
                           ) -> JSONResponse:
        """Remember messages (`Memory.add`). Send `Idempotency-Key` to make a retried
        request safe: the same key and body in the same scope is stored once."""
        messages = body.messages
        if isinstance(messages, MessageIn):
            messages = messages.model_dump()
        elif isinstance(messages, list):
            messages = [m.model_dump() for m in messages]
        return _json(await me.add(messages, user_id=body.user_id, agent_id=body.agent_id,
                                  run_id=body.run_id, metadata=body.metadata,
                                  infer=body.infer, idempotency_key=idempotency_key,
                                  timestamp=body.timestamp))

    @app.get("/memories", tags=["memories"])
    async def get_all_memories(
        me: Caller, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, limit: int = 100, include_invalid: bool = False,
        as_of: str | None = None,
        filters: Annotated[str | None, Query(description="mem0 filters as JSON")] = None,
    ) -> JSONResponse:
        """A scope's memories, newest first, and its relations (`Memory.get_all`)."""
        return _json(await me.get_all(user_id=user_id, agent_id=agent_id, run_id=run_id,
                                      filters=_filters(filters), limit=limit,
                                      include_invalid=include_invalid, as_of=as_of))

    @app.delete("/memories", tags=["memories"])
    async def delete_all_memories(me: Caller, user_id: str | None = None,
                                  agent_id: str | None = None, run_id: str | None = None
                                  ) -> JSONResponse:
        """Erase every memory, entity and relation of a scope (`Memory.delete_all`)."""
        return _json(await me.delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id))

    @app.get("/memories/{memory_id}", tags=["memories"])
    async def get_memory(memory_id: str, me: Caller) -> JSONResponse:
        """One memory (`Memory.get`); 404 when there is none in the caller's scope."""
        found = await me.get(memory_id)
        if found is None:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return _json(found)

    @app.put("/memories/{memory_id}", tags=["memories"])
    async def update_memory(memory_id: str, body: UpdateRequest, me: Caller) -> JSONResponse:
        """Replace a memory's text (and metadata); its relations follow (`Memory.update`)."""
        return _json(await me.update(memory_id, body.text, metadata=body.metadata))

    @app.delete("/memories/{memory_id}", tags=["memories"])
    async def delete_memory(memory_id: str, me: Caller) -> JSONResponse:
        """Erase one memory for real (`Memory.delete`)."""
        return _json(await me.delete(memory_id))

    @app.get("/memories/{memory_id}/history", tags=["memories"])
    async def memory_history(memory_id: str, me: Caller) -> JSONResponse:
        """What happened to one memory, oldest first (`Memory.history`)."""
        return _json(await me.history(memory_id))

    @app.post("/search", tags=["search"])
    async def search(body: SearchRequest, me: Caller) -> JSONResponse:
        """One ranked list of memories and relations (`Memory.search`)."""
        return _json(await me.search(body.query, user_id=body.user_id,
                                     agent_id=body.agent_id, run_id=body.run_id,
                                     limit=body.limit, filters=body.filters,
                                     threshold=body.threshold))

    @app.get("/graph", tags=["graph"])
    async def graph(me: Caller, user_id: str | None = None, agent_id: str | None = None,
                    run_id: str | None = None, include_invalid: bool = False,
                    as_of: str | None = None) -> JSONResponse:
        """The scope's entity graph as networkx node-link JSON (`Memory.graph`)."""
        import networkx as nx

        found = await me.graph(user_id=user_id, agent_id=agent_id, run_id=run_id,
                               include_invalid=include_invalid, as_of=as_of)
        return _json(nx.node_link_data(found, edges="edges"))

    @app.get("/pending", tags=["server"])
    async def pending(me: Caller) -> JSONResponse:
        """Journaled operations of the caller's scope not finished yet."""
        return _json(await me.pending())

    @app.get("/stats", tags=["server"])
    async def stats(me: Caller) -> JSONResponse:
        """Row counts in the record and each engine (admin key)."""
        return _json(await me.stats())

    @app.post("/check", tags=["server"])
    async def check(me: Caller) -> JSONResponse:
        """Compare Milvus and Kuzu with the record, a full scan (admin key)."""
        return _json(await me.check())

    @app.post("/reset", tags=["server"])
    async def reset(me: Caller) -> JSONResponse:
        """Erase every scope of the store (admin key)."""
        await me.reset()
        return _json({"message": "All memories reset"})

    if mcp_server is not None:
        app.router.routes.append(Route("/mcp", endpoint=_MCPEndpoint(mcp_server, access),
                                       methods=["GET", "POST", "DELETE"]))
    return RequestLayer(app, gate)


class _MCPEndpoint:
    """Streamable HTTP MCP behind the same keys: the caller is found here and handed to
    the tools through the request's state."""

    def __init__(self, mcp_server: Any, access: Access) -> None:
        self._mcp = mcp_server
        self._access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        try:
            principal: Principal = self._access.authenticate(Headers(scope=scope),
                                                             _address(scope))
        except HybridMemError as exc:
            await error_response(exc, state.get("request_id"))(scope, receive, send)
            return
        state["principal"] = principal
        await self._mcp.session_manager.handle_request(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    def request_id(request: Request) -> str | None:
        return request.scope.get("state", {}).get("request_id")

    @app.exception_handler(HybridMemError)
    async def hybridmem_error(request: Request, exc: HybridMemError) -> JSONResponse:
        return error_response(exc, request_id(request))

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                    for e in exc.errors()[:10]]
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return plain_error(422, {"type": "InvalidInputError", "message": message,
                                 "failure": "validation", "fields": problems},
                           request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFoundError", 405: "InvalidInputError"}.get(exc.status_code,
                                                                  "InvalidInputError")
        detail = exc.detail if isinstance(exc.detail, str) else "bad request"
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}"
        return plain_error(exc.status_code, {"type": kind, "message": detail},
                           request_id(request), dict(exc.headers or {}))


def _json(content: Any) -> JSONResponse:
    return JSONResponse(content)


def _filters(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInputError("filters is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInputError("filters must be a JSON object")
    return value


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"
