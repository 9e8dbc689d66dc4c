"""The write-ahead journal of operations, and the history rows.

Every add/update/delete is written here (status `received`) before any engine is touched.
Once its `WritePlan` is decided it is stored (`planned`, with the next epoch); the plan is
applied to Milvus and Kuzu, then the catalog rows, the history rows, the new epoch and
`done` commit in one SQLite transaction.

An operation that raised is either `failed` (an update or delete: it changed nothing and is
never replayed) or back to `received` (an add: its input is kept and planned again, against
the state of that moment, by `retry_pending()` or the next open). An add that keeps failing
for a reason other than a provider outage is `quarantined`: listed, never replayed on its
own, removable. At most one operation is `planned` at any time.

One input waits once: an add of the same messages, metadata and `infer` in the same scope
as an add already `received` is not kept beside it (a script run five times against a dead
provider left five copies, each replayed and each retried against that provider).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from hybridmem._failpoints import checkpoint
from hybridmem.records import HistoryEntry, WritePlan, now_iso
from hybridmem.scope import Scope
from hybridmem.stores.sqlite import Database


@dataclass(frozen=True)
class PendingOp:
    """A journaled operation that has not finished."""

    id: str
    kind: str
    scope: Scope | None  # None: an operation of no one scope (import)
    payload: dict[str, Any]
    plan: WritePlan | None
    attempts: int
    error: str | None
    status: str = "received"
    created_at: str = ""


@dataclass(frozen=True)
class KeyedOp:
    """An operation journaled with an idempotency key."""

    id: str
    status: str
    input: str  # the digest of the input it was journaled with
    result: dict[str, Any] | None  # its answer, once done


class Journal:
    """Operations and history in the shared SQLite database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(self, kind: str, scope: Scope | None, payload: dict[str, Any], *,
              idem_key: str | None = None, idem_input: str | None = None) -> str:
        """Durably record an operation's input; returns its id.

        `idem_key` (with `idem_input`, a digest of the input) makes the operation the only
        one of its scope with that key: see `keyed`.
        """
        op_id = uuid.uuid4().hex
        now = now_iso()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO ops (id, kind, scope, payload, status, created_at, updated_at, "
                "idem_key, idem_input) VALUES (?, ?, ?, ?, 'received', ?, ?, ?, ?)",
                (op_id, kind, json.dumps(scope.as_row() if scope else {}),
                 json.dumps(payload, ensure_ascii=False), now, now, idem_key, idem_input),
            )
        checkpoint("journal.received")
        return op_id

    def keyed(self, scope: Scope, idem_key: str) -> KeyedOp | None:
        """The operation of this scope journaled with this idempotency key, if any."""
        rows = self._db.read(
            "SELECT id, status, idem_input, result FROM ops WHERE scope = ? AND idem_key = ?",
            (json.dumps(scope.as_row()), idem_key))
        if not rows:
            return None
        r = rows[0]
        return KeyedOp(id=r["id"], status=r["status"], input=r["idem_input"] or "",
                       result=json.loads(r["result"]) if r["result"] else None)

    def set_plan(self, plan: WritePlan) -> None:
        """Give the plan the next epoch and record it."""
        with self._db.transaction() as conn:
            plan.epoch = self.epoch() + 1
            conn.execute(
                "UPDATE ops SET plan = ?, status = 'planned', updated_at = ? WHERE id = ?",
                (plan.model_dump_json(), now_iso(), plan.op_id),
            )

    def epoch(self) -> int:
        """The epoch of the last plan applied to the record."""
        return int(self._db.get_meta("epoch") or 0)

    def fail(self, op_id: str, error: str, status: str | None = None) -> None:
        """Note why an attempt failed; with `status`, also move the operation there
        (`received`: replay it later; `failed`: never; `quarantined`: only on request).
        The stored plan is dropped: a replay plans again."""
        with self._db.transaction() as conn:
            if status is None:
                conn.execute(
                    "UPDATE ops SET attempts = attempts + 1, error = ?, updated_at = ? "
                    "WHERE id = ?", (error[:2000], now_iso(), op_id),
                )
            else:
                conn.execute(
                    "UPDATE ops SET attempts = attempts + 1, error = ?, status = ?, plan = NULL, "
                    "updated_at = ? WHERE id = ?", (error[:2000], status, now_iso(), op_id),
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
        """Write the plan's history rows, its epoch, and mark it done (inside the caller's
        transaction)."""
        with self._db.transaction() as conn:
            self.write_history(plan.history, plan.op_id)
            # The plan is no longer needed once applied; keep the row as an audit line.
            # A keyed operation keeps its answer, for a caller that repeats the call.
            conn.execute(
                "UPDATE ops SET status = 'done', plan = NULL, payload = '{}', error = NULL, "
                "result = CASE WHEN idem_key IS NULL THEN NULL ELSE ? END, updated_at = ? "
                "WHERE id = ?",
                (json.dumps(plan.result, ensure_ascii=False), now_iso(), plan.op_id),
            )
            self._db.set_meta({"epoch": plan.epoch})

    def write_history(self, entries: list[HistoryEntry], op_id: str | None = None) -> None:
        """Append history rows (a row already written is kept as it is)."""
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO history (id, memory_id, event, old_memory, new_memory, "
                "detail, user_id, agent_id, run_id, actor_id, role, op_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (h.id, h.memory_id, h.event, h.old_memory, h.new_memory,
                     json.dumps(h.detail, ensure_ascii=False) if h.detail else None,
                     h.user_id, h.agent_id, h.run_id, h.actor_id, h.role, op_id, h.created_at)
                    for h in entries
                ],
            )

    def pending(self, statuses: tuple[str, ...] = ("received", "planned", "quarantined")
                ) -> list[PendingOp]:
        """Unfinished operations, oldest first."""
        marks = ",".join("?" * len(statuses))
        rows = self._db.read(
            "SELECT id, kind, scope, payload, plan, attempts, error, status, created_at FROM ops "
            f"WHERE status IN ({marks}) ORDER BY seq", statuses,
        )
        return [
            PendingOp(
                id=r["id"], kind=r["kind"], scope=_scope(json.loads(r["scope"])),
                payload=json.loads(r["payload"]),
                plan=WritePlan.model_validate_json(r["plan"]) if r["plan"] else None,
                attempts=r["attempts"], error=r["error"], status=r["status"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def _field(self, op_id: str, column: str):
        rows = self._db.read(f"SELECT {column} FROM ops WHERE id = ?", (op_id,))
        return rows[0][column] if rows else None

    def error(self, op_id: str) -> str | None:
        """The last error recorded for an operation."""
        return self._field(op_id, "error")

    def attempts(self, op_id: str) -> int:
        """How many attempts of an operation failed so far."""
        return int(self._field(op_id, "attempts") or 0)

    def status(self, op_id: str) -> str | None:
        """An operation's status (None when it is not journaled)."""
        return self._field(op_id, "status")

    def fold_into_older(self, op_id: str) -> str | None:
        """If an older add waiting (`received`) has this add's input in its scope, drop
        this one (its extraction moves to the older if that has none) and return the
        older's id; else None."""
        ops = self.pending(("received",))
        mine = next((op for op in ops if op.id == op_id), None)
        if mine is None or mine.kind != "add":
            return None
        key = _input_key(mine)
        older = next((op for op in ops[:ops.index(mine)]
                      if op.kind == "add" and _input_key(op) == key), None)
        if older is None:
            return None
        with self._db.transaction() as conn:
            if "extraction" in mine.payload and "extraction" not in older.payload:
                self.note(older.id, {"extraction": mine.payload["extraction"]})
            conn.execute("DELETE FROM ops WHERE id = ?", (op_id,))
        return older.id

    def drop_repeated_inputs(self, running: set[str] = frozenset()) -> int:
        """Keep each input waiting in a scope once: of the `received` adds with the same
        messages, metadata and `infer` in one scope, the oldest stays (with an extraction
        a later copy holds, if it has none, so no model is asked again); returns how many
        were dropped. Operations in `running` (whose call is still running) are left."""
        kept: dict[str, PendingOp] = {}
        repeated: list[str] = []
        for op in self.pending(("received",)):
            if op.kind != "add" or op.id in running:
                continue
            first = kept.setdefault(_input_key(op), op)
            if first is op:
                continue
            if "extraction" in op.payload and "extraction" not in first.payload:
                self.note(first.id, {"extraction": op.payload["extraction"]})
                first.payload["extraction"] = op.payload["extraction"]
            repeated.append(op.id)
        if repeated:
            with self._db.transaction() as conn:
                conn.executemany("DELETE FROM ops WHERE id = ? AND status = 'received'",
                                 [(i,) for i in repeated])
        return len(repeated)

    def planned(self) -> PendingOp | None:
        """The one operation whose plan is journaled but not yet committed, if any."""
        found = self.pending(("planned",))
        return found[0] if found else None

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


def _input_key(op: PendingOp) -> str:
    """What makes two adds the same input: scope, messages, metadata, infer (not the
    extraction a first attempt may have noted)."""
    scope = op.scope.as_row() if op.scope else {}
    said = {k: op.payload.get(k) for k in ("messages", "metadata", "infer")}
    return json.dumps([scope, said], sort_keys=True, ensure_ascii=False)


def _scope(row: dict[str, str]) -> Scope | None:
    return Scope.from_row(row) if any(row.values()) else None
