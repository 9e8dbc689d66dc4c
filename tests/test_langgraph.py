"""The article's Practice 1 agent on LangGraph + hybridmem, against the loopback server:
a fact told in turn 1 reaches the prompt of turn 3."""

from __future__ import annotations

import pytest

pytest.importorskip("langgraph", reason="needs the [langgraph] extra (.ci/run installs it)")
pytest.importorskip("langchain_openai", reason="needs the [langgraph] extra")

from langchain_openai import ChatOpenAI  # noqa: E402

from hybridmem import Memory, MemoryConfig  # noqa: E402
from hybridmem.integrations.langgraph import build_chat_graph  # noqa: E402
from tests.fake_openai import content_reply  # noqa: E402


def test_fact_from_turn_one_reaches_turn_three(fake_openai, tmp_path):
    fake_openai.chat_handler = lambda body: content_reply(f"ok ({len(body['messages'])})")
    llm = ChatOpenAI(model="qwen-plus", api_key="sk-test", base_url=fake_openai.base_url,
                     temperature=0.2, max_retries=0)
    with Memory(MemoryConfig(data_dir=str(tmp_path))) as memory:
        graph = build_chat_graph(memory, llm)
        turns = ["Hi! My name is Alice and I live in Lisbon.", "I love jazz.",
                 "Where do I live?"]
        for text in turns:
            state = graph.invoke({"messages": [("user", text)], "user_id": "alice"})
            assert state["messages"][-1].content.startswith("ok")
        prompts = [req["messages"][0]["content"] for req in fake_openai.chat_requests()]
        assert len(prompts) == 3
        assert "Lisbon" not in prompts[0]  # nothing remembered before the first turn
        assert "Lisbon" in prompts[2]      # told in turn 1, recalled in turn 3
        assert fake_openai.chat_requests()[2]["messages"][-1]["content"] == "Where do I live?"
        # The exchange itself was stored (user facts only, offline extractor).
        assert {r["target"] for r in memory.get_all(user_id="alice")["relations"]} >= {
            "Lisbon", "jazz"}


def test_memory_failure_does_not_break_the_chat(fake_openai, tmp_path):
    fake_openai.chat_handler = lambda body: content_reply("still here")
    llm = ChatOpenAI(model="m", api_key="sk-test", base_url=fake_openai.base_url,
                     max_retries=0)
    memory = Memory(MemoryConfig(data_dir=str(tmp_path)))
    graph = build_chat_graph(memory, llm, user_key="user_id")
    memory.close()  # every memory call now fails with HybridMemError
    state = graph.invoke({"messages": [("user", "hello")], "user_id": "bob"})
    assert state["messages"][-1].content == "still here"


@pytest.mark.slow
def test_the_same_chatbot_against_a_server(fake_openai, tmp_path):
    """Practice 1 with `Memory()` swapped for `MemoryClient(...)`: nothing else changes."""
    from hybridmem import MemoryClient
    from tests.server.running import Served

    fake_openai.chat_handler = lambda body: content_reply(f"ok ({len(body['messages'])})")
    llm = ChatOpenAI(model="qwen-plus", api_key="sk-test", base_url=fake_openai.base_url,
                     max_retries=0)
    with Served(tmp_path / "store") as server, \
            MemoryClient(api_key=server.key("--user", "alice"), host=server.url) as memory:
        graph = build_chat_graph(memory, llm)
        for text in ["Hi! My name is Alice and I live in Lisbon.", "Where do I live?"]:
            graph.invoke({"messages": [("user", text)], "user_id": "alice"})
        prompts = [req["messages"][0]["content"] for req in fake_openai.chat_requests()]
        assert "Lisbon" not in prompts[0] and "Lisbon" in prompts[1]
        assert "Lisbon" in {r["target"] for r in memory.get_all(user_id="alice")["relations"]}


def test_remembering_in_the_background(fake_openai, tmp_path):
    """The node hands the exchange to a background add: it is journaled before the reply
    is returned and stored after `flush()`."""
    fake_openai.chat_handler = lambda body: content_reply("Nice!")
    llm = ChatOpenAI(model="m", api_key="sk-test", base_url=fake_openai.base_url,
                     max_retries=0)
    with Memory(MemoryConfig(data_dir=str(tmp_path))) as memory:
        graph = build_chat_graph(memory, llm, remember_in_background=True)
        state = graph.invoke({"messages": [("user", "I live in Lisbon.")], "user_id": "al"})
        assert state["messages"][-1].content == "Nice!"
        memory.flush()
        assert {r["target"] for r in memory.get_all(user_id="al")["relations"]} == {"Lisbon"}
        assert [m["memory"] for m in memory.get_all(user_id="al")["results"]] == [
            "I live in Lisbon."]
