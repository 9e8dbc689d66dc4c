"""The graph store on Kuzu: entity nodes and relation edges, scoped like the memories.

The only module that writes Cypher. Every value reaches a query as a parameter; the only
text composed into a query is column names from `SCOPE_FIELDS`.

Writes merge nodes in one statement and edges in another that MATCHes both (already
existing) ends, never `MERGE (a) MERGE (b) MERGE (a)-[]->(b)` in one statement (Kuzu 0.11.3
attaches edges to the wrong node when that is re-run on existing data: 178 per 10k rows),
and a plan's whole graph part runs in one explicit transaction.

The graph is a projection of the SQLite record: a `Store` node holds the owning store's id
and the epoch of the last plan applied, set in that plan's transaction.

Kuzu 0.11.3 does not survive a failed write to its WAL (e.g. a full disk): the database
object is left corrupt and destroying it aborts the process (measured: SIGABRT on close, on
garbage collection and at exit). So writes check free space first, and a store that hit
an I/O error is never closed: it is kept alive until the process ends and refuses further
use; reopening replays the WAL up to the last good commit.
"""

from __future__ import annotations

import ctypes
import shutil
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hybridmem.errors import StoreError, StoreLockedError
from hybridmem.records import EdgeRecord, EntityRecord, WritePlan
from hybridmem.scope import SCOPE_FIELDS, Scope

# Free space a graph write needs on top of the WAL's size (a checkpoint rewrites up to the
# WAL's worth of pages into the database file).
MIN_FREE_BYTES = 8 * 1024 * 1024

_SCHEMA = [
    "CREATE NODE TABLE IF NOT EXISTS Entity ("
    " id STRING PRIMARY KEY, user_id STRING, agent_id STRING, run_id STRING,"
    " name STRING, key STRING, type STRING, aliases STRING[], mentions INT64,"
    " created_at STRING, embedding STRING)",
    "CREATE REL TABLE IF NOT EXISTS Relation (FROM Entity TO Entity,"
    " id STRING, user_id STRING, agent_id STRING, run_id STRING, relation STRING,"
    " fact STRING, valid BOOLEAN, created_at STRING, invalidated_at STRING,"
    " superseded_by STRING, reason STRING, memory_ids STRING[])",
    "CREATE NODE TABLE IF NOT EXISTS Store (id STRING PRIMARY KEY, epoch INT64)",
]

# Rows per UNWIND statement of a graph write (bounds one statement's parameter list),
# and the fewest rows written that way (below it, a prepared statement per row is faster).
_UNWIND_ROWS = 1000
_UNWIND_MIN = 16
_ENTITY_SET = ("e.user_id = {x}user_id, e.agent_id = {x}agent_id, e.run_id = {x}run_id, "
               "e.name = {x}name, e.key = {x}key, e.type = {x}type, e.aliases = {x}aliases, "
               "e.mentions = {x}mentions, e.created_at = {x}created_at, "
               "e.embedding = {x}embedding")
_EDGE_SET = ("r.user_id = {x}user_id, r.agent_id = {x}agent_id, r.run_id = {x}run_id, "
             "r.relation = {x}relation, r.fact = {x}fact, r.valid = {x}valid, "
             "r.created_at = {x}created_at, r.invalidated_at = {x}invalidated_at, "
             "r.superseded_by = {x}superseded_by, r.reason = {x}reason, "
             "r.memory_ids = {x}memory_ids")

_ENTITY_RETURN = (
    "e.id, e.user_id, e.agent_id, e.run_id, e.name, e.key, e.type, e.aliases, e.mentions, "
    "e.created_at, e.embedding"
)
_EDGE_RETURN = (
    "r.id, s.id, t.id, r.user_id, r.agent_id, r.run_id, r.relation, r.fact, r.valid, "
    "r.created_at, r.invalidated_at, r.superseded_by, r.reason, r.memory_ids, "
    "s.name, t.name, s.type, t.type"
)


