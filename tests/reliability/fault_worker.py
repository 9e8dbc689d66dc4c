"""A child process for the fault matrix: writes through one Memory and logs every
acknowledged operation (fsynced, on a disk the faults do not touch), or verifies a store
against such a log and prints what it found as JSON.

    python -m tests.reliability.fault_worker write CONFIG ACKS OPS [--then-readonly DIR N]
                                                                 [--then-kill]
    python -m tests.reliability.fault_worker verify CONFIG ACKS [--repair]
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import sys
from pathlib import Path

from hybridmem import HybridMemError, Memory

USERS = ("ana", "ben", "cy")


def write(config: dict, acks: Path, ops: int, readonly: tuple[Path, int] | None,
          kill: bool) -> dict:
    """Run `ops` random operations; stop after 15 failures in a row."""
    rng = random.Random(7)
    log = acks.open("a", encoding="utf-8")
    live: list[str] = []
    errors = streak = 0
    first_error = None

    def ack(entry: dict) -> None:
        log.write(json.dumps(entry) + "\n")
        log.flush()
        os.fsync(log.fileno())

    with Memory.from_config(config) as memory:
        for i in range(ops):
            if readonly is not None and i == readonly[1]:
                _make_readonly(readonly[0])
            user = rng.choice(USERS)
            roll = rng.random()
            try:
                if roll < 0.12 and live:
                    target = live.pop(rng.randrange(len(live)))
                    memory.delete(target)
                    ack({"op": "delete", "id": target})
                elif roll < 0.22 and live:
                    target = rng.choice(live)
                    text = f"Updated note {i} about topic {rng.randrange(10**6)}"
                    memory.update(target, text)
                    ack({"op": "update", "id": target, "text": text})
                else:
                    if roll < 0.6:
                        text, infer = f"My friend Zed{i} lives in Town{i % 17}", True
                    else:
                        text, infer = f"Plain note {i}: {'lorem ipsum ' * 20}{i}", False
                    result = memory.add(text, user_id=user, infer=infer)
                    for item in result["results"]:
                        if item["event"] == "ADD":
                            live.append(item["id"])
                            ack({"op": "add", "id": item["id"], "text": item["memory"]})
                streak = 0
            except HybridMemError as exc:
                errors += 1
                streak += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                if streak >= 15:
                    break
        log.close()
        if kill:  # with every store still open: the write-ahead logs keep their data
            os.kill(os.getpid(), signal.SIGKILL)
    return {"errors": errors, "first_error": first_error}


def _make_readonly(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def acknowledged(acks: Path) -> tuple[dict[str, str], set[str]]:
    """id -> latest acknowledged text, and the ids acknowledged deleted."""
    texts: dict[str, str] = {}
    deleted: set[str] = set()
    if not acks.exists():
        return texts, deleted
    for line in acks.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["op"] in ("add", "update"):
            texts[entry["id"]] = entry["text"]
        else:
            texts.pop(entry["id"], None)
            deleted.add(entry["id"])
    return texts, deleted


def verify(config: dict, acks: Path, repair: bool) -> dict:
    """Open the store (optionally repairing) and compare it with the acknowledged log."""
    texts, deleted = acknowledged(acks)
    try:
        memory = Memory.from_config(config) if not repair else Memory(
            _config(config), repair=True)
    except HybridMemError as exc:
        return {"opened": False, "error": f"{type(exc).__name__}: {exc}"}
    with memory:
        try:  # damage found by a read, not at open, is refused the same way
            missing = [i for i in texts if memory.get(i) is None]
            wrong = [i for i, t in texts.items()
                     if (got := memory.get(i)) is not None and got["memory"] != t]
            back = [i for i in deleted if memory.get(i) is not None]
            check = memory.check()
            pending = memory.pending()
        except HybridMemError as exc:
            return {"opened": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"opened": True, "acknowledged": len(texts), "deleted": len(deleted),
                "missing": missing, "wrong_text": wrong, "deleted_back": back,
                "check": check, "recovered": memory.recovered, "pending": pending}


def _config(raw: dict):
    from hybridmem import MemoryConfig

    return MemoryConfig.from_dict(raw)


def main(argv: list[str]) -> None:
    mode, config, acks = argv[0], json.loads(Path(argv[1]).read_text()), Path(argv[2])
    if mode == "write":
        readonly = None
        if "--then-readonly" in argv:
            at = argv.index("--then-readonly")
            readonly = (Path(argv[at + 1]), int(argv[at + 2]))
        out = write(config, acks, int(argv[3]), readonly, "--then-kill" in argv)
    else:
        out = verify(config, acks, "--repair" in argv)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
