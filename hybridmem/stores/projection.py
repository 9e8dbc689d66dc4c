"""Milvus and Kuzu as projections of the SQLite record: checked at open, made durable,
compared in full, and rebuilt.

The record (catalog with vectors, graph mirror, journal) is the truth. Each engine carries
a marker: the id of the store that owns it and an epoch, the position of the last plan it
holds (Kuzu: set in each plan's transaction; Milvus: set at each flush, the point where
Milvus Lite makes writes durable). The record keeps the same epochs, so opening a store is
a handful of reads:

- an engine marked by another store: refused (two configurations never share an engine);
- an engine behind the record (files lost, deleted or restored from an older copy): brought
  up to date from the record, without any model call;
- an engine ahead of the record (the record lost commits): refused with the command that
  rebuilds the record from the engines, since nothing else can bring those writes back.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from hybridmem.errors import ConfigError, StoreError
from hybridmem.records import EdgeRecord, HistoryEntry, MemoryRecord, WritePlan, iso
from hybridmem.stores.base import GraphStore, VectorStore
from hybridmem.stores.catalog import MemoryCatalog
from hybridmem.stores.identity import StorePaths
from hybridmem.stores.journal import Journal
from hybridmem.stores.mirror import GraphMirror
from hybridmem.stores.sqlite import Database

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What a check found, or what a repair or an open did (counts per kind)."""

    found: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, n: int, note: str | None = None) -> None:
        """Count `n` of `kind` (ignored when 0), with an optional explanation."""
        if n:
            self.found[kind] = self.found.get(kind, 0) + n
            if note:
                self.notes.append(note)

    @property
    def clean(self) -> bool:
        """Whether nothing was found."""
        return not self.found


# What to change for a new store, by the setting that names the catalog's file.
_NEW_STORE_HINTS = {
    "collection_name": "use another collection_name (or history_db_path) for a new store",
    "graph_store.db": "it sits beside the graph and is named after it, so give a new store "
                      "its own graph_store.db (or history_db_path)",
    "history_db_path": "give a new store its own history_db_path",
}


