"""`add(..., wait=False)`: the input is journaled before the call returns, a background
worker applies adds in order, `flush()` waits for them and reports failures, `close()`
finishes them."""

from __future__ import annotations

import pytest

from hybridmem import InvalidInputError, LLMError, Memory, MemoryConfig
from tests.conftest import llm_config
from tests.fake_openai import Reply, tool_reply


def test_a_queued_add_is_journaled_then_applied_in_order(shared_memory, uid):
    first = shared_memory.add("I live in Paris", user_id=uid, wait=False)
    second = shared_memory.add("I moved to Berlin", user_id=uid, wait=False)
    assert first["results"] == [] and len(first["queued"]) == 1
    shared_memory.flush()
    assert {m["memory"] for m in shared_memory.get_all(user_id=uid)["results"]} == {
        "I moved to Berlin"}
    relations = shared_memory.get_all(user_id=uid, include_invalid=True)["relations"]
    assert {(r["target"], r["valid"]) for r in relations} == {("Paris", False),
                                                              ("Berlin", True)}
    assert not {p["id"] for p in shared_memory.pending()} & {*first["queued"],
                                                             *second["queued"]}


def test_a_queued_add_refuses_an_idempotency_key(shared_memory, uid):
    with pytest.raises(InvalidInputError, match="wait=True"):
        shared_memory.add("I like tea", user_id=uid, wait=False, idempotency_key="k-1")


def test_a_failed_background_add_is_raised_by_flush_and_kept(fake_openai, tmp_path):
    fake_openai.chat_script = [Reply(status=500, body={"error": {"message": "boom"}})]
    with Memory.from_config(llm_config(fake_openai, tmp_path, max_retries=0)) as memory:
        [op_id] = memory.add("I surf", user_id="u", wait=False)["queued"]
        with pytest.raises(LLMError):
            memory.flush()
        assert [p["id"] for p in memory.pending()] == [op_id]
        memory.flush()  # reported once
        fake_openai.chat_script = [tool_reply({"facts": [{"text": "I surf", "relations": []}]})]
        assert memory.retry_pending()["finished"] == 1
        assert [m["memory"] for m in memory.get_all(user_id="u")["results"]] == ["I surf"]


def test_close_finishes_what_was_handed_over(tmp_path):
    config = MemoryConfig(data_dir=str(tmp_path))
    with Memory(config) as memory:
        memory.add("My sister Kim lives in Oslo", user_id="u", wait=False)
    with Memory(config) as memory:
        assert memory.pending() == []
        assert {(r["relationship"], r["target"]) for r in memory.get_all(
            user_id="u")["relations"]} == {("sister", "Kim"), ("lives_in", "Oslo")}


def test_a_delete_all_waits_for_the_adds_handed_over_before_it(fake_openai, tmp_path):
    # the add is still waiting on its LLM when delete_all comes: it must land first and
    # be erased, not land after and bring the user's memory back
    fake_openai.chat_handler = lambda body: Reply(body=tool_reply(
        {"facts": [{"text": "I surf at dawn", "relations": []}]}).body, delay=1.0)
    with Memory.from_config(llm_config(fake_openai, tmp_path, max_retries=0)) as memory:
        memory.add("I surf at dawn", user_id="u", wait=False)
        memory.delete_all(user_id="u")
        memory.flush()
        assert memory.get_all(user_id="u")["results"] == []


def test_async_memory_flushes_what_it_handed_over(tmp_path):
    import asyncio

    from hybridmem import AsyncMemory

    async def scenario() -> list[str]:
        async with AsyncMemory(MemoryConfig(data_dir=str(tmp_path))) as memory:
            await memory.add("I play the oboe", user_id="u", wait=False)
            await memory.flush()
            return [m["memory"] for m in (await memory.get_all(user_id="u"))["results"]]

    assert asyncio.run(scenario()) == ["I play the oboe"]
