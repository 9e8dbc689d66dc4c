"""The SQLite file that is the store's record: memories (with their vectors), the graph
mirror, history, the journal of operations, and the store's identity and epochs.

Milvus and Kuzu are projections of this file (see `stores/projection.py`). One
connection, WAL mode, `synchronous=FULL` (an acknowledged write survives a crash), and one
re-entrant lock so the journal, the catalog and the mirror share a transaction. Every
SQLite failure leaves as a `StoreError` that names the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hybridmem.errors import StoreError

SCHEMA_VERSION = 5

# Version 3 kept an FTS5 index over memory text; version 4 drops it (BM25 runs on
# in-process postings, read/lexical_index.py); version 5 adds the server's keys and each
# operation's idempotency key. What an upgrade from 2 or 3 removes:
_FTS_OBJECTS = [("TRIGGER", "memories_ai"), ("TRIGGER", "memories_ad"),
                ("TRIGGER", "memories_au"), ("TABLE", "memories_fts")]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- idem_key (version 5): a caller's idempotency key, one operation per (scope, key); a
-- repeat with the same input (idem_input, its digest) gets `result`, the first answer.
CREATE TABLE IF NOT EXISTS ops (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT UNIQUE NOT NULL,
    kind       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    plan       TEXT,
    status     TEXT NOT NULL
               CHECK (status IN ('received', 'planned', 'done', 'failed', 'quarantined')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    idem_key   TEXT,
    idem_input TEXT,
    result     TEXT
);
CREATE INDEX IF NOT EXISTS ops_status ON ops (status);
CREATE UNIQUE INDEX IF NOT EXISTS ops_idem ON ops (scope, idem_key) WHERE idem_key IS NOT NULL;

-- The server's API keys (version 5): only a hash of each secret is kept.
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    secret_sha TEXT NOT NULL,
    user_id    TEXT NOT NULL DEFAULT '',
    agent_id   TEXT NOT NULL DEFAULT '',
    admin      INTEGER NOT NULL DEFAULT 0,
    note       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE IF NOT EXISTS memories (
    rowid         INTEGER PRIMARY KEY,
    id            TEXT UNIQUE NOT NULL,
    user_id       TEXT NOT NULL,
    agent_id      TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    text          TEXT NOT NULL,
    hash          TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    role          TEXT,
    actor_id      TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT,
    superseded_at TEXT,
    superseded_by TEXT,
    inferred      INTEGER NOT NULL DEFAULT 0,
    -- words of the memories stored just before this one in its scope: found by the
    -- lexical signal, never shown or embedded (version 3)
    context       TEXT NOT NULL DEFAULT '',
    vector        BLOB NOT NULL,
    -- the epoch of the operation that last wrote this row's vector to Milvus
    vepoch        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_user ON memories (user_id);
CREATE INDEX IF NOT EXISTS memories_agent ON memories (agent_id);
CREATE INDEX IF NOT EXISTS memories_run ON memories (run_id);
CREATE INDEX IF NOT EXISTS memories_hash ON memories (hash, user_id, agent_id, run_id);
CREATE INDEX IF NOT EXISTS memories_vepoch ON memories (vepoch);

-- Memories deleted from the record whose deletion Milvus has not yet made durable.
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, epoch INTEGER NOT NULL);

-- The graph as Kuzu must hold it (Kuzu is rebuilt from these two tables when it diverges).
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entities_user ON entities (user_id);
CREATE TABLE IF NOT EXISTS edges (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL,
    source_id TEXT NOT NULL, target_id TEXT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS edges_user ON edges (user_id);
CREATE INDEX IF NOT EXISTS edges_ends ON edges (source_id, target_id);

CREATE TABLE IF NOT EXISTS history (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT UNIQUE NOT NULL,
    memory_id  TEXT NOT NULL,
    event      TEXT NOT NULL,
    old_memory TEXT,
    new_memory TEXT,
    detail     TEXT,
    user_id    TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    actor_id   TEXT,
    role       TEXT,
    op_id      TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_memory ON history (memory_id);
CREATE INDEX IF NOT EXISTS history_user ON history (user_id);
"""


