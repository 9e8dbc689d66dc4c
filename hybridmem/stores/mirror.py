"""The graph as the record keeps it: every entity and edge Kuzu must hold, in SQLite.

A plan's graph part is applied here in the same SQLite transaction that makes its memories
visible, so the mirror is always what Kuzu should contain; `stores/projection.py` compares
the two and rebuilds Kuzu from the mirror when they differ.
"""

from __future__ import annotations

from collections.abc import Iterable

from hybridmem.records import EdgeRecord, EntityRecord, WritePlan
from hybridmem.scope import SCOPE_FIELDS, Scope
from hybridmem.stores.sqlite import Database

# Names of an edge's ends are filled on reads from Kuzu; the mirror stores the edge only.
_EDGE_READ_ONLY = {"source_name", "target_name", "source_type", "target_type"}


class GraphMirror:
    """Entities and edges (current and ended) in the record."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def apply(self, plan: WritePlan) -> None:
        """Apply a plan's graph part (inside the caller's transaction when there is one)."""
        if not plan.touches_graph():
            return
        with self._db.transaction() as conn:
            if plan.delete_scope is not None:
                where, params = _scope_where(plan.delete_scope)
                conn.execute(f"DELETE FROM edges WHERE {where}", params)
                conn.execute(f"DELETE FROM entities WHERE {where}", params)
            self._put_entities(conn, plan.entities)
            self._put_edges(conn, plan.edges)
            changed = {c.edge_id: c for c in plan.support}
            ended = {i.edge_id: i for i in plan.invalidations}
            if changed or ended:
                current = self.edges_by_id([*changed, *ended])
                for edge_id, edge in current.items():
                    update: dict = {}
                    if edge_id in changed:
                        update["memory_ids"] = changed[edge_id].memory_ids
                    if edge_id in ended:
                        inv = ended[edge_id]
                        update.update(valid=False, invalidated_at=inv.at,
                                      superseded_by=inv.superseded_by, reason=inv.reason)
                    current[edge_id] = edge.model_copy(update=update)
                self._put_edges(conn, list(current.values()))
            conn.executemany("DELETE FROM edges WHERE id = ?",
                             [(i,) for i in plan.delete_edge_ids])
            gone = [(i,) for i in plan.delete_entity_ids]
            conn.executemany("DELETE FROM edges WHERE source_id = ? OR target_id = ?",
                             [(i, i) for (i,) in gone])
            conn.executemany("DELETE FROM entities WHERE id = ?", gone)

    def put(self, entities: list[EntityRecord], edges: list[EdgeRecord]) -> None:
        """Insert or replace rows as they are (used when the record is rebuilt)."""
        with self._db.transaction() as conn:
            self._put_entities(conn, entities)
            self._put_edges(conn, edges)

    def remove(self, entity_ids: Iterable[str], edge_ids: Iterable[str]) -> None:
        """Delete rows by id (used when the record is rebuilt from a graph ahead of it)."""
        with self._db.transaction() as conn:
            conn.executemany("DELETE FROM edges WHERE id = ?", [(i,) for i in edge_ids])
            conn.executemany("DELETE FROM entities WHERE id = ?", [(i,) for i in entity_ids])

    @staticmethod
    def _put_entities(conn, entities: list[EntityRecord]) -> None:
        conn.executemany(
            "INSERT INTO entities (id, user_id, agent_id, run_id, body) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            [(e.id, e.user_id, e.agent_id, e.run_id, e.model_dump_json()) for e in entities],
        )

    @staticmethod
    def _put_edges(conn, edges: list[EdgeRecord]) -> None:
        conn.executemany(
            "INSERT INTO edges (id, user_id, agent_id, run_id, source_id, target_id, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            [(e.id, e.user_id, e.agent_id, e.run_id, e.source_id, e.target_id,
              e.model_dump_json(exclude=_EDGE_READ_ONLY)) for e in edges],
        )

    # ---------------------------------------------------------------- reads

    def entities(self, scope: Scope | None = None) -> list[EntityRecord]:
        """Entities inside a read scope (None: all)."""
        where, params = _scope_where(scope)
        return [EntityRecord.model_validate_json(r["body"])
                for r in self._db.read(f"SELECT body FROM entities WHERE {where}", params)]

    def edges(self, scope: Scope | None = None) -> list[EdgeRecord]:
        """Edges (current and ended) inside a read scope (None: all)."""
        where, params = _scope_where(scope)
        return [EdgeRecord.model_validate_json(r["body"])
                for r in self._db.read(f"SELECT body FROM edges WHERE {where}", params)]

    def entities_by_id(self, ids: Iterable[str]) -> dict[str, EntityRecord]:
        """Entities by id (missing ids are left out)."""
        return {e.id: e for e in self._by_ids("entities", ids, EntityRecord)}

    def edges_by_id(self, ids: Iterable[str]) -> dict[str, EdgeRecord]:
        """Edges by id (missing ids are left out)."""
        return {e.id: e for e in self._by_ids("edges", ids, EdgeRecord)}

    def edges_touching(self, entity_ids: Iterable[str]) -> list[EdgeRecord]:
        """Edges with an end among `entity_ids`."""
        ids = list(dict.fromkeys(entity_ids))
        out: dict[str, EdgeRecord] = {}
        for start in range(0, len(ids), 400):
            chunk = ids[start : start + 400]
            marks = ",".join("?" * len(chunk))
            for row in self._db.read(
                f"SELECT body FROM edges WHERE source_id IN ({marks}) OR target_id IN ({marks})",
                [*chunk, *chunk],
            ):
                edge = EdgeRecord.model_validate_json(row["body"])
                out[edge.id] = edge
        return list(out.values())

    def count(self) -> tuple[int, int]:
        """(entities, edges) in the record."""
        row = self._db.read("SELECT (SELECT count(*) FROM entities) AS n, "
                            "(SELECT count(*) FROM edges) AS m")[0]
        return int(row["n"]), int(row["m"])

    def _by_ids(self, table: str, ids: Iterable[str], model):
        ids = list(dict.fromkeys(ids))
        out = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out += [model.model_validate_json(r["body"]) for r in self._db.read(
                f"SELECT body FROM {table} WHERE id IN ({marks})", chunk)]
        return out


def _scope_where(scope: Scope | None) -> tuple[str, list[str]]:
    if scope is None:
        return "1", []
    ids = scope.ids()
    # Column names come from SCOPE_FIELDS only; values are parameters.
    return " AND ".join(f"{k} = ?" for k in ids if k in SCOPE_FIELDS), list(ids.values())
