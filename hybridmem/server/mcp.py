"""The MCP tools: the hosted mem0 MCP's tool names over hybridmem, for agents in IDEs.

The same tools serve streamable HTTP at `/mcp` on `hybridmem serve` (the key's scope,
from the request) and `hybridmem mcp` on stdio (a running server through
`AsyncMemoryClient`, or the store opened in that process). Each tool calls one method of
a backend with `ScopedMemory`'s method names; the scope always comes from the backend.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from hybridmem import __version__
from hybridmem.errors import HybridMemError

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

INSTRUCTIONS = """\
hybridmem is the user's long-term memory: facts, preferences and the people in their life
with how they relate (family, friends, colleagues, pets, places).
- Before answering anything personal, call search_memories with the user's question; the
  results are one ranked list of memories and relations (source -relationship-> destination).
- When the user states something worth remembering about themselves or the people around
  them, call add_memory with it, in the user's words and in the third person only if they
  spoke that way. Do not store questions, greetings or your own replies.
- When the user corrects a fact, add the correction: an ended relation (moved city, broke
  up, changed jobs) is retired by the memory layer itself and kept as history.
- Use delete_memory only when the user asks to forget something specific."""

_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
_ERASE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

_USER_ID = ("user_id: only with an admin key, the user whose memory to use; a user's own "
            "key implies it.")


class Backend(Protocol):
    """What the tools call: `ScopedMemory` or `AsyncMemoryClient`."""

    async def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]: ...
    async def search(self, query: str, **kwargs: Any) -> dict[str, Any]: ...
    async def get(self, memory_id: str) -> dict[str, Any] | None: ...
    async def get_all(self, **kwargs: Any) -> dict[str, Any]: ...
    async def update(self, memory_id: str, data: str, **kwargs: Any) -> dict[str, Any]: ...
    async def delete(self, memory_id: str) -> dict[str, Any]: ...
    async def delete_all(self, **kwargs: Any) -> dict[str, Any]: ...
    async def history(self, memory_id: str) -> list[dict[str, Any]]: ...
    async def graph(self, **kwargs: Any) -> Any: ...


def _reported(tool: F) -> F:
    """A tool whose hybridmem errors reach the model with their message (the SDK shows
    only "Error executing tool" for other exceptions), so it can correct its call."""
    @functools.wraps(tool)
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return await tool(*args, **kwargs)
        except HybridMemError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    return run  # type: ignore[return-value]


def build_mcp(backend_for: Callable[[Context], Backend], *,
              default_user: str | None = None) -> MCPServer:
    """An MCP server whose tools act through `backend_for(ctx)`, the backend of the
    request a tool call came in (it carries the caller's scope). `default_user` is the
    user_id of a call that names none (`hybridmem mcp --user U`)."""
    # WARNING: the SDK logs each tool call at INFO (with a handler of its own on the root
    # logger if none is set); the server logs one line per request itself.
    server = MCPServer("hybridmem", instructions=INSTRUCTIONS, version=__version__,
                       log_level="WARNING")

    def scope(user_id: str | None) -> dict[str, str]:
        chosen = user_id or default_user
        return {"user_id": chosen} if chosen else {}

    @server.tool(annotations=_WRITE, description=(
        "Remember something the user said about themselves or the people, pets and places "
        "in their life (one statement or a few sentences, in the user's words). Facts and "
        "relations are extracted; a statement that contradicts an older one ends it. "
        f"metadata: optional JSON object kept with the memory. {_USER_ID}"))
    @_reported
    async def add_memory(text: str, ctx: Context, metadata: dict[str, Any] | None = None,
                         user_id: str | None = None) -> dict[str, Any]:
        return await backend_for(ctx).add(text, metadata=metadata, **scope(user_id))

    @server.tool(annotations=_READ, description=(
        "Search the user's memory with a question or keywords. Returns one ranked list: "
        "memories (type 'memory') and relations (type 'relation', as source, relationship, "
        f"destination), best first, each with a score from 0 to 1. {_USER_ID}"))
    @_reported
    async def search_memories(query: str, ctx: Context, limit: int = 10,
                              user_id: str | None = None) -> dict[str, Any]:
        found = await backend_for(ctx).search(query, limit=limit, **scope(user_id))
        return {"results": [_hit(h) for h in found["results"]]}

    @server.tool(annotations=_READ, description=(
        "List the user's current memories (newest first) and current relations. Use "
        f"search_memories to find something specific. {_USER_ID}"))
    @_reported
    async def get_memories(ctx: Context, limit: int = 50,
                           user_id: str | None = None) -> dict[str, Any]:
        found = await backend_for(ctx).get_all(limit=limit, **scope(user_id))
        return {"memories": [_memory(m) for m in found["results"]],
                "relations": [r["memory"] for r in found["relations"]]}

    @server.tool(annotations=_READ, description=(
        "Read one memory by its id (ids come from search_memories or get_memories)."))
    @_reported
    async def get_memory(memory_id: str, ctx: Context) -> dict[str, Any]:
        found = await backend_for(ctx).get(memory_id)
        if found is None:
            return {"error": f"no memory with id {memory_id!r}"}
        return _memory(found)

    @server.tool(annotations=_WRITE, description=(
        "Replace the text of one memory (by id) with corrected text; its relations are "
        "derived again."))
    @_reported
    async def update_memory(memory_id: str, text: str, ctx: Context) -> dict[str, Any]:
        return await backend_for(ctx).update(memory_id, text)

    @server.tool(annotations=_ERASE, description=(
        "Erase one memory for good (by id), with the relations only it supported. Only "
        "when the user asks to forget it."))
    @_reported
    async def delete_memory(memory_id: str, ctx: Context) -> dict[str, Any]:
        return await backend_for(ctx).delete(memory_id)

    @server.tool(annotations=_ERASE, description=(
        "Erase EVERYTHING remembered about the user: every memory, entity and relation. "
        f"Only when the user explicitly asks for it. {_USER_ID}"))
    @_reported
    async def delete_all_memories(ctx: Context, user_id: str | None = None) -> dict[str, Any]:
        return await backend_for(ctx).delete_all(**scope(user_id))

    @server.tool(annotations=_READ, description=(
        "The user's entity graph: the people, pets, places and things they mentioned, and "
        "the current relations between them (include_ended=true adds ended ones with the "
        f"reason). {_USER_ID}"))
    @_reported
    async def get_entity_graph(ctx: Context, include_ended: bool = False,
                               user_id: str | None = None) -> dict[str, Any]:
        graph = await backend_for(ctx).graph(include_invalid=include_ended, **scope(user_id))
        return _graph(graph)

    @server.tool(annotations=_READ, description=(
        "What happened to one memory (by id): added, updated, relations ended by later "
        "statements (with the reason), superseded, deleted; oldest first."))
    @_reported
    async def memory_history(memory_id: str, ctx: Context) -> dict[str, Any]:
        rows = await backend_for(ctx).history(memory_id)
        return {"history": [{k: r.get(k) for k in ("event", "old_memory", "new_memory",
                                                    "created_at", "detail")} for r in rows]}

    return server


def _hit(hit: dict[str, Any]) -> dict[str, Any]:
    """A search hit as a model needs it (no per-signal components)."""
    out = {"id": hit["id"], "type": hit["type"], "memory": hit["memory"],
           "score": round(hit["score"], 3), "created_at": hit.get("created_at")}
    if hit["type"] == "relation":
        out.update(source=hit["source"], relationship=hit["relationship"],
                   destination=hit["destination"])
    elif hit.get("metadata"):
        out["metadata"] = hit["metadata"]
    return out


def _memory(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("id", "memory", "created_at", "updated_at", "metadata")
            if record.get(k) not in (None, {})}


def _graph(graph: Any) -> dict[str, Any]:
    """Entities and relations of a `networkx.MultiDiGraph` as plain lists."""
    names = {node: data["name"] for node, data in graph.nodes(data=True)}
    return {
        "entities": [{"name": data["name"], "type": data["type"]}
                     for _, data in graph.nodes(data=True)],
        "relations": [
            {"source": names[s], "relationship": data["relation"], "destination": names[t],
             **({} if data["valid"] else {"ended": data["invalidated_at"],
                                          "reason": data["reason"]})}
            for s, t, data in graph.edges(data=True)],
    }
