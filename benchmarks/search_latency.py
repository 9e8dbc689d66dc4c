"""Search latency and per-user recall on the embedded default, against the floor.

For each size N (default 1k, 10k, 100k) one user gets N memories, beside 9 other users
with 1k each (so every search is a scoped search in a shared store). Then, side by side
in one run:

- `search`: p50/p95 of `Memory.search(limit=10)`, the whole path (embedding, vectors,
  BM25, graph, fusion, result rows), with `signals=["vector"]` only, and with a metadata
  filter (each batch of 50 adds carries one of 20 topics; the filter keeps one: 5%);
- `index`: the in-process vector index alone (no embedding);
- `floor`: the query embedding + an exact numpy top-10 over the same user's vectors;
- `recall@10`: the index's top-10 against that exact top-10, and memory the index holds.

Run: `python benchmarks/search_latency.py [--sizes 1000 10000 100000] [--queries 200]`.
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

from benchmarks.common import percentiles, synthetic_statements, table  # noqa: E402
from hybridmem import Memory, MemoryConfig  # noqa: E402
from hybridmem.scope import Scope  # noqa: E402

TOPICS = 20


def load(memory: Memory, user: str, texts: list[str], batch: int = 50) -> float:
    """Add texts verbatim in batches, each batch with one of `TOPICS` topics as metadata;
    returns seconds taken."""
    start = time.perf_counter()
    for n, i in enumerate(range(0, len(texts), batch)):
        memory.add(texts[i : i + batch], user_id=user, infer=False,
                   metadata={"topic": f"t{n % TOPICS}"})
    return time.perf_counter() - start


def measure(size: int, queries: int, tenants: int, seed: int) -> dict[str, object]:
    """Build one store and measure it."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp, Memory(MemoryConfig(data_dir=tmp)) as memory:
        for t in range(tenants):
            load(memory, f"tenant-{t}", synthetic_statements(1000, seed=1000 + t))
        seconds = load(memory, "target", synthetic_statements(size, seed=seed))
        memory.engines.projections.flush()
        scope = Scope.of("target")
        ids, matrix, _, _ = memory.engines.catalog.scope_vectors(scope)
        matrix = matrix.reshape(len(ids), -1)
        questions = [q for q in synthetic_statements(queries, seed=seed + 7)]
        rng.shuffle(questions)
        full, vector_only, filtered, index, floor, recalls = [], [], [], [], [], []
        for q in questions[:10]:  # warm-up (loads the scope's vectors once)
            memory.search(q, user_id="target", limit=10)
        for q in questions:
            t0 = time.perf_counter()
            memory.search(q, user_id="target", limit=10)
            full.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            memory.search(q, user_id="target", limit=10, signals=["vector"])
            vector_only.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            memory.search(q, user_id="target", limit=10, filters={"topic": "t3"})
            filtered.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            qv = memory.engines.embedder.embed([q])[0]
            exact = np.argsort(-(matrix @ qv))[:10]
            floor.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            got = memory.engines.vector_index.search(qv, scope, 10)
            index.append(time.perf_counter() - t0)
            recalls.append(len({i for i, _ in got} & {ids[j] for j in exact}) / 10)
        return {
            "size": size, "load_s": seconds, "full": percentiles(full),
            "vector_only": percentiles(vector_only), "filtered": percentiles(filtered),
            "index": percentiles(index),
            "floor": percentiles(floor), "recall": float(np.mean(recalls)),
            "index_mib": memory.engines.vector_index.nbytes / 2**20,
        }


def main(argv: list[str] | None = None) -> int:
    """Print the latency table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=9)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        r = measure(size, args.queries, args.tenants, args.seed)
        rows.append([
            f"{size:,}", f"{size / r['load_s']:.0f}/s",
            f"{r['full'][0]:.1f} / {r['full'][1]:.1f}",
            f"{r['vector_only'][0]:.1f} / {r['vector_only'][1]:.1f}",
            f"{r['filtered'][0]:.1f} / {r['filtered'][1]:.1f}",
            f"{r['index'][0]:.2f} / {r['index'][1]:.2f}",
            f"{r['floor'][0]:.1f} / {r['floor'][1]:.1f}",
            f"{r['full'][0] / r['floor'][0]:.2f}x",
            f"{r['vector_only'][0] / r['floor'][0]:.2f}x", f"{r['recall']:.3f}",
            f"{r['index_mib']:.1f}",
        ])
    print(f"one user + {args.tenants} users x 1k in one store; {args.queries} queries; "
          "local MiniLM embedder; times in ms (p50 / p95)")
    print(table(["memories", "load", "search", "search (vector)",
                 f"search, filter (1 topic in {TOPICS})", "index only",
                 "floor (embed+numpy)", "search/floor", "vector/floor", "recall@10 vs exact",
                 "index MiB"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
