"""Bulk add through the graph path: statements/s and triples/s, and graph size.

Adds N synthetic first-person and relation statements (infer=True, offline rules
extractor) for one user, one `add` each, and counts the relations the graph received.

Run: `python benchmarks/graph_bulk.py [--count 10000] [--embedder local|hash]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import percentiles, synthetic_statements, table  # noqa: E402
from hybridmem import Memory, MemoryConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the bulk add and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--embedder", choices=["local", "hash"], default="local")
    args = parser.parse_args(argv)
    statements = synthetic_statements(args.count, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        config = MemoryConfig(data_dir=tmp, embedder={"provider": args.embedder})
        with Memory(config) as memory:
            triples = ended = 0
            per_add = []
            start = time.perf_counter()
            for text in statements:
                t0 = time.perf_counter()
                result = memory.add(text, user_id="bulk")
                per_add.append(time.perf_counter() - t0)
                triples += len(result["relations"]["added_entities"])
                ended += len(result["relations"]["deleted_entities"])
            seconds = time.perf_counter() - start
            stats = memory.stats()
    p50, p95 = percentiles(per_add)
    print(f"{args.count:,} adds (infer=True, rules extractor, {args.embedder} embedder), "
          "one statement each")
    print(table(
        ["adds/s", "new triples", "triples/s", "ended edges", "add p50 / p95 ms",
         "entities", "relations (incl. history)"],
        [[f"{args.count / seconds:.0f}", f"{triples:,}", f"{triples / seconds:.0f}",
          f"{ended:,}", f"{p50:.1f} / {p95:.1f}", f"{stats['entities']:,}",
          f"{stats['relations']:,}"]],
    ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
