"""Retrieval quality on LoCoMo: vector only, BM25 only, and merged, in one run; and the
fusion settings fitted leave-one-conversation-out.

Each conversation gets its own scope; each dialog turn is stored verbatim (`infer=False`)
as "Speaker: text" (a shared photo's caption appended), with speaker, dia_id, session and
session date as metadata (`--infer` extracts facts and relations with the rules extractor
instead, so the graph signal takes part). Each question of categories 1-4
(5 with `--with-adversarial`) is one search; gold = its evidence dia_ids (malformed ids
normalised). Prints recall@{1,5,10,25}, MRR and nDCG@10 per category and overall.

How: every question's candidates (with their raw signals) are gathered once per mode by
the retriever; fusing them under a `SearchConfig` is what `search` does, so the merged row
for any setting is computed offline from the same candidates (checked against `search`
itself on a sample of questions).

`--loco`: leave-one-conversation-out. For each conversation, the fusion settings (the
calibration and the BM25 weight) are chosen on the other conversations by grid search and
reported on it; the table gives each fold, the mean and the worst fold. The shipped
defaults (`SearchConfig()`) are reported in the same run for comparison.

Run: `python benchmarks/locomo_retrieval.py [--data PATH] [--limit-conversations N]
[--loco] [--infer] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import pickle
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table  # noqa: E402
from benchmarks.implicit_recall import CATEGORY as IMPLICIT  # noqa: E402
from benchmarks.implicit_recall import stitch  # noqa: E402
from hybridmem import Memory, MemoryConfig  # noqa: E402
from hybridmem.config import SearchConfig  # noqa: E402
from hybridmem.read.merger import Candidate, fuse  # noqa: E402
from hybridmem.scope import Scope  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop",
              5: "adversarial", IMPLICIT: "implicit"}
MODES = {"vector": ("vector",), "bm25": ("bm25",), "merged": ("vector", "bm25", "graph")}
KS = (1, 5, 10, 25)
LIMIT = max(KS)
METRICS = [f"r@{k}" for k in KS] + ["mrr", "ndcg@10"]
IMPLICIT_WEIGHT = 0.25
# The grid the folds choose from: the vector's calibration (cosine ceiling, and the z
# floor and span against the scope's background), the BM25 half-point, weight and
# coverage floor (bm25_coverage 1.0). "fixed" rows: the calibration shipped before
# (cosine floor 0.0 / ceiling 0.75, no background, no coverage term).
GRID = {
    "vector_ceiling": (0.75, 0.9, 1.0),
    "vector_z_floor": (-1.0, 0.0),
    "vector_z_span": (6.0, 8.0),
    "bm25_half": (16.0, 32.0),
    "bm25_weight": (3.0, 4.0, 6.0),
    "bm25_min_coverage": (0.0, 0.1, 0.2),
}
FIXED_GRID = {"bm25_half": (16.0, 32.0, 64.0), "bm25_weight": (4.0, 6.0)}

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm comes with huggingface-hub, normally present
    def tqdm(iterable, **_):
        return iterable


@dataclass
class Question:
    """One question with every mode's candidates."""

    sample: str
    category: int
    gold: set[str]
    candidates: dict[str, list[Candidate]] = field(default_factory=dict)
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)


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
    sessions = sorted(int(k.split("_")[1]) for k in conv if re.fullmatch(r"session_\d+", k))
    for n in sessions:
        date = conv.get(f"session_{n}_date_time", "")
        for turn in conv[f"session_{n}"]:
            yield n, date, turn


def session_time(text: str) -> datetime | None:
    """LoCoMo's session date ("1:56 pm on 8 May, 2023") as a datetime (None if another
    shape)."""
    try:
        return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y")
    except ValueError:
        return None


def load(memory: Memory, sample: dict, infer: bool, timestamps: bool = False
         ) -> dict[str, set[str]]:
    """Store a conversation; returns memory id -> dia_ids (identical turns share one).
    `timestamps`: each turn is added with its session's date (`add(timestamp=...)`)."""
    scope = sample["sample_id"]
    by_memory: dict[str, set[str]] = defaultdict(set)
    for session, date, turn in turns(sample):
        text = f"{turn['speaker']}: {turn['text']}"
        if turn.get("blip_caption"):
            text += f" [shares a photo: {turn['blip_caption']}]"
        dia_id = evidence_ids([turn["dia_id"]])
        result = memory.add(text, user_id=scope, infer=infer, metadata={
            "speaker": turn["speaker"], "dia_id": turn["dia_id"], "session": session,
            "date": date}, timestamp=session_time(date) if timestamps else None)
        for item in result["results"]:
            by_memory[item["id"]] |= dia_id
    return by_memory


