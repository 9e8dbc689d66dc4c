"""Extraction quality per extractor: the rules extractor, and the LLM extractor on a real
local model in each mode, on a labelled set of our own (`extraction_gold.py`).

Reports, per extractor:
- triple precision / recall / F1 against the gold triples (relation names mapped onto
  relation classes, entities compared case-insensitively, "USER" = the speaker), overall
  and per case (names, relations to the user, third parties, preferences, negation,
  retractions, changes of state, small talk, several facts); and on `RULES_HELDOUT`, 30
  messages written after the rules' change-of-state patterns were planned and before
  they were written, never used to write a rule or a prompt;
- fact recall: gold facts matched by an extracted fact (local MiniLM cosine >= 0.7), on
  the set, and on LoCoMo dev observations (each sampled turn extracted with the speaker
  as the user; cosine >= 0.6 against the turn's observation lines, which are written in
  the third person);
- contradictions resolved: pairs told one after the other through `Memory.add` (a fresh
  scope each); resolved = the first memory is no longer current and no current relation
  rests on it alone (one the second statement says again rests on both); for pairs that
  do not contradict, how often the first was wrongly ended;
- LLM calls and seconds per add (from the contradiction runs, which go through `add`).

The LLM runs against an OpenAI-compatible server (default the local Qwen2.5-Coder-1.5B
of `../shared/llm/local-llm`, 127.0.0.1:8089). Run:
`python benchmarks/extraction_quality.py [--extractors rules,tools,json_object]
[--url URL] [--observations 40] [--every K] [--json FILE] [--only-contradictions |
--skip-contradictions]`.
`--every K` scores every K-th labelled message only (a quicker run on a real model; the
table says how many were used).
An answer the model could not make valid (two tries) counts as an empty extraction and
is reported as a failed answer; through `add` it is an add that raised.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table  # noqa: E402
from benchmarks.extraction_gold import (  # noqa: E402
    CONTRADICTIONS,
    MESSAGES,
    RELATION_CLASSES,
    RULES_HELDOUT,
)
from hybridmem import Memory  # noqa: E402
from hybridmem.config import LLMConfig  # noqa: E402
from hybridmem.errors import ExtractionError  # noqa: E402
from hybridmem.providers.chat import JSONChat  # noqa: E402
from hybridmem.providers.embed.local import LocalEmbedder  # noqa: E402
from hybridmem.providers.extract import SELF, LLMExtractor, Message, RulesExtractor  # noqa: E402
from hybridmem.providers.extract.base import Extraction  # noqa: E402
from hybridmem.text import entity_key, relation_name  # noqa: E402

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev.json"
_CLASS_OF = {name: cls for cls, names in RELATION_CLASSES.items() for name in names}


def canonical(subject: str, relation: str, obj: str, negated: bool = False) -> tuple:
    """A triple as the scorer compares it."""
    def entity(name: str) -> str:
        key = entity_key(name)
        if name == SELF or key in ("user", "i", "me", "@self"):
            return "USER"
        return re.sub(r"^(my|our|the user's)\s+", "", key)

    name = relation_name(relation)
    return entity(subject), _CLASS_OF.get(name, name), entity(obj), bool(negated)


def extractor_for(name: str, url: str):
    """(extractor, chat or None) for "rules", "tools", "json_object" or "json_schema"."""
    if name == "rules":
        return RulesExtractor(), None
    chat = JSONChat(LLMConfig(model="local", api_key="local", base_url=url, mode=name,
                              timeout=600, max_retries=1))
    return LLMExtractor(chat), chat


FAILED: dict[str, int] = defaultdict(int)  # answers that never became valid, per extractor


def extract(extractor, name: str, text: str, user_name: str | None = None) -> Extraction:
    """One extraction; an answer the model could not make valid counts as empty."""
    try:
        return extractor.extract([Message("user", text)], user_name=user_name)
    except ExtractionError:
        FAILED[name] += 1
        return Extraction()


def score_triples(extractor, name: str, messages: list) -> tuple[dict, dict, float]:
    """Per-case and overall (tp, fp, fn), and the seconds spent."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    facts: list[tuple[list[str], list[str]]] = []
    said: list[dict] = []  # what was extracted from each message, for the --json file
    started = time.perf_counter()
    for i, (text, case, gold_facts, gold) in enumerate(messages):
        if i % 20 == 0:
            print(f"{name}: message {i}/{len(messages)}", file=sys.stderr, flush=True)
        extraction = extract(extractor, name, text)
        predicted = {canonical(r.source, r.relation, r.target, r.negated)
                     for r in extraction.relations}
        wanted = {canonical(*t) for t in gold}
        tp = len(predicted & wanted)
        for key in (case, "all"):
            counts[key][0] += tp
            counts[key][1] += len(predicted) - tp
            counts[key][2] += len(wanted) - tp
        facts.append((gold_facts, extraction.facts))
        said.append({"text": text, "facts": extraction.facts,
                     "triples": sorted(map(list, predicted)), "gold": sorted(map(list, wanted))})
    return counts, {"facts": facts, "predictions": said}, time.perf_counter() - started


