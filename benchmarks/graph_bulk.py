"""Bulk add through the graph path: statements/s and triples/s, and graph size.

Adds N synthetic first-person and relation statements (infer=True, offline rules
extractor) for one user, one `add` each, and counts the relations the graph received.
With `--new-people`, every statement names a person not seen before, so the scope's
entity count grows with the adds; add p50 is then printed per tenth of the run, to show
whether an add slows down as the graph grows (entity resolution must not be quadratic).

Then the first `--bulk-count` statements are added again, to another user, as lists of 500
(one `add` each), and each list's add is followed by the embedder alone on its texts: the
bulk add's throughput beside its ceiling, from the same run.

Run: `python benchmarks/graph_bulk.py [--count 10000] [--embedder local|hash] [--new-people]
[--search-every N] [--bulk-count N]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    BesideEmbedder,
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
    parser.add_argument("--search-every", type=int, default=0, metavar="N",
                        help="after every Nth add, time a search about the person it "
                             "named (what an agent does next; the first search after a "
                             "write must not rebuild the scope's graph views)")
    parser.add_argument("--bulk-count", type=int, default=2000, metavar="N",
                        help="statements added again as lists of 500, beside the embedder")
    args = parser.parse_args(argv)
    names = made_up_names(args.count, seed=5) if args.new_people else None
    statements = synthetic_statements(args.count, seed=3, names=names)
    windows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = MemoryConfig(data_dir=tmp, embedder={"provider": args.embedder})
        with Memory(config) as memory:
            triples = ended = 0
            per_add, searches = [], []
            start = time.perf_counter()
            for text in statements:
                t0 = time.perf_counter()
                result = memory.add(text, user_id="bulk")
                per_add.append(time.perf_counter() - t0)
                triples += len(result["relations"]["added_entities"])
                ended += len(result["relations"]["deleted_entities"])
                if args.search_every and len(per_add) % args.search_every == 0:
                    t0 = time.perf_counter()
                    about = names[len(per_add) - 1] if names else text
                    memory.search(f"what do you know about {about}?", user_id="bulk", limit=5)
                    searches.append((len(per_add), time.perf_counter() - t0))
                tenth = max(1, args.count // 10)
                if len(per_add) % tenth == 0:
                    recent = [t for n, t in searches if n > len(per_add) - tenth]
                    windows.append((len(per_add), memory.stats()["entities"],
                                    percentiles(per_add[-tenth:]),
                                    percentiles(recent) if recent else None))
            seconds = time.perf_counter() - start
            stats = memory.stats()
            # The same statements again as message lists (another user, so nothing is a
            # duplicate), each list's add followed by the embedder alone on its texts.
            beside = BesideEmbedder()
            embedder = memory.engines.embedder
            listed = statements[: args.bulk_count]
            for start in range(0, len(listed), 500):
                chunk = listed[start : start + 500]
                beside.measure(lambda c=chunk: memory.add(c, user_id="bulk-lists"),
                               lambda c=chunk: embedder.embed(c), len(chunk))
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
    print(f"\nadd of message lists (500 statements each, infer=True, rules): "
          f"{beside.line()}")
    print("\nadd p50 / p95 per tenth of the run, with the scope's entities at its end")
    header = ["adds", "entities", "add p50 / p95 ms"]
    if args.search_every:
        header.append(f"search after every {args.search_every}th add, p50 / p95 ms")
    print(table(header, [
        [f"{n:,}", f"{e:,}", f"{w50:.1f} / {w95:.1f}",
         *([f"{search[0]:.1f} / {search[1]:.1f}" if search else "-"]
           if args.search_every else [])]
        for n, e, (w50, w95), search in windows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
