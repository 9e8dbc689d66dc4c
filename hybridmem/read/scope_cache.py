"""The hot read scopes' in-process views (vectors, text postings): each loaded from the
SQLite record on its first search, patched by every applied plan, and evicted least
recently searched first beyond a memory budget."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from hybridmem.records import WritePlan


class ScopeView(Protocol):
    """One read scope's view, sized for the budget."""

    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=ScopeView)
K = TypeVar("K")


class ScopeCache(Generic[K, V]):
    """Views by read scope, least recently used first. Callers hold `lock` around `get`
    and any use of the view it returns; the other methods take it themselves."""

    def __init__(self, load: Callable[[K], V], budget_bytes: int) -> None:
        self._load = load
        self._budget = budget_bytes
        self._views: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.RLock()

    def get(self, scope: K) -> V:
        """The scope's view, loaded if it is not held."""
        view = self._views.get(scope)
        if view is not None:
            self._views.move_to_end(scope)
            return view
        view = self._views[scope] = self._load(scope)
        self._evict()
        return view

    def apply(self, plan: WritePlan, patch: Callable[[K, V], None]) -> None:
        """Patch every held view in place with an applied plan (a plan that deletes a
        whole scope drops them all), then keep to the budget."""
        with self.lock:
            if plan.delete_scope is not None:
                self._views.clear()
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
