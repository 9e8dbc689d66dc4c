"""The memory catalog: every memory's row (text, context, hash, metadata, timestamps,
vector) in SQLite.

The catalog is the record of memories: Milvus holds a projection of its vectors and can be
rebuilt from it without embedding anything again. Exact-hash dedup, `get`, `get_all` and
`history` are primary-key or index lookups here (Milvus query-by-filter costs ~0.6 s at
100k rows), and the catalog is committed last when a plan is applied, so it is what makes a
memory visible: a vector or an edge whose memory is not in the catalog yet is never shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from hybridmem.records import MemoryRecord, MemoryText, Supersession, metadata_json
from hybridmem.scope import SCOPE_FIELDS, Scope
from hybridmem.stores.sqlite import Database

_COLUMNS = (
    "id, user_id, agent_id, run_id, text, hash, metadata, role, actor_id, created_at, "
    "updated_at, superseded_at, superseded_by, inferred, context"
)


class MemoryCatalog:
    """Memory rows, exact-hash lookups and BM25 over memory text."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ---------------------------------------------------------------- writes

    def upsert(self, records: list[MemoryRecord], vectors: np.ndarray, epoch: int
               ) -> dict[str, MemoryText]:
        """Insert or replace rows with their vectors, written to Milvus at `epoch` (inside
        the caller's transaction when there is one). Returns the other memories whose
        context now quotes a changed text (see `_restate`)."""
        rows = [
            (r.id, r.user_id, r.agent_id, r.run_id, r.text, r.hash,
             metadata_json(r.metadata), r.role, r.actor_id, r.created_at,
             r.updated_at, r.superseded_at, r.superseded_by, int(r.inferred), r.context,
             np.asarray(v, dtype="<f4").tobytes(), epoch)
            for r, v in zip(records, vectors, strict=True)
        ]
        restated: dict[str, MemoryText] = {}
        with self._db.transaction() as conn:
            before = self._texts([r.id for r in records])  # one read for the batch
            for record in records:
                old = before.get(record.id)
                if old is not None and old[0] != record.text:
                    restated.update(self._restate(conn, old, record.text))
            conn.executemany(
                f"INSERT INTO memories ({_COLUMNS}, vector, vepoch) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET text = excluded.text, hash = excluded.hash, "
                "metadata = excluded.metadata, updated_at = excluded.updated_at, "
                "superseded_at = excluded.superseded_at, superseded_by = excluded.superseded_by, "
                "vector = excluded.vector, vepoch = excluded.vepoch",
                rows,
            )
            conn.executemany("DELETE FROM tombstones WHERE id = ?", [(r.id,) for r in records])
        return restated

    def delete(self, ids: Iterable[str], epoch: int) -> dict[str, MemoryText]:
        """Delete rows by id; their Milvus deletion is owed until a flush at >= `epoch`.
        Returns the other memories whose context quoted a deleted text (see `_restate`)."""
        rows = [(i,) for i in ids]
        restated: dict[str, MemoryText] = {}
        with self._db.transaction() as conn:
            gone = self._texts([i for (i,) in rows])
            conn.executemany("DELETE FROM memories WHERE id = ?", rows)
            # after the delete: a delete_all leaves no context to scan, not one scan per row
            for old in gone.values():
                restated.update(self._restate(conn, old, None))
            conn.executemany(
                "INSERT INTO tombstones (id, epoch) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch",
                [(i, epoch) for (i,) in rows],
            )
        return restated

    def _texts(self, ids: list[str]) -> dict[str, tuple[str, str, str, str]]:
        """id -> (text, user_id, agent_id, run_id) of existing rows."""
        return {r["id"]: (r["text"], r["user_id"], r["agent_id"], r["run_id"])
                for r in self._rows_by_id("id, text, user_id, agent_id, run_id", ids)}

    @staticmethod
    def _restate(conn, old: tuple[str, str, str, str], new_text: str | None
                 ) -> dict[str, MemoryText]:
        """A memory's text changed (or it was deleted, `new_text` None): the contexts that
        quote it say the new text (or no longer say it), so deleted words stay deleted.
        Returns the memories whose context changed, as they now read."""
        text, *scope = old
        line = _context_line(text)
        # An empty id ("no agent") matches most rows: its column is kept off the index
        # (a unary +), or SQLite walked memories_agent over every row of the store per
        # deleted memory (one user's delete_all in a 1M-memory store: 577 s).
        where = " AND ".join(f"{'+' if value == '' else ''}{column} = ?"
                             for column, value in zip(SCOPE_FIELDS, scope, strict=True))
        rows = conn.execute(
            f"SELECT id, text, context, created_at FROM memories WHERE {where} AND "
            "instr(context, ?) > 0", (*scope, line)).fetchall()
        restated = {}
        for row in rows:
            lines = row["context"].split(_CONTEXT_SEPARATOR)
            if line not in lines:
                continue  # the words only appear inside another memory's text
            kept = [(new_text if item == line else item) for item in lines]
            context = context_of([t for t in kept if t is not None])
            conn.execute("UPDATE memories SET context = ? WHERE id = ?", (context, row["id"]))
            restated[row["id"]] = MemoryText(row["id"], row["text"], context_lines(context),
                                             row["created_at"])
        return restated

    # ---------------------------------------------------------------- projection

    def vectors(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors by memory id (missing ids are left out)."""
        return {r["id"]: np.frombuffer(r["vector"], dtype="<f4")
                for r in self._rows_by_id("id, vector", ids)}

    def rows_with_vectors(self, *, ids: Iterable[str] | None = None, after_epoch: int | None
                          = None, batch: int = 1000
                          ) -> Iterator[tuple[list[MemoryRecord], np.ndarray]]:
        """Rows and their vectors in batches: by id, written after an epoch, or all."""
        if ids is not None:
            wanted = list(dict.fromkeys(ids))
            for start in range(0, len(wanted), batch):
                chunk = wanted[start : start + batch]
                marks = ",".join("?" * len(chunk))
                yield from _batches(self._db.read(
                    f"SELECT {_COLUMNS}, vector FROM memories WHERE id IN ({marks})", chunk
                ), batch)
            return
        last = 0
        while True:
            where = "rowid > ?" + (" AND vepoch > ?" if after_epoch is not None else "")
            params: list = [last] + ([after_epoch] if after_epoch is not None else [])
            rows = self._db.read(
                f"SELECT rowid, {_COLUMNS}, vector FROM memories WHERE {where} "
                "ORDER BY rowid LIMIT ?", [*params, batch],
            )
            if not rows:
                return
            last = rows[-1]["rowid"]
            yield from _batches(rows, batch)

    def scope_vectors(self, scope: Scope, spare: float = 0.0
                      ) -> tuple[list[str], np.ndarray, list[str], list[tuple[str, str, str]]]:
        """Every memory of a read scope as (ids, vector matrix, metadata as stored JSON,
        own scope ids), read in one pass without building records (it feeds the
        in-process index). The matrix has a row per memory, then `spare` times as many
        zero rows again (room for the adds that follow, so the first of them does not
        copy the whole matrix to grow it).

        The vectors are copied chunk by chunk into the matrix, allocated once: joining
        every row's bytes first and converting them held three copies of the vectors at
        once (rows, joined bytes, float32 matrix), which stayed in the process's RSS.
        """
        where, params = _scope_where(scope)
        with self._db.lock, self._db.guard("read"):
            n = self._db.conn.execute(
                f"SELECT count(*) FROM memories WHERE {where}", params).fetchone()[0]
            cursor = self._db.conn.execute(
                f"SELECT id, vector, metadata, user_id, agent_id, run_id FROM memories "
                f"WHERE {where}", params)
            ids: list[str] = []
            metadata: list[str] = []
            exact: list[tuple[str, str, str]] = []
            matrix: np.ndarray | None = None
            while chunk := cursor.fetchmany(4096):
                if matrix is None:
                    dims = len(chunk[0]["vector"]) // 4
                    matrix = np.zeros((n + int(n * spare), dims), np.float32)
                start = len(ids)
                if start + len(chunk) > len(matrix):  # rows added since the count
                    grown = np.zeros((start + len(chunk), matrix.shape[1]), np.float32)
                    grown[:start] = matrix[:start]
                    matrix = grown
                matrix[start : start + len(chunk)] = np.frombuffer(
                    b"".join(r["vector"] for r in chunk), dtype="<f4").reshape(len(chunk), -1)
                for r in chunk:
                    ids.append(r["id"])
                    metadata.append(r["metadata"])
                    exact.append((r["user_id"], r["agent_id"], r["run_id"]))
        if matrix is None:
            return [], np.zeros(0, np.float32), [], []
        if spare == 0.0 and len(matrix) != len(ids):
            matrix = matrix[: len(ids)]
        return ids, matrix, metadata, exact

    def scope_texts(self, scope: Scope) -> list[MemoryText]:
        """Every current memory of a read scope with its context, oldest first (it feeds
        the in-process lexical index)."""
        where, params = _scope_where(scope)
        rows = self._db.read(
            f"SELECT id, text, context, created_at FROM memories WHERE {where} AND "
            "superseded_at IS NULL ORDER BY rowid", params)
        return [MemoryText(r["id"], r["text"], context_lines(r["context"]), r["created_at"])
                for r in rows]

    def tombstones(self) -> list[str]:
        """Ids deleted from the record whose Milvus deletion is not known durable."""
        return [r["id"] for r in self._db.read("SELECT id FROM tombstones")]

    def flushed(self, epoch: int) -> None:
        """Milvus made everything up to `epoch` durable: its owed deletions are paid."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM tombstones WHERE epoch <= ?", (epoch,))

    def all_ids(self) -> set[str]:
        """Every memory id in the record."""
        return {r["id"] for r in self._db.read("SELECT id FROM memories")}

    def supersede(self, changes: Iterable[Supersession]) -> None:
        """Mark memories as no longer current."""
        with self._db.transaction() as conn:
            conn.executemany(
                "UPDATE memories SET superseded_at = ?, superseded_by = ? WHERE id = ?",
                [(c.at, c.superseded_by, c.memory_id) for c in changes],
            )

    # ---------------------------------------------------------------- reads

    def get(self, memory_id: str) -> MemoryRecord | None:
        """One row by id."""
        rows = self._db.read(f"SELECT {_COLUMNS} FROM memories WHERE id = ?", (memory_id,))
        return _record(rows[0]) if rows else None

    def by_ids(self, ids: Iterable[str]) -> dict[str, MemoryRecord]:
        """Rows by id (missing ids are left out)."""
        return {r["id"]: _record(r) for r in self._rows_by_id(_COLUMNS, ids)}

    def current(self, ids: Iterable[str]) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
        """The current (not superseded) rows among `ids`: id -> (its scope ids, its
        metadata), what a search checks before it shows a memory, without building records."""
        return {r["id"]: ({"user_id": r["user_id"], "agent_id": r["agent_id"],
                           "run_id": r["run_id"]}, json.loads(r["metadata"]))
                for r in self._rows_by_id("id, user_id, agent_id, run_id, metadata", ids,
                                          current_only=True)}

    def partly_ended(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` that supported a relation since ended (an INVALIDATE row in
        their history): memories that still hold, in part, but also say what no longer
        does ("My brother Oskar plays the cello" once he took up the drums)."""
        wanted = list(dict.fromkeys(ids))
        out: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(r["memory_id"] for r in self._db.read(
                f"SELECT DISTINCT memory_id FROM history WHERE memory_id IN ({marks}) "
                "AND event = 'INVALIDATE'", chunk))
        return out

    def _rows_by_id(self, columns: str, ids: Iterable[str], *, current_only: bool = False
                    ) -> Iterator[Any]:
        """`columns` of the rows with these ids (each id once), 500 ids per query."""
        wanted = list(dict.fromkeys(ids))
        current = " AND superseded_at IS NULL" if current_only else ""
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self._db.read(
                f"SELECT {columns} FROM memories WHERE id IN ({marks}){current}", chunk)

    def ids_by_hash(self, scope: Scope, hashes: Iterable[str]) -> dict[str, str]:
        """hash -> id of current memories with exactly this scope."""
        row = scope.as_row()
        wanted = list(set(hashes))
        out: dict[str, str] = {}
        for start in range(0, len(wanted), 500):  # one query per 500 hashes, not per hash
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for found in self._db.read(
                f"SELECT hash, min(id) AS id FROM memories WHERE hash IN ({marks}) "
                "AND user_id = ? AND agent_id = ? AND run_id = ? AND superseded_at IS NULL "
                "GROUP BY hash",
                [*chunk, row["user_id"], row["agent_id"], row["run_id"]],
            ):
                out[found["hash"]] = found["id"]
        return out

    def list(
        self,
        scope: Scope | None,
        *,
        include_superseded: bool = False,
        as_of: str | None = None,
        limit: int | None = None,
    ) -> list[MemoryRecord]:
        """Rows inside a read scope (None: all scopes), newest first."""
        where, params = _scope_where(scope)
        if as_of is not None:
            where += " AND created_at <= ? AND (superseded_at IS NULL OR superseded_at > ?)"
            params += [as_of, as_of]
        elif not include_superseded:
            where += " AND superseded_at IS NULL"
        sql = f"SELECT {_COLUMNS} FROM memories WHERE {where} ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_record(r) for r in self._db.read(sql, params)]

    def ids_in_scope(self, scope: Scope) -> list[str]:
        """Ids of every row (current or not) inside a read scope."""
        where, params = _scope_where(scope)
        return [r["id"] for r in self._db.read(f"SELECT id FROM memories WHERE {where}", params)]

    def count(self, scope: Scope | None = None) -> int:
        """Number of rows (inside a scope, or in all)."""
        if scope is None:
            return self._db.read("SELECT count(*) AS n FROM memories")[0]["n"]
        where, params = _scope_where(scope)
        return self._db.read(f"SELECT count(*) AS n FROM memories WHERE {where}", params)[0]["n"]

    def latest_texts(self, scope: Scope, n: int) -> list[str]:
        """The texts of the last `n` memories written in exactly this scope, oldest first."""
        if n <= 0:
            return []
        row = scope.as_row()
        rows = self._db.read(
            "SELECT text FROM memories WHERE user_id = ? AND agent_id = ? AND run_id = ? "
            "ORDER BY rowid DESC LIMIT ?", (row["user_id"], row["agent_id"], row["run_id"], n))
        return [r["text"] for r in reversed(rows)]


# Between the texts of a context: a character no text keeps (it is turned into a space),
# so one text is one item, and the tokenizer reads it as a word break.
_CONTEXT_SEPARATOR = "\x1f"


def _context_line(text: str) -> str:
    return text.replace(_CONTEXT_SEPARATOR, " ")


def context_of(texts: list[str]) -> str:
    """The context a memory stores: the texts of the memories before it, oldest first."""
    return _CONTEXT_SEPARATOR.join(_context_line(t) for t in texts)


def context_lines(context: str) -> tuple[str, ...]:
    """The texts a stored context quotes, oldest first."""
    return tuple(line for line in context.split(_CONTEXT_SEPARATOR) if line)


def _scope_where(scope: Scope | None) -> tuple[str, list[str]]:
    if scope is None:  # every scope (export)
        return "1", []
    ids = scope.ids()
    # Column names come from SCOPE_FIELDS only; values are parameters.
    return " AND ".join(f"{k} = ?" for k in ids if k in SCOPE_FIELDS), list(ids.values())


def _batches(rows, size: int) -> Iterator[tuple[list[MemoryRecord], np.ndarray]]:
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        yield ([_record(r) for r in chunk],
               np.vstack([np.frombuffer(r["vector"], dtype="<f4") for r in chunk]))


def _record(row) -> MemoryRecord:
    return MemoryRecord(
        id=row["id"], user_id=row["user_id"], agent_id=row["agent_id"], run_id=row["run_id"],
        text=row["text"], hash=row["hash"], metadata=json.loads(row["metadata"]),
        role=row["role"], actor_id=row["actor_id"], created_at=row["created_at"],
        updated_at=row["updated_at"], superseded_at=row["superseded_at"],
        superseded_by=row["superseded_by"], inferred=bool(row["inferred"]),
        context=row["context"],
    )