class Database:
    """The record's SQLite connection, shared by the journal, the catalog and the mirror."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._depth = 0
        self.created = not path.exists() or path.stat().st_size == 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the catalog {path}: {exc}") from exc
        self.conn.row_factory = sqlite3.Row
        with self.guard("open"):
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            version = self._version()
            if version in (2, 3, 4):
                self._upgrade(version)
                version = SCHEMA_VERSION
            if version not in (None, SCHEMA_VERSION):
                raise StoreError(
                    f"the catalog {path} has schema version {version}; this hybridmem reads "
                    f"version {SCHEMA_VERSION}. Export it with the hybridmem that wrote it "
                    "and import it into a new store"
                )
            self.conn.executescript(_SCHEMA)
            self.conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _upgrade(self, version: int) -> None:
        """Version 2, 3 or 4 -> 5. To 4: memories get a `context` column (version 3 added
        it) and the FTS5 index goes, with the column of scope tokens only it read. To 5:
        operations get their idempotency columns (the keys table is made by the schema).
        One transaction: a crash leaves the old version whole, and the next open upgrades
        it."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version == 2:
                conn.execute("ALTER TABLE memories ADD COLUMN context TEXT NOT NULL DEFAULT ''")
            if version in (2, 3):
                for kind, name in _FTS_OBJECTS:
                    conn.execute(f"DROP {kind} IF EXISTS {name}")
                conn.execute("ALTER TABLE memories DROP COLUMN scope_tokens")
            columns = {r[1] for r in conn.execute("PRAGMA table_info(ops)")}
            for column in ("idem_key", "idem_input", "result"):
                if column not in columns:
                    conn.execute(f"ALTER TABLE ops ADD COLUMN {column} TEXT")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                         (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _version(self) -> int | None:
        has_meta = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn a SQLite failure into a `StoreError` naming the file (and what was done)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(_describe(exc, self.path, what)) from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested uses join the outer one."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            with self.guard("write"):
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException as exc:
                self._depth = 0
                with suppress(sqlite3.Error):  # SQLite may have rolled back (SQLITE_FULL)
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(_describe(exc, self.path, "write")) from exc
                raise
            else:
                self._depth = 0
                with self.guard("commit"):
                    try:
                        self.conn.execute("COMMIT")
                    except sqlite3.Error:
                        with suppress(sqlite3.Error):
                            self.conn.execute("ROLLBACK")
                        raise

    def damage(self) -> list[str]:
        """Every page checked and every row decoded once (a full read, for repair): what is
        damaged, or [] when the file reads whole. A scribble inside a row's text passes
        SQLite's page checks and fails only when that row is decoded, so both are done."""
        with self.lock, self.guard("integrity check"):
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                return problems[:3]
            tables = [r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            try:
                with self.lock:
                    for _ in self.conn.execute(f"SELECT * FROM {quoted}"):
                        pass
            except sqlite3.Error as exc:
                return [f"table {table}: {exc}"]
        return []

    def read(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        """Run a read query under the lock."""
        with self.lock, self.guard("read"):
            return self.conn.execute(sql, params).fetchall()

    def get_meta(self, key: str) -> str | None:
        """One value of the meta table."""
        rows = self.read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, values: dict[str, Any]) -> None:
        """Set meta values (inside the caller's transaction when there is one)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(k, str(v)) for k, v in values.items()],
            )

    def delete_meta(self, *keys: str) -> None:
        """Remove meta values (inside the caller's transaction when there is one)."""
        with self.transaction() as conn:
            conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in keys])

    def holds_nothing(self) -> bool:
        """Whether no memory, graph row, operation or epoch was ever written here."""
        rows = self.read(
            "SELECT EXISTS (SELECT 1 FROM memories) OR EXISTS (SELECT 1 FROM entities) "
            "OR EXISTS (SELECT 1 FROM ops) OR EXISTS (SELECT 1 FROM meta WHERE key = 'epoch') "
            "AS used")
        return not rows[0]["used"]

    def close(self) -> None:
        """Checkpoint the WAL into the main file (a clean close leaves no -wal behind),
        then close."""
        with self.lock:
            with suppress(sqlite3.Error):  # the WAL stays; SQLite replays it on open
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()


def read_meta(path: Path, key: str) -> str | None:
    """One meta value of a record, read without changing the file (None when the file
    cannot be read as a record)."""
    try:
        conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _describe(exc: sqlite3.Error, path: Path, what: str) -> str:
    message = str(exc)
    if "full" in message:
        hint = "free disk space, then retry (nothing was changed)"
    elif any(sign in message for sign in ("malformed", "not a database", "corrupt",
                                          "Could not decode")):
        hint = ("the file is damaged: restore it from a backup, or run `hybridmem repair` "
                "to rebuild it from Milvus and Kuzu")
    elif "readonly" in message or "unable to open" in message or "permission" in message:
        hint = "check the file's and its folder's permissions"
    else:
        hint = "see the SQLite message"
    return f"the catalog {path} failed ({what}): {message}; {hint}"