class KuzuGraphStore:
    """Entities and relations in one Kuzu database directory."""

    def __init__(self, path: Path) -> None:
        import kuzu

        self.path = path
        self._broken: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = kuzu.Database(str(path))
        except (RuntimeError, OSError) as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"the Kuzu graph at {path} is in use by another process"
                ) from exc
            raise StoreError(
                f"cannot open the Kuzu graph at {path}: {exc}; if the files are damaged, run "
                "`hybridmem repair` to rebuild the graph from the record"
            ) from exc
        self._conn = kuzu.Connection(self._db)
        # One connection, one statement at a time: Kuzu connections are not shared safely.
        self._lock = threading.RLock()
        # Preparing costs ~0.7 ms per statement; the statements are few and fixed.
        self._prepared: dict[str, Any] = {}
        try:
            for statement in _SCHEMA:
                self._conn.execute(statement)
        except RuntimeError as exc:
            self._give_up(str(exc))
            raise StoreError(f"cannot set up the Kuzu graph at {path}: {exc}") from exc

    # ------------------------------------------------------------ reads

    def _exec(self, query: str, params: dict[str, Any] | None = None):
        with self._lock:
            self._check_usable()
            statement = self._prepared.get(query)
            if statement is None:
                with warnings.catch_warnings():
                    # Kuzu 0.11.3 (its final release) deprecates prepare() but keeps it;
                    # reusing statements saves ~0.7 ms each.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    statement = self._prepared[query] = self._conn.prepare(query)
            return self._conn.execute(statement, params or {})

    def _exec_list(self, query: str, rows: list[dict[str, Any]]) -> None:
        """Run an `UNWIND $rows` statement, not prepared: a list of structs is typed from
        the rows it is given (which fields are null differs from one call to the next)."""
        with self._lock:
            self._check_usable()
            self._conn.execute(query, {"rows": rows})

    def _rows(self, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        with self._lock:
            try:
                return self._exec(query, params).get_all()
            except RuntimeError as exc:
                raise StoreError(f"Kuzu read of the graph at {self.path} failed: {exc}") from exc

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise StoreError(
                f"the graph at {self.path} stopped after an I/O error ({self._broken}); free "
                "disk space and open the Memory again (the record keeps every change, and the "
                "graph is brought up to date from it on open)"
            )

    def marker(self) -> tuple[str, int] | None:
        """(store id, epoch of the last applied plan) of the store that owns the graph."""
        rows = self._rows("MATCH (s:Store) RETURN s.id, s.epoch")
        if not rows:
            return None
        if len(rows) > 1:
            raise StoreError(f"the graph at {self.path} is marked by {len(rows)} stores")
        return rows[0][0], int(rows[0][1])

    def entities(self, scope: Scope | None) -> list[EntityRecord]:
        """Entity nodes inside a read scope (None: all scopes)."""
        where, params = _scope_where("e", scope)
        rows = self._rows(f"MATCH (e:Entity) WHERE {where} RETURN {_ENTITY_RETURN}", params)
        return [_entity(r) for r in rows]

    def entities_by_id(self, ids: Iterable[str]) -> dict[str, EntityRecord]:
        """Entity nodes by id, in one query (an UNWIND keeps the primary-key lookup)."""
        rows = self._rows(
            f"UNWIND $ids AS i MATCH (e:Entity {{id: i}}) RETURN {_ENTITY_RETURN}",
            {"ids": sorted(set(ids))},
        )
        return {entity.id: entity for entity in map(_entity, rows)}

    def edges(
        self, scope: Scope | None, *, include_invalid: bool = False, as_of: str | None = None
    ) -> list[EdgeRecord]:
        """Relation edges inside a read scope (None: all scopes): the current graph, or as
        it was at `as_of`."""
        where, params = _scope_where("r", scope)
        if as_of is not None:
            where += (" AND r.created_at <= $as_of AND (r.invalidated_at IS NULL OR "
                      "r.invalidated_at > $as_of)")
            params["as_of"] = as_of
        elif not include_invalid:
            where += " AND r.valid"
        rows = self._rows(
            f"MATCH (s:Entity)-[r:Relation]->(t:Entity) WHERE {where} RETURN {_EDGE_RETURN} "
            "ORDER BY r.created_at, r.id",
            params,
        )
        return [_edge(r) for r in rows]

    def edges_supported_by(self, scope: Scope, memory_ids: Iterable[str]) -> list[EdgeRecord]:
        """Edges (current or not) inside a scope that list any of `memory_ids` as support."""
        where, params = _scope_where("r", scope)
        rows = self._rows(
            f"UNWIND $mids AS mid MATCH (s:Entity)-[r:Relation]->(t:Entity) WHERE {where} AND "
            f"list_contains(r.memory_ids, mid) RETURN {_EDGE_RETURN}",
            {**params, "mids": sorted(set(memory_ids))},
        )
        return list({edge.id: edge for edge in map(_edge, rows)}.values())

    def degree(self, entity_ids: Iterable[str]) -> dict[str, int]:
        """Number of edges (current or not) at each entity (0 for unknown ids)."""
        ids = sorted(set(entity_ids))
        rows = self._rows(
            "UNWIND $ids AS i MATCH (e:Entity {id: i}) OPTIONAL MATCH (e)-[r:Relation]-() "
            "RETURN e.id, count(r)", {"ids": ids},
        )
        return {**dict.fromkeys(ids, 0), **{entity_id: int(n) for entity_id, n in rows}}

    def neighbourhood(self, seed_ids: Iterable[str], hops: int) -> dict[str, int]:
        """Active edges within `hops` of the seeds: edge id -> fewest hops to reach it."""
        reach: dict[str, int] = {}
        query = (
            f"MATCH (a:Entity {{id: $id}})-[r:Relation*1..{int(hops)} (e, n | WHERE e.valid)]-"
            "(b:Entity) RETURN properties(rels(r), 'id')"
        )
        for seed in set(seed_ids):
            for (path,) in self._rows(query, {"id": seed}):
                for depth, edge_id in enumerate(path, start=1):
                    if depth < reach.get(edge_id, hops + 1):
                        reach[edge_id] = depth
        return reach

    def count(self) -> tuple[int, int]:
        """(entities, edges) in the whole database."""
        nodes = self._rows("MATCH (e:Entity) RETURN count(e)")[0][0]
        edges = self._rows("MATCH ()-[r:Relation]->() RETURN count(r)")[0][0]
        return int(nodes), int(edges)

    # ------------------------------------------------------------ writes

    def apply(self, plan: WritePlan, store_id: str) -> None:
        """Apply a plan's graph part (if any) and mark the graph with the plan's epoch, in
        one transaction: every plan marks it, so the graph's epoch is the record's and a
        record that lost commits is caught at open. Idempotent."""
        def work() -> None:
            if plan.touches_graph():
                self._apply(plan)
            self._mark(store_id, plan.epoch)

        self._write(work)

    def restore(self, *, entities: list[EntityRecord], edges: list[EdgeRecord],
                drop_entity_ids: Iterable[str] = (), drop_edge_ids: Iterable[str] = (),
                store_id: str, epoch: int, everything: bool = False) -> None:
        """Make the given ids match the record, in one transaction: drop what the record
        no longer has, write what it has (`everything`: replace the whole graph)."""
        def work() -> None:
            if everything:
                self._exec("MATCH (e:Entity) DETACH DELETE e")
            for edge_id in drop_edge_ids:
                self._exec("MATCH ()-[r:Relation {id: $id}]->() DELETE r", {"id": edge_id})
            for entity_id in drop_entity_ids:
                self._exec("MATCH (e:Entity {id: $id}) DETACH DELETE e", {"id": entity_id})
            self._apply(WritePlan(op_id="restore", kind="import", entities=entities,
                                  edges=edges))
            self._mark(store_id, epoch)

        self._write(work)

    def _mark(self, store_id: str, epoch: int) -> None:
        self._exec("MATCH (s:Store) WHERE s.id <> $id DELETE s", {"id": store_id})
        self._exec("MERGE (s:Store {id: $id}) SET s.epoch = $epoch",
                   {"id": store_id, "epoch": epoch})

    def _write(self, work) -> None:
        with self._lock:
            self._check_usable()
            self._check_space()
            try:
                self._conn.execute("BEGIN TRANSACTION")
                work()
            except Exception as exc:
                if "IO exception" in str(exc):
                    self._give_up(str(exc))
                else:
                    try:
                        self._conn.execute("ROLLBACK")
                    except RuntimeError as again:
                        self._give_up(str(again))
                raise StoreError(f"graph write to {self.path} failed: {exc}") from exc
            try:
                self._conn.execute("COMMIT")
            except RuntimeError as exc:
                self._give_up(str(exc))
                raise StoreError(f"graph commit to {self.path} failed: {exc}") from exc

    def _check_space(self) -> None:
        wal = self.path.with_name(self.path.name + ".wal")
        need = MIN_FREE_BYTES + (wal.stat().st_size if wal.exists() else 0)
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return
        if free < need:
            raise StoreError(
                f"not enough free disk space for the graph at {self.path}: "
                f"{free // 1024} KiB free, {need // 1024} KiB needed; free some space and retry "
                "(nothing was changed)"
            )

    def _give_up(self, reason: str) -> None:
        """After an I/O error Kuzu's objects must never be destroyed (that aborts the
        process): keep one extra reference to each for the rest of the process."""
        if self._broken is None:
            self._broken = reason
            for obj in (self._conn, self._db):
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))

    def _apply(self, plan: WritePlan) -> None:
        run = self._exec
        if plan.delete_scope is not None:
            where, params = _scope_where("e", plan.delete_scope)
            run(f"MATCH (e:Entity) WHERE {where} DETACH DELETE e", params)
        # Many entities and edges go in as lists, one UNWIND statement per chunk: one
        # statement per row cost 1.1 ms each (1,210 statements for 1,000 synthetic
        # statements' graph: 1.33 s of a bulk add's 3.2 s); a list of 500 entities + 700
        # edges took 0.3-0.47 s against 1.4-2.3 s row by row. But an UNWIND costs 4-14 ms
        # however short its list (parsed and planned per call) where a prepared row
        # statement costs 0.4 ms: a single add's few rows go one by one. The edge
        # statement only MATCHes both ends (the nodes are merged before it): one MERGE of
        # nodes and edge together attached edges to the wrong node when re-run
        # (NOTES-engines.md); re-running these left every edge on its own ends.
        entities = [e.model_dump() for e in plan.entities]
        edges = [edge.model_dump(exclude={"source_name", "target_name", "source_type",
                                          "target_type"}) for edge in plan.edges]
        if len(entities) < _UNWIND_MIN:
            for row in entities:
                run("MERGE (e:Entity {id: $id}) SET " + _ENTITY_SET.format(x="$"), row)
        else:
            for start in range(0, len(entities), _UNWIND_ROWS):
                self._exec_list("UNWIND $rows AS x MERGE (e:Entity {id: x.id}) SET "
                                + _ENTITY_SET.format(x="x."),
                                entities[start : start + _UNWIND_ROWS])
        if len(edges) < _UNWIND_MIN:
            for row in edges:
                run("MATCH (s:Entity {id: $source_id}), (t:Entity {id: $target_id}) "
                    "MERGE (s)-[r:Relation {id: $id}]->(t) SET " + _EDGE_SET.format(x="$"),
                    row)
        else:
            for start in range(0, len(edges), _UNWIND_ROWS):
                self._exec_list("UNWIND $rows AS x MATCH (s:Entity {id: x.source_id}), "
                                "(t:Entity {id: x.target_id}) MERGE (s)-[r:Relation "
                                "{id: x.id}]->(t) SET " + _EDGE_SET.format(x="x."),
                                edges[start : start + _UNWIND_ROWS])
        for change in plan.support:
            run(
                "MATCH ()-[r:Relation {id: $edge_id}]->() SET r.memory_ids = $memory_ids",
                change.model_dump(),
            )
        for edge_id in plan.delete_edge_ids:
            run("MATCH ()-[r:Relation {id: $id}]->() DELETE r", {"id": edge_id})
        for inv in plan.invalidations:
            run(
                "MATCH ()-[r:Relation {id: $edge_id}]->() SET r.valid = false, "
                "r.invalidated_at = $at, r.superseded_by = $superseded_by, r.reason = $reason",
                inv.model_dump(),
            )
        for entity_id in plan.delete_entity_ids:
            run("MATCH (e:Entity {id: $id}) DETACH DELETE e", {"id": entity_id})

    def drop_all(self, store_id: str) -> None:
        """Delete every node and edge (for `reset`)."""
        self._write(lambda: (self._exec("MATCH (e:Entity) DETACH DELETE e"),
                             self._mark(store_id, 0)))

    def close(self) -> None:
        """Close the connection and the database (releases the file lock); a store that hit
        an I/O error is left open on purpose (see the module docstring)."""
        with self._lock:
            if self._broken is not None:
                return
            self._conn.close()
            self._db.close()


