"""Write cost and speed side by side with mem0 1.0.11, on the same engines and endpoint.

Both systems get the same statements (the article's seven, then a generated stream of
first-person and relation statements about named people) for one user, on Milvus Lite +
Kuzu, with the same embedder and the same LLM endpoint: one loopback OpenAI-compatible
server that answers each request type of each system with a valid scripted answer (the
facts and triples the offline rules extractor finds in the statement) and records every
request. Per add: LLM calls, prompt and completion tokens, embedding calls, wall time with
an instant LLM and with a simulated LLM latency. Per search: LLM calls, p50/p95.

mem0 is not a dependency of hybridmem. Install it apart (it pins protobuf < 7):

    python -m venv --system-site-packages .venv-mem0
    .venv-mem0/bin/pip install "mem0ai[graph]==1.0.11"
    .venv-mem0/bin/python benchmarks/compare_mem0.py

`--retrieval [--limit-conversations N]`: instead, LoCoMo retrieval of both on the dev
file (turns verbatim, top 10, categories 1-4), MiniLM embeddings for both from one
endpoint. Written against mem0 2.x (`pip install mem0ai==2.2.1` in the virtualenv: its
search takes `filters={"user_id": ...}` and `top_k`).

`--footprint N`: instead, each system in a process of its own stores the same N generated
statements verbatim for one user (infer=False: no LLM, no graph) and answers 20 searches;
prints RSS after opening, after the adds, at peak, and the data dir's size.

Without mem0 importable the script says so and exits 0. Tokens are counted with the MiniLM
WordPiece tokenizer shipped with hybridmem (OpenAI's BPE tables cannot be fetched offline):
absolute counts differ from an API bill, the ratio between the systems does not much.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("MEM0_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import NAMES, percentiles, synthetic_statements, table  # noqa: E402
from hybridmem import Memory  # noqa: E402
from hybridmem.demo import STATEMENTS  # noqa: E402
from hybridmem.providers.extract import SELF, Message, RulesExtractor  # noqa: E402
from tests.fake_openai import FakeOpenAI, Reply, content_reply, tool_reply  # noqa: E402

ARTICLE = STATEMENTS
USER = "alice123"
DIMS = 128
QUERIES = ["What is my name?", "Who is Spider-Man?", "Do I like badminton?",
           *[f"Where does {n} live?" for n in NAMES[:12]], "What do I enjoy?",
           "Who has a dog?", "Which friend works at Acme?"]


class Recorder:
    """Answers both systems' requests from the statements' rules extraction; counts."""

    def __init__(self, statements: list[str], latency: float) -> None:
        from importlib import resources

        from tokenizers import BertWordPieceTokenizer

        vocab = resources.files("hybridmem.providers.embed") / "data" / "minilm-vocab.txt"
        self._tok = BertWordPieceTokenizer(str(vocab), lowercase=True)
        self.latency = latency
        self.truth = {s: RulesExtractor().extract([Message("user", s)]) for s in statements}
        self._by_length = sorted(statements, key=len, reverse=True)
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting afresh."""
        self.calls: dict[str, int] = defaultdict(int)
        self.tokens = {"prompt": 0, "completion": 0}

    def count(self, text: str) -> int:
        """Tokens in a text (WordPiece)."""
        return len(self._tok.encode(text, add_special_tokens=False).ids) if text else 0

    def statement_in(self, text: str) -> str | None:
        """The longest known statement contained in a prompt."""
        return next((s for s in self._by_length if s in text), None)

    def handle(self, body: dict) -> Reply:
        """One chat request: classify it, answer it validly, record its cost."""
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        messages = body["messages"]
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        kind = tools[0] if tools else (
            "mem0_update_memory" if len(messages) == 1 else "mem0_extract_facts")
        if kind == "mem0_update_memory":
            # The prompt lists old memories too; the new fact follows this heading.
            where = prompt.lower().rfind("new retrieved facts")
            focus = prompt[max(where, 0):]
        else:
            focus = messages[-1].get("content") or ""
        statement = self.statement_in(focus) or self.statement_in(prompt)
        reply = self._answer(kind, statement)
        completion = json.dumps(reply.body["choices"][0]["message"])
        with self.lock:
            self.calls[kind] += 1
            self.tokens["prompt"] += self.count(prompt) + self.count(json.dumps(
                body.get("tools") or body.get("response_format") or ""))
            self.tokens["completion"] += self.count(completion)
        reply.delay = self.latency
        return reply

    def _answer(self, kind: str, statement: str | None) -> Reply:
        found = self.truth.get(statement) if statement else None
        facts = found.facts if found else []
        rels = found.relations if found else []

        def who(name: str, self_name: str) -> str:
            return self_name if name == SELF else name

        if kind == "record_memories":  # hybridmem: everything in one call
            return tool_reply({
                "facts": facts,
                "entities": [{"name": who(n, "USER"), "type": t}
                             for n, t in (found.entity_types.items() if found else [])],
                "relations": [{"source": who(r.source, "USER"), "relation": r.relation,
                               "target": r.target, "fact_index": r.fact_index,
                               "negated": r.negated} for r in rels],
            })
        if kind == "judge_conflicts":
            return tool_reply({"decisions": []}, "judge_conflicts")
        if kind == "mem0_extract_facts":
            return content_reply(json.dumps({"facts": facts}))
        if kind == "mem0_update_memory":
            return content_reply(json.dumps({"memory": [
                {"id": str(i), "text": f, "event": "ADD"} for i, f in enumerate(facts)]}))
        if kind == "extract_entities":
            names = {who(r.source, USER): r.source_type for r in rels}
            names.update({r.target: r.target_type for r in rels})
            return tool_reply({"entities": [{"entity": n, "entity_type": t}
                                            for n, t in names.items()]}, "extract_entities")
        if kind in ("establish_relationships", "establish_relations"):
            return tool_reply({"entities": [
                {"source": who(r.source, USER), "relationship": r.relation,
                 "destination": r.target} for r in rels if not r.negated]}, kind)
        if kind == "delete_graph_memory":
            return content_reply("")  # nothing to delete: no tool call
        return content_reply("{}")


