"""The hot read scopes' in-process views (vectors, text postings): each loaded from the
SQLite record on its first search, patched by every applied plan, and evicted least
recently searched first beyond a memory budget."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import Generic, Protocol, TypeVar

from hybridmem.records import WritePlan
from hybridmem.scope import Scope


class ScopeView(Protocol):
    """One read scope's view, sized for the budget."""

    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=ScopeView)


class ScopeCache(Generic[V]):
    """Views by read scope, least recently used first. Callers hold `lock` around `get`
    and any use of the view it returns; the other methods take it themselves."""

    def __init__(self, load: Callable[[Scope], V], budget_bytes: int) -> None:
        self._load = load
        self._budget = budget_bytes
        self._views: OrderedDict[Scope, V] = OrderedDict()
        self.lock = threading.RLock()

    def get(self, scope: Scope) -> V:
        """The scope's view, loaded if it is not held."""
        view = self._views.get(scope)
        if view is not None:
            self._views.move_to_end(scope)
            return view
        view = self._views[scope] = self._load(scope)
        self._evict()
        return view

    def apply(self, plan: WritePlan, patch: Callable[[Scope, V], None]) -> None:
        """Patch every held view in place with an applied plan, then keep to the budget.
        A plan that deletes a whole scope drops the views that share rows with it (one
        user's `delete_all` leaves the other users' views loaded)."""
        with self.lock:
            if plan.delete_scope is not None:
                gone = plan.delete_scope.ids()
                for scope in list(self._views):
                    if all(gone.get(k, v) == v for k, v in scope.ids().items()):
                        del self._views[scope]
                return
            for scope, view in list(self._views.items()):
                patch(scope, view)
            self._evict()

    def _evict(self) -> None:
        """Drop the least recently used views until the rest fit the budget (the newest is
        kept whatever its size)."""
        total = sum(v.nbytes for v in self._views.values())
        while total > self._budget and len(self._views) > 1:
            _, dropped = self._views.popitem(last=False)
            total -= dropped.nbytes

    def clear(self) -> None:
        """Forget every view (after `reset` or an undone plan)."""
        with self.lock:
            self._views.clear()

    @property
    def nbytes(self) -> int:
        """Memory the views hold."""
        with self.lock:
            return sum(v.nbytes for v in self._views.values())


class CachedScopes(Generic[V]):
    """What both in-process indexes share: their views live in `self._cache`."""

    _cache: ScopeCache[V]

    def clear(self) -> None:
        """Forget every cached scope (after `reset` or an undone plan)."""
        self._cache.clear()

    @property
    def nbytes(self) -> int:
        """Memory held by the cached views."""
        return self._cache.nbytes


# A load of at least this many rows gives the memory it freed back to the OS (a trim
# costs a few ms; smaller loads free too little to matter).
TRIM_AFTER_ROWS = 10_000


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's `malloc_trim`, or None where there is none (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the heap pages freed so far to the OS (glibc only); whether it could.

    Loading a scope's vectors from SQLite frees as much memory as it keeps (the rows'
    bytes), and glibc keeps freed pages in the process: at 100k memories RSS stayed
    ~150 MiB above what the views hold until trimmed.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