def score(ranked: list[set[str]], gold: set[str]) -> dict[str, float]:
    """recall@k, reciprocal rank and nDCG@10 of one ranked list of dia_id sets."""
    out = {}
    for k in KS:
        found = set().union(*ranked[:k]) if ranked[:k] else set()
        out[f"r@{k}"] = len(found & gold) / len(gold)
    out["mrr"] = next((1.0 / rank for rank, ids in enumerate(ranked, start=1) if ids & gold),
                      0.0)
    seen: set[str] = set()
    dcg = 0.0
    for rank, ids in enumerate(ranked[:10], start=1):
        new = (ids & gold) - seen
        seen |= new
        dcg += len(new) / math.log2(rank + 1)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(gold), 10) + 1))
    out["ndcg@10"] = dcg / ideal
    return out


def fresh(candidates: list[Candidate]) -> list[Candidate]:
    """Copies of gathered candidates as the retriever hands them over (every field it
    sets kept, the ones fusion fills reset): a deepcopy took most of a grid run."""
    return [replace(c, raw=dict(c.raw), memory_ids=list(c.memory_ids), normalized={},
                    own={}, score=0.0, own_score=0.0) for c in candidates]


def ranking(candidates: list[Candidate], config: SearchConfig, dia: dict[str, set[str]],
            evidence: dict[str, float] | None = None) -> list[set[str]]:
    """The dia_id sets of the top LIMIT hits after fusing `candidates` under `config`."""
    fused = fuse(fresh(candidates), config, evidence)[:LIMIT]
    return [set().union(*(dia.get(m, set()) for m in c.memory_ids)) for c in fused]


def evaluate(questions: list[Question], mode: str, config: SearchConfig,
             maps: dict[str, dict[str, set[str]]]) -> dict[int, list[dict[str, float]]]:
    """Per-category scores of every question under one fusion setting."""
    out: dict[int, list[dict[str, float]]] = defaultdict(list)
    for q in questions:
        ranked = ranking(q.candidates[mode], config, maps[q.sample], q.evidence.get(mode))
        out[q.category].append(score(ranked, q.gold))
    return out


def averages(results: dict[int, list[dict[str, float]]], categories) -> dict[str, dict]:
    """category name (and "overall": LoCoMo's own questions, not the implicit ones) ->
    metric -> mean percentage."""
    groups = [(CATEGORIES[c], results.get(c, [])) for c in categories]
    groups.append(("overall", [r for c in categories if c != IMPLICIT
                               for r in results.get(c, [])]))
    return {name: {m: 100 * sum(r[m] for r in rs) / len(rs) for m in METRICS}
            for name, rs in groups if rs}


def grid_configs() -> list[tuple[dict, SearchConfig]]:
    """Every setting the folds choose from (the shipped context settings throughout)."""
    base = SearchConfig()
    out = []
    for values in itertools.product(*GRID.values()):
        settings = dict(zip(GRID, values, strict=True))
        weight = settings["bm25_weight"]
        out.append((settings, base.model_copy(update={
            "vector_calibration": "background", "vector_floor": 0.0,
            "vector_ceiling": settings["vector_ceiling"],
            "vector_z_floor": settings["vector_z_floor"],
            "vector_z_span": settings["vector_z_span"], "bm25_half": settings["bm25_half"],
            "relation_bm25_half": settings["bm25_half"] / 2, "bm25_coverage": 1.0,
            "bm25_min_coverage": settings["bm25_min_coverage"],
            "weights": {"vector": 1.0, "bm25": weight, "graph": 1.0}})))
    for half, weight in itertools.product(*FIXED_GRID.values()):
        settings = {"fixed": True, "bm25_half": half, "bm25_weight": weight}
        out.append((settings, base.model_copy(update={
            "vector_calibration": "fixed", "vector_floor": 0.0, "vector_ceiling": 0.75,
            "bm25_half": half, "relation_bm25_half": half / 2, "bm25_coverage": 0.0,
            "weights": {"vector": 1.0, "bm25": weight, "graph": 1.0}})))
    return out