def hybridmem_memory(server: FakeOpenAI, data_dir: Path, dims: int = DIMS) -> Memory:
    """hybridmem on Milvus Lite + Kuzu, LLM and embedder on the shared endpoint."""
    return Memory.from_config({
        "data_dir": str(data_dir),
        "llm": {"provider": "openai", "config": {"model": "m", "api_key": "sk",
                                                 "openai_base_url": server.base_url}},
        "embedder": {"provider": "openai", "config": {
            "model": "e", "embedding_dims": dims, "api_key": "sk",
            "openai_base_url": server.base_url}},
    })


def mem0_memory(server: FakeOpenAI, data_dir: Path, graph: bool = True, dims: int = DIMS):
    """mem0 1.0.11 on Milvus Lite + Kuzu (or without a graph), LLM and embedder on the
    shared endpoint."""
    from mem0 import Memory as Mem0Memory

    data_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "llm": {"provider": "openai", "config": {"model": "m", "api_key": "sk",
                                                 "openai_base_url": server.base_url}},
        "embedder": {"provider": "openai", "config": {
            "model": "e", "embedding_dims": dims, "api_key": "sk",
            "openai_base_url": server.base_url}},
        "vector_store": {"provider": "milvus", "config": {
            "url": str(data_dir / "milvus.db"), "token": "", "collection_name": "mem0bench",
            "embedding_model_dims": dims}},
        "graph_store": {"provider": "kuzu", "config": {"db": str(data_dir / "graph.kuzu")}},
        "history_db_path": str(data_dir / "history.db"),
        "version": "v1.1",
    }
    if not graph:
        del config["graph_store"]
    return Mem0Memory.from_config(config)


