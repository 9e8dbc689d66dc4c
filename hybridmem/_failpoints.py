"""Named points in the write path where the crash-consistency suite can kill the process.

`HYBRIDMEM_FAILPOINT="name:n"` makes the n-th pass through `checkpoint("name")` send the
process SIGKILL (no cleanup, no atexit: what a power cut or OOM kill leaves behind).
Unset, a checkpoint is one dict lookup. Test seam only; never set it in production.
"""

from __future__ import annotations

import os
import signal
import threading

_spec = os.environ.get("HYBRIDMEM_FAILPOINT", "")
_target, _, _count = _spec.partition(":")
_remaining = int(_count) if _count.isdigit() else 1
_lock = threading.Lock()

POINTS = (
    "journal.received",   # input journaled, nothing planned
    "plan.stored",        # plan journaled, no engine touched
    "milvus.written",     # vectors written, graph and catalog not
    "kuzu.written",       # vectors and graph written, catalog not
    "catalog.committed",  # everything committed, call not yet returned
)


def checkpoint(name: str) -> None:
    """Kill the process here if the failpoint names this point and its count is reached."""
    global _remaining
    if name != _target:
        return
    with _lock:
        _remaining -= 1
        if _remaining > 0:
            return
    os.kill(os.getpid(), signal.SIGKILL)
