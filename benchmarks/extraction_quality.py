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
- LLM calls and seconds per add (from the contradiction runs, which go through `add`);
- `--collateral`: the collateral set (`collateral_gold.py`), each scenario's statements
  added one by one for a fresh user: contradictions resolved (every relation labelled to
  end has ended, and every memory labelled to end is superseded), relations wrongly ended
  (any relation ended that was not labelled to end), relations kept (labelled to stay and
  current at the end), LLM calls and seconds per add. `--split dev` (even-indexed, the
  half to develop on), `held` (odd-indexed, kept aside: score it once, at the end, and
  say so next to the figure) or `all`; `--scenarios 0,4,6` runs only those indexes.

The LLM runs against an OpenAI-compatible server (default the local Qwen2.5-Coder-1.5B
of `../shared/llm/local-llm`, 127.0.0.1:8089). Run:
`python benchmarks/extraction_quality.py [--extractors rules,tools,json_object]
[--url URL] [--observations 40] [--every K] [--json FILE] [--only-contradictions |
--skip-contradictions | --collateral [--split dev|held|all] [--scenarios 0,2]]`.
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

from benchmarks.collateral_gold import DEV, HELD, SCENARIOS  # noqa: E402
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


def _memory_config(name: str, url: str, data_dir: str) -> dict:
    config: dict = {"data_dir": data_dir}
    if name != "rules":
        config["llm"] = {"provider": "openai", "config": {
            "model": "local", "api_key": "local", "openai_base_url": url, "mode": name,
            "timeout": 600, "max_retries": 1}}
    return config


def _triples(relations: list[dict], user: str) -> tuple[set[tuple], set[tuple]]:
    """(current, ended) relations of one user as (subject, class, object) triples; an
    ended relation that is current again (said again later) is not ended."""
    me = {entity_key(user)} | {entity_key(r["target"]) for r in relations
                               if r["relationship"] == "name"}

    def triple(r: dict) -> tuple:
        def entity(name: str, named: bool = False) -> str:
            key = entity_key(name)
            return "USER" if key in me and not named else re.sub(r"^(?:the|a|an)\s+", "", key)
        relation = canonical(r["source"], r["relationship"], r["target"])[1]
        return entity(r["source"]), relation, entity(r["target"], relation == "name")

    current = {triple(r) for r in relations if r["valid"]}
    ended = {triple(r) for r in relations if not r["valid"]} - current
    return current, ended


def _label(t: tuple) -> tuple:
    return canonical(t[0], t[1], t[2])[:1] + (
        _CLASS_OF.get(t[1], t[1]), re.sub(r"^(?:the|a|an)\s+", "", entity_key(t[2])))


def collateral(name: str, url: str, picked: list[tuple[int, tuple]]) -> dict:
    """Run collateral scenarios through Memory.add; the figures and each scenario's result."""
    resolved = changes = wrongly = kept = stay_total = adds = calls = 0
    seconds = 0.0
    details = []
    with tempfile.TemporaryDirectory() as tmp, \
            Memory.from_config(_memory_config(name, url, tmp)) as memory:
        chat = memory.engines.chat
        for n, (index, (statements, end, stay, end_memories)) in enumerate(picked):
            print(f"{name}: scenario {n + 1}/{len(picked)} (#{index})", file=sys.stderr,
                  flush=True)
            user = f"scenario-{index}"
            firsts: list[str | None] = []
            failed = False
            for text in statements:
                before = chat.calls if chat else 0
                t0 = time.perf_counter()
                try:
                    results = memory.add(text, user_id=user)["results"]
                except ExtractionError:
                    FAILED[name] += 1
                    failed = True
                    results = []
                seconds += time.perf_counter() - t0
                calls += (chat.calls - before) if chat else 0
                adds += 1
                firsts.append(results[0]["id"] if results else None)
            everything = memory.get_all(user_id=user, include_invalid=True)
            current, ended = _triples(everything["relations"], user)
            live = {r["id"] for r in everything["results"] if not r.get("superseded_at")}
            want_end = {_label(t) for t in end}
            want_stay = {_label(t) for t in stay}
            ok = None
            if end or end_memories:
                changes += 1
                ok = want_end <= ended and all(
                    firsts[i] is not None and firsts[i] not in live for i in end_memories)
                resolved += ok
            wrong = sorted(ended - want_end)
            wrongly += len(wrong)
            kept_here = want_stay & current
            kept += len(kept_here)
            stay_total += len(want_stay)
            details.append({"index": index, "statements": statements, "resolved": ok,
                            "wrongly_ended": wrong, "missing": sorted(want_stay - current),
                            "current": sorted(current), "ended": sorted(ended),
                            "failed": failed})
            # running totals, so a run stopped early still reports what it scored
            print(f"{name}: after {n + 1} scenarios: resolved {resolved}/{changes}, wrongly "
                  f"ended {wrongly}, kept {kept}/{stay_total}, LLM calls/add "
                  f"{calls / adds:.2f}, s/add {seconds / adds:.1f}", file=sys.stderr, flush=True)
            if ok is False or wrong or want_stay - current:
                print(f"{name}: #{index} {statements}: resolved={ok} wrongly ended={wrong} "
                      f"not kept={sorted(want_stay - current)} current={sorted(current)}",
                      file=sys.stderr, flush=True)
    return {"resolved": resolved, "changes": changes, "wrongly_ended": wrongly, "kept": kept,
            "stay": stay_total, "llm_calls_per_add": calls / adds if adds else float("nan"),
            "seconds_per_add": seconds / adds if adds else float("nan"), "details": details}


def run_collateral(args: argparse.Namespace) -> int:
    """The collateral table for the chosen split (or scenarios)."""
    if args.scenarios:
        wanted = {int(i) for i in args.scenarios.split(",")}
        picked = [(i, s) for i, s in enumerate(SCENARIOS) if i in wanted]
        label = f"scenarios {sorted(wanted)}"
    else:
        picked = {"dev": DEV, "held": HELD, "all": list(enumerate(SCENARIOS))}[args.split]
        label = {"dev": "development half (even-indexed)",
                 "held": "HELD-ASIDE half (odd-indexed), scored once",
                 "all": "all scenarios"}[args.split]
    rows, figures = [], {}
    for name in args.extractors.split(","):
        f = figures[name] = collateral(name, args.url, picked)
        rows.append([name, f"{f['resolved']}/{f['changes']}", str(f["wrongly_ended"]),
                     f"{f['kept']}/{f['stay']}", f"{f['llm_calls_per_add']:.2f}",
                     f"{f['seconds_per_add']:.1f}", str(FAILED[name])])
    print(f"collateral set: {label}, {len(picked)} scenarios")
    print(table(["extractor", "contradictions resolved", "relations wrongly ended",
                 "relations kept", "LLM calls/add", "s/add", "failed adds"], rows))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float))
    return 0


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
    parser.add_argument("--collateral", action="store_true",
                        help="the collateral set (collateral_gold.py) through add")
    parser.add_argument("--split", choices=["dev", "held", "all"], default="dev")
    parser.add_argument("--scenarios", default="",
                        help="comma-separated collateral scenario indexes to run")
    args = parser.parse_args(argv)
    if args.collateral:
        return run_collateral(args)
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