def fact_recall(pairs: list[tuple[list[str], list[str]]], embedder, threshold: float) -> float:
    """Share of gold facts with an extracted fact at cosine >= threshold."""
    hit = total = 0
    for gold, got in pairs:
        if not gold:
            continue
        total += len(gold)
        if not got:
            continue
        sims = embedder.embed(gold) @ embedder.embed(got).T
        hit += int((sims.max(axis=1) >= threshold).sum())
    return hit / total if total else 0.0


def locomo_pairs(extractor, name: str, n: int) -> list[tuple[list[str], list[str]]]:
    """(observation lines, extracted facts) for the first `n` observed turns."""
    if not LOCOMO.exists() or n <= 0:
        return []
    out = []
    for sample in json.loads(LOCOMO.read_text()):
        turns = {t["dia_id"]: t for k, v in sample["conversation"].items()
                 if re.fullmatch(r"session_\d+", k) for t in v}
        for session in sample["observation"].values():
            for speaker, lines in session.items():
                for observation, dia_id in lines:
                    turn = turns.get(dia_id if isinstance(dia_id, str) else "")
                    if turn is None:
                        continue
                    got = extract(extractor, name, turn["text"], user_name=speaker).facts
                    out.append(([observation], [f.replace("I ", f"{speaker} ", 1)
                                                for f in got]))
                    if len(out) >= n:
                        return out
    return out


def contradictions(name: str, url: str) -> dict:
    """Through Memory.add: resolved contradictions, wrong endings, calls and time per add."""
    resolved = wrongly_ended = expected = unexpected = 0
    adds = calls = 0
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        config: dict = {"data_dir": tmp}
        if name != "rules":
            config["llm"] = {"provider": "openai", "config": {
                "model": "local", "api_key": "local", "openai_base_url": url, "mode": name,
                "timeout": 600, "max_retries": 1}}
        with Memory.from_config(config) as memory:
            chat = memory.engines.chat
            for i, (first, second, contradicts) in enumerate(CONTRADICTIONS):
                user = f"pair-{i}"
                before = chat.calls if chat else 0
                t0 = time.perf_counter()
                try:
                    [old, *_] = memory.add(first, user_id=user)["results"] or [None]
                    memory.add(second, user_id=user)
                except ExtractionError:
                    FAILED[name] += 1
                    continue
                finally:
                    seconds += time.perf_counter() - t0
                calls += (chat.calls - before) if chat else 0
                adds += 2
                if old is None:
                    continue
                current = {r["id"] for r in memory.get_all(user_id=user)["results"]}
                ended = old["id"] not in current
                if contradicts:
                    expected += 1
                    # a relation the second statement says again ("my sister Kim")
                    # rests on both memories and is rightly still current
                    still = [r for r in memory.get_all(user_id=user)["relations"]
                             if r["memory_ids"] == [old["id"]]]
                    resolved += ended and not still
                    if not (ended and not still):
                        print(f"{name}: unresolved: {first!r} -> {second!r}", file=sys.stderr)
                else:
                    unexpected += 1
                    wrongly_ended += ended
                    if ended:
                        print(f"{name}: wrongly ended: {first!r} by {second!r}", file=sys.stderr)
    return {"resolved": resolved, "contradictions": expected,
            "wrongly_ended": wrongly_ended, "non_contradictions": unexpected,
            "llm_calls_per_add": calls / adds, "seconds_per_add": seconds / adds}


_NOT_RUN = {"resolved": 0, "contradictions": 0, "wrongly_ended": 0, "non_contradictions": 0,
            "llm_calls_per_add": float("nan"), "seconds_per_add": float("nan")}


