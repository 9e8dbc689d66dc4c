"""`AsyncMemory`: `Memory`'s methods as coroutines, for asyncio programs (and the server).

Every call runs the blocking `Memory` method in a bounded thread pool, so the event loop
never waits on an embedding, an LLM call or an engine. Reads and writes have pools of
their own: a slow LLM add occupies a write worker, never the threads searches run on.
Writes are still serialised inside `Memory` where they must be (planning and applying);
LLM extractions of different adds overlap.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hybridmem.config import MemoryConfig
from hybridmem.errors import BusyError, ClosedError
from hybridmem.memory import Memory

T = TypeVar("T")



def _delegate(name: str, *, write: bool) -> Callable[..., Any]:
    """`Memory.<name>` as a coroutine on the read or the write pool (same signature and
    docstring)."""
    target = getattr(Memory, name)

    @functools.wraps(target)
    async def method(self: AsyncMemory, *args: Any, **kwargs: Any) -> Any:
        call = functools.partial(getattr(self.memory, name), *args, **kwargs)
        if write:
            return await self._write(call)
        return await self._run(self._reads, call)

    return method


# Searches run as many at once as there are cores: each already spreads its embedding over
# the cores (onnxruntime), so more readers only take turns. On 2 cores 8 readers served
# 16 HTTP clients 0.55x the in-process throughput, 2 readers 0.89x (benchmarks/server_load.py,
# same hour), and a search's HTTP overhead fell from 1.95 to 0.41 ms p50.
READ_WORKERS = max(2, min(8, os.cpu_count() or 2))


class AsyncMemory:
    """Long-term memory for asyncio code: `await memory.add(...)`, `await memory.search(...)`.

    Takes what `Memory` takes (a `MemoryConfig`, a mem0-style dict or nothing), or an
    open `memory=` to share. `read_workers` / `write_workers` size the two thread pools;
    with `max_pending_writes`, a write arriving while that many are running or waiting is
    refused at once with `BusyError` (a server answers 503) instead of queueing without
    bound. Use `async with AsyncMemory() as m:` or `await m.close()`.
    """

    def __init__(self, config: MemoryConfig | dict[str, Any] | None = None, *,
                 memory: Memory | None = None, read_workers: int = READ_WORKERS,
                 write_workers: int = 4,
                 max_pending_writes: int | None = None) -> None:
        """Open the store (this blocks while it opens; see `AsyncMemory.open`)."""
        self.memory = memory if memory is not None else Memory(config)
        self._owns = memory is None
        self._reads = ThreadPoolExecutor(read_workers, thread_name_prefix="hybridmem-read")
        self._writes = ThreadPoolExecutor(write_workers, thread_name_prefix="hybridmem-write")
        self._max_pending = max_pending_writes
        self._pending = 0
        self._count_lock = threading.Lock()
        self._closed = False

    @classmethod
    async def open(cls, config: MemoryConfig | dict[str, Any] | None = None,
                   **options: Any) -> AsyncMemory:
        """Open the store on a worker thread (opening may replay the journal)."""
        memory = await asyncio.to_thread(Memory, config)
        try:
            instance = cls(memory=memory, **options)
        except BaseException:
            memory.close()
            raise
        instance._owns = True
        return instance

    @classmethod
    def from_config(cls, config_dict: dict[str, Any] | None) -> AsyncMemory:
        """Build from a mem0-style config dict, as `Memory.from_config` does."""
        return cls(MemoryConfig.from_dict(config_dict))

    # Memory's methods, awaitable: reads on the read pool, writes on the write pool.
    search = _delegate("search", write=False)
    get = _delegate("get", write=False)
    get_all = _delegate("get_all", write=False)
    history = _delegate("history", write=False)
    graph = _delegate("graph", write=False)
    stats = _delegate("stats", write=False)
    pending = _delegate("pending", write=False)
    check = _delegate("check", write=False)
    add = _delegate("add", write=True)
    update = _delegate("update", write=True)
    delete = _delegate("delete", write=True)
    delete_all = _delegate("delete_all", write=True)
    reset = _delegate("reset", write=True)
    retry_pending = _delegate("retry_pending", write=True)
    flush = _delegate("flush", write=False)  # waits only: it holds no write slot
    discard_pending = _delegate("discard_pending", write=True)
    repair = _delegate("repair", write=True)

    @property
    def pending_writes(self) -> int:
        """Writes running or waiting for a worker right now."""
        return self._pending

    async def export(self, **scope: Any) -> list[dict[str, Any]]:
        """`Memory.export`, read to the end on a worker thread."""
        return await self._run(self._reads, lambda: list(self.memory.export(**scope)))

    async def import_lines(self, lines: list[dict[str, Any]]) -> dict[str, int]:
        """`Memory.import_lines` on the write pool."""
        return await self._write(lambda: self.memory.import_lines(lines))

    async def close(self) -> None:
        """Wait for running calls, close the store (when this object opened it) and stop
        the pools. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns:
            await asyncio.to_thread(self.memory.close)
        self._reads.shutdown(wait=False, cancel_futures=True)
        self._writes.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, pool: ThreadPoolExecutor, call: Callable[[], T]) -> T:
        if self._closed:
            raise ClosedError("this AsyncMemory is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except RuntimeError as exc:  # the pool was shut down while the call waited
            if "shutdown" in str(exc):
                raise ClosedError("this AsyncMemory is closed") from None
            raise

    async def _write(self, call: Callable[[], T]) -> T:
        with self._count_lock:
            if self._max_pending is not None and self._pending >= self._max_pending:
                raise BusyError(f"{self._pending} writes are already waiting; retry shortly",
                                retry_after=1.0)
            self._pending += 1
        try:
            return await self._run(self._writes, call)
        finally:
            with self._count_lock:
                self._pending -= 1

