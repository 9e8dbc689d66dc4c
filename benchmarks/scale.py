"""Scale: add throughput, search latency, memory and disk for one user at growing size.

One user grows to 1k, 10k and 100k memories (verbatim adds; hash embedder by default, so
the engines are what is measured, or `--embedder local`, the MiniLM model users run). At
each size: bulk add rows/s (500 messages per add) beside the embedder's own texts/s on
the same texts (every 4th add's, measured right after it: a bulk add's ceiling);
single-add p50/p95; search p50/p95 (the whole path, limit 10) beside the floor (the
query's embedding + an exact numpy top-10 over the vectors the store holds); process RSS
and the data dir's size, and how each grows per 10x. The local MiniLM embedder's own
cost per text is measured apart.

Run: `python benchmarks/scale.py [--sizes 1000 10000 100000] [--queries 100]
[--embedder hash|local]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    BesideEmbedder,
    Timed,
    percentiles,
    synthetic_statements,
    table,
)
from hybridmem import Memory, MemoryConfig  # noqa: E402
from hybridmem.scope import Scope  # noqa: E402

BATCH = 500


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process (MiB); `field="VmHWM"`: its peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def disk_mb(path: Path) -> float:
    """Bytes under a directory (MiB)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def local_embedder_cost() -> tuple[float, float]:
    """ms per text of the local model: one text per call, and 128 texts in two calls of 64
    (which it runs in length-sorted batches of 16)."""
    from hybridmem.providers.embed.local import LocalEmbedder

    embedder = LocalEmbedder()
    texts = synthetic_statements(128, seed=99)
    embedder.embed(texts[:8])
    t0 = time.perf_counter()
    for text in texts[:64]:
        embedder.embed([text])
    single = (time.perf_counter() - t0) / 64
    t0 = time.perf_counter()
    embedder.embed(texts[:64])
    embedder.embed(texts[64:128])
    batched = (time.perf_counter() - t0) / 128
    return single * 1000, batched * 1000


def main(argv: list[str] | None = None) -> int:
    """Grow one user's store and print the figures at each size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--embedder", choices=["hash", "local"], default="hash",
                        help="hash: the engines alone; local: MiniLM, as users run it")
    parser.add_argument("--beside-every", type=int, default=4, metavar="N",
                        help="time the embedder alone on every Nth bulk add's texts")
    args = parser.parse_args(argv)
    texts = synthetic_statements(max(args.sizes), seed=5)
    queries = synthetic_statements(args.queries, seed=77)
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        config = MemoryConfig(data_dir=tmp, embedder={"provider": args.embedder})
        with Memory(config) as memory:
            embedder = memory.engines.embedder
            # The first write opens Milvus Lite (pymilvus import and its server: seconds
            # a running store pays once), not part of any add's throughput.
            memory.add("warm-up", user_id="warm-up", infer=False)
            loaded = 0
            for size in sorted(args.sizes):
                adding = 0.0
                beside = BesideEmbedder()
                for number, start in enumerate(range(loaded, size, BATCH)):
                    chunk = texts[start : min(size, start + BATCH)]
                    last = start + BATCH >= size
                    if (number % args.beside_every == args.beside_every - 1
                            or (last and not beside.rows)):
                        beside.measure(
                            lambda c=chunk: memory.add(c, user_id="scale", infer=False),
                            lambda c=chunk: embedder.embed(c), len(chunk))
                        adding += beside.last_add
                    else:
                        with Timed() as t:
                            memory.add(chunk, user_id="scale", infer=False)
                        adding += t.wall
                bulk = (size - loaded) / adding
                loaded = size
                single = []
                for i in range(50):
                    t0 = time.perf_counter()
                    memory.add(f"single add {size}-{i} about sailing", user_id="probe",
                               infer=False)
                    single.append(time.perf_counter() - t0)
                # the floor searches the very vectors the store holds
                _, matrix, _, _ = memory.engines.catalog.scope_vectors(Scope.of("scale"))
                matrix = matrix.reshape(size, -1)
                for q in queries[:5]:
                    memory.search(q, user_id="scale", limit=10)
                full, floor = [], []
                for q in queries:
                    t0 = time.perf_counter()
                    memory.search(q, user_id="scale", limit=10)
                    full.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    qv = embedder.embed([q])[0]
                    np.argpartition(-(matrix @ qv), 10)[:10]
                    floor.append(time.perf_counter() - t0)
                del matrix  # the floor's copy of the vectors is this script's, not the store's
                figures = {"size": size, "bulk": bulk, "beside": beside.summary(),
                           "single": percentiles(single),
                           "search": percentiles(full), "floor": percentiles(floor),
                           "rss": rss_mb(), "disk": disk_mb(Path(tmp))}
                raw.append(figures)
                print(f"  measured {size:,}", file=sys.stderr)
    for f in raw:
        b = f["beside"]
        rows.append([
            f"{f['size']:,}", f"{f['bulk']:.0f}", f"{b['embed_per_s']:.0f}",
            f"{b['wall_ratio']:.0%} / {b['cpu_ratio']:.0%}",
            "{:.1f} / {:.1f}".format(*f["single"]),
            "{:.1f} / {:.1f}".format(*f["search"]), "{:.2f} / {:.2f}".format(*f["floor"]),
            f"{f['search'][0] / f['floor'][0]:.2f}x", f"{f['rss']:.0f}", f"{f['disk']:.0f}",
        ])
    print(f"one user; verbatim adds; {args.embedder} embedder; times in ms (p50 / p95)")
    print(f"bulk adds of {BATCH} texts; every {args.beside_every}th one is followed by the "
          "embedder alone on its texts (the bulk add's ceiling): add / embedder throughput "
          "by wall clock and by process CPU time (the CPU ratio holds on a shared machine)")
    print(table(["memories", "bulk add rows/s", "embedder texts/s", "add/embedder wall / CPU",
                 "single add", "search", "floor (embed+numpy)",
                 "search/floor", "RSS MiB", "disk MiB"], rows))
    for a, b in zip(raw, raw[1:], strict=False):
        growth = b["size"] / a["size"]
        print(f"{a['size']:,} -> {b['size']:,} (x{growth:.0f}): search p50 "
              f"x{b['search'][0] / a['search'][0]:.2f}, single add p50 "
              f"x{b['single'][0] / a['single'][0]:.2f}, bulk rows/s "
              f"x{b['bulk'] / a['bulk']:.2f}, RSS x{b['rss'] / a['rss']:.2f}, "
              f"disk x{b['disk'] / a['disk']:.2f}")
    single, batched = local_embedder_cost()
    print(f"local MiniLM embedder (not in the figures above): {single:.1f} ms per text at "
          f"batch 1, {batched:.2f} ms per text in calls of 64")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
