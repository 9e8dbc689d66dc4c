"""Bulk add through the graph path: statements/s and triples/s, and graph size.

Adds N synthetic first-person and relation statements (infer=True, offline rules
extractor) for one user, one `add` each, and counts the relations the graph received.
With `--new-people`, every statement names a person not seen before, so the scope's
entity count grows with the adds; add p50 is then printed per tenth of the run, to show
whether an add slows down as the graph grows (entity resolution must not be quadratic).

Run: `python benchmarks/graph_bulk.py [--count 10000] [--embedder local|hash] [--new-people]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    made_up_names,
    percentiles,
    synthetic_statements,
    table,
)
from hybridmem import Memory, MemoryConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the bulk add and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--embedder", choices=["local", "hash"], default="local")
    parser.add_argument("--new-people", action="store_true",
                        help="name a new person in every statement")
    args = parser.parse_args(argv)
    names = made_up_names(args.count, seed=5) if args.new_people else None
    statements = synthetic_statements(args.count, seed=3, names=names)
    windows = []
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
                if len(per_add) % max(1, args.count // 10) == 0:
                    windows.append((len(per_add), memory.stats()["entities"],
                                    percentiles(per_add[-max(1, args.count // 10):])))
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
    print("\nadd p50 / p95 per tenth of the run, with the scope's entities at its end")
    print(table(["adds", "entities", "add p50 / p95 ms"],
                [[f"{n:,}", f"{e:,}", f"{w50:.1f} / {w95:.1f}"]
                 for n, e, (w50, w95) in windows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