class Projections:
    """Keeps Milvus and Kuzu in step with the record."""

    def __init__(self, *, paths: StorePaths, db: Database, journal: Journal,
                 catalog: MemoryCatalog, mirror: GraphMirror, vectors: VectorStore,
                 graph: GraphStore) -> None:
        self._paths = paths
        self._db = db
        self._journal = journal
        self._catalog = catalog
        self._mirror = mirror
        self._vectors = vectors
        self._graph = graph
        self.store_id = self._claim()
        # Set when a flush failed: Milvus Lite dropped the rows written since the last good
        # flush, and they are written again from the record before the next write.
        self.vectors_stale = False

    # ------------------------------------------------------------ identity

    def _claim(self) -> str:
        identity = self._paths.identity
        recorded = self._db.get_meta("identity")
        legacy = self._paths.legacy_identity
        # The legacy form (paths relative to the data dir, as recorded before records
        # followed their graph) is the same store; opened.py writes today's form once the
        # open succeeds.
        ours = {identity.to_json(), *([legacy.to_json()] if legacy is not None else [])}
        if recorded is not None and recorded not in ours:
            from hybridmem.stores.identity import StoreIdentity

            theirs = StoreIdentity.from_json(recorded)
            raise ConfigError(
                f"the catalog {self._paths.catalog} belongs to the store with "
                f"{theirs.describe()}, not {identity.describe()}. Each store keeps its own "
                f"catalog: {_NEW_STORE_HINTS[self._paths.catalog_setting]}, or use the "
                "original settings for that one"
            )
        store_id = self._db.get_meta("store_id")
        if store_id is None:
            store_id = uuid.uuid4().hex
            self._db.set_meta({"store_id": store_id, "identity": identity.to_json(),
                               "created_at": iso(datetime.now(UTC))})
        elif recorded is None:  # an open that never finished left it unclaimed (opened.py)
            self._db.set_meta({"identity": identity.to_json()})
        return store_id

    def _epochs(self) -> tuple[int, int, int]:
        get = self._db.get_meta
        # The record's epoch is Kuzu's too (every plan marks Kuzu); Milvus confirms its own
        # at each flush.
        return int(get("epoch") or 0), int(get("vector_epoch") or 0)

    # ------------------------------------------------------------ open

    def check_at_open(self, *, rebuild_record: bool = False) -> Report:
        """Compare the record with Kuzu (a few reads); bring Kuzu up to date from the
        record if it lags. Milvus is checked when first used (`check_vectors`): reads
        never need it, since searches use the record's vectors. Every plan marks Kuzu, so
        a record that lost commits is found here whatever they wrote.

        Raises:
            ConfigError: an engine belongs to another store.
            StoreError: an engine holds writes the record lost (unless `rebuild_record`).
        """
        report = Report()
        epoch, _ = self._epochs()
        planned = self._journal.planned()
        in_flight = planned.plan.epoch if planned and planned.plan else None
        fresh = epoch == 0 and self._catalog.count() == 0
        graph_mark = self._graph.marker()
        marks = {"Kuzu graph": graph_mark}
        if rebuild_record or (fresh and graph_mark is not None
                              and graph_mark[0] != self.store_id):
            marks["Milvus collection"] = self._vectors.marker()
        self._check_owners(marks, fresh, rebuild_record)
        ahead = []
        if graph_mark and graph_mark[0] == self.store_id and graph_mark[1] > epoch \
                and graph_mark[1] != in_flight:
            ahead.append(f"the Kuzu graph is at epoch {graph_mark[1]}, the catalog at "
                         f"{epoch}")
        if rebuild_record and (ahead or self._vectors_ahead() or (
                fresh and any(m is not None for m in marks.values()))):
            return self.rebuild_record()
        if ahead:
            raise self._lost_commits(ahead)
        if graph_mark is None and epoch == 0 and not any(self._mirror.count()):
            if any(self._graph.count()):
                raise ConfigError(
                    f"the Kuzu graph at {self._paths.graph} already holds entities written by "
                    "something else; give this configuration its own graph_store.db"
                )
            self._graph.restore(entities=[], edges=[], store_id=self.store_id, epoch=epoch)
        elif graph_mark is None or graph_mark[1] < epoch:
            n = self.rebuild_graph()
            report.add("graph_rebuilt", max(n, 1),
                       f"the Kuzu graph was behind the record (epoch "
                       f"{graph_mark[1] if graph_mark else 'none'} < {epoch}); rebuilt "
                       f"{n} entities and edges from the record")
        if rebuild_record:
            report.found.update(self.check_vectors().found)
        for note in report.notes:
            log.warning(note)
        return report

    def check_vectors(self) -> Report:
        """Compare Milvus with the record (its marker and row count) and bring it up to
        date; run once, when Milvus is first opened.

        Raises:
            ConfigError: the collection belongs to another store or holds foreign rows.
            StoreError: Milvus holds writes the record lost.
        """
        report = Report()
        epoch, vector_epoch = self._epochs()
        record_count, vector_count = self._catalog.count(), self._vectors.count()
        fresh = epoch == 0 and record_count == 0
        vector_mark = self._vectors.marker()
        self._check_owners({"Milvus collection": vector_mark}, fresh, False)
        if fresh and vector_mark is None and vector_count:
            raise ConfigError(
                f"collection {self._paths.identity.collection!r} already holds rows written "
                "by something else; use another collection_name"
            )
        ahead = self._vectors_ahead(vector_mark, vector_count, record_count)
        if ahead:
            raise self._lost_commits(ahead)
        if vector_mark is None and fresh:
            self.flush()  # mark the collection as this store's from the start
        elif (vector_mark is None or vector_mark[1] < vector_epoch
              or vector_count != record_count):
            n = self.sync_all_vectors()
            report.add("vectors_restored", n,
                       f"Milvus was behind the record; wrote {n} memories back from it")
        else:
            report.add("vectors_rewritten", self.resync_recent_vectors())
        for note in report.notes:
            log.warning(note)
        return report

    def _check_owners(self, marks: dict[str, tuple[str, int] | None], fresh: bool,
                      rebuild_record: bool) -> None:
        foreign = {engine: mark for engine, mark in marks.items()
                   if mark is not None and mark[0] != self.store_id}
        if not foreign or (fresh and rebuild_record):
            return
        engine, mark = next(iter(foreign.items()))
        if not fresh:
            raise ConfigError(
                f"the {engine} of {self._paths.identity.describe()} belongs to another "
                f"store ({mark[0]}); the catalog {self._paths.catalog} is store "
                f"{self.store_id}. Give this configuration its own collection_name and "
                "graph_store.db"
            )
        owners = {m[0] for m in foreign.values()}
        if len(foreign) == 2 and len(owners) == 1:  # both engines: the record was lost
            raise StoreError(
                f"the catalog {self._paths.catalog} is empty, but Milvus and Kuzu hold store "
                f"{owners.pop()} (epoch {mark[1]}): the catalog was lost or replaced. Restore "
                "it, or run `hybridmem repair` to rebuild it from Milvus and Kuzu"
            )
        raise ConfigError(
            f"the {engine} of {self._paths.identity.describe()} belongs to another store "
            f"({mark[0]}), e.g. another configuration or another host's hybridmem: give this "
            "configuration its own collection_name and graph_store.db (if it is this "
            "store's and its catalog was lost, run `hybridmem repair`)"
        )

    def _vectors_ahead(self, mark: tuple[str, int] | None = None, vector_count: int | None = None,
                       record_count: int | None = None) -> list[str]:
        """Signs that Milvus holds writes the record lost."""
        epoch = self._epochs()[0]
        if vector_count is None:
            mark, vector_count = self._vectors.marker(), self._vectors.count()
            record_count = self._catalog.count()
        ahead = []
        if mark and mark[0] == self.store_id and mark[1] > epoch:
            ahead.append(f"the Milvus collection is at epoch {mark[1]}, the catalog at {epoch}")
        if vector_count != record_count:
            lost = self._lost_from_record()
            planned = self._journal.planned()
            if planned and planned.plan:  # written by the plan in flight, finished later
                lost -= {w.record.id for w in planned.plan.memories}
            if lost:
                ahead.append(f"Milvus holds {len(lost)} memories the catalog does not")
        return ahead

    def _lost_commits(self, ahead: list[str]) -> StoreError:
        return StoreError(
            f"the catalog {self._paths.catalog} lost committed writes (" + "; ".join(ahead)
            + "), e.g. its -wal file was deleted or an older copy restored. Run `hybridmem "
            "repair` (or Memory(config, repair=True)) to take them back from the engines"
        )

    def _lost_from_record(self) -> set[str]:
        """Memory ids Milvus holds that the record has neither as a row nor a tombstone
        (a full id scan: run only when the counts disagree)."""
        known = self._catalog.all_ids() | set(self._catalog.tombstones())
        return self._vectors.all_ids() - known

    # ------------------------------------------------------------ vectors

    def flush(self) -> None:
        """Make Milvus durable up to the record's epoch. A failure is logged, not raised:
        the rows stay owed in the record and are written again before the next write."""
        epoch = self._journal.epoch()
        try:
            self._vectors.flush(self.store_id, epoch)
        except StoreError as exc:
            self.vectors_stale = True
            log.warning("Milvus flush failed (%s); the rows written since the last good "
                        "flush will be written again from the record", exc)
            return
        with self._db.transaction():
            self._db.set_meta({"vector_epoch": epoch})
            self._catalog.flushed(epoch)

    def resync_recent_vectors(self) -> int:
        """Write again every row Milvus has not confirmed durable; returns how many."""
        _, vector_epoch = self._epochs()
        n = 0
        for records, vectors in self._catalog.rows_with_vectors(after_epoch=vector_epoch):
            self._vectors.upsert(records, vectors)
            n += len(records)
        gone = self._catalog.tombstones()
        self._vectors.delete(gone)
        self.vectors_stale = False
        return n + len(gone)

    def sync_all_vectors(self) -> int:
        """Make Milvus hold exactly the record's memories; returns rows written or deleted."""
        in_milvus = self._vectors.all_ids()
        in_record = self._catalog.all_ids()
        extra = sorted(in_milvus - in_record)
        self._vectors.delete(extra)
        n = len(extra)
        for records, vectors in self._catalog.rows_with_vectors(ids=sorted(in_record)):
            self._vectors.upsert(records, vectors)
            n += len(records)
        self.flush()
        return n

    # ------------------------------------------------------------ graph

    def rebuild_graph(self) -> int:
        """Replace Kuzu's contents with the record's graph; returns entities + edges."""
        entities, edges = self._mirror.entities(), self._mirror.edges()
        self._graph.restore(entities=entities, edges=edges, store_id=self.store_id,
                            epoch=self._epochs()[0], everything=True)
        return len(entities) + len(edges)

    # ------------------------------------------------------------ undoing a plan

    def reproject(self, plan: WritePlan) -> None:
        """Undo whatever part of `plan` reached the engines: every id it touches is made
        to match the record again (the record itself never saw the plan)."""
        memory_ids = [w.record.id for w in plan.memories] + list(plan.delete_memory_ids)
        if memory_ids:
            present = self._catalog.vectors(memory_ids)
            self._vectors.delete([i for i in memory_ids if i not in present])
            for records, vectors in self._catalog.rows_with_vectors(ids=list(present)):
                self._vectors.upsert(records, vectors)
        if not plan.touches_graph():
            return
        epoch = self._epochs()[0]
        if plan.delete_scope is not None:
            self.rebuild_graph()
            return
        entity_ids = ({e.id for e in plan.entities} | set(plan.delete_entity_ids)
                      | {e.source_id for e in plan.edges} | {e.target_id for e in plan.edges})
        edge_ids = ({e.id for e in plan.edges} | {c.edge_id for c in plan.support}
                    | set(plan.delete_edge_ids) | {i.edge_id for i in plan.invalidations})
        entities = self._mirror.entities_by_id(entity_ids)
        edges = self._mirror.edges_by_id(edge_ids)
        # Edges of touched entities that the record has: a DETACH DELETE of a new entity
        # must not take an old edge with it, so they are written again too.
        for edge in self._mirror.edges_touching(list(entities)):
            edges.setdefault(edge.id, edge)
        ends = {e.source_id for e in edges.values()} | {e.target_id for e in edges.values()}
        entities.update(self._mirror.entities_by_id(ends - set(entities)))
        self._graph.restore(
            entities=list(entities.values()), edges=list(edges.values()),
            drop_entity_ids=sorted(entity_ids - set(entities)),
            drop_edge_ids=sorted(edge_ids - set(edges)),
            store_id=self.store_id, epoch=epoch,
        )

    # ------------------------------------------------------------ full check and repair

    def _differences(self) -> _Differences:
        """Every way the engines differ from the record (a full scan of both)."""
        in_record = self._catalog.all_ids()
        in_milvus = self._vectors.all_ids()
        stale: list[str] = []
        for records, vectors in self._catalog.rows_with_vectors(
                ids=sorted(in_record & in_milvus)):
            stale += self._vectors.stale(records, vectors)
        graph: dict[str, tuple[dict, dict]] = {
            "entities": ({e.id: e for e in self._mirror.entities()},
                         {e.id: e for e in self._graph.entities(None)}),
            "edges": ({e.id: e for e in self._mirror.edges()},
                      {e.id: e for e in self._graph.edges(None, include_invalid=True)}),
        }
        found = _Differences(vectors_missing=in_record - in_milvus,
                             vectors_orphaned=in_milvus - in_record, vectors_differ=set(stale),
                             in_record=in_record, record_edges=graph["edges"][0])
        for kind, (ours, theirs) in graph.items():
            # Names and types on an edge are its ends', read through them.
            skip = {"source_name", "target_name", "source_type", "target_type"} \
                if kind == "edges" else set()
            found.graph[kind] = (
                {i: ours[i] for i in set(ours) - set(theirs)},
                set(theirs) - set(ours),
                {i: ours[i] for i in set(ours) & set(theirs)
                 if ours[i].model_dump(exclude=skip) != theirs[i].model_dump(exclude=skip)},
            )
        return found

    def check(self) -> Report:
        """Compare every memory, vector, entity and edge of the engines with the record."""
        found = self._differences()
        report = Report()
        n = len(found.vectors_missing)
        report.add("vectors_missing", n, f"{n} memories have no vector in Milvus")
        n = len(found.vectors_orphaned)
        report.add("vectors_orphaned", n, f"{n} vectors in Milvus have no memory")
        n = len(found.vectors_differ)
        report.add("vectors_differ", n, f"{n} Milvus rows differ from the record's")
        for kind, (missing, extra, differ) in found.graph.items():
            report.add(f"{kind}_missing", len(missing), f"{len(missing)} {kind} missing in Kuzu")
            report.add(f"{kind}_orphaned", len(extra), f"{len(extra)} {kind} in Kuzu only")
            report.add(f"{kind}_differ", len(differ),
                       f"{len(differ)} {kind} differ from the record's")
        unsupported = sum(1 for e in found.record_edges.values()
                          if not set(e.memory_ids) <= found.in_record or not e.memory_ids)
        report.add("edges_without_memory", unsupported,
                   f"{unsupported} edges name memories the record does not have")
        return report

    def repair(self) -> Report:
        """Make both engines match the record: write what is missing or differs and delete
        what the record does not have, nothing else (a clean store is not written, and
        the report is empty)."""
        found = self._differences()
        report = Report()
        epoch = self._epochs()[0]
        rewrite = sorted(found.vectors_missing | found.vectors_differ)
        self._vectors.delete(sorted(found.vectors_orphaned))
        for records, vectors in self._catalog.rows_with_vectors(ids=rewrite):
            self._vectors.upsert(records, vectors)
        if rewrite or found.vectors_orphaned or self._vectors.marker() != (self.store_id,
                                                                           epoch):
            self.flush()
        report.add("vectors_written", len(rewrite))
        report.add("vectors_deleted", len(found.vectors_orphaned))
        (new_entities, extra_entities, changed_entities) = found.graph["entities"]
        (new_edges, extra_edges, changed_edges) = found.graph["edges"]
        written = [*new_entities.values(), *changed_entities.values()]
        edges = [*new_edges.values(), *changed_edges.values()]
        if written or edges or extra_entities or extra_edges or (
                self._graph.marker() != (self.store_id, epoch)):
            # A changed edge is dropped first: MERGE by id between other ends would add a
            # second edge with that id, not move the first.
            self._graph.restore(entities=written, edges=edges,
                                drop_edge_ids=sorted(extra_edges | set(changed_edges)),
                                drop_entity_ids=sorted(extra_entities),
                                store_id=self.store_id, epoch=epoch)
        report.add("graph_rows_written", len(written) + len(edges))
        report.add("graph_rows_deleted", len(extra_entities) + len(extra_edges))
        return report

    def rebuild_record(self) -> Report:
        """Take back from the engines whatever the record lost (memories from Milvus,
        entities and edges from Kuzu). History rows of those memories are lost; each gets
        one ADD row marked `recovered`."""
        report = Report()
        vector_mark, graph_mark = self._vectors.marker(), self._graph.marker()
        owner = next((m[0] for m in (vector_mark, graph_mark) if m), None)
        if owner is not None and owner != self.store_id:
            self._db.set_meta({"store_id": owner})
            self.store_id = owner
        record_epoch = self._epochs()[0]
        # An engine durable past the record saw every write the record lost: updates and
        # deletes as well as adds, so there it is taken as it is, not only for what the
        # record lacks.
        vectors_ahead = bool(vector_mark and vector_mark[1] > record_epoch)
        graph_ahead = bool(graph_mark and graph_mark[1] > record_epoch)
        in_milvus = self._vectors.all_ids()
        recorded = self._catalog.all_ids()
        known = recorded | set(self._catalog.tombstones())
        lost = sorted(in_milvus - known)
        deleted_after = sorted(recorded - in_milvus) if vectors_ahead else []
        changed = []
        if vectors_ahead:
            mine = self._catalog.by_ids(recorded & in_milvus)
            changed = [r["id"] for r in self._vectors.rows(sorted(mine))
                       if r["hash"] != mine[r["id"]].hash]
        graph_entities = self._graph.entities(None)
        graph_edges = self._graph.edges(None, include_invalid=True)
        if graph_ahead:
            entities, edges = graph_entities, graph_edges
            gone_entities = {e.id for e in self._mirror.entities()} - {e.id for e in entities}
            gone_edges = {e.id for e in self._mirror.edges()} - {e.id for e in edges}
        else:
            have_entities = self._mirror.entities_by_id([e.id for e in graph_entities])
            entities = [e for e in graph_entities if e.id not in have_entities]
            have = self._mirror.edges_by_id([e.id for e in graph_edges])
            edges = [e for e in graph_edges if e.id not in have]
            gone_entities, gone_edges = set(), set()
        supported = {m for e in self._mirror.edges() + edges for m in e.memory_ids}
        epoch = max(record_epoch, vector_mark[1] if vector_mark else 0,
                    graph_mark[1] if graph_mark else 0)
        lost = sorted(set(lost) | set(changed))
        with self._db.transaction():
            if deleted_after:
                self._catalog.delete(deleted_after, epoch)
            for start in range(0, len(lost), 1000):
                rows = self._vectors.rows(lost[start : start + 1000])
                records = [_record_from_milvus(r, r["id"] in supported) for r in rows]
                if records:
                    self._catalog.upsert(records, np.vstack(
                        [np.asarray(r["vector"], dtype=np.float32) for r in rows]), epoch)
                    self._journal.write_history([_recovered(r) for r in records])
            self._mirror.put(entities, edges)
            self._mirror.remove(gone_entities, gone_edges)
            self._db.set_meta({"epoch": epoch, "vector_epoch": 0})
        report.add("memories_recovered", len(lost),
                   f"took back {len(lost)} memories from Milvus, {len(changed)} of them "
                   f"changed after the record's copy (history before this repair is lost "
                   f"for them); {len(deleted_after)} deleted after it")
        report.add("graph_rows_recovered", len(entities) + len(edges),
                   f"took back {len(entities)} entities and {len(edges)} edges from Kuzu")
        report.found.update(self.repair().found)
        return report