def main(argv: list[str] | None = None) -> int:
    """Run every extractor; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractors", default="rules,tools,json_object")
    parser.add_argument("--url", default="http://127.0.0.1:8089/v1")
    parser.add_argument("--observations", type=int, default=40)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only-contradictions", action="store_true",
                        help="run the contradiction pairs through add only")
    parser.add_argument("--skip-contradictions", action="store_true",
                        help="everything but the contradiction pairs")
    args = parser.parse_args(argv)
    if args.only_contradictions:
        rows = []
        for name in args.extractors.split(","):
            f = contradictions(name, args.url)
            rows.append([name, f"{f['resolved']}/{f['contradictions']}",
                         f"{f['wrongly_ended']}/{f['non_contradictions']}",
                         f"{f['llm_calls_per_add']:.2f}", f"{f['seconds_per_add']:.1f}",
                         str(FAILED[name])])
        print(table(["extractor", "contradictions resolved", "wrongly ended", "LLM calls/add",
                     "s/add", "failed adds"], rows))
        return 0
    messages = MESSAGES[::max(1, args.every)]
    embedder = LocalEmbedder()
    figures = {}
    for name in args.extractors.split(","):
        extractor, chat = extractor_for(name, args.url)
        counts, extra, seconds = score_triples(extractor, name, messages)
        tp, fp, fn = counts["all"]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_case = {case: (c[0], c[1], c[2]) for case, c in counts.items() if case != "all"}
        held, held_extra, _ = score_triples(extractor, name, RULES_HELDOUT)
        htp, hfp, hfn = held["all"]
        figures[name] = {
            "heldout_precision": htp / (htp + hfp) if htp + hfp else 0.0,
            "heldout_recall": htp / (htp + hfn) if htp + hfn else 0.0,
            "triple_precision": precision, "triple_recall": recall, "triple_f1": f1,
            "fact_recall": fact_recall(extra["facts"], embedder, 0.7),
            "locomo_fact_recall": fact_recall(
                locomo_pairs(extractor, name, args.observations), embedder, 0.6),
            "seconds_per_message": seconds / len(messages),
            "per_case": per_case,
            "predictions": extra["predictions"] + held_extra["predictions"],
            **(_NOT_RUN if args.skip_contradictions else contradictions(name, args.url)),
        }
        figures[name]["failed_answers"] = FAILED[name]
        summary = {k: v for k, v in figures[name].items()
                   if k not in ("per_case", "predictions")}
        print(f"{name}: {json.dumps(summary, default=float)}", file=sys.stderr)
    rows = [[name, f"{f['triple_precision']:.2f}", f"{f['triple_recall']:.2f}",
             f"{f['triple_f1']:.2f}",
             f"{f['heldout_precision']:.2f} / {f['heldout_recall']:.2f}",
             f"{f['fact_recall']:.2f}",
             f"{f['locomo_fact_recall']:.2f}",
             f"{f['resolved']}/{f['contradictions']}",
             f"{f['wrongly_ended']}/{f['non_contradictions']}",
             f"{f['llm_calls_per_add']:.2f}", f"{f['seconds_per_add']:.1f}",
             str(f["failed_answers"])]
            for name, f in figures.items()]
    print(f"{len(messages)} of {len(MESSAGES)} labelled messages, "
          f"{len(CONTRADICTIONS)} contradiction pairs, {args.observations} LoCoMo observations")
    print(f"held-out: all {len(RULES_HELDOUT)} messages written after the first measurement, "
          "never used to write rules or prompts")
    print(table(["extractor", "triple P", "triple R", "triple F1", "held-out P / R", "fact recall",
                 "LoCoMo fact recall", "contradictions resolved", "wrongly ended",
                 "LLM calls/add", "s/add", "failed answers"], rows))
    cases = sorted({c for f in figures.values() for c in f["per_case"]})
    rows = []
    for case in cases:
        row = [case]
        for f in figures.values():
            tp, fp, fn = f["per_case"].get(case, (0, 0, 0))
            p = tp / (tp + fp) if tp + fp else float("nan")
            r = tp / (tp + fn) if tp + fn else float("nan")
            row.append(f"P {p:.2f} R {r:.2f}")
        rows.append(row)
    print("\nper case (triples):")
    print(table(["case", *figures], rows))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
