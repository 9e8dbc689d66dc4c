"""Tenant walls over the network: random interleavings of three user keys and an admin
key, over REST and MCP, on a real server. No key ever reads or changes another scope."""

from __future__ import annotations

import itertools
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.running import Served

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("served-tenant_walls")]

USERS = ("u1", "u2", "u3")
ACTORS = (*USERS, "admin")
OPS = ("add", "search", "list", "get", "update", "delete", "history", "graph", "delete_all")
_serial = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with Served(tmp_path_factory.mktemp("walls") / "store") as server:
        tag = uuid.uuid4().hex[:6]
        users = {u: f"{u}-{tag}" for u in USERS}
        keys = {u: server.key("--user", users[u]) for u in USERS}
        keys["admin"] = server.admin_key
        clients = {a: httpx.Client(base_url=server.url, timeout=60,
                                   headers={"Authorization": f"Bearer {k}"})
                   for a, k in keys.items()}
        yield server, users, clients
        for client in clients.values():
            client.close()


def _mcp(http: httpx.Client, tool: str, **arguments) -> tuple[bool, str]:
    """(is_error, text) of one stateless JSON-RPC tool call."""
    answer = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                     "params": {"name": tool, "arguments": arguments}},
                       headers={"accept": "application/json, text/event-stream"})
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    return bool(result.get("isError")), result["content"][0]["text"]


steps = st.lists(st.tuples(st.sampled_from(ACTORS), st.sampled_from(OPS),
                           st.sampled_from(USERS), st.sampled_from(("rest", "mcp"))),
                 min_size=4, max_size=14)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps)
def test_no_key_crosses_a_wall(world, steps):
    server, users, http = world
    admin = http["admin"]

    def truth(owner: str) -> dict[str, str]:
        """memory id -> text, as the admin sees the owner's scope."""
        listed = admin.get("/memories", params={"user_id": users[owner], "limit": 10_000})
        return {m["id"]: m["memory"] for m in listed.json()["results"]}

    model = {u: truth(u) for u in USERS}
    for actor, op, target, transport in steps:
        client = http[actor]
        owner_ids = list(model[target])
        memory_id = owner_ids[0] if owner_ids else "0" * 32
        allowed = actor in ("admin", target)  # only the owner or an admin acts there
        scope = {"user_id": users[target]}
        secret = f"secret {target} {next(_serial)}"
        if transport == "mcp":
            tool, arguments = {
                "add": ("add_memory", {"text": secret}),
                "search": ("search_memories", {"query": "secret"}),
                "list": ("get_memories", {}),
                "get": ("get_memory", {"memory_id": memory_id}),
                "update": ("update_memory", {"memory_id": memory_id, "text": secret}),
                "delete": ("delete_memory", {"memory_id": memory_id}),
                "history": ("memory_history", {"memory_id": memory_id}),
                "graph": ("get_entity_graph", {}),
                "delete_all": ("delete_all_memories", {}),
            }[op]
            if op not in ("get", "update", "delete", "history"):
                arguments.update(scope)
            failed, text = _mcp(client, tool, **arguments)
            if not allowed:
                assert failed or op in ("get", "history"), (actor, op, target, text)
                for other in USERS:
                    if other != actor:
                        assert f"secret {other}" not in text, (actor, op, text)
        else:
            method, path, options = {
                "add": ("POST", "/memories", {"json": {"messages": secret, "infer": False,
                                                       **scope}}),
                "search": ("POST", "/search", {"json": {"query": "secret", **scope}}),
                "list": ("GET", "/memories", {"params": scope}),
                "get": ("GET", f"/memories/{memory_id}", {}),
                "update": ("PUT", f"/memories/{memory_id}", {"json": {"text": secret}}),
                "delete": ("DELETE", f"/memories/{memory_id}", {}),
                "history": ("GET", f"/memories/{memory_id}/history", {}),
                "graph": ("GET", "/graph", {"params": scope}),
                "delete_all": ("DELETE", "/memories", {"params": scope}),
            }[op]
            response = client.request(method, path, **options)
            if not allowed:
                assert response.status_code in (403, 404) or (
                    op == "history" and response.json() == []), (actor, op, response.text)
                for other in USERS:
                    if other != actor:
                        assert f"secret {other}" not in response.text, (actor, op)
        # what changed is only what the owner or the admin was allowed to change
        for user in USERS:
            now = truth(user)
            if user != target or not allowed:
                assert now == model[user], (actor, op, target, transport)
            model[user] = now
