"""Named points in the write path where the reliability suites make a write fail.

`HYBRIDMEM_FAILPOINT="name:n"` makes the n-th pass through `checkpoint("name")` send the
process SIGKILL (no cleanup, no atexit: what a power cut or OOM kill leaves behind).
`arm("name", n)` (in-process) makes the n-th pass raise a `StoreError` instead, as an
engine that refuses a write would. Unset, a checkpoint is one dict lookup. Test seam only;
never set either in production.
"""

from __future__ import annotations

import os
import signal
import threading

from hybridmem.errors import StoreError

_spec = os.environ.get("HYBRIDMEM_FAILPOINT", "")
_target, _, _count = _spec.partition(":")
_remaining = int(_count) if _count.isdigit() else 1
_armed: dict[str, int] = {}
_lock = threading.Lock()

POINTS = (
    "journal.received",   # input journaled, nothing planned
    "plan.stored",        # plan journaled, no engine touched
    "milvus.written",     # vectors written, graph and catalog not
    "kuzu.written",       # vectors and graph written, catalog not
    "catalog.committed",  # everything committed, call not yet returned
)
# Outside the write path (the crash suite's matrix is POINTS only).
OPEN_POINTS = (
    "open.checked",       # a store's files made and checked, the open not yet confirmed
)


def arm(name: str, n: int = 1) -> None:
    """Make the n-th next pass through `checkpoint(name)` in this process raise."""
    if name not in POINTS + OPEN_POINTS:
        raise ValueError(f"unknown failpoint {name!r}; known: {POINTS + OPEN_POINTS}")
    with _lock:
        _armed[name] = n


def disarm() -> None:
    """Forget every armed failpoint."""
    with _lock:
        _armed.clear()


def checkpoint(name: str) -> None:
    """Kill the process, or raise, here if a failpoint names this point and is due."""
    global _remaining
    if _armed:
        with _lock:
            left = _armed.get(name)
            if left is not None:
                if left > 1:
                    _armed[name] = left - 1
                else:
                    del _armed[name]
                    raise StoreError(f"injected failure at {name}")
    if name != _target:
        return
    with _lock:
        _remaining -= 1
        if _remaining > 0:
            return
    os.kill(os.getpid(), signal.SIGKILL)