def run_system(name: str, make, server: FakeOpenAI, recorder: Recorder,
               statements: list[str], timed: int, latency: float) -> dict:
    """Add every statement, then search; return the cost figures."""
    tmp = Path(tempfile.mkdtemp(prefix=f"cmp-{name}-"))
    try:
        memory = make(server, tmp / "instant")
        recorder.latency = 0.0
        recorder.reset()
        embeds_before = len(server.embedding_requests())
        add_times = []
        for text in statements:
            t0 = time.perf_counter()
            memory.add(text, user_id=USER)
            add_times.append(time.perf_counter() - t0)
        add_calls = sum(recorder.calls.values())
        add_tokens = dict(recorder.tokens)
        add_kinds = dict(recorder.calls)
        embeds = len(server.embedding_requests()) - embeds_before
        recorder.reset()
        search_times = []
        for query in QUERIES * 3:
            t0 = time.perf_counter()
            memory.search(query, user_id=USER, limit=5)
            search_times.append(time.perf_counter() - t0)
        search_calls = sum(recorder.calls.values())
        _close(memory)
        # The same adds again on a fresh store, with a simulated LLM latency.
        slow = make(server, tmp / "slow")
        recorder.latency = latency
        slow_times = []
        for text in statements[:timed]:
            t0 = time.perf_counter()
            slow.add(text, user_id=USER)
            slow_times.append(time.perf_counter() - t0)
        slow_search = []
        for query in QUERIES:
            t0 = time.perf_counter()
            slow.search(query, user_id=USER, limit=5)
            slow_search.append(time.perf_counter() - t0)
        recorder.latency = 0.0
        _close(slow)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(statements)
    return {
        "llm_per_add": add_calls / n, "kinds": add_kinds,
        "prompt_tokens": add_tokens["prompt"] / n,
        "completion_tokens": add_tokens["completion"] / n,
        "embeds_per_add": embeds / n, "add_ms": percentiles(add_times),
        "add_slow_ms": percentiles(slow_times),
        "llm_per_search": search_calls / len(search_times),
        "search_ms": percentiles(search_times), "search_slow_ms": percentiles(slow_search),
    }


def _close(memory) -> None:
    close = getattr(memory, "close", None)
    if close is not None:
        close()
    else:  # mem0 1.0.11 has no close(): release what it opened so the next store can open
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_all()


def footprint_child(system: str, count: int, base_url: str) -> None:
    """In a process of its own: one user's `count` statements stored verbatim (no LLM,
    no graph), 20 searches, then RSS and the data dir's size as one JSON line."""
    import json as _json

    from benchmarks.scale import disk_mb, rss_mb

    server = type("Endpoint", (), {"base_url": base_url})()
    texts = synthetic_statements(count, seed=5)
    with tempfile.TemporaryDirectory(prefix=f"footprint-{system}-") as tmp:
        if system == "hybridmem":
            memory = hybridmem_memory(server, Path(tmp))
        else:
            memory = mem0_memory(server, Path(tmp), graph=False)
        opened = rss_mb()
        t0 = time.perf_counter()
        for start in range(0, count, 500):
            chunk = texts[start : start + 500]
            memory.add([{"role": "user", "content": t} for t in chunk], user_id=USER,
                       infer=False)
        seconds = time.perf_counter() - t0
        for query in QUERIES:
            memory.search(query, user_id=USER, limit=10)
        figures = {"opened": opened, "rss": rss_mb(), "peak": rss_mb("VmHWM"),
                   "seconds": seconds}
        _close(memory)
        figures["disk"] = disk_mb(Path(tmp))
    print(_json.dumps(figures))


def footprint(count: int) -> int:
    """RSS and disk of both systems holding the same `count` memories (each system in a
    process of its own, embeddings from one shared endpoint in this one)."""
    import subprocess

    from mem0 import __version__ as mem0_version  # type: ignore[attr-defined]

    rows = []
    with FakeOpenAI(embedding_dims=DIMS) as server:
        results = {}
        for system in ("hybridmem", "mem0"):
            out = subprocess.run(
                [sys.executable, __file__, "--footprint-child", system, str(count),
                 server.base_url], capture_output=True, text=True, check=True)
            results[system] = json.loads(out.stdout.strip().splitlines()[-1])
    for label, key in [("RSS after open (MiB)", "opened"), ("RSS after adds + 20 searches",
                                                            "rss"),
                       ("peak RSS", "peak"), ("disk (MiB)", "disk")]:
        ours, theirs = results["hybridmem"][key], results["mem0"][key]
        rows.append([label, f"{ours:.0f}", f"{theirs:.0f}", f"{theirs / ours:.2f}x"])
    growth = {k: r["rss"] - r["opened"] for k, r in results.items()}
    rows.append(["RSS growth (after adds - after open)", f"{growth['hybridmem']:.0f}",
                 f"{growth['mem0']:.0f}", f"{growth['mem0'] / growth['hybridmem']:.2f}x"])
    rows.append(["adds (s)", f"{results['hybridmem']['seconds']:.0f}",
                 f"{results['mem0']['seconds']:.0f}",
                 f"{results['mem0']['seconds'] / results['hybridmem']['seconds']:.1f}x"])
    print(f"{count:,} memories of one user stored verbatim (infer=False, no graph), "
          f"{DIMS}-d vectors from one endpoint; Milvus Lite; mem0 {mem0_version}")
    print(table(["", "hybridmem", f"mem0 {mem0_version}", "mem0 / hybridmem"], rows))
    return 0


