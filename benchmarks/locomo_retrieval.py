"""Retrieval quality on LoCoMo: vector only, BM25 only, and merged, in one run.

Each conversation gets its own scope; each dialog turn is stored verbatim (`infer=False`)
as "Speaker: text" (a shared photo's caption appended), with speaker, dia_id, session and
session date as metadata. Each question of categories 1-4 (5 with `--with-adversarial`) is
one search; gold = its evidence dia_ids (malformed ids normalised). Prints recall@{1,5,10,25},
MRR and nDCG@10 per category and overall for each mode.

Run: `python benchmarks/locomo_retrieval.py [--data PATH] [--limit-conversations N]`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table  # noqa: E402
from hybridmem import Memory, MemoryConfig  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop",
              5: "adversarial"}
MODES = {"vector": ("vector",), "bm25": ("bm25",), "merged": ("vector", "bm25", "graph")}
KS = (1, 5, 10, 25)

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm comes with huggingface-hub, normally present
    def tqdm(iterable, **_):
        return iterable


def evidence_ids(raw: list[str]) -> set[str]:
    """Normalise LoCoMo evidence ids ("D:11:26", "D30:05", "D8:6; D9:17") to "D11:26"."""
    out = set()
    for item in raw:
        for part in re.split(r"[;,\s]+", item):
            m = re.fullmatch(r"D:?(\d+):0*(\d+)", part.strip())
            if m:
                out.add(f"D{int(m.group(1))}:{int(m.group(2))}")
    return out


def turns(sample: dict):
    """(session, date, turn) for every dialog turn of a sample, in order."""
    conv = sample["conversation"]
    sessions = sorted(
        (int(k.split("_")[1]) for k in conv if re.fullmatch(r"session_\d+", k)),
    )
    for n in sessions:
        date = conv.get(f"session_{n}_date_time", "")
        for turn in conv[f"session_{n}"]:
            yield n, date, turn


def load(memory: Memory, sample: dict) -> dict[str, set[str]]:
    """Store a conversation; returns memory id -> dia_ids (identical turns share a memory)."""
    scope = sample["sample_id"]
    by_memory: dict[str, set[str]] = defaultdict(set)
    for session, date, turn in turns(sample):
        text = f"{turn['speaker']}: {turn['text']}"
        if turn.get("blip_caption"):
            text += f" [shares a photo: {turn['blip_caption']}]"
        dia_id = evidence_ids([turn["dia_id"]])
        result = memory.add(text, user_id=scope, infer=False, metadata={
            "speaker": turn["speaker"], "dia_id": turn["dia_id"], "session": session,
            "date": date})
        by_memory[result["results"][0]["id"]] |= dia_id
    return by_memory


def score(ranked: list[set[str]], gold: set[str]) -> dict[str, float]:
    """recall@k, reciprocal rank and nDCG@10 of one ranked list of dia_id sets."""
    out = {}
    for k in KS:
        found = set().union(*ranked[:k]) if ranked[:k] else set()
        out[f"r@{k}"] = len(found & gold) / len(gold)
    rr = 0.0
    for rank, ids in enumerate(ranked, start=1):
        if ids & gold:
            rr = 1.0 / rank
            break
    out["mrr"] = rr
    seen: set[str] = set()
    dcg = 0.0
    for rank, ids in enumerate(ranked[:10], start=1):
        new = (ids & gold) - seen
        seen |= new
        dcg += len(new) / math.log2(rank + 1)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(gold), 10) + 1))
    out["ndcg@10"] = dcg / ideal
    return out


def main(argv: list[str] | None = None) -> int:
    """Load, query, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit-conversations", type=int, default=None)
    parser.add_argument("--with-adversarial", action="store_true")
    parser.add_argument("--fusion", choices=["weighted", "rrf"], default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    samples = json.loads(args.data.read_text())[: args.limit_conversations]
    categories = (1, 2, 3, 4, 5) if args.with_adversarial else (1, 2, 3, 4)
    results: dict[str, dict[int, list[dict[str, float]]]] = {
        m: defaultdict(list) for m in MODES}
    latency: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        config = MemoryConfig(data_dir=tmp)
        if args.fusion:
            config.search.fusion = args.fusion
        with Memory(config) as memory:
            started = time.perf_counter()
            maps = {}
            for sample in tqdm(samples, desc="storing conversations", unit="conv"):
                maps[sample["sample_id"]] = load(memory, sample)
            stored = time.perf_counter() - started
            questions = [(s, q) for s in samples for q in s["qa"]
                         if q["category"] in categories and evidence_ids(q.get("evidence", []))]
            for sample, qa in tqdm(questions, desc="searching", unit="q"):
                gold = evidence_ids(qa["evidence"])
                for mode, signals in MODES.items():
                    t0 = time.perf_counter()
                    hits = memory.search(qa["question"], user_id=sample["sample_id"],
                                         limit=max(KS), signals=signals)["results"]
                    latency[mode].append(time.perf_counter() - t0)
                    ranked = [maps[sample["sample_id"]].get(h["id"], set()) for h in hits]
                    results[mode][qa["category"]].append(score(ranked, gold))
    n_turns = sum(len(m) for m in maps.values())
    print(f"\n{len(samples)} conversations, {n_turns} stored turns in {stored:.1f} s, "
          f"{len(questions)} questions (categories {', '.join(map(str, categories))})")
    metrics = [f"r@{k}" for k in KS] + ["mrr", "ndcg@10"]
    figures: dict[str, dict[str, dict[str, float]]] = {}
    rows = []
    for mode in MODES:
        figures[mode] = {}
        groups = [(CATEGORIES[c], results[mode][c]) for c in categories]
        groups.append(("overall", [r for c in categories for r in results[mode][c]]))
        for name, rs in groups:
            if not rs:
                continue
            avg = {m: 100 * sum(r[m] for r in rs) / len(rs) for m in metrics}
            figures[mode][name] = avg
            rows.append([mode, name, str(len(rs))] + [f"{avg[m]:.1f}" for m in metrics])
    print(table(["mode", "category", "n"] + metrics, rows))
    for mode in MODES:
        ms = sorted(1000 * x for x in latency[mode])
        print(f"{mode:7} search latency p50 {ms[len(ms) // 2]:.1f} ms, "
              f"p95 {ms[int(len(ms) * 0.95)]:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
