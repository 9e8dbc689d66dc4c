"""Plain data crossing module boundaries: stored rows, and the write plan.

A `WritePlan` is everything one add/update/delete will change in the three stores, with
every id, timestamp and vector already decided. It is written to the journal before any
engine is touched, and applying it is idempotent, so a crash at any point is repaired by
applying the same plan again.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from hybridmem.scope import Scope

#: The key of each scope's own user entity (the one "I", "me", "my" resolve to).
SELF_KEY = "@self"


def now_iso() -> str:
    """UTC now as a fixed-width ISO string (sortable as text)."""
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    """A datetime as the fixed-width UTC ISO string the stores keep."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def pack_vector(vector: np.ndarray) -> str:
    """float32 vector -> base64 text (for the journal)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def unpack_vector(text: str) -> np.ndarray:
    """base64 text -> float32 vector."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


class ScopedRow(BaseModel):
    """The three scope ids of a stored row ("" = not set): how records carry a `Scope`."""

    user_id: str = ""
    agent_id: str = ""
    run_id: str = ""

    @property
    def scope(self) -> Scope:
        """The row's scope."""
        return Scope.from_row(self)


class MemoryRecord(ScopedRow):
    """One memory as the catalog keeps it."""

    id: str
    text: str
    hash: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    role: str | None = None
    actor_id: str | None = None
    created_at: str
    updated_at: str | None = None
    superseded_at: str | None = None
    superseded_by: str | None = None
    # True for facts an extractor produced (add with infer=True): their relations are
    # derived again on update. Verbatim memories (infer=False) never get relations.
    inferred: bool = False
    # The text of the memories stored just before this one in its scope: a turn alone is
    # often ambiguous ("Yes, the blue one!"), so the lexical signal also finds a memory by
    # its neighbours' words. Never shown, never embedded.
    context: str = ""


def metadata_json(metadata: dict[str, Any]) -> str:
    """A memory's metadata as the record stores it."""
    return json.dumps(metadata, ensure_ascii=False)


@dataclass(frozen=True)
class MemoryText:
    """What the lexical index reads of a memory: its text, the texts its context quotes,
    and when it was said."""

    memory_id: str
    text: str
    context: tuple[str, ...] = ()
    # when it was said: the relative dates of `text` are resolved against it
    created_at: str | None = None


class MemoryWrite(BaseModel):
    """Insert or replace a memory (catalog + vector)."""

    record: MemoryRecord
    vector: str  # pack_vector()
    event: Literal["ADD", "UPDATE"]


class EntityRecord(ScopedRow):
    """An entity node. `key` is the normalised name; `@self` marks the scope's user."""

    id: str
    name: str
    key: str
    type: str = "other"
    aliases: list[str] = Field(default_factory=list)
    mentions: int = 0
    created_at: str
    embedding: str | None = None  # pack_vector(), None for the self entity


class EdgeRecord(ScopedRow):
    """A relation edge. Invalidated edges stay as history; `valid` marks the current graph."""

    id: str
    source_id: str
    target_id: str
    relation: str
    fact: str = ""
    valid: bool = True
    created_at: str
    invalidated_at: str | None = None
    superseded_by: str | None = None
    reason: str | None = None
    memory_ids: list[str] = Field(default_factory=list)
    # Filled on reads (names of the ends), ignored on writes.
    source_name: str = ""
    target_name: str = ""
    source_type: str = ""
    target_type: str = ""


class SupportChange(BaseModel):
    """Set an edge's supporting memory ids (absolute, so a replay changes nothing)."""

    edge_id: str
    memory_ids: list[str]


class Invalidation(BaseModel):
    """Take an edge out of the current graph, keeping it as history."""

    edge_id: str
    superseded_by: str | None
    reason: str
    at: str


class Supersession(BaseModel):
    """A memory all of whose relations were contradicted: kept, but no longer current."""

    memory_id: str
    superseded_by: str | None
    at: str


class HistoryEntry(ScopedRow):
    """One row of `history(memory_id)`."""

    id: str
    memory_id: str
    event: str  # ADD, UPDATE, DELETE, INVALIDATE, SUPERSEDE
    old_memory: str | None = None
    new_memory: str | None = None
    detail: dict[str, Any] | None = None
    actor_id: str | None = None
    role: str | None = None
    created_at: str


class WritePlan(BaseModel):
    """Every change one operation makes, decided before any engine is touched."""

    op_id: str
    kind: Literal["add", "update", "delete", "delete_all", "import"]
    # Position in the store's sequence of applied plans, given when the plan is journaled
    # (the engines record the epoch of the last plan they applied).
    epoch: int = 0
    memories: list[MemoryWrite] = Field(default_factory=list)
    delete_memory_ids: list[str] = Field(default_factory=list)
    supersede: list[Supersession] = Field(default_factory=list)
    entities: list[EntityRecord] = Field(default_factory=list)
    edges: list[EdgeRecord] = Field(default_factory=list)
    support: list[SupportChange] = Field(default_factory=list)
    delete_edge_ids: list[str] = Field(default_factory=list)
    invalidations: list[Invalidation] = Field(default_factory=list)
    delete_entity_ids: list[str] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    # delete_all: the scope whose rows go (in every store).
    delete_scope: Scope | None = None
    # What the public call returns, so a replayed operation answers the same.
    result: dict[str, Any] = Field(default_factory=dict)

    def touches_graph(self) -> bool:
        """Whether applying the plan writes to the graph store."""
        return bool(
            self.entities or self.edges or self.support
            or self.delete_edge_ids or self.invalidations or self.delete_entity_ids
            or self.delete_scope
        )
