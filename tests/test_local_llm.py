"""The LLM path on a REAL small model: Qwen2.5-Coder-1.5B-Instruct on llama.cpp's
OpenAI-compatible server (`../shared/llm/local-llm start`, which `.ci/run` runs), in the
forced-tool-call mode and the JSON-object mode; and the schemas we send compiled by
llama.cpp's own JSON-schema-to-grammar converter."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from hybridmem import Memory
from hybridmem.demo import QUERIES, STATEMENTS
from hybridmem.providers.chat import wire_schema
from hybridmem.schemas import load_schema

URL = os.environ.get("LOCAL_LLM_URL", "http://127.0.0.1:8089/v1")
VENV_PYTHON = Path(os.environ.get("LOCAL_LLM_DIR", Path.home() / ".cache" / "local-llm")
                   ) / "venv" / "bin" / "python"

# llama.cpp parses a grammar when a sampler is made from it (LlamaGrammar.from_string only
# keeps the text); a vocabulary-only load of the model is enough for that, and fast.
COMPILE = """
import json, sys
import llama_cpp
from llama_cpp.llama_grammar import json_schema_to_gbnf
model = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
vocab = llama_cpp.llama_model_get_vocab(model.model)
for line in sys.stdin:
    grammar = json_schema_to_gbnf(line)
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    print("ok" if sampler else "error", flush=True)
    if sampler:
        llama_cpp.llama_sampler_free(sampler)
"""
MODEL = VENV_PYTHON.parents[2] / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

# The server answers one request at a time: these tests take turns on one xdist worker
# rather than hold both workers waiting on each other.
pytestmark = pytest.mark.xdist_group("local_llm")


def _server_up() -> bool:
    # Generous: the server answers one request at a time, so while another test (or worker)
    # is generating, even GET /models waits for that generation to end.
    try:
        with urllib.request.urlopen(f"{URL}/models", timeout=120) as reply:
            return reply.status == 200
    except OSError:
        return False


def _starter_running() -> bool:
    """True while `.ci/run`'s background `local-llm start` (build, then serve) is at work."""
    pid = os.environ.get("LOCAL_LLM_STARTER_PID")
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def local_llm() -> bool:
    """Whether the local model is up; under `.ci/run` waits (up to 20 min) for its start."""
    deadline = time.monotonic() + 1200
    while not _server_up() and _starter_running() and time.monotonic() < deadline:
        time.sleep(5)
    return _server_up()


def _compile(schemas: list[dict]) -> list[str]:
    if not VENV_PYTHON.exists() or not MODEL.exists():
        pytest.skip(f"llama-cpp-python is not installed at {VENV_PYTHON} (run "
                    "../shared/llm/local-llm start; .ci/run does)")
    proc = subprocess.run([str(VENV_PYTHON), "-c", COMPILE, str(MODEL)], text=True,
                          capture_output=True,
                          input="\n".join(json.dumps(s) for s in schemas) + "\n", timeout=300)
    return proc.stdout.splitlines()


def test_the_schemas_we_send_compile_with_llama_cpp(local_llm):
    sent = [wire_schema(load_schema("extraction")), wire_schema(load_schema("conflict"))]
    assert _compile(sent) == ["ok", "ok"]


def test_the_compiler_refuses_what_we_no_longer_send(local_llm):
    """The check can fail: a string with maxLength 2000 (what we used to send) is refused
    by the very compiler that took the server down."""
    [verdict] = _compile([{"type": "object", "properties": {
        "facts": {"type": "array", "items": {"type": "string", "maxLength": 2000}}}}])
    assert verdict.startswith("error")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["tools", "json_object"])
def test_the_article_on_a_real_small_model(tmp_path, mode, local_llm):
    if not local_llm:
        pytest.skip(f"no local model at {URL} (run ../shared/llm/local-llm start; .ci/run does)")
    config = {"data_dir": str(tmp_path), "llm": {"provider": "openai", "config": {
        "model": "local", "api_key": "local", "openai_base_url": URL, "mode": mode,
        "timeout": 300, "max_retries": 1}}}
    with Memory.from_config(config) as memory:
        for text in STATEMENTS:
            memory.add(text, user_id="alice123")
        relations = memory.get_all(user_id="alice123", include_invalid=True)["relations"]
        current = {(r["source"], r["relationship"], r["target"])
                   for r in relations if r["valid"]}
        assert ("Alice", "name", "Alice") in current
        assert ("Peter", "is", "Spider-Man") in current
        assert any(s == "John" and r.startswith("has_") and t == "Tommy"
                   for s, r, t in current), current
        assert ("Alice", "dislikes", "badminton") in current
        assert not any(r in ("likes", "loves", "enjoys") and t == "badminton"
                       for _, r, t in current), current
        tops = {q: memory.search(q, user_id="alice123", limit=1)["results"][0]["memory"]
                for q in QUERIES}
        assert "Alice" in tops["What is my name?"]
        assert "Peter" in tops["Who is Spider-Man?"]
        assert "dislike" in tops["Do I like badminton?"]
        assert "dog" in tops["Who has a dog?"]


