"""A million memories in one store: 1,000 users x 1,000 memories (by default).

Imports every user's memories (one `add` of a message list per user, infer=False), then
prints: import time and memories/s, process RSS and the data dir's size (per part), the
time to open the store again and answer a first search, a user's search p50/p95 (the
first search of a user, which loads that user's views, apart) beside the floor (the
query's embedding + an exact numpy top-10 over that user's vectors), and the time of one
user's `delete_all`.

The hash embedder is the default (`--embedder hash`): the local MiniLM model embeds
~330 texts/s on 2 cores, so a million texts would take ~50 minutes of embedding alone;
the hash embedder leaves the engines as what is measured. `--users`/`--per-user` set the
size (e.g. `--users 1 --per-user 1000000` for one user with a million).

Run: `python benchmarks/million.py [--users 1000] [--per-user 1000] [--embedder hash|local]
[--queries 5] [--searched-users 20]`.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Timed, percentiles, synthetic_statements, table  # noqa: E402
from benchmarks.scale import disk_mb, rss_mb  # noqa: E402
from hybridmem import Memory, MemoryConfig  # noqa: E402
from hybridmem.scope import Scope  # noqa: E402


def user_texts(user: int, count: int) -> list[str]:
    """One user's memories: synthetic statements, numbered so none repeats in a scope."""
    return [f"{t} [{user}.{i}]" for i, t in enumerate(synthetic_statements(count, seed=user))]


def parts_mb(root: Path) -> dict[str, float]:
    """Size of each top-level entry of the data dir (MiB)."""
    return {p.name: (disk_mb(p) if p.is_dir() else p.stat().st_size / 2**20)
            for p in sorted(root.iterdir())}


def main(argv: list[str] | None = None) -> int:
    """Fill one store, reopen it, search it, delete one user; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=1000)
    parser.add_argument("--embedder", choices=["hash", "local"], default="hash")
    parser.add_argument("--queries", type=int, default=5, help="searches per searched user")
    parser.add_argument("--searched-users", type=int, default=20)
    args = parser.parse_args(argv)
    total = args.users * args.per_user
    rng = random.Random(7)
    queries = synthetic_statements(args.queries, seed=77)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = MemoryConfig(data_dir=tmp, embedder={"provider": args.embedder})
        with Memory(config) as memory:
            memory.add("warm-up", user_id="warm-up", infer=False)  # opens Milvus Lite
            with Timed() as imported:
                for user in range(args.users):
                    memory.add(user_texts(user, args.per_user), user_id=f"user-{user:04d}",
                               infer=False)
                    if (user + 1) % max(1, args.users // 10) == 0:
                        print(f"  {user + 1:,} users imported, {time.strftime('%X')}, RSS "
                              f"{rss_mb():.0f} MiB", file=sys.stderr, flush=True)
            rss_imported = rss_mb()
        disk = parts_mb(Path(tmp))
        rows.append(["import", f"{imported.wall:.0f} s ({total / imported.wall:.0f} "
                               f"memories/s)", f"RSS at its end {rss_imported:.0f} MiB"])
        rows.append(["disk", f"{sum(disk.values()):.0f} MiB",
                     ", ".join(f"{k} {v:.0f}" for k, v in disk.items())])

        with Timed() as opened:
            memory = Memory(config)
            memory.search("what do I enjoy?", user_id="user-0000", limit=10)
        try:
            rows.append(["open + first search (modules already imported)",
                         f"{opened.wall:.2f} s",
                         f"RSS {rss_mb():.0f} MiB"])
            embedder = memory.engines.embedder
            searched = rng.sample(range(args.users), min(args.searched_users, args.users))
            cold, warm, floor = [], [], []
            for user in searched:
                uid = f"user-{user:04d}"
                with Timed() as first:
                    memory.search(queries[0], user_id=uid, limit=10)
                cold.append(first.wall)
                _, matrix, _, _ = memory.engines.catalog.scope_vectors(Scope.of(uid))
                matrix = matrix.reshape(args.per_user, -1)
                for q in queries:
                    with Timed() as t:
                        memory.search(q, user_id=uid, limit=10)
                    warm.append(t.wall)
                    with Timed() as t:
                        qv = embedder.embed([q])[0]
                        np.argpartition(-(matrix @ qv), 10)[:10]
                    floor.append(t.wall)
            (c50, c95), (w50, w95), (f50, f95) = (percentiles(cold), percentiles(warm),
                                                  percentiles(floor))
            rows.append(["a user's first search (loads its views)",
                         f"p50 {c50:.1f} / p95 {c95:.1f} ms", f"{len(cold)} users"])
            rows.append(["a user's search", f"p50 {w50:.1f} / p95 {w95:.1f} ms",
                         f"floor p50 {f50:.2f} / p95 {f95:.2f} ms: {w50 / f50:.2f}x"])
            rows.append(["RSS after the searches", f"{rss_mb():.0f} MiB",
                         f"peak {rss_mb('VmHWM'):.0f} MiB"])
            # The reopened store has not opened Milvus Lite yet (reads never need it): the
            # first write opens it, so the first delete_all pays that, the second not.
            for n, user in enumerate(("user-0001", "user-0002")):
                with Timed() as deleted:
                    result = memory.delete_all(user_id=user)
                what = "first write: opens Milvus Lite" if n == 0 else "the next"
                rows.append([f"delete_all of one user ({what})", f"{deleted.wall:.2f} s",
                             result["message"]])
        finally:
            memory.close()
    print(f"{args.users:,} users x {args.per_user:,} memories = {total:,} in one store; "
          f"{args.embedder} embedder; infer=False")
    print(table(["what", "figure", "detail"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
