"""`hybridmem mcp`: the MCP tools on stdio, for clients that launch their own server
process (Claude Desktop, Cursor, Claude Code each start one per window).

With `--url` (or `$HYBRIDMEM_URL`) every tool call goes to a running `hybridmem serve`, so
any number of these processes share one store. Without it, the process opens the store
itself; a second such launch finds the store held and says to run `hybridmem serve`.
"""

from __future__ import annotations

import os

from hybridmem.config import MemoryConfig
from hybridmem.errors import StoreLockedError


def run_stdio(config: MemoryConfig, *, url: str | None = None, api_key: str | None = None,
              user_id: str | None = None) -> int:
    """Serve the MCP tools on stdin/stdout until the client closes them.

    `user_id` pins the scope of tools called without one (for a local store, the only
    scope the tools may act in).

    Raises:
        StoreLockedError: no `url`, and another process holds the store (the message says
            how to share it through `hybridmem serve`).
    """
    import anyio

    from hybridmem.server.mcp import build_mcp

    url = url or os.environ.get("HYBRIDMEM_URL")
    if url:
        from hybridmem.client import AsyncMemoryClient

        client = AsyncMemoryClient(api_key, url)
        server = build_mcp(lambda ctx: client, default_user=user_id)

        async def forward() -> None:
            try:
                await server.run_stdio_async()
            finally:
                await client.close()

        anyio.run(forward)
        return 0

    from hybridmem.async_memory import AsyncMemory
    from hybridmem.server.access import Principal
    from hybridmem.server.scoped import ScopedMemory

    try:
        memory = AsyncMemory(config)
    except StoreLockedError as exc:
        raise StoreLockedError(
            f"{exc}. To let several MCP clients (and your agent) share this store, run "
            "`hybridmem serve` once and start each MCP client with `hybridmem mcp --url "
            "http://127.0.0.1:8765 --api-key KEY`") from None
    scoped = ScopedMemory(memory, Principal.owner(**({"user_id": user_id} if user_id else {})))
    server = build_mcp(lambda ctx: scoped, default_user=user_id)

    async def local() -> None:
        try:
            await server.run_stdio_async()
        finally:
            await memory.close()

    anyio.run(local)
    return 0
