"""`MemoryClient` / `AsyncMemoryClient` against a real server: the same results and the
same exceptions as `Memory`, retries that never store an add twice, a bounded write queue."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid

import networkx as nx
import pytest

from hybridmem import (
    AsyncMemoryClient,
    AuthenticationError,
    BusyError,
    InvalidInputError,
    Memory,
    MemoryClient,
    NotFoundError,
    PermissionDeniedError,
    ScopeError,
    UnavailableError,
)
from hybridmem.demo import STATEMENTS
from tests.fake_openai import Reply, tool_reply
from tests.server.running import Served

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("served-clients")]

QUESTIONS = ["What is my name?", "Who is Spider-Man?", "Do I like badminton?"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with Served(tmp_path_factory.mktemp("clients") / "store") as server:
        yield server


def _answers(memory) -> list[list[str]]:
    user = f"alice-{uuid.uuid4().hex[:6]}"
    for text in STATEMENTS:
        memory.add(text, user_id=user)
    return [[h["memory"] for h in memory.search(q, user_id=user, limit=3)["results"]]
            for q in QUESTIONS]


def test_the_client_answers_what_memory_answers(served, tmp_path):
    """The README quickstart and the article's Practice 2, with Memory() swapped for
    MemoryClient(...): the same ranked answers."""
    with Memory({"data_dir": str(tmp_path / "local")}) as memory:
        expected = _answers(memory)
    with MemoryClient(api_key=served.admin_key, host=served.url) as client:
        assert _answers(client) == expected


def test_every_method_returns_memorys_shapes(served, tmp_path):
    user = f"bob-{uuid.uuid4().hex[:6]}"
    with Memory({"data_dir": str(tmp_path / "local")}) as memory, \
            MemoryClient(api_key=served.key("--user", user), host=served.url) as client:
        for m in (memory, client):
            added = m.add("My friend Peter is Spider-Man", user_id=user,
                          metadata={"src": "chat"})
            assert set(added) == {"results", "relations"}
            memory_id = added["results"][0]["id"]
            hit = m.search("Spider-Man", user_id=user, filters={"src": "chat"})["results"][0]
            got = m.get(memory_id)
            listed = m.get_all(user_id=user, include_invalid=True)
            graph = m.graph(user_id=user)
            assert isinstance(graph, nx.MultiDiGraph) and graph.number_of_edges() == 2
            assert set(got) >= {"id", "memory", "hash", "metadata", "created_at", "user_id"}
            assert set(hit) >= {"id", "memory", "score", "type", "score_components",
                                "provenance"}
            assert set(listed) == {"results", "relations"}
            updated = m.update(memory_id, "My friend Peter is Batman")
            assert set(updated) >= {"message"}
            assert [h["event"] for h in m.history(memory_id)] == ["ADD", "UPDATE"]
            assert m.get("0" * 32) is None
            assert set(m.delete(memory_id)) >= {"message"}
            assert m.delete_all(user_id=user)["message"]


def test_errors_come_back_as_the_same_exceptions(served):
    user = f"carol-{uuid.uuid4().hex[:6]}"
    with MemoryClient(api_key=served.key("--user", user), host=served.url) as client:
        with pytest.raises(NotFoundError):
            client.update("0" * 32, "x")
        with pytest.raises(InvalidInputError, match="empty"):
            client.search("   ")
        with pytest.raises(PermissionDeniedError, match="bound to user_id"):
            client.get_all(user_id="someone-else")
        with pytest.raises(PermissionDeniedError, match="admin"):
            client.stats()
    with MemoryClient(api_key=served.admin_key, host=served.url) as admin, \
            pytest.raises(ScopeError):
        admin.search("x")
    with MemoryClient(api_key="hm_000000000000_" + "x" * 40, host=served.url) as wrong, \
            pytest.raises(AuthenticationError):
        wrong.get_all(user_id=user)


def test_a_client_waits_for_a_server_that_is_starting(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with MemoryClient(host=f"http://127.0.0.1:{port}", max_retries=0) as client, \
            pytest.raises(UnavailableError, match="cannot reach"):
        client.get_all(user_id="x")
    result: dict = {}

    def add_when_up() -> None:
        with MemoryClient(host=f"http://127.0.0.1:{port}", max_retries=12) as client:
            result["added"] = client.add("I like tea", user_id="x", infer=False)

    worker = threading.Thread(target=add_when_up)
    worker.start()
    time.sleep(1.0)
    with Served(tmp_path / "store", "--no-auth", "--port", str(port)) as server:
        worker.join(timeout=120)
        assert result["added"]["results"][0]["event"] == "ADD"
        with server.http() as http:
            assert len(http.get("/memories", params={"user_id": "x"}).json()["results"]) == 1


def test_a_full_write_queue_answers_busy_and_the_client_retries(fake_openai, tmp_path):
    """Writes beyond --max-pending-writes get 503 + Retry-After (BusyError) at once; a
    client with retries gets through once the slow add is done."""
    def slow(body):
        said = body["messages"][-1]["content"]
        fact = "I like coffee" if "coffee" in said else "I like tea"
        return Reply(body=tool_reply({"facts": [{"text": fact, "relations": []}]}).body,
                     delay=3.0)

    fake_openai.chat_handler = slow
    config = {"llm": {"provider": "openai", "config": {
        "model": "m", "api_key": "sk", "openai_base_url": fake_openai.base_url,
        "max_retries": 0, "timeout": 30}}}
    with Served(tmp_path / "store", "--no-auth", "--max-pending-writes", "1",
                config=config) as server:
        slow_add = threading.Thread(target=lambda: MemoryClient(host=server.url).add(
            "I like tea", user_id="ann"))
        slow_add.start()
        time.sleep(1.0)  # the slow add holds the only write slot
        with MemoryClient(host=server.url, max_retries=0) as impatient, \
                pytest.raises(BusyError) as busy:
            impatient.add("I like coffee", user_id="ann")
        assert busy.value.retry_after == 1.0
        with MemoryClient(host=server.url, max_retries=10) as patient:
            assert patient.search("tea", user_id="ann")["results"] is not None  # reads go on
            assert patient.add("I like coffee", user_id="ann")["results"]
        slow_add.join(timeout=60)


def test_the_async_client(served):
    user = f"dan-{uuid.uuid4().hex[:6]}"

    async def scenario() -> None:
        async with AsyncMemoryClient(api_key=served.key("--user", user),
                                     host=served.url) as client:
            sports = ["rowing", "fencing", "curling", "judo", "polo", "surfing", "archery",
                      "squash"]
            added = await asyncio.gather(*(client.add(f"I like {sport}", infer=False)
                                           for sport in sports))
            assert all(a["results"][0]["event"] == "ADD" for a in added)
            found = await client.search("curling", limit=1)
            assert found["results"][0]["memory"] == "I like curling"
            assert await client.get("0" * 32) is None
            with pytest.raises(PermissionDeniedError):
                await client.search("x", user_id="not-me")

    asyncio.run(scenario())
