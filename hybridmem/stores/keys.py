"""The server's API keys, kept in the store's record as hashes only.

A key is `hm_<id>_<secret>`. The record keeps the id, the SHA-256 of the secret and what
the key may do: act in one user's (or agent's) scope, or anything (admin). The secret is
shown once, when the key is made, and never stored.

`KeyRing` has its own SQLite connection to the record, so `hybridmem keys …` works on a
store a running server holds (SQLite serialises the two writers; the server reads a key's
row on every request, so a revocation takes effect on the next one).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from hybridmem.errors import InvalidInputError, NotFoundError, StoreError
from hybridmem.records import now_iso
from hybridmem.scope import Scope

_KEY_FORMAT = re.compile(r"hm_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")
MAX_NOTE_CHARS = 200


@dataclass(frozen=True)
class KeyInfo:
    """What one key may do (never its secret)."""

    id: str
    user_id: str | None
    agent_id: str | None
    admin: bool
    note: str
    created_at: str
    revoked_at: str | None = None

    @property
    def bound(self) -> dict[str, str]:
        """The scope ids the key is bound to ({} for an admin key)."""
        return {k: v for k, v in (("user_id", self.user_id), ("agent_id", self.agent_id)) if v}

    def describe(self) -> str:
        """For listings: "admin", "user_id=alice" …"""
        return "admin" if self.admin else ", ".join(f"{k}={v}" for k, v in self.bound.items())


class KeyRing:
    """Make, list, revoke and verify the keys of one store."""

    def __init__(self, catalog: Path) -> None:
        self.path = catalog
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(str(catalog), isolation_level=None,
                                         check_same_thread=False, timeout=30.0)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("SELECT 1 FROM api_keys LIMIT 1")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the keys in the catalog {catalog}: {exc}") from exc

    def create(self, *, user_id: str | None = None, agent_id: str | None = None,
               admin: bool = False, note: str = "") -> tuple[KeyInfo, str]:
        """Make a key; returns its record and the key itself (shown once, never kept).

        Raises:
            InvalidInputError: neither a scope nor admin, both, or a note too long.
        """
        if admin == bool(user_id or agent_id):
            raise InvalidInputError("a key is either bound to --user/--agent or --admin")
        if not admin:
            Scope.of(user_id, agent_id)  # the same rules as every scope id
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise InvalidInputError(f"the note must be text of at most {MAX_NOTE_CHARS} chars")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        info = KeyInfo(id=key_id, user_id=user_id or None, agent_id=agent_id or None,
                       admin=admin, note=note, created_at=now_iso())
        self._write(
            "INSERT INTO api_keys (id, secret_sha, user_id, agent_id, admin, note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key_id, _digest(secret), user_id or "", agent_id or "", int(admin), note,
             info.created_at))
        return info, f"hm_{key_id}_{secret}"

    def list(self, *, include_revoked: bool = False) -> list[KeyInfo]:
        """Every key, oldest first (revoked ones only when asked)."""
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        return [_info(r) for r in self._read(f"SELECT * FROM api_keys{where} ORDER BY "
                                             "created_at, id", ())]

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key by its id; the next request with it is refused.

        Raises:
            NotFoundError: no live key has that id.
        """
        rows = self._read("SELECT * FROM api_keys WHERE id = ? AND revoked_at IS NULL",
                          (key_id,))
        if not rows:
            raise NotFoundError(f"no live key with id {key_id!r} (`hybridmem keys list`)")
        self._write("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now_iso(), key_id))
        return _info(rows[0])

    def verify(self, key: str) -> KeyInfo | None:
        """The live key this string is, or None. The secret's hash is compared in constant
        time, and a malformed or unknown key costs the same comparison."""
        match = _KEY_FORMAT.fullmatch(key) if isinstance(key, str) else None
        key_id, secret = match.groups() if match else ("", key if isinstance(key, str) else "")
        rows = self._read("SELECT * FROM api_keys WHERE id = ? AND revoked_at IS NULL",
                          (key_id,)) if match else []
        expected = rows[0]["secret_sha"] if rows else _digest("no such key")
        same = hmac.compare_digest(_digest(secret), expected)
        return _info(rows[0]) if rows and same else None

    def count(self) -> int:
        """Live keys."""
        return int(self._read("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL",
                              ())[0][0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def _read(self, sql: str, params: tuple) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"the keys in the catalog {self.path} failed: {exc}") from exc

    def _write(self, sql: str, params: tuple) -> None:
        with self._lock:
            try:
                self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(f"the keys in the catalog {self.path} failed: {exc}") from exc


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _info(row: sqlite3.Row) -> KeyInfo:
    return KeyInfo(id=row["id"], user_id=row["user_id"] or None,
                   agent_id=row["agent_id"] or None, admin=bool(row["admin"]),
                   note=row["note"], created_at=row["created_at"],
                   revoked_at=row["revoked_at"])