def objective(results: dict[int, list[dict[str, float]]]) -> float:
    """What a fold maximises on its training conversations: mean of r@1, r@5, r@10 over
    LoCoMo's questions, plus IMPLICIT_WEIGHT times the implicit pairs' r@10 when they
    are asked (40-odd pairs beside 600 questions would weigh nothing as questions)."""
    rows = [r for c, rs in results.items() if c != IMPLICIT for r in rs]
    value = sum(r["r@1"] + r["r@5"] + r["r@10"] for r in rows) / (3 * len(rows))
    implicit = results.get(IMPLICIT, [])
    if implicit:
        value += IMPLICIT_WEIGHT * sum(r["r@10"] for r in implicit) / len(implicit)
    return value


def leave_one_out(questions: list[Question], maps, categories) -> tuple[list, dict]:
    """Fit on all conversations but one, report on it; returns (rows, per-fold figures)."""
    configs = grid_configs()
    by_sample: dict[str, list[Question]] = defaultdict(list)
    for q in questions:
        by_sample[q.sample].append(q)
    cache: dict[tuple[str, int], dict[int, list]] = {}
    for sample, qs in tqdm(list(by_sample.items()), desc="grid per conversation"):
        for i, (_, config) in enumerate(configs):
            cache[(sample, i)] = evaluate(qs, "merged", config, maps)
    folds = {}
    for held_out in by_sample:
        best = max(range(len(configs)), key=lambda i: objective(_merge(
            [cache[(s, i)] for s in by_sample if s != held_out])))
        folds[held_out] = (configs[best][0], averages(cache[(held_out, best)], categories))
    return configs, folds


def fold_results(questions: list[Question], maps, folds: dict) -> list[dict[int, list]]:
    """Each held-out conversation's per-question scores under the settings its fold
    chose."""
    chosen = {settings_key(settings): config for settings, config in grid_configs()}
    out = []
    for held_out, (settings, _) in folds.items():
        qs = [q for q in questions if q.sample == held_out]
        out.append(evaluate(qs, "merged", chosen[settings_key(settings)], maps))
    return out


def settings_key(settings: dict) -> str:
    """A fold's chosen settings as a lookup key."""
    return json.dumps(settings, sort_keys=True)


def _merge(parts: list[dict[int, list]]) -> dict[int, list]:
    out: dict[int, list] = defaultdict(list)
    for part in parts:
        for category, rows in part.items():
            out[category] += rows
    return out


def gather(samples: list[dict], categories, infer: bool, k: int,
           search: SearchConfig | None = None, timestamps: bool = False):
    """Store the conversations, then gather every question's candidates per mode (and
    time `search` itself, checking on every tenth question that offline fusion of the
    candidates ranks exactly as it does)."""
    defaults = search or SearchConfig()
    latency: list[float] = []
    mismatches = 0
    with tempfile.TemporaryDirectory() as tmp, Memory(
            MemoryConfig(data_dir=tmp, search=defaults)) as memory:
        started = time.perf_counter()
        maps = {s["sample_id"]: load(memory, s, infer, timestamps)
                for s in tqdm(samples, desc="storing conversations", unit="conv")}
        stored = time.perf_counter() - started
        asked = [(s["sample_id"], q) for s in samples for q in s["qa"]
                 if q["category"] in categories and evidence_ids(q.get("evidence", []))]
        questions = [Question(sample, q["category"], evidence_ids(q["evidence"]))
                     for sample, q in asked]
        retriever = memory.engines.retriever  # the benchmark fuses its candidates
        for i, (question, (_, qa)) in enumerate(tqdm(list(zip(questions, asked, strict=True)),
                                                     desc="searching", unit="q")):
            scope = Scope.of(question.sample)
            for mode, signals in MODES.items():
                kept, pool, _ = retriever.candidates(qa["question"], scope, k=k,
                                                     signals=signals)
                question.candidates[mode] = kept
                question.evidence[mode] = pool.evidence
            t0 = time.perf_counter()
            online = memory.search(qa["question"], user_id=question.sample,
                                   limit=LIMIT)["results"]
            latency.append(time.perf_counter() - t0)
            if i % 10 == 0:  # offline fusion must rank exactly as search does
                offline = fuse(fresh(question.candidates["merged"]), defaults,
                               question.evidence["merged"])[:LIMIT]
                mismatches += [h["id"] for h in online] != [c.id for c in offline]
    return maps, questions, stored, latency, mismatches


