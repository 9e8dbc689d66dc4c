"""The SQLite file beside the engines: journal, history, and the memory catalog.

One connection, WAL mode, `synchronous=FULL` (an acknowledged write survives a crash), and
one re-entrant lock so the journal and the catalog can share a transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS ops (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT UNIQUE NOT NULL,
    kind       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    plan       TEXT,
    status     TEXT NOT NULL CHECK (status IN ('received', 'planned', 'done')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ops_status ON ops (status);

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
    scope_tokens  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_user ON memories (user_id);
CREATE INDEX IF NOT EXISTS memories_agent ON memories (agent_id);
CREATE INDEX IF NOT EXISTS memories_run ON memories (run_id);
CREATE INDEX IF NOT EXISTS memories_hash ON memories (hash, user_id, agent_id, run_id);

CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    text, scope_tokens, content='memories', content_rowid='rowid',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text, scope_tokens)
    VALUES (new.rowid, new.text, new.scope_tokens);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, scope_tokens)
    VALUES ('delete', old.rowid, old.text, old.scope_tokens);
END;
CREATE TRIGGER IF NOT EXISTS memories_au AFTER UPDATE OF text, scope_tokens ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, scope_tokens)
    VALUES ('delete', old.rowid, old.text, old.scope_tokens);
    INSERT INTO memories_fts (rowid, text, scope_tokens)
    VALUES (new.rowid, new.text, new.scope_tokens);
END;

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
    """A SQLite connection shared by the journal and the catalog."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        self._depth = 0
        with self.lock:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(_SCHEMA)
            self.conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

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
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def read(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        """Run a read query under the lock."""
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()