def _llm_memory(tmp_path: Path, mode: str = "tools") -> Memory:
    return Memory.from_config({"data_dir": str(tmp_path), "llm": {
        "provider": "openai", "config": {"model": "local", "api_key": "local",
                                         "openai_base_url": URL, "mode": mode,
                                         "timeout": 300, "max_retries": 1}}})


def _graph(memory: Memory, user: str) -> tuple[set, set]:
    relations = memory.get_all(user_id=user, include_invalid=True)["relations"]
    current = {(r["source"], r["relationship"], r["target"]) for r in relations if r["valid"]}
    ended = {(r["source"], r["relationship"], r["target"])
             for r in relations if not r["valid"]} - current
    return current, ended


# (statements, relations current after them, relations ended, question, word of its top-1)
CHANGES = [
    (["My brother Oskar plays the cello.", "Oskar gave up the cello and took up the drums."],
     {("u", "brother", "Oskar"), ("Oskar", "plays", "drums")}, {("Oskar", "plays", "cello")},
     "What instrument does my brother play now?", "drums"),
    (["My sister Lena lives in Oslo.", "Lena moved to Bergen."],
     {("u", "sister", "Lena"), ("Lena", "lives_in", "Bergen")}, {("Lena", "lives_in", "Oslo")},
     "Where does my sister live?", "Bergen"),
    (["My colleague Bram works at Philips.", "Bram left Philips and now works at ASML."],
     {("u", "colleague", "Bram"), ("Bram", "works_at", "ASML")},
     {("Bram", "works_at", "Philips")}, "Where does Bram work?", "ASML"),
    (["I have a cat named Miso and I live in Leeds.", "I don't have any pets anymore."],
     {("u", "lives_in", "Leeds")}, {("u", "has_cat", "Miso")}, "Where do I live?", "Leeds"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("statements", "current", "ended", "question", "answer"), CHANGES,
                         ids=["instrument", "sister-moves", "colleague-employer", "no-pets"])
def test_a_change_ends_only_what_it_changes(tmp_path, local_llm, statements, current, ended,
                                            question, answer):
    """On the real small model: the relation a change speaks of ends, the others of the
    same memory (the brother, the colleague, the home) stay current, and the top answer
    states what holds now."""
    if not local_llm:
        pytest.skip(f"no local model at {URL} (run ../shared/llm/local-llm start; .ci/run does)")
    with _llm_memory(tmp_path) as memory:
        for text in statements:
            memory.add(text, user_id="u")
        now, gone = _graph(memory, "u")
        assert current <= now, (now, gone)
        assert ended <= gone, (now, gone)
        [top] = memory.search(question, user_id="u", limit=1)["results"]
        assert answer in top["memory"], top


@pytest.mark.slow
def test_the_dana_conversation_on_langgraph(tmp_path, local_llm):
    """The seed's Practice 1 chatbot with the local model as chat model and extractor:
    the assistant's answers are never stored, and a question, a restatement and a joke
    end nothing (the judge once ended `has_dog Biscuit` on "Your dog's name is Biscuit")."""
    if not local_llm:
        pytest.skip(f"no local model at {URL} (run ../shared/llm/local-llm start; .ci/run does)")
    pytest.importorskip("langgraph", reason="needs the [langgraph] extra")
    from langchain_openai import ChatOpenAI

    from hybridmem.integrations.langgraph import build_chat_graph

    llm = ChatOpenAI(model="local", api_key="local", base_url=URL, temperature=0,
                     max_tokens=60, timeout=300, max_retries=1)
    with _llm_memory(tmp_path) as memory:
        graph = build_chat_graph(memory, llm, raise_memory_errors=True)
        for text in ["Hi! My name is Dana and I live in Utrecht.",
                     "I have a golden retriever called Biscuit.",
                     "What is my dog's name, and where do I live?",
                     "Yes, Biscuit is my dog.",
                     "Haha, Biscuit thinks he is the boss of the house."]:
            graph.invoke({"messages": [("user", text)], "user_id": "dana"})
        now, gone = _graph(memory, "dana")
        assert ("Dana", "lives_in", "Utrecht") in now, (now, gone)
        assert any(r.startswith("has_") and t == "Biscuit" for _, r, t in now), (now, gone)
        assert not any(t in ("Biscuit", "Utrecht", "Dana") for _, _, t in gone), gone
        stored = [m["memory"] for m in memory.get_all(user_id="dana")["results"]]
        assert not any(m.lower().startswith(("your ", "you ")) for m in stored), stored
        assert not any(m.endswith("?") for m in stored), stored
