"""The write path: plan an operation, journal the plan, apply it to the three stores.

Order of application (each step idempotent, so recovery simply applies the plan again):
1. Milvus: upsert and delete vectors;
2. Kuzu: the plan's graph part in one transaction;
3. SQLite, one transaction: catalog rows, history rows, operation `done`.
The catalog is committed last and is what makes a memory visible to reads, so a crash
between steps never shows a vector without its edges or an edge without its memory.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import asdict
from typing import Any

import numpy as np

from hybridmem._failpoints import checkpoint
from hybridmem.config import MemoryConfig
from hybridmem.errors import HybridMemError, NotFoundError
from hybridmem.providers.embed.base import Embedder
from hybridmem.providers.extract.base import ExtractedRelation, Extraction, Extractor, Message
from hybridmem.read.snapshot import GraphSnapshots
from hybridmem.records import (
    HistoryEntry,
    MemoryRecord,
    MemoryWrite,
    ScopeFields,
    WritePlan,
    now_iso,
    pack_vector,
    unpack_vector,
)
from hybridmem.scope import Scope
from hybridmem.stores.catalog import MemoryCatalog
from hybridmem.stores.journal import Journal, PendingOp
from hybridmem.stores.kuzu import KuzuGraphStore
from hybridmem.stores.milvus import MilvusVectorStore
from hybridmem.stores.sqlite import Database
from hybridmem.text import text_hash
from hybridmem.write.planner import FactLinks, GraphPlanner

log = logging.getLogger(__name__)


class Writer:
    """Plans and applies adds, updates and deletes; recovers unfinished ones."""

    def __init__(
        self,
        *,
        config: MemoryConfig,
        db: Database,
        journal: Journal,
        catalog: MemoryCatalog,
        vectors: MilvusVectorStore,
        graph_store: KuzuGraphStore,
        snapshots: GraphSnapshots,
        planner: GraphPlanner,
        embedder: Embedder,
        extractor: Extractor,
    ) -> None:
        self._config = config
        self._db = db
        self._journal = journal
        self._catalog = catalog
        self._vectors = vectors
        self._graph = graph_store
        self._snapshots = snapshots
        self._planner = planner
        self._embedder = embedder
        self._extractor = extractor
        # Planning reads state the plan then changes: one writer at a time.
        self.lock = threading.RLock()

    # ------------------------------------------------------------ add

    def add(self, op_id: str, scope: Scope, messages: list[Message],
            metadata: dict[str, Any], infer: bool,
            extraction: Extraction | None = None) -> dict[str, Any]:
        """Run a journaled add to the end; returns the mem0-shaped result."""
        if infer and extraction is None:
            # The LLM call runs outside the write lock so adds of other scopes go on.
            extraction = self._extractor.extract(
                messages, user_name=self._planner.user_name(scope)
            )
            self._journal.note(op_id, {"extraction": extraction_to_dict(extraction)})
        with self.lock:
            plan = self._plan_add(op_id, scope, messages, metadata, infer, extraction)
            self._journal.set_plan(plan)
            self.apply(plan)
        return plan.result

    def _plan_add(self, op_id: str, scope: Scope, messages: list[Message],
                  metadata: dict[str, Any], infer: bool,
                  extraction: Extraction | None) -> WritePlan:
        now = now_iso()
        plan = WritePlan(op_id=op_id, kind="add")
        if infer:
            assert extraction is not None
            texts = extraction.facts
            roles: list[str | None] = ["user"] * len(texts)
            actors: list[str | None] = [None] * len(texts)
            relations = extraction.relations
        else:
            kept = [m for m in messages if m.role != "system"]
            texts = [m.content for m in kept]
            roles = [m.role for m in kept]
            actors = [m.name for m in kept]
            relations = []
        hashes = [text_hash(t) for t in texts]
        existing = self._catalog.ids_by_hash(scope, hashes)
        fresh, seen = [], set(existing)
        for i, h in enumerate(hashes):  # texts that need a vector: new, first of their hash
            if h not in seen:
                seen.add(h)
                fresh.append(i)
        names = self._planner.names_to_embed(scope, relations) if relations else []
        batch = [texts[i] for i in fresh] + names
        matrix = self._embedder.embed(batch) if batch else np.zeros((0, 1), np.float32)
        vectors = {i: matrix[j] for j, i in enumerate(fresh)}
        name_vectors = {n: matrix[len(fresh) + j] for j, n in enumerate(names)}
        near = self._near_duplicates(scope, vectors) if infer else {}

        memory_ids: list[str] = []
        new_ids: set[str] = set()
        results: list[dict[str, Any]] = []
        first_of_hash: dict[str, str] = {}
        for i, text in enumerate(texts):
            h = hashes[i]
            known = existing.get(h) or first_of_hash.get(h) or near.get(i)
            if known is not None:
                memory_ids.append(known)
                if known not in new_ids:
                    results.append({"id": known, "memory": text, "event": "NONE"})
                continue
            record = MemoryRecord(
                id=str(uuid.uuid4()), text=text, hash=h, metadata=metadata, role=roles[i],
                actor_id=actors[i], created_at=now, updated_at=None, inferred=infer,
                **scope.as_row(),
            )
            plan.memories.append(MemoryWrite(record=record, vector=pack_vector(vectors[i]),
                                             event="ADD"))
            plan.history.append(_history(record, "ADD", None, text, now))
            first_of_hash[h] = record.id
            memory_ids.append(record.id)
            new_ids.add(record.id)
            results.append({"id": record.id, "memory": text, "event": "ADD"})
        self._planner.plan_relations(
            plan, scope, relations, FactLinks(memory_ids, texts, new_ids), name_vectors, now
        )
        plan.result = {"results": results, "relations": _relation_summary(plan, self._snapshots,
                                                                           scope)}
        return plan

    def _near_duplicates(self, scope: Scope, vectors: dict[int, np.ndarray]) -> dict[int, str]:
        """Fact index -> id of a current memory in the same scope at cosine >= threshold."""
        if not vectors:
            return {}
        order = list(vectors)
        hits = self._vectors.search(np.vstack([vectors[i] for i in order]), scope, 3)
        candidates = {mid for row in hits for mid, score in row
                      if score >= self._config.dedup_threshold}
        rows = self._catalog.by_ids(candidates)
        exact = scope.as_row()
        out = {}
        for i, row in zip(order, hits, strict=True):
            for memory_id, score in row:
                record = rows.get(memory_id)
                if (score >= self._config.dedup_threshold and record is not None
                        and record.superseded_at is None
                        and record.model_dump(include=set(exact)) == exact):
                    out[i] = memory_id
                    break
        return out

    # ------------------------------------------------------------ update / delete

    def update(self, op_id: str, memory_id: str, text: str,
               metadata: dict[str, Any] | None) -> dict[str, Any]:
        """Replace a memory's text (and metadata); its relations are derived again."""
        with self.lock:
            record = self._catalog.get(memory_id)
            if record is None:
                raise NotFoundError(f"no memory with id {memory_id!r}")
            scope = _scope_of(record)
            now = now_iso()
            plan = WritePlan(op_id=op_id, kind="update")
            new = record.model_copy(update={
                "text": text, "hash": text_hash(text), "updated_at": now,
                "metadata": record.metadata if metadata is None else metadata,
            })
            relations: list[ExtractedRelation] = []
            if record.inferred:  # verbatim memories (infer=False) never carry relations
                extraction = self._extractor.extract(
                    [Message("user", text)], user_name=self._planner.user_name(scope)
                )
                relations = [_single_fact(r) for r in extraction.relations]
            names = self._planner.names_to_embed(scope, relations)
            matrix = self._embedder.embed([text, *names])
            plan.memories.append(MemoryWrite(record=new, vector=pack_vector(matrix[0]),
                                             event="UPDATE", old_text=record.text))
            plan.history.append(_history(new, "UPDATE", record.text, text, now))
            self._planner.plan_forget(plan, scope, {memory_id})
            self._planner.plan_relations(
                plan, scope, relations, FactLinks([memory_id], [text], {memory_id}),
                {n: matrix[1 + j] for j, n in enumerate(names)}, now,
            )
            plan.result = {"message": "Memory updated successfully!", "id": memory_id,
                           "memory": text, "event": "UPDATE"}
            self._journal.set_plan(plan)
            self.apply(plan)
            return plan.result

    def delete(self, op_id: str, memory_id: str) -> dict[str, Any]:
        """Erase a memory, and the edges and entities only it supported."""
        with self.lock:
            record = self._catalog.get(memory_id)
            if record is None:
                raise NotFoundError(f"no memory with id {memory_id!r}")
            now = now_iso()
            plan = WritePlan(op_id=op_id, kind="delete", delete_memory_ids=[memory_id])
            plan.history.append(_history(record, "DELETE", record.text, None, now))
            self._planner.plan_forget(plan, _scope_of(record), {memory_id})
            plan.result = {"message": "Memory deleted successfully!", "id": memory_id}
            self._journal.set_plan(plan)
            self.apply(plan)
            return plan.result

    def delete_all(self, op_id: str, scope: Scope) -> dict[str, Any]:
        """Erase every memory, entity and edge inside a read scope."""
        with self.lock:
            now = now_iso()
            records = self._catalog.list(scope, include_superseded=True)
            plan = WritePlan(
                op_id=op_id, kind="delete_all", delete_memory_ids=[r.id for r in records],
                delete_scope=ScopeFields(**scope.as_row()),
            )
            plan.history.extend(_history(r, "DELETE", r.text, None, now) for r in records)
            plan.result = {"message": f"{len(records)} memories deleted successfully!",
                           "deleted": len(records)}
            self._journal.set_plan(plan)
            self.apply(plan)
            return plan.result

    # ------------------------------------------------------------ apply / recover

    def apply(self, plan: WritePlan) -> None:
        """Apply a plan to Milvus, Kuzu, then SQLite (see the module docstring)."""
        checkpoint("plan.stored")
        if plan.memories:
            self._vectors.upsert(
                [w.record for w in plan.memories],
                np.vstack([unpack_vector(w.vector) for w in plan.memories]),
            )
        if plan.delete_scope is not None:
            self._vectors.delete_scope(_scope_of(plan.delete_scope))
        elif plan.delete_memory_ids:
            self._vectors.delete(plan.delete_memory_ids)
        checkpoint("milvus.written")
        self._graph.apply(plan)
        checkpoint("kuzu.written")
        with self._db.transaction():
            if plan.delete_scope is not None:
                self._catalog.delete_scope(_scope_of(plan.delete_scope))
            elif plan.delete_memory_ids:
                self._catalog.delete(plan.delete_memory_ids)
            self._catalog.upsert(w.record for w in plan.memories)
            self._catalog.supersede(plan.supersede)
            self._journal.finish(plan)
        checkpoint("catalog.committed")
        if plan.delete_scope is not None:
            self._snapshots.clear()
        else:
            rows = {(h.user_id, h.agent_id, h.run_id) for h in plan.history} | {
                (e.user_id, e.agent_id, e.run_id) for e in [*plan.entities, *plan.edges]}
            self._snapshots.apply(plan, {
                _scope_of(ScopeFields(user_id=u, agent_id=a, run_id=r)) for u, a, r in rows})

    def recover(self) -> dict[str, int]:
        """Finish every unfinished operation; failures stay pending for a later try."""
        done = failed = 0
        for op in self._journal.pending():
            try:
                self._finish(op)
                done += 1
            except HybridMemError as exc:
                failed += 1
                self._journal.fail(op.id, f"{type(exc).__name__}: {exc}")
                log.warning("operation %s (%s) is still pending: %s", op.id, op.kind, exc)
        return {"finished": done, "pending": failed}

    def _finish(self, op: PendingOp) -> None:
        if op.plan is not None:
            with self.lock:
                self.apply(op.plan)
            return
        scope = _scope_of(ScopeFields(**op.scope))
        payload = op.payload
        if op.kind == "add":
            extraction = payload.get("extraction")
            self.add(
                op.id, scope, [Message(**m) for m in payload["messages"]], payload["metadata"],
                payload["infer"], extraction_from_dict(extraction) if extraction else None,
            )
        elif op.kind == "update":
            try:
                self.update(op.id, payload["memory_id"], payload["text"], payload["metadata"])
            except NotFoundError:
                self._journal.discard(op.id, force=True)
        elif op.kind == "delete":
            try:
                self.delete(op.id, payload["memory_id"])
            except NotFoundError:
                self._journal.discard(op.id, force=True)
        elif op.kind == "delete_all":
            self.delete_all(op.id, scope)
        else:  # an import batch that died before its plan was stored wrote nothing
            self._journal.discard(op.id, force=True)


