"""MCP with the official SDK's client: streamable HTTP on `hybridmem serve` (same keys),
and `hybridmem mcp` on stdio, forwarding to a server or opening the store itself."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.server.running import Served

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("served-mcp")]

TOOLS = {"add_memory", "search_memories", "get_memories", "get_memory", "update_memory",
         "delete_memory", "delete_all_memories", "get_entity_graph", "memory_history"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with Served(tmp_path_factory.mktemp("mcp") / "store") as server:
        yield server


def _http(server: Served, key: str | None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(streamable_http_client(f"{server.url}/mcp",
                                         http_client=httpx2.AsyncClient(headers=headers)))


def _stdio(*args: str) -> Client:
    return Client(StdioServerParameters(command=sys.executable,
                                        args=["-m", "hybridmem.cli", "mcp", *args]))


async def _call(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        return {"error": result.content[0].text}
    return result.structured_content


async def _conversation(client: Client, **scope: str) -> None:
    """What an IDE agent does: list the tools, remember, recall, look, forget."""
    tools = await client.list_tools()
    assert {t.name for t in tools.tools} == TOOLS
    assert all(len(t.description or "") > 40 for t in tools.tools)
    added = await _call(client, "add_memory", text="My sister Maya lives in Porto", **scope)
    assert added["results"][0]["event"] == "ADD", added
    found = await _call(client, "search_memories", query="Where does Maya live?", **scope)
    assert found["results"][0]["memory"] == "Maya lives in Porto"
    assert set(found["results"][0]) >= {"id", "type", "memory", "score"}
    graph = await _call(client, "get_entity_graph", **scope)
    assert {"source": "Maya", "relationship": "lives_in", "destination": "Porto"} in \
        graph["relations"]
    memories = await _call(client, "get_memories", **scope)
    memory_id = memories["memories"][0]["id"]
    assert (await _call(client, "get_memory", memory_id=memory_id))["memory"] == \
        "My sister Maya lives in Porto"
    await _call(client, "update_memory", memory_id=memory_id,
                text="My sister Maya lives in Lisbon")
    history = await _call(client, "memory_history", memory_id=memory_id)
    assert [h["event"] for h in history["history"]][:2] == ["ADD", "UPDATE"]
    assert (await _call(client, "delete_memory", memory_id=memory_id))["message"]
    assert (await _call(client, "get_memories", **scope))["memories"] == []


def test_streamable_http_with_a_user_key(served):
    user = f"u-{uuid.uuid4().hex[:6]}"
    key = served.key("--user", user)

    async def scenario() -> None:
        async with _http(served, key) as client:
            await _conversation(client)
            other = await _call(client, "search_memories", query="x", user_id="not-me")
            assert "PermissionDeniedError" in other["error"]

    asyncio.run(scenario())
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {key}"}) as http:
        assert http.get("/memories").json()["results"] == []  # the same store, same scope


def test_streamable_http_with_an_admin_key_names_the_user(served):
    async def scenario() -> None:
        async with _http(served, served.admin_key) as client:
            missing = await _call(client, "search_memories", query="x")
            assert "user_id" in missing["error"]  # a model can correct itself from this
            await _conversation(client, user_id=f"u-{uuid.uuid4().hex[:6]}")

    asyncio.run(scenario())


def test_streamable_http_needs_a_key(served):
    answer = httpx.post(f"{served.url}/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                   "method": "tools/list"},
                        headers={"accept": "application/json, text/event-stream"})
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "AuthenticationError"


def test_stdio_forwards_to_a_running_server(served):
    user = f"u-{uuid.uuid4().hex[:6]}"
    key = served.key("--user", user)

    async def scenario() -> None:
        async with _stdio("--url", served.url, "--api-key", key) as client:
            await _call(client, "add_memory", text="I play the cello")
            found = await _call(client, "search_memories", query="What do I play?")
            assert "cello" in found["results"][0]["memory"]

    asyncio.run(scenario())
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {key}"}) as http:
        assert [m["memory"] for m in http.get("/memories").json()["results"]] == [
            "I play the cello"]


def test_stdio_on_its_own_store_and_a_second_launch(tmp_path):
    data_dir = str(tmp_path / "store")

    async def scenario() -> None:
        async with _stdio("--data-dir", data_dir, "--user", "alice") as client:
            await _conversation(client)
            # while it holds the store, a second launch says what to do, in one line
            second = subprocess.run([sys.executable, "-m", "hybridmem.cli", "mcp",
                                     "--data-dir", data_dir], input="", capture_output=True,
                                    text=True, timeout=120)
            assert second.returncode == 3, second.stderr
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and "hybridmem serve" in lines[0], second.stderr
            assert second.stdout == ""  # nothing but MCP may ever reach stdout

    asyncio.run(scenario())
    listed = subprocess.run([sys.executable, "-m", "hybridmem.cli", "get-all", "--user",
                             "alice", "--json", "--data-dir", data_dir], capture_output=True,
                            text=True, timeout=120)
    assert json.loads(listed.stdout)["results"] == []  # the conversation deleted its memory
