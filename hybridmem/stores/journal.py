"""The write-ahead journal of operations, and the history rows.

Every add/update/delete is written here (status `received`) before any engine is touched.
Once its `WritePlan` is decided it is stored (`planned`); the plan is applied to Milvus and
Kuzu, then the catalog rows, the history rows and `done` commit in one SQLite transaction.
On open, `planned` operations are applied again and `received` ones are planned again.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from hybridmem._failpoints import checkpoint
from hybridmem.records import HistoryEntry, WritePlan, now_iso
from hybridmem.stores.sqlite import Database


@dataclass(frozen=True)
class PendingOp:
    """A journaled operation that has not finished."""

    id: str
    kind: str
    scope: dict[str, str]
    payload: dict[str, Any]
    plan: WritePlan | None
    attempts: int
    error: str | None


class Journal:
    """Operations and history in the shared SQLite database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(self, kind: str, scope: dict[str, str], payload: dict[str, Any]) -> str:
        """Durably record an operation's input; returns its id."""
        op_id = uuid.uuid4().hex
        now = now_iso()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO ops (id, kind, scope, payload, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'received', ?, ?)",
                (op_id, kind, json.dumps(scope), json.dumps(payload, ensure_ascii=False), now, now),
            )
        checkpoint("journal.received")
        return op_id

    def set_plan(self, plan: WritePlan) -> None:
        """Record the decided plan of an operation."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE ops SET plan = ?, status = 'planned', updated_at = ? WHERE id = ?",
                (plan.model_dump_json(), now_iso(), plan.op_id),
            )

    def fail(self, op_id: str, error: str) -> None:
        """Note why an attempt failed (the operation stays pending)."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE ops SET attempts = attempts + 1, error = ?, updated_at = ? WHERE id = ?",
                (error[:2000], now_iso(), op_id),
            )

    def note(self, op_id: str, extra: dict[str, Any]) -> None:
        """Add keys to an operation's payload (e.g. the LLM's extraction, so a retry
        does not pay for the same call twice)."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT payload FROM ops WHERE id = ?", (op_id,)).fetchone()
            if row is None:
                return
            payload = {**json.loads(row["payload"]), **extra}
            conn.execute(
                "UPDATE ops SET payload = ?, updated_at = ? WHERE id = ?",
                (json.dumps(payload, ensure_ascii=False), now_iso(), op_id),
            )

    def discard(self, op_id: str, *, force: bool = False) -> None:
        """Forget an operation that was refused before it changed anything (or, with
        `force`, one whose target no longer exists)."""
        status = "" if force else " AND status = 'received'"
        with self._db.transaction() as conn:
            conn.execute(f"DELETE FROM ops WHERE id = ?{status}", (op_id,))

    def finish(self, plan: WritePlan) -> None:
        """Write the plan's history rows and mark it done (inside the caller's transaction)."""
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO history (id, memory_id, event, old_memory, new_memory, "
                "detail, user_id, agent_id, run_id, actor_id, role, op_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (h.id, h.memory_id, h.event, h.old_memory, h.new_memory,
                     json.dumps(h.detail, ensure_ascii=False) if h.detail else None,
                     h.user_id, h.agent_id, h.run_id, h.actor_id, h.role, plan.op_id,
                     h.created_at)
                    for h in plan.history
                ],
            )
            # The plan is no longer needed once applied; keep the row as an audit line.
            conn.execute(
                "UPDATE ops SET status = 'done', plan = NULL, payload = '{}', error = NULL, "
                "updated_at = ? WHERE id = ?",
                (now_iso(), plan.op_id),
            )

    def pending(self) -> list[PendingOp]:
        """Unfinished operations, oldest first."""
        rows = self._db.read(
            "SELECT id, kind, scope, payload, plan, attempts, error FROM ops "
            "WHERE status != 'done' ORDER BY seq"
        )
        return [
            PendingOp(
                id=r["id"], kind=r["kind"], scope=json.loads(r["scope"]),
                payload=json.loads(r["payload"]),
                plan=WritePlan.model_validate_json(r["plan"]) if r["plan"] else None,
                attempts=r["attempts"], error=r["error"],
            )
            for r in rows
        ]

    def history(self, memory_id: str) -> list[HistoryEntry]:
        """The history rows of one memory, oldest first."""
        rows = self._db.read(
            "SELECT * FROM history WHERE memory_id = ? ORDER BY seq", (memory_id,)
        )
        return [
            HistoryEntry(
                id=r["id"], memory_id=r["memory_id"], event=r["event"],
                old_memory=r["old_memory"], new_memory=r["new_memory"],
                detail=json.loads(r["detail"]) if r["detail"] else None,
                user_id=r["user_id"], agent_id=r["agent_id"], run_id=r["run_id"],
                actor_id=r["actor_id"], role=r["role"], created_at=r["created_at"],
            )
            for r in rows
        ]
