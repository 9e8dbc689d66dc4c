"""Several threads adding and searching on one Memory; counts agree at the end."""

from __future__ import annotations

import threading
import time

from hybridmem import Memory, MemoryConfig
from tests.reliability.consistency import problems

STATEMENTS = ["I enjoy hiking", "My friend {i} lives in Oslo", "I like tea number {i}",
              "My sister Ana{i} works at Acme", "I dislike tea number {i}"]


def test_threads_add_and_search(tmp_path):
    users = [f"t{i}" for i in range(4)]
    errors: list[BaseException] = []
    added: dict[str, set[str]] = {u: set() for u in users + ["shared"]}
    lock = threading.Lock()
    per_thread = 25

    def worker(user: str, n: int) -> None:
        try:
            for i in range(per_thread):
                target = user if i % 3 else "shared"  # a third go to one shared user
                text = STATEMENTS[i % len(STATEMENTS)].format(i=f"{user}x{i}")
                result = memory.add(text, user_id=target, infer=i % 2 == 0)
                with lock:
                    added[target] |= {r["id"] for r in result["results"]}
                hits = memory.search("who lives in Oslo", user_id=target)["results"]
                assert all(h.get("user_id", target) == target for h in hits)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    with Memory(MemoryConfig(data_dir=str(tmp_path), embedder={"provider": "hash"})) as memory:
        threads = [threading.Thread(target=worker, args=(u, n)) for n, u in enumerate(users)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        seconds = time.perf_counter() - started
        assert errors == []
        for user, ids in added.items():
            current = {r["id"] for r in memory.get_all(user_id=user, limit=1000,
                                                       include_invalid=True)["results"]}
            assert current == ids, user
        stats = memory.stats()
        assert stats["memories"] == stats["vectors"] == sum(len(v) for v in added.values())
        assert stats["pending_operations"] == 0
        assert problems(memory, tmp_path / "no-acks", tuple(added)) == []
        print(f"\nconcurrency: {len(users)} threads x {per_thread} adds+searches in "
              f"{seconds:.1f} s, {stats['memories']} memories, 0 lost")
