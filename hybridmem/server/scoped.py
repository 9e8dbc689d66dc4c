"""`ScopedMemory`: the store as one caller sees it. REST routes and MCP tools call these
methods, never `Memory` directly, so a key's scope is applied the same way everywhere.

A memory (or its history) outside the caller's scope is reported exactly as a memory
that does not exist, so ids of other scopes cannot be probed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hybridmem.async_memory import AsyncMemory
from hybridmem.errors import NotFoundError
from hybridmem.server.access import Principal

if TYPE_CHECKING:
    import networkx


class ScopedMemory:
    """`AsyncMemory`'s methods, each acting in the caller's scope (see `Principal`)."""

    def __init__(self, memory: AsyncMemory, principal: Principal) -> None:
        self.memory = memory
        self.principal = principal

    async def add(self, messages: Any, *, user_id: str | None = None,
                  agent_id: str | None = None, run_id: str | None = None,
                  metadata: dict[str, Any] | None = None, infer: bool = True,
                  idempotency_key: str | None = None, timestamp: Any = None
                  ) -> dict[str, Any]:
        """`Memory.add` in the caller's scope."""
        ids = self.principal.scope_ids(user_id, agent_id, run_id)
        return await self.memory.add(messages, **ids, metadata=metadata, infer=infer,
                                     idempotency_key=idempotency_key, timestamp=timestamp)

    async def search(self, query: str, *, user_id: str | None = None,
                     agent_id: str | None = None, run_id: str | None = None, limit: int = 100,
                     filters: dict[str, Any] | None = None, threshold: float | None = None
                     ) -> dict[str, Any]:
        """`Memory.search` in the caller's scope."""
        ids = self.principal.scope_ids(user_id, agent_id, run_id, filters)
        return await self.memory.search(query, **ids, limit=limit, filters=filters,
                                        threshold=threshold)

    async def get(self, memory_id: str) -> dict[str, Any] | None:
        """`Memory.get`; None for a memory of another scope."""
        found = await self.memory.get(memory_id)
        return found if found is not None and self.principal.sees(found) else None

    async def get_all(self, *, user_id: str | None = None, agent_id: str | None = None,
                      run_id: str | None = None, filters: dict[str, Any] | None = None,
                      limit: int = 100, include_invalid: bool = False,
                      as_of: str | None = None) -> dict[str, Any]:
        """`Memory.get_all` in the caller's scope."""
        ids = self.principal.scope_ids(user_id, agent_id, run_id, filters)
        return await self.memory.get_all(**ids, filters=filters, limit=limit,
                                         include_invalid=include_invalid, as_of=as_of)

    async def update(self, memory_id: str, data: str, *,
                     metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """`Memory.update` of a memory in the caller's scope."""
        await self._visible(memory_id)
        return await self.memory.update(memory_id, data, metadata=metadata)

    async def delete(self, memory_id: str) -> dict[str, Any]:
        """`Memory.delete` of a memory in the caller's scope."""
        await self._visible(memory_id)
        return await self.memory.delete(memory_id)

    async def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None) -> dict[str, Any]:
        """`Memory.delete_all` in the caller's scope."""
        return await self.memory.delete_all(**self.principal.scope_ids(user_id, agent_id,
                                                                       run_id))

    async def history(self, memory_id: str) -> list[dict[str, Any]]:
        """`Memory.history`; [] for a memory of another scope (as for an unknown id)."""
        rows = await self.memory.history(memory_id)
        return rows if all(self.principal.sees(r) for r in rows) else []

    async def graph(self, *, user_id: str | None = None, agent_id: str | None = None,
                    run_id: str | None = None, include_invalid: bool = False,
                    as_of: str | None = None) -> networkx.MultiDiGraph:
        """`Memory.graph` of the caller's scope."""
        ids = self.principal.scope_ids(user_id, agent_id, run_id)
        return await self.memory.graph(**ids, include_invalid=include_invalid, as_of=as_of)

    async def pending(self) -> list[dict[str, Any]]:
        """`Memory.pending`, only the operations of the caller's scope."""
        return [op for op in await self.memory.pending() if self.principal.sees(op)]

    async def stats(self) -> dict[str, int]:
        """`Memory.stats` (counts over every scope: admin only)."""
        self.principal.require_admin("stats (counts over every scope)")
        return await self.memory.stats()

    async def check(self) -> dict[str, Any]:
        """`Memory.check` (admin only)."""
        self.principal.require_admin("check")
        return await self.memory.check()

    async def retry_pending(self) -> dict[str, int]:
        """`Memory.retry_pending` (admin only)."""
        self.principal.require_admin("retry_pending")
        return await self.memory.retry_pending()

    async def reset(self) -> None:
        """`Memory.reset`: erases every scope (admin only)."""
        self.principal.require_admin("reset (it erases every scope)")
        await self.memory.reset()

    async def _visible(self, memory_id: str) -> None:
        if await self.get(memory_id) is None:
            raise NotFoundError(f"no memory with id {memory_id!r}")