# ---------------------------------------------------------------- helpers


def _scope_of(fields: ScopeFields) -> Scope:
    return Scope(user_id=fields.user_id or None, agent_id=fields.agent_id or None,
                 run_id=fields.run_id or None)


def _history(record: MemoryRecord, event: str, old: str | None, new: str | None,
             now: str) -> HistoryEntry:
    return HistoryEntry(
        id=uuid.uuid4().hex, memory_id=record.id, event=event, old_memory=old, new_memory=new,
        actor_id=record.actor_id, role=record.role, created_at=now, user_id=record.user_id,
        agent_id=record.agent_id, run_id=record.run_id,
    )


def _single_fact(rel: ExtractedRelation) -> ExtractedRelation:
    return ExtractedRelation(rel.source, rel.relation, rel.target, rel.source_type,
                             rel.target_type, 0, rel.negated)


def _relation_summary(plan: WritePlan, snapshots: GraphSnapshots,
                      scope: Scope) -> dict[str, list[dict[str, str]]]:
    graph = snapshots.get(scope)
    names = {e.id: e.name for e in graph.entities} | {e.id: e.name for e in plan.entities}
    added = [{"source": names.get(e.source_id, e.source_name), "relationship": e.relation,
              "target": names.get(e.target_id, e.target_name)} for e in plan.edges]
    ended = []
    for inv in plan.invalidations:
        old = graph.edge_by_id.get(inv.edge_id)
        if old is not None:
            ended.append({"source": old.source_name, "relationship": old.relation,
                          "target": old.target_name, "reason": inv.reason})
    return {"added_entities": added, "deleted_entities": ended}


def extraction_to_dict(extraction: Extraction) -> dict[str, Any]:
    """An extraction as JSON-ready data (kept in the journal so a retry costs no LLM call)."""
    return asdict(extraction)


def extraction_from_dict(data: dict[str, Any]) -> Extraction:
    """The inverse of `extraction_to_dict`."""
    return Extraction(
        facts=list(data["facts"]),
        relations=[ExtractedRelation(**r) for r in data["relations"]],
        entity_types=dict(data.get("entity_types", {})),
    )