def main(argv: list[str] | None = None) -> int:
    """Load, gather candidates, fuse, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit-conversations", type=int, default=None)
    parser.add_argument("--with-adversarial", action="store_true")
    parser.add_argument("--infer", action="store_true",
                        help="extract facts and relations (rules) instead of storing turns")
    parser.add_argument("--loco", action="store_true",
                        help="fit the fusion settings leave-one-conversation-out")
    parser.add_argument("--implicit", action="store_true",
                        help="stitch the implicit-recall pairs (implicit_recall.py) into the "
                             "conversations and ask their triggers too (category 6)")
    parser.add_argument("--context-weight", type=float, default=None,
                        help="store and search with this search.context_weight")
    parser.add_argument("--timestamps", action="store_true",
                        help="add each turn with its session's date as its timestamp")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--candidates", type=Path, default=None,
                        help="keep the gathered candidates in this file and reuse them on the "
                             "next run (to try fusion settings without storing again)")
    args = parser.parse_args(argv)
    samples = json.loads(args.data.read_text())[: args.limit_conversations]
    categories = (1, 2, 3, 4, 5) if args.with_adversarial else (1, 2, 3, 4)
    if args.implicit:
        samples = stitch(samples)
        categories += (IMPLICIT,)
    defaults = SearchConfig()
    k = max(LIMIT * defaults.candidate_factor, defaults.min_candidates)
    if args.candidates is not None and args.candidates.exists():
        with args.candidates.open("rb") as f:
            maps, questions, stored, latency, mismatches = pickle.load(f)
    else:
        search = (None if args.context_weight is None
                  else SearchConfig(context_weight=args.context_weight))
        maps, questions, stored, latency, mismatches = gather(
            samples, categories, args.infer, k, search, args.timestamps)
        if args.candidates is not None:
            with args.candidates.open("wb") as f:
                pickle.dump((maps, questions, stored, latency, mismatches), f)
    n_turns = sum(len(m) for m in maps.values())
    print(f"\n{len(samples)} conversations, {n_turns} stored memories in {stored:.1f} s, "
          f"{len(questions)} questions (categories {', '.join(map(str, categories))}); "
          f"offline fusion differed from search on {mismatches} sampled questions")
    figures = {mode: averages(evaluate(questions, mode, defaults, maps), categories)
               for mode in MODES}
    rows = [[mode, name, str(sum(1 for q in questions if CATEGORIES[q.category] == name)
                             if name != "overall"
                             else sum(1 for q in questions if q.category != IMPLICIT))]
            + [f"{avg[m]:.1f}" for m in METRICS]
            for mode, by_name in figures.items() for name, avg in by_name.items()]
    print("shipped defaults (SearchConfig()):")
    print(table(["mode", "category", "n"] + METRICS, rows))
    ms = sorted(1000 * x for x in latency)
    print(f"merged search latency (limit {LIMIT}) p50 {ms[len(ms) // 2]:.1f} ms, "
          f"p95 {ms[int(len(ms) * 0.95)]:.1f} ms")
    if args.loco:
        _, folds = leave_one_out(questions, maps, categories)
        rows = []
        for sample, (settings, avg) in folds.items():
            o = avg["overall"]
            rows.append([sample, json.dumps(settings)] + [f"{o[m]:.1f}" for m in METRICS])
        overall = [avg["overall"] for _, avg in folds.values()]
        mean = {m: sum(o[m] for o in overall) / len(overall) for m in METRICS}
        worst = min(overall, key=lambda o: o["r@10"])
        rows.append(["mean", ""] + [f"{mean[m]:.1f}" for m in METRICS])
        rows.append(["worst fold", ""] + [f"{worst[m]:.1f}" for m in METRICS])
        print("\nleave-one-conversation-out (settings chosen on the other conversations):")
        print(table(["held out", "chosen settings"] + METRICS, rows))
        # per category: each fold's questions scored under that fold's settings, pooled
        pooled = _merge(fold_results(questions, maps, folds))
        by_category = averages(pooled, categories)
        print("\nleave-one-conversation-out, per category (questions of all folds pooled):")
        print(table(["category"] + METRICS, [[name] + [f"{avg[m]:.1f}" for m in METRICS]
                                             for name, avg in by_category.items()]))
        figures["loco_categories"] = by_category
        figures["loco"] = {"folds": {s: {"settings": st, **avg} for s, (st, avg) in
                                     folds.items()}, "mean": mean, "worst": worst}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
