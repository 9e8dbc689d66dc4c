"""The write path: plan an operation, journal the plan, apply it to the stores.

Order of application (each step idempotent):
1. Milvus: upsert and delete vectors;
2. Kuzu: the plan's graph part and its epoch, in one transaction;
3. SQLite, one transaction: catalog rows with their vectors, the graph mirror, history
   rows, the epoch, operation `done`. This commit is what makes the write visible and
   acknowledged; Milvus and Kuzu are projections of this record.

The rule for failures: a call that raises has changed nothing. Whatever part of its plan
reached Milvus or Kuzu is undone by writing the touched ids again from the record. An
update or delete that raised is then `failed` and never replayed; an add keeps its input
(and its extraction, so no model is asked twice) and is planned again, against the state
of that moment, by `retry_pending()` or the next open. A plan whose process died while
applying it is undone the same way on the next open, before anything else is written
(an add then replays from its input). At most one plan is ever in flight, so no plan is
applied over writes that came after it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np

from hybridmem._failpoints import checkpoint
from hybridmem.config import MemoryConfig
from hybridmem.errors import HybridMemError, NotFoundError, ProviderError, StoreError
from hybridmem.providers.embed.base import Embedder
from hybridmem.providers.extract.base import ExtractedRelation, Extraction, Extractor, Message
from hybridmem.read.lexical_index import LexicalIndex
from hybridmem.read.snapshot import GraphSnapshots
from hybridmem.read.vector_index import VectorIndex
from hybridmem.records import (
    HistoryEntry,
    MemoryRecord,
    MemoryWrite,
    WritePlan,
    now_iso,
    pack_vector,
    unpack_vector,
)
from hybridmem.scope import Scope
from hybridmem.stores.base import GraphStore, VectorStore
from hybridmem.stores.catalog import MemoryCatalog, context_of
from hybridmem.stores.journal import Journal, PendingOp
from hybridmem.stores.mirror import GraphMirror
from hybridmem.stores.projection import Projections
from hybridmem.stores.sqlite import Database
from hybridmem.text import text_hash
from hybridmem.write.planner import FactLinks, GraphPlanner

log = logging.getLogger(__name__)

# An add that fails this many times for a reason other than a provider outage is
# quarantined: kept and listed, no longer replayed on its own.
MAX_ATTEMPTS = 3
# Close memories shown to the conflict judge at most (prompt tokens are latency on a
# local model: ~13 ms each on 2 cores).
MAX_JUDGED_MEMORIES = 6


class Writer:
    """Plans and applies adds, updates and deletes; recovers unfinished ones."""

    def __init__(
        self,
        *,
        config: MemoryConfig,
        db: Database,
        journal: Journal,
        catalog: MemoryCatalog,
        vectors: VectorStore,
        graph_store: GraphStore,
        mirror: GraphMirror,
        projections: Projections,
        snapshots: GraphSnapshots,
        index: VectorIndex | None,
        lexical: LexicalIndex,
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
        self._mirror = mirror
        self._projections = projections
        self._snapshots = snapshots
        self._index = index
        self._lexical = lexical
        self._planner = planner
        self._embedder = embedder
        self._extractor = extractor
        # Planning reads state the plan then changes: one writer at a time.
        self.lock = threading.RLock()
        # Operations this process journaled whose call is still running: a recovery in
        # another thread must not replay them beside their own call.
        self._running: set[str] = set()
        self._running_lock = threading.Lock()

    @contextmanager
    def journaled(self, kind: str, scope: Scope | None, payload: dict[str, Any],
                  **keyed: str | None) -> Iterator[str]:
        """Journal an operation's input and hold it as running for the call's length;
        yields its id (`keyed`: `idem_key`, `idem_input` of `Journal.begin`)."""
        op_id = self.begin_running(kind, scope, payload, **keyed)
        try:
            yield op_id
        finally:
            self.end_running(op_id)

    def begin_running(self, kind: str, scope: Scope | None, payload: dict[str, Any],
                      **keyed: str | None) -> str:
        """Journal an operation's input and hold it as running until `end_running` (an
        add handed to the background worker is running from the moment it is journaled:
        no recovery replays it beside the worker)."""
        with self._running_lock:
            op_id = self._journal.begin(kind, scope, payload, **keyed)
            self._running.add(op_id)
        return op_id

    def end_running(self, op_id: str) -> None:
        """The operation's call is over (done, or failed and left to recovery)."""
        with self._running_lock:
            self._running.discard(op_id)

    # ------------------------------------------------------------ add

    def add(self, op_id: str, scope: Scope, messages: list[Message],
            metadata: dict[str, Any], infer: bool,
            extraction: Extraction | None = None, *,
            timestamp: str | None = None) -> dict[str, Any]:
        """Run a journaled add to the end; returns the mem0-shaped result. `timestamp`
        (an `iso` string) is when the messages were said: the memories' `created_at`."""
        if infer and extraction is None:
            # The LLM call runs outside the write lock so adds of other scopes go on.
            with self._planning(op_id, "add"):
                extraction = self._extractor.extract(
                    messages, user_name=self._planner.user_name(scope)
                )
                # An LLM's answer is journaled so a retry does not ask again; the rules
                # extractor gives the same answer for the same input at no cost, so noting
                # it would only add a commit (an fsync) to every add. A plan in flight is
                # always undone and its add replayed from the input (see _settle).
                if self._extractor.name != "rules":
                    self._journal.note(op_id, {"extraction": extraction_to_dict(extraction)})
        with self.lock:
            with self._planning(op_id, "add"):
                self._settle()
                plan = self._plan_add(op_id, scope, messages, metadata, infer, extraction,
                                      timestamp)
            self.run(plan)
        return plan.result

    def _plan_add(self, op_id: str, scope: Scope, messages: list[Message],
                  metadata: dict[str, Any], infer: bool,
                  extraction: Extraction | None, timestamp: str | None = None) -> WritePlan:
        now = now_iso()
        # A memory is dated when it was said; its history row, when it was stored.
        said_at = timestamp or now
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
        near, close = self._near_memories(scope, vectors) if infer else ({}, [])

        memory_ids: list[str] = []
        new_ids: set[str] = set()
        results: list[dict[str, Any]] = []
        first_of_hash: dict[str, str] = {}
        reported: set[str] = set()
        window = self._config.search.context_memories
        recent = self._catalog.latest_texts(scope, window) if window else []
        for i, text in enumerate(texts):
            h = hashes[i]
            known = existing.get(h) or first_of_hash.get(h) or near.get(i)
            if known is not None:
                # Later copies of this text have no vector of their own (only the first
                # of a hash is embedded): they resolve to the memory the first one did.
                first_of_hash[h] = known
                memory_ids.append(known)
                if known not in new_ids and known not in reported:  # each memory once
                    reported.add(known)
                    results.append({"id": known, "memory": text, "event": "NONE"})
                continue
            record = MemoryRecord(
                id=str(uuid.uuid4()), text=text, hash=h, metadata=metadata, role=roles[i],
                actor_id=actors[i], created_at=said_at, updated_at=None, inferred=infer,
                context=context_of(recent[-window:]) if window else "", **scope.as_row(),
            )
            recent.append(text)
            plan.memories.append(MemoryWrite(record=record, vector=pack_vector(vectors[i]),
                                             event="ADD"))
            plan.history.append(_history(record, "ADD", None, text, now))
            first_of_hash[h] = record.id
            memory_ids.append(record.id)
            new_ids.add(record.id)
            results.append({"id": record.id, "memory": text, "event": "ADD"})
        self._planner.plan_relations(
            plan, scope, relations, FactLinks(memory_ids, texts, new_ids), name_vectors, now,
            near=close if self._extractor.name == "llm" else None,
        )
        self._name_superseded(plan)
        plan.result = {"results": results, "relations": _relation_summary(plan, self._snapshots,
                                                                           scope)}
        return plan

    def _near_memories(self, scope: Scope, vectors: dict[int, np.ndarray]
                       ) -> tuple[dict[int, str], list[MemoryRecord]]:
        """One search for the new facts' nearest current memories of the exact scope:
        fact index -> the memory it duplicates (cosine >= dedup_threshold), and the close
        ones below that (cosine >= conflict_candidate_threshold), which the LLM judge may
        find contradicted."""
        if not vectors:
            return {}, []
        order = list(vectors)
        if self._index is not None:
            hits = self._index.search_exact(np.vstack([vectors[i] for i in order]), scope, 3)
        else:
            hits = self._vectors.search(np.vstack([vectors[i] for i in order]), scope, 3)
        floor = min(self._config.dedup_threshold, self._config.conflict_candidate_threshold)
        rows = self._catalog.by_ids({mid for row in hits for mid, score in row if score >= floor})
        exact = scope.as_row()
        dups: dict[int, str] = {}
        close: dict[str, MemoryRecord] = {}
        for i, row in zip(order, hits, strict=True):
            for memory_id, score in row:
                record = rows.get(memory_id)
                if (record is None or record.superseded_at is not None
                        or record.model_dump(include=set(exact)) != exact):
                    continue
                if score >= self._config.dedup_threshold:
                    dups.setdefault(i, memory_id)
                elif score >= self._config.conflict_candidate_threshold:
                    close.setdefault(memory_id, record)
        dup_ids = set(dups.values())
        return dups, [r for i, r in close.items() if i not in dup_ids][:MAX_JUDGED_MEMORIES]

    # ------------------------------------------------------------ update / delete

    def update(self, op_id: str, memory_id: str, text: str,
               metadata: dict[str, Any] | None) -> dict[str, Any]:
        """Replace a memory's text (and metadata); its relations are derived again."""
        with self.lock:
            with self._planning(op_id, "update"):
                plan = self._plan_update(op_id, memory_id, text, metadata)
            self.run(plan)
            return plan.result

    def _plan_update(self, op_id: str, memory_id: str, text: str,
                     metadata: dict[str, Any] | None) -> WritePlan:
        self._settle()
        record = self._catalog.get(memory_id)
        if record is None:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        scope = record.scope
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
                                         event="UPDATE"))
        plan.history.append(_history(new, "UPDATE", record.text, text, now))
        self._planner.plan_forget(plan, scope, {memory_id})
        self._planner.plan_relations(
            plan, scope, relations, FactLinks([memory_id], [text], {memory_id}),
            {n: matrix[1 + j] for j, n in enumerate(names)}, now,
        )
        self._name_superseded(plan)
        plan.result = {"message": "Memory updated successfully!", "id": memory_id,
                       "memory": text, "event": "UPDATE"}
        return plan

    def _name_superseded(self, plan: WritePlan) -> None:
        """Give each SUPERSEDE row the text of the memory it ends (the planner knows the
        memory's id only), so a history reads "I like tea" -> "I dislike tea"."""
        rows = [h for h in plan.history if h.event == "SUPERSEDE" and h.old_memory is None]
        if rows:
            found = self._catalog.by_ids({h.memory_id for h in rows})
            for row in rows:
                if row.memory_id in found:
                    row.old_memory = found[row.memory_id].text

    def delete(self, op_id: str, memory_id: str) -> dict[str, Any]:
        """Erase a memory, and the edges and entities only it supported."""
        with self.lock:
            with self._planning(op_id, "delete"):
                self._settle()
                record = self._catalog.get(memory_id)
                if record is None:
                    raise NotFoundError(f"no memory with id {memory_id!r}")
                now = now_iso()
                plan = WritePlan(op_id=op_id, kind="delete", delete_memory_ids=[memory_id])
                plan.history.append(_history(record, "DELETE", record.text, None, now))
                self._planner.plan_forget(plan, record.scope, {memory_id})
                plan.result = {"message": "Memory deleted successfully!", "id": memory_id}
            self.run(plan)
            return plan.result

    def delete_all(self, op_id: str, scope: Scope) -> dict[str, Any]:
        """Erase every memory, entity and edge inside a read scope."""
        with self.lock:
            with self._planning(op_id, "delete_all"):
                self._settle()
                now = now_iso()
                records = self._catalog.list(scope, include_superseded=True)
                plan = WritePlan(
                    op_id=op_id, kind="delete_all", delete_memory_ids=[r.id for r in records],
                    delete_scope=scope,
                )
                plan.history.extend(_history(r, "DELETE", r.text, None, now) for r in records)
                noun = "memory" if len(records) == 1 else "memories"
                plan.result = {"message": f"{len(records)} {noun} deleted successfully!",
                               "deleted": len(records)}
            self.run(plan)
            return plan.result

    # ------------------------------------------------------------ apply / undo / recover

    @contextmanager
    def _planning(self, op_id: str, kind: str) -> Iterator[None]:
        """Failures before a plan is journaled changed nothing: record them."""
        try:
            yield
        except NotFoundError:
            self._journal.discard(op_id, force=True)
            raise
        except Exception as exc:
            status = self._status_after(op_id, kind, exc)
            self._journal.fail(op_id, _describe(exc), status)
            if status == "received":
                self._fold(op_id, exc)
            raise

    def run(self, plan: WritePlan) -> None:
        """Journal a plan and apply it; on failure undo it (see the module docstring)."""
        self._vectors.ensure_open()  # opened and checked before anything is journaled
        self._journal.set_plan(plan)
        try:
            self.apply(plan)
        except Exception as exc:
            if self._landed(plan):
                return
            self._undo(plan, exc)
            raise

    def _landed(self, plan: WritePlan) -> bool:
        """Whether the record holds `plan` although applying it raised: on a full disk
        SQLite can report a COMMIT as failed that it made durable (the WAL had the commit
        frame; what failed came after), and undoing it then would tell the caller "failed"
        for a write that is in the record. Then the call succeeded: only the in-process
        views, which apply() updates after the commit, are dropped (they load again)."""
        try:
            landed = self._journal.status(plan.op_id) == "done"
        except HybridMemError:
            return False
        if landed:
            log.warning("operation %s was committed although the commit reported an error; "
                        "it stands", plan.op_id)
            self._snapshots.clear()
            self._lexical.clear()
            if self._index is not None:
                self._index.clear()
        return landed

    def apply(self, plan: WritePlan) -> None:
        """Apply a journaled plan to Milvus, Kuzu, then the record."""
        if self._projections.vectors_stale:  # a flush failed: owed rows first
            self._projections.resync_recent_vectors()
        checkpoint("plan.stored")
        records = [w.record for w in plan.memories]
        vectors = (np.vstack([unpack_vector(w.vector) for w in plan.memories])
                   if records else None)
        # An add's memories have ids planned just now (uuid4): inserted, not upserted (a
        # plan is applied once; one that failed part-way is undone by id from the record).
        new = [plan.kind == "add" and w.event == "ADD" for w in plan.memories]
        if all(new) and records:
            self._vectors.upsert(records, vectors, new=True)
        elif records:
            self._vectors.upsert(records, vectors)
        self._vectors.delete(plan.delete_memory_ids)
        checkpoint("milvus.written")
        self._graph.apply(plan, self._projections.store_id)
        checkpoint("kuzu.written")
        with self._db.transaction():
            restated = self._catalog.delete(plan.delete_memory_ids, plan.epoch)
            if records:
                restated.update(self._catalog.upsert(records, vectors, plan.epoch))
            self._catalog.supersede(plan.supersede)
            self._mirror.apply(plan)
            self._journal.finish(plan)
        checkpoint("catalog.committed")
        if self._index is not None:
            self._index.apply(plan)
        self._lexical.apply(plan, restated)
        if plan.delete_scope is not None:
            self._snapshots.clear()
        else:
            self._snapshots.apply(plan, {
                row.scope for row in [*plan.history, *plan.entities, *plan.edges]})
        if self._vectors.flush_due:
            self._projections.flush()

    def _undo(self, plan: WritePlan, exc: BaseException | None) -> bool:
        """Make the engines match the record again after `plan` failed part-way, and move
        its operation on: an add back to `received` (or `quarantined`), anything else to
        `failed`. If the engines cannot be written either, the plan stays in flight (it is
        undone before the next write); returns whether the undo finished."""
        error = _describe(exc) if exc is not None else None
        try:
            self._projections.reproject(plan)
        except Exception as again:  # noqa: BLE001 - the engine is still failing
            log.warning("could not undo operation %s yet (%s); it is undone before the next "
                        "write", plan.op_id, again)
            if error is not None:
                self._journal.fail(plan.op_id, error)
            return False
        finally:
            self._snapshots.clear()
            self._lexical.clear()
            if self._index is not None:
                self._index.clear()
        error = error or self._journal.error(plan.op_id) or "interrupted before its commit"
        status = self._status_after(plan.op_id, plan.kind, exc)
        self._journal.fail(plan.op_id, error, status)
        if status == "received" and exc is not None:
            self._fold(plan.op_id, exc)
        return True

    def _fold(self, op_id: str, exc: BaseException) -> None:
        """An add back in the journal whose input already waits there (the same script
        run again against a dead provider) is kept once: the older copy stays."""
        older = self._journal.fold_into_older(op_id)
        if older is not None:
            exc.add_note(f"the same input was already waiting in the journal (operation "
                         f"{older}); it is kept there once")

    def _status_after(self, op_id: str, kind: str, exc: BaseException | None) -> str:
        """Where an operation goes after its call raised."""
        if kind != "add":
            return "failed"  # the caller saw the error; replaying later could undo newer writes
        if isinstance(exc, ProviderError):
            return "received"  # the model will answer again; nothing is wrong with the input
        attempts = self._journal.attempts(op_id)
        return "quarantined" if attempts + 1 >= MAX_ATTEMPTS else "received"

    def _settle(self) -> None:
        """Finish or undo the plan in flight, if any, before anything else is written.

        Raises:
            StoreError: it can be neither finished nor undone (an engine is still failing);
                nothing new is written until it can.
        """
        op = self._journal.planned()
        if op is None or op.plan is None:
            return
        self._vectors.ensure_open()  # opened and checked before the plan is undone
        # A plan in flight is undone, never finished: its call raised (even when a full
        # disk refused the write that notes it) or its process died before the commit;
        # either way no caller was told it was done. An add goes back to its journaled
        # input and is replayed; an update or delete is dropped. (Finishing such a plan
        # deleted a memory whose delete had raised, in test_disk_full[sqlite].)
        finished = self._undo(op.plan, None)
        if not finished:
            raise StoreError(
                f"an earlier operation ({op.kind} {op.id}) failed and cannot be undone yet: "
                f"{self._journal.error(op.id)}; nothing new was written. Fix the cause (e.g. "
                "free disk space) and retry"
            )

    def recover(self) -> dict[str, int]:
        """Finish the plan in flight, then replay journaled adds (oldest first), each
        input once. A provider failure ends the replay: the operations after it wait in
        the journal, since each would only wait out its retries against the same provider
        (at open, 5 pending adds and a dead LLM took 15.8 s).

        Returns `{"finished": n, "pending": m}` (m still waiting), and
        `"repeated_dropped": k` when k adds repeated an input already waiting in their
        scope and were dropped.
        """
        with self.lock:
            try:
                self._settle()
            except HybridMemError as exc:
                log.warning("%s", exc)
                return {"finished": 0, "pending": len(self._journal.pending(("received",
                                                                             "planned")))}
            with self._running_lock:
                running = set(self._running)
            repeated = self._journal.drop_repeated_inputs(running)
        if repeated:
            log.warning("%d journaled adds repeated an input already waiting in their scope "
                        "(the same call made again after a failure); each input is kept "
                        "and replayed once", repeated)
        with self._running_lock:
            ops = [op for op in self._journal.pending(("received",))
                   if op.id not in self._running]
        done = failed = 0
        for i, op in enumerate(ops):
            try:
                self._finish(op)
                done += 1
            except ProviderError as exc:
                failed += len(ops) - i
                log.warning("operation %s (%s) is still pending, and %d after it wait too "
                            "(replay stops at a provider failure; `retry_pending()` or the "
                            "next open tries again): %s", op.id, op.kind, len(ops) - i - 1,
                            exc)
                break
            except HybridMemError as exc:
                failed += 1
                log.warning("operation %s (%s) is still pending: %s", op.id, op.kind, exc)
        result = {"finished": done, "pending": failed}
        if repeated:
            result["repeated_dropped"] = repeated
        return result

    def replay(self, op_id: str) -> dict[str, Any] | None:
        """Finish one journaled operation now (a caller repeating a keyed add); returns
        its result, or None when it is no longer pending."""
        with self.lock:
            self._settle()
        with self._running_lock:
            found = [op for op in self._journal.pending(("received",))
                     if op.id == op_id and op.id not in self._running]
        return self._finish(found[0]) if found else None

    def _finish(self, op: PendingOp) -> dict[str, Any] | None:
        """Replay one journaled operation whose call raised or never returned; an add
        returns its result."""
        if op.kind == "add":
            payload = op.payload
            extraction = payload.get("extraction")
            return self.add(op.id, op.scope, [Message(**m) for m in payload["messages"]],
                            payload["metadata"], payload["infer"],
                            extraction_from_dict(extraction) if extraction else None,
                            timestamp=payload.get("timestamp"))
        if op.kind == "import":  # a batch that died before its plan was stored wrote nothing
            self._journal.discard(op.id, force=True)
            return None
        # An update or delete still `received` was never planned: its call raised (and,
        # the disk being full, even marking it failed may have failed) or its process
        # died first. Either way its caller did not see it done, and replaying it now
        # could act on newer writes or undo an acknowledged memory: it is dropped.
        self._journal.fail(op.id, "not replayed: its call raised or its process stopped "
                                  "before it was planned", "failed")
        return None


# ---------------------------------------------------------------- helpers


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


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
    planned = {e.id: e for e in plan.entities}

    def name(entity_id: str, default: str) -> str:
        entity = planned.get(entity_id) or graph.entity_by_id.get(entity_id)
        return entity.name if entity is not None else default

    added = [{"source": name(e.source_id, e.source_name), "relationship": e.relation,
              "target": name(e.target_id, e.target_name)} for e in plan.edges]
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
        dropped=int(data.get("dropped", 0)),
    )

