"""Child process of the crash suite: runs a seeded sequence of writes and acknowledges
each one in a log (fsynced) only after the call returned. A failpoint or the parent's
SIGKILL ends it somewhere in the write path.

Usage: python -m tests.reliability.crash_worker DATA_DIR ACK_LOG SEED OPS
"""

from __future__ import annotations

import json
import os
import random
import sys

from benchmarks.common import synthetic_statements
from hybridmem import Memory, MemoryConfig

USERS = ("crash-a", "crash-b")


def main() -> None:
    data_dir, ack_path, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    statements = synthetic_statements(400, seed=seed)
    memory = Memory(MemoryConfig(data_dir=data_dir, embedder={"provider": "hash"}))
    live: dict[str, str] = {}  # acknowledged memory id -> user
    with open(ack_path, "a", encoding="utf-8") as log:

        def ack(record: dict) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()
            os.fsync(log.fileno())

        def intent(record: dict) -> None:
            # What the call about to run may leave behind if it dies unacknowledged.
            ack({**record, "intent": True})

        for step in range(count):
            user = rng.choice(USERS)
            roll = rng.random()
            if roll < 0.55 or len(live) < 3:
                text = statements[(seed * 7 + step) % len(statements)]
                infer = rng.random() < 0.7
                result = memory.add(text, user_id=user, infer=infer, metadata={"step": step})
                for item in result["results"]:
                    live[item["id"]] = user
                ack({"op": "add", "user": user, "results": result["results"]})
            elif roll < 0.75:
                memory_id = rng.choice(sorted(live))
                text = f"{statements[rng.randrange(len(statements))]} (updated {step})"
                intent({"op": "update", "id": memory_id, "text": text})
                memory.update(memory_id, text)
                ack({"op": "update", "id": memory_id, "text": text})
            elif roll < 0.97:
                memory_id = rng.choice(sorted(live))
                intent({"op": "delete", "id": memory_id})
                memory.delete(memory_id)
                live.pop(memory_id)
                ack({"op": "delete", "id": memory_id})
            else:
                intent({"op": "delete_all", "user": user})
                memory.delete_all(user_id=user)
                for memory_id in [i for i, u in live.items() if u == user]:
                    live.pop(memory_id)
                ack({"op": "delete_all", "user": user})
    memory.close()


if __name__ == "__main__":
    main()
