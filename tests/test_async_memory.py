"""`AsyncMemory`: Memory's methods as coroutines that never block the event loop."""

from __future__ import annotations

import asyncio

import pytest

from hybridmem import AsyncMemory, BusyError, ClosedError, NotFoundError
from tests.conftest import llm_config
from tests.fake_openai import Reply, tool_reply

SLOW = 2.0


def _slow_llm(fake_openai) -> None:
    def answer(body):
        said = body["messages"][-1]["content"]
        fact = "I like coffee" if "coffee" in said else "I like tea"
        return Reply(body=tool_reply({"facts": [{"text": fact, "relations": []}]}).body,
                     delay=SLOW)

    fake_openai.chat_handler = answer


def test_the_loop_keeps_ticking_and_searches_run_during_a_slow_llm_add(fake_openai, tmp_path):
    _slow_llm(fake_openai)

    async def scenario() -> None:
        async with AsyncMemory(llm_config(fake_openai, tmp_path)) as memory:
            await memory.add("I read novels", user_id="u", infer=False)
            loop = asyncio.get_running_loop()
            ticks: list[float] = []

            async def ticker() -> None:
                while True:
                    await asyncio.sleep(0.02)
                    ticks.append(loop.time())

            ticking = asyncio.create_task(ticker())
            started = loop.time()
            add = asyncio.create_task(memory.add("I like tea", user_id="u"))
            await asyncio.sleep(0.3)
            found = await memory.search("novels", user_id="u")
            assert found["results"][0]["memory"] == "I read novels"
            assert not add.done()  # the search did not wait for the add
            assert (await add)["results"][0]["memory"] == "I like tea"
            elapsed = loop.time() - started
            ticking.cancel()
            assert elapsed >= SLOW
            gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
            assert max(gaps) < 0.5, "the event loop was blocked"
            assert len(ticks) >= elapsed / 0.02 / 4

    asyncio.run(scenario())


def test_writes_past_the_bound_are_refused_at_once(fake_openai, tmp_path):
    _slow_llm(fake_openai)

    async def scenario() -> None:
        async with AsyncMemory(llm_config(fake_openai, tmp_path),
                               max_pending_writes=1) as memory:
            first = asyncio.create_task(memory.add("I like tea", user_id="u"))
            await asyncio.sleep(0.2)
            assert memory.pending_writes == 1
            with pytest.raises(BusyError):
                await memory.add("I like coffee", user_id="u")
            await first
            assert memory.pending_writes == 0
            assert (await memory.add("I like coffee", user_id="u"))["results"]
            with pytest.raises(NotFoundError):
                await memory.delete("0" * 32)
        with pytest.raises(ClosedError):
            await memory.search("tea", user_id="u")

    asyncio.run(scenario())