@dataclass
class _Differences:
    """How the engines differ from the record, by id."""

    vectors_missing: set[str]
    vectors_orphaned: set[str]
    vectors_differ: set[str]
    in_record: set[str]
    record_edges: dict[str, EdgeRecord]
    # kind -> (in the record only: id -> row, in Kuzu only: ids, differing: id -> row)
    graph: dict[str, tuple[dict, set[str], dict]] = field(default_factory=dict)


def _record_from_milvus(row: dict, inferred: bool) -> MemoryRecord:
    def stamp(ms: int) -> str:
        return iso(datetime.fromtimestamp(ms / 1000, tz=UTC))

    return MemoryRecord(
        id=row["id"], text=row["text"], hash=row["hash"], metadata=row["metadata"] or {},
        user_id=row["user_id"], agent_id=row["agent_id"], run_id=row["run_id"],
        created_at=stamp(row["created_at"]),
        updated_at=stamp(row["updated_at"]) if row["updated_at"] != row["created_at"] else None,
        inferred=inferred,
    )


def _recovered(record: MemoryRecord) -> HistoryEntry:
    return HistoryEntry(
        id=uuid.uuid4().hex, memory_id=record.id, event="ADD", new_memory=record.text,
        detail={"recovered": "milvus"}, created_at=record.created_at, user_id=record.user_id,
        agent_id=record.agent_id, run_id=record.run_id,
    )
