"""What the write path, the read path and the projections need of a vector engine and of a
graph engine. `milvus.py` and `kuzu.py` are the implementations; a second backend is one
new module that satisfies one of these protocols (and its own dialect stays inside it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from hybridmem.filters import Filter
from hybridmem.records import EdgeRecord, EntityRecord, MemoryRecord, WritePlan
from hybridmem.scope import Scope


class VectorStore(Protocol):
    """Memory vectors by id, searchable inside a scope; a projection of the record."""

    @property
    def is_lite(self) -> bool:
        """Whether the engine runs embedded in this process."""

    def ensure_open(self) -> None:
        """Open (and check) the engine now, so a write fails before it is journaled."""

    def marker(self) -> tuple[str, int] | None:
        """(store id, epoch) of the last flushed write, or None for an empty engine."""

    def upsert(self, records: list[MemoryRecord], vectors: np.ndarray, *,
               new: bool = False) -> None:
        """Insert or replace rows; `new`: ids the engine never held (plain inserts)."""

    def delete(self, ids: list[str]) -> None:
        """Delete rows by id (unknown ids are ignored)."""

    @property
    def flush_due(self) -> bool:
        """Whether enough rows are waiting that the writer should flush now."""

    def flush(self, store_id: str, epoch: int) -> None:
        """Make the written rows durable and record the marker."""

    def search(
        self, vectors: np.ndarray, scope: Scope, limit: int, where: Filter | None = None
    ) -> list[list[tuple[str, float]]]:
        """Per query vector, (id, cosine) best first, inside the scope."""

    def count(self) -> int:
        """Rows in the engine."""

    def all_ids(self) -> set[str]:
        """Every row id."""

    def rows(self, ids: list[str]) -> list[dict[str, Any]]:
        """Rows by id, as the engine holds them."""

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Vectors by id."""

    def stale(self, records: list[MemoryRecord], vectors: np.ndarray) -> list[str]:
        """Ids of these records whose stored row differs from what `upsert` would write."""

    def drop(self) -> None:
        """Delete every row (for `reset`)."""

    def close(self) -> None:
        """Flush what is owed and release the engine."""


class GraphStore(Protocol):
    """Entities and relation edges inside scopes; a projection of the record."""

    def marker(self) -> tuple[str, int] | None:
        """(store id, epoch) of the last applied plan, or None for an empty graph."""

    def entities(self, scope: Scope | None) -> list[EntityRecord]:
        """Entities inside a read scope (None: all)."""

    def entities_by_id(self, ids: Iterable[str]) -> dict[str, EntityRecord]:
        """Entities by id."""

    def edges(
        self, scope: Scope | None, *, include_invalid: bool = False, as_of: str | None = None
    ) -> list[EdgeRecord]:
        """Edges inside a read scope: current, all, or as they were at `as_of`."""

    def edges_supported_by(self, scope: Scope, memory_ids: Iterable[str]) -> list[EdgeRecord]:
        """Edges that list any of `memory_ids` as support."""

    def degree(self, entity_ids: Iterable[str]) -> dict[str, int]:
        """Number of edges (current or not) at each entity."""

    def neighbourhood(self, seed_ids: Iterable[str], hops: int) -> dict[str, int]:
        """Current edges within `hops` of the seeds: edge id -> fewest hops."""

    def count(self) -> tuple[int, int]:
        """(entities, edges) in the engine."""

    def apply(self, plan: WritePlan, store_id: str) -> None:
        """Apply a plan's graph part and mark the epoch, in one transaction."""

    def restore(self, *, entities: list[EntityRecord], edges: list[EdgeRecord],
                drop_entity_ids: Iterable[str] = (), drop_edge_ids: Iterable[str] = (),
                store_id: str, epoch: int, everything: bool = False) -> None:
        """Make the given ids match the record, in one transaction."""

    def drop_all(self, store_id: str) -> None:
        """Delete every node and edge (for `reset`)."""

    def close(self) -> None:
        """Release the engine."""