class MiniLMEndpoint(FakeOpenAI):
    """The loopback endpoint, its embeddings from hybridmem's local MiniLM: both systems
    embed with the same model through the same OpenAI-compatible API."""

    def __init__(self) -> None:
        from hybridmem.providers.embed.local import LocalEmbedder

        super().__init__(embedding_dims=384)
        self._local = LocalEmbedder()

    def _embeddings(self, body: dict) -> Reply:
        import base64

        import numpy as np

        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = self._local.embed(texts)
        base = body.get("encoding_format") == "base64"
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(np.asarray(v, "<f4").tobytes()).decode()
                 if base else [float(x) for x in v]} for i, v in enumerate(vectors)]
        return Reply(body={"object": "list", "data": data, "model": body.get("model"),
                           "usage": {"prompt_tokens": 1, "total_tokens": 1}})


def retrieval(limit_conversations: int | None) -> int:
    """LoCoMo retrieval, both systems on the same turns and questions (locomo_retrieval.py's
    protocol: each turn stored verbatim, infer=False, one scope per conversation, the
    question as the query, top 10; categories 1-4), the same MiniLM embeddings through one
    endpoint, each at its shipped search defaults (mem0: threshold 0, so no hit is dropped).
    """
    from mem0 import __version__ as mem0_version  # type: ignore[attr-defined]

    from benchmarks.locomo_retrieval import (
        CATEGORIES,
        DEFAULT_DATA,
        evidence_ids,
        score,
        turns,
    )

    samples = json.loads(DEFAULT_DATA.read_text())[:limit_conversations]
    results: dict[str, dict[int, list[dict[str, float]]]] = {}
    with MiniLMEndpoint() as server, tempfile.TemporaryDirectory() as tmp:
        systems = {"hybridmem": hybridmem_memory(server, Path(tmp) / "h", dims=384),
                   f"mem0 {mem0_version}": mem0_memory(server, Path(tmp) / "m", graph=False,
                                                       dims=384)}
        for name, memory in systems.items():
            out: dict[int, list[dict[str, float]]] = defaultdict(list)
            for sample in samples:
                scope = sample["sample_id"]
                for _, _, turn in turns(sample):
                    text = f"{turn['speaker']}: {turn['text']}"
                    if turn.get("blip_caption"):
                        text += f" [shares a photo: {turn['blip_caption']}]"
                    memory.add([{"role": "user", "content": text}], user_id=scope,
                               infer=False, metadata={"dia_id": turn["dia_id"]})
                for qa in sample["qa"]:
                    gold = evidence_ids(qa.get("evidence", []))
                    if qa["category"] not in (1, 2, 3, 4) or not gold:
                        continue
                    if name == "hybridmem":
                        hits = memory.search(qa["question"], user_id=scope, limit=10)
                    else:
                        hits = memory.search(qa["question"], filters={"user_id": scope},
                                             top_k=10, threshold=0.0)
                    ranked = [evidence_ids([(h.get("metadata") or {}).get("dia_id", "")])
                              for h in hits["results"]]
                    out[qa["category"]].append(score(ranked, gold))
            results[name] = out
            _close(memory)
    metrics = ["r@1", "r@5", "r@10", "mrr"]
    rows = []
    for name, out in results.items():
        for c in (1, 2, 3, 4, None):
            rs = out[c] if c else [r for v in out.values() for r in v]
            rows.append([name, CATEGORIES[c] if c else "overall", str(len(rs))]
                        + [f"{100 * sum(r[m] for r in rs) / len(rs):.1f}" for m in metrics])
    print(f"LoCoMo retrieval, {len(samples)} conversations, MiniLM embeddings from one "
          "endpoint for both, Milvus Lite")
    print(table(["system", "category", "n"] + metrics, rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run both systems and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=300,
                        help="generated statements after the article's seven")
    parser.add_argument("--timed", type=int, default=40,
                        help="adds repeated with the simulated LLM latency")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per LLM call")
    parser.add_argument("--footprint", type=int, default=None, metavar="N",
                        help="instead: RSS and disk of both holding N verbatim memories")
    parser.add_argument("--footprint-child", nargs=3, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--retrieval", action="store_true",
                        help="instead: LoCoMo retrieval of both with the same embedder")
    parser.add_argument("--limit-conversations", type=int, default=None)
    args = parser.parse_args(argv)
    if args.footprint_child:
        system, count, base_url = args.footprint_child
        footprint_child(system, int(count), base_url)
        return 0
    try:
        import mem0  # noqa: F401
        from mem0 import __version__ as mem0_version  # type: ignore[attr-defined]
    except ImportError:
        print("mem0ai is not importable here: install mem0ai[graph]==1.0.11 in a separate "
              "virtualenv (see this script's docstring) to compare. Nothing measured.")
        return 0
    if args.footprint:
        return footprint(args.footprint)
    if args.retrieval:
        return retrieval(args.limit_conversations)
    statements = ARTICLE + synthetic_statements(args.statements, seed=11)
    recorder = Recorder(statements, 0.0)
    with FakeOpenAI(embedding_dims=DIMS) as server:
        server.chat_handler = recorder.handle
        ours = run_system("hybridmem", hybridmem_memory, server, recorder, statements,
                          args.timed, args.latency)
        theirs = run_system("mem0", mem0_memory, server, recorder, statements,
                            args.timed, args.latency)
    print(f"{len(statements)} adds for one user, {len(QUERIES) * 3} searches; Milvus Lite + "
          f"Kuzu; same endpoint and embedder; mem0 {mem0_version}")
    ms = "{:.0f} / {:.0f}".format
    rows = [
        ["LLM calls per add", f"{ours['llm_per_add']:.2f}", f"{theirs['llm_per_add']:.2f}",
         f"{theirs['llm_per_add'] / ours['llm_per_add']:.1f}x fewer"],
        ["prompt tokens per add", f"{ours['prompt_tokens']:.0f}", f"{theirs['prompt_tokens']:.0f}",
         f"{theirs['prompt_tokens'] / ours['prompt_tokens']:.1f}x fewer"],
        ["completion tokens per add", f"{ours['completion_tokens']:.0f}",
         f"{theirs['completion_tokens']:.0f}",
         f"{theirs['completion_tokens'] / ours['completion_tokens']:.1f}x fewer"],
        ["embedding calls per add", f"{ours['embeds_per_add']:.2f}",
         f"{theirs['embeds_per_add']:.2f}",
         f"{theirs['embeds_per_add'] / ours['embeds_per_add']:.1f}x fewer"],
        ["add ms p50 / p95, instant LLM", ms(*ours["add_ms"]), ms(*theirs["add_ms"]),
         f"{theirs['add_ms'][0] / ours['add_ms'][0]:.1f}x faster"],
        [f"add ms p50 / p95, LLM {args.latency * 1000:.0f} ms/call", ms(*ours["add_slow_ms"]),
         ms(*theirs["add_slow_ms"]),
         f"{theirs['add_slow_ms'][0] / ours['add_slow_ms'][0]:.1f}x faster"],
        ["LLM calls per search", f"{ours['llm_per_search']:.2f}",
         f"{theirs['llm_per_search']:.2f}", "-"],
        ["search ms p50 / p95, instant LLM", ms(*ours["search_ms"]), ms(*theirs["search_ms"]),
         f"{theirs['search_ms'][0] / ours['search_ms'][0]:.1f}x faster"],
        [f"search ms p50 / p95, LLM {args.latency * 1000:.0f} ms/call", ms(*ours["search_slow_ms"]),
         ms(*theirs["search_slow_ms"]),
         f"{theirs['search_slow_ms'][0] / ours['search_slow_ms'][0]:.1f}x faster"],
    ]
    print(table(["per operation", "hybridmem", "mem0 1.0.11", "hybridmem vs mem0"], rows))
    print("LLM calls by kind, hybridmem:", ours["kinds"])
    print("LLM calls by kind, mem0:     ", theirs["kinds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
