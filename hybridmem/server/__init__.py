"""The server tier: one process owns a store and serves it to many agents.

`hybridmem serve` (see `run.py`) answers mem0's REST routes and MCP on one port
(`app.py`, `mcp.py`); a key decides each request's scope (`access.py`), applied by
`ScopedMemory` (`scoped.py`) to every call; errors are JSON (`errors.py`).
"""
