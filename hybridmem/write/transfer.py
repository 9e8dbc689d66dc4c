"""Export and import: a store as JSON lines of memories, entities and relations, with
their provenance, so it can be moved, backed up, or inspected.

Line kinds: `{"kind": "memory", ...}`, `{"kind": "entity", ...}`, `{"kind": "relation", ...}`;
fields are those of `MemoryRecord`, `EntityRecord` (name embedding as base64 float32) and
`EdgeRecord`. Import keeps every id, embeds memory texts again with this store's embedder
(so a store can move to another embedder), and goes through the journaled write path.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from hybridmem.errors import InvalidInputError
from hybridmem.inputs import check_metadata, check_text
from hybridmem.records import (
    EdgeRecord,
    EntityRecord,
    HistoryEntry,
    MemoryRecord,
    MemoryWrite,
    WritePlan,
    now_iso,
    pack_vector,
)
from hybridmem.scope import Scope

FORMAT_VERSION = 1
MAX_LINE_CHARS = 1_000_000  # the byte limits of check_text bind first
_EDGE_READ_ONLY = {"source_name", "target_name", "source_type", "target_type"}


def export_lines(catalog, graph_store, scope) -> Iterator[dict[str, Any]]:
    """Every memory (current or superseded), entity and relation (current or ended)."""
    yield {"kind": "header", "format": "hybridmem-export", "version": FORMAT_VERSION,
           "exported_at": now_iso()}
    for record in catalog.list(scope, include_superseded=True):
        yield {"kind": "memory", **record.model_dump()}
    for entity in graph_store.entities(scope):
        yield {"kind": "entity", **entity.model_dump()}
    for edge in graph_store.edges(scope, include_invalid=True):
        yield {"kind": "relation", **edge.model_dump()}


def import_plans(lines: Iterable[dict[str, Any]], *, embed: Callable[[list[str]], Any],
                 dims: int, batch: int = 256) -> Iterator[tuple[WritePlan, int]]:
    """Journal-ready plans for the lines (memories first, then the graph), with the number
    of lines each plan carries.

    Raises:
        InvalidInputError: a line that is not a known kind or does not validate.
    """
    memories: list[MemoryRecord] = []
    entities: list[EntityRecord] = []
    edges: list[EdgeRecord] = []
    for number, line in enumerate(lines, start=1):
        kind = line.get("kind") if isinstance(line, dict) else None
        body = {k: v for k, v in line.items() if k != "kind"} if kind else {}
        try:
            if kind == "memory":
                record = MemoryRecord(**body)
                check_text(record.text, f"line {number}: text", MAX_LINE_CHARS)
                check_metadata(record.metadata)
                _check_ids(record, number)
                memories.append(record)
            elif kind == "entity":
                entity = EntityRecord(**body)
                check_text(entity.name, f"line {number}: name", MAX_LINE_CHARS)
                _check_ids(entity, number)
                entities.append(entity)
            elif kind == "relation":
                edge = EdgeRecord(**{k: v for k, v in body.items() if k not in _EDGE_READ_ONLY})
                check_text(edge.fact, f"line {number}: fact", MAX_LINE_CHARS)
                _check_ids(edge, number)
                edges.append(edge)
            elif kind != "header":
                raise InvalidInputError(f"line {number}: unknown kind {kind!r}")
        except ValidationError as exc:
            raise InvalidInputError(f"line {number}: not a valid {kind}: {exc}") from None
    now = now_iso()
    for start in range(0, len(memories), batch):
        chunk = memories[start : start + batch]
        vectors = embed([m.text for m in chunk])
        plan = WritePlan(op_id=uuid.uuid4().hex, kind="import")
        for record, vector in zip(chunk, vectors, strict=True):
            plan.memories.append(MemoryWrite(record=record, vector=pack_vector(vector),
                                             event="ADD"))
            plan.history.append(HistoryEntry(
                id=uuid.uuid4().hex, memory_id=record.id, event="ADD", new_memory=record.text,
                detail={"imported": True}, created_at=now, user_id=record.user_id,
                agent_id=record.agent_id, run_id=record.run_id, role=record.role,
                actor_id=record.actor_id,
            ))
        yield plan, len(chunk)
    stale = [e for e in entities if e.embedding and len(e.embedding) != _b64_len(dims)]
    if stale:
        fresh = embed([e.name for e in stale])
        for entity, vector in zip(stale, fresh, strict=True):
            entity.embedding = pack_vector(vector)
    for start in range(0, max(len(entities), len(edges)), batch):
        plan = WritePlan(op_id=uuid.uuid4().hex, kind="import",
                         entities=entities[start : start + batch])
        yield plan, len(plan.entities)
    for start in range(0, len(edges), batch):
        plan = WritePlan(op_id=uuid.uuid4().hex, kind="import", edges=edges[start : start + batch])
        yield plan, len(plan.edges)


def _check_ids(row, number: int) -> None:
    ids = row.model_dump(include={"user_id", "agent_id", "run_id"})
    try:
        Scope.of(**{k: v or None for k, v in ids.items()})
    except InvalidInputError as exc:
        raise InvalidInputError(f"line {number}: {exc}") from None


def _b64_len(dims: int) -> int:
    return 4 * ((dims * 4 + 2) // 3)