def _scope_where(var: str, scope: Scope | None) -> tuple[str, dict[str, Any]]:
    if scope is None:  # every scope (export, stats)
        return "true", {}
    ids = scope.ids()
    where = " AND ".join(f"{var}.{field} = ${field}" for field in ids if field in SCOPE_FIELDS)
    return where, dict(ids)


def _entity(row: list[Any]) -> EntityRecord:
    (id_, user_id, agent_id, run_id, name, key, type_, aliases, mentions, created_at,
     embedding) = row
    return EntityRecord(
        id=id_, user_id=user_id or "", agent_id=agent_id or "", run_id=run_id or "", name=name,
        key=key, type=type_ or "other", aliases=list(aliases or []), mentions=mentions or 0,
        created_at=created_at, embedding=embedding,
    )


def _edge(row: list[Any]) -> EdgeRecord:
    (id_, source_id, target_id, user_id, agent_id, run_id, relation, fact, valid, created_at,
     invalidated_at, superseded_by, reason, memory_ids, source_name, target_name, source_type,
     target_type) = row
    return EdgeRecord(
        id=id_, source_id=source_id, target_id=target_id, user_id=user_id or "",
        agent_id=agent_id or "", run_id=run_id or "", relation=relation, fact=fact or "",
        valid=bool(valid), created_at=created_at, invalidated_at=invalidated_at,
        superseded_by=superseded_by, reason=reason, memory_ids=list(memory_ids or []),
        source_name=source_name or "", target_name=target_name or "",
        source_type=source_type or "", target_type=target_type or "",
    )
