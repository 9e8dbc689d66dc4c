"""REST on a real `hybridmem serve` process: mem0's routes and shapes, keys bound to
scopes, JSON errors with request ids, one log line per request without the key."""

from __future__ import annotations

import uuid

import pytest

from tests.server.running import Served

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("served-rest")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with Served(tmp_path_factory.mktemp("rest") / "store") as server:
        yield server


@pytest.fixture
def user(served):
    """A fresh user and a key bound to them."""
    name = f"u-{uuid.uuid4().hex[:8]}"
    return name, served.key("--user", name)


def test_first_start_prints_one_admin_key_and_no_key_reaches_the_log(served, user):
    assert served.admin_key is not None
    name, key = user
    with served.http(key) as http:
        assert http.post("/memories", json={"messages": "I enjoy hiking"}).status_code == 200
    log = served.log(waiting_for="POST /memories 200")
    assert "POST /memories 200" in log
    assert served.admin_key not in log and key not in log
    assert key.split("_")[2] not in log


def test_mem0_routes_and_shapes(served, user):
    name, key = user
    with served.http(key) as http:
        added = http.post("/memories", json={"messages": [
            {"role": "user", "content": "My name is Alice"},
            {"role": "assistant", "content": "Nice to meet you, Alice"},
            {"role": "user", "content": "My friend Peter is Spider-Man"}],
            "metadata": {"src": "chat"}}).json()
        assert {r["event"] for r in added["results"]} == {"ADD"}
        assert {(r["source"], r["relationship"], r["target"])
                for r in added["relations"]["added_entities"]} >= {("Peter", "is", "Spider-Man")}

        top = http.post("/search", json={"query": "Who is Spider-Man?", "limit": 3}).json()
        first = top["results"][0]
        assert first["destination"] == "Spider-Man" and first["type"] == "relation"
        assert set(first["score_components"]) == {"vector", "bm25", "graph"}

        listed = http.get("/memories", params={"user_id": name}).json()
        [memory_id] = [m["id"] for m in listed["results"] if m["memory"] == "My name is Alice"]
        assert all(m["user_id"] == name for m in listed["results"])
        assert http.get(f"/memories/{memory_id}").json()["id"] == memory_id

        updated = http.put(f"/memories/{memory_id}", json={"text": "I enjoy sailing"})
        assert updated.status_code == 200, updated.text
        history = http.get(f"/memories/{memory_id}/history").json()
        assert [h["event"] for h in history][:2] == ["ADD", "UPDATE"]

        graph = http.get("/graph").json()
        assert {n["name"] for n in graph["nodes"]} >= {"Peter", "Spider-Man"}
        assert all(e["valid"] for e in graph["edges"])

        assert http.delete(f"/memories/{memory_id}").json()["message"]
        assert http.get(f"/memories/{memory_id}").status_code == 404
        assert http.delete("/memories").status_code == 200
        assert http.get("/memories").json()["results"] == []


def test_errors_are_json_with_the_type_status_and_request_id(served, user):
    _, key = user
    with served.http(key) as http:
        cases = {
            ("POST", "/search", '{"query": ""}'): (400, "InvalidInputError"),
            ("POST", "/search", '{"query": "x", "limit": 0}'): (400, "InvalidInputError"),
            ("POST", "/search", '{"query": "x", "limit": "ten"}'): (422, "InvalidInputError"),
            ("POST", "/search", '{"query": "x", "user": "bob"}'): (422, "InvalidInputError"),
            ("POST", "/search", '{"query": '): (422, "InvalidInputError"),
            ("GET", "/memories/nope", None): (404, "NotFoundError"),
            ("GET", "/no/such/route", None): (404, "NotFoundError"),
            ("POST", "/reset", None): (403, "PermissionDeniedError"),
            ("GET", "/stats", None): (403, "PermissionDeniedError"),
        }
        for (method, path, body), (status, kind) in cases.items():
            response = http.request(method, path, content=body,
                                    headers={"content-type": "application/json",
                                             "x-request-id": "case-1"})
            assert response.status_code == status, (path, body, response.text)
            error = response.json()["error"]
            assert error["type"] == kind and error["message"], (path, error)
            assert error["request_id"] == response.headers["x-request-id"] == "case-1"
        unknown = http.post("/search", json={"query": "x", "user": "bob"}).json()["error"]
        assert "user" in unknown["message"]  # names the field


def test_keys_decide_the_scope(served, user):
    name, key = user
    other, other_key = f"v-{uuid.uuid4().hex[:8]}", None
    other_key = served.key("--user", other)
    with served.http(other_key) as http:
        secret_id = http.post("/memories", json={"messages": "My PIN is 4242",
                                                  "infer": False}).json()["results"][0]["id"]
    with served.http(key) as http:
        # the bound user may be omitted or repeated; another user is 403, however named
        assert http.post("/memories", json={"messages": "I like tea"}).status_code == 200
        assert http.post("/memories", json={"messages": "I like tea",
                                            "user_id": name}).status_code == 200
        for attempt in [
            http.post("/memories", json={"messages": "x", "user_id": other}),
            http.get("/memories", params={"user_id": other}),
            http.post("/search", json={"query": "PIN", "user_id": other}),
            http.post("/search", json={"query": "PIN", "filters": {"user_id": other}}),
            http.post("/search", json={"query": "PIN", "filters": {
                "OR": [{"user_id": other}, {"src": "x"}]}}),
            http.delete("/memories", params={"user_id": other}),
            http.get("/graph", params={"user_id": other}),
        ]:
            assert attempt.status_code == 403, attempt.text
            assert attempt.json()["error"]["type"] == "PermissionDeniedError"
        # another scope's memory by id: exactly as if it did not exist
        for attempt in [http.get(f"/memories/{secret_id}"),
                        http.put(f"/memories/{secret_id}", json={"text": "My PIN is 0000"}),
                        http.delete(f"/memories/{secret_id}")]:
            assert attempt.status_code == 404, attempt.text
        assert http.get(f"/memories/{secret_id}/history").json() == []
        assert "PIN" not in str(http.post("/search", json={"query": "PIN"}).json())
    with served.http(served.admin_key) as admin:
        assert admin.get(f"/memories/{secret_id}").json()["memory"] == "My PIN is 4242"
        assert admin.get("/stats").json()["memories"] >= 1
        assert admin.post("/search", json={"query": "x"}).json()["error"]["type"] == \
            "ScopeError"  # admin keys name the scope: none is defaulted


def test_missing_wrong_and_revoked_keys_are_401(served, user):
    name, key = user
    with served.http() as anonymous:
        response = anonymous.get("/memories")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/health").status_code == 200  # no key needed
        assert anonymous.get("/memories", headers={"X-API-Key": key}).status_code == 200
        assert anonymous.get("/memories",
                             headers={"Authorization": f"Token {key}"}).status_code == 200
    with served.http(key[:-2] + "xx") as wrong:
        assert wrong.get("/memories").json()["error"]["type"] == "AuthenticationError"
    key_id = key.split("_")[1]
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "hybridmem.cli", "keys", "revoke", key_id,
                    "--data-dir", str(served.data_dir)], check=True, capture_output=True)
    with served.http(key) as revoked:
        assert revoked.get("/memories").status_code == 401


def test_an_add_repeated_with_its_idempotency_key_is_stored_once(served, user):
    _, key = user
    body = {"messages": "I keep bees on the roof", "infer": False}
    with served.http(key) as http:
        first = http.post("/memories", json=body, headers={"Idempotency-Key": "add-1"}).json()
        again = http.post("/memories", json=body, headers={"Idempotency-Key": "add-1"}).json()
        assert again == first and first["results"][0]["event"] == "ADD"
        plain = http.post("/memories", json=body).json()  # no key: the duplicate check
        assert plain["results"][0]["event"] == "NONE"
        reused = http.post("/memories", json={"messages": "other"},
                           headers={"Idempotency-Key": "add-1"})
        assert reused.status_code == 400 and "idempotency_key" in reused.text
        history = http.get(f"/memories/{first['results'][0]['id']}/history").json()
        assert [h["event"] for h in history] == ["ADD"]


def test_failed_keys_are_rate_limited_per_address(tmp_path):
    with Served(tmp_path / "store") as server, server.http() as http:
        codes = [http.get("/memories", headers={"X-API-Key": f"hm_{'0' * 12}_{'x' * 40}"})
                 .status_code for _ in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
        refused = http.get("/memories", headers={"X-API-Key": server.admin_key})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_no_auth_only_on_loopback_and_said_at_start(tmp_path):
    import subprocess
    import sys

    refused = subprocess.run(
        [sys.executable, "-m", "hybridmem.cli", "serve", "--no-auth", "--host", "0.0.0.0",
         "--data-dir", str(tmp_path / "a")], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "loopback" in refused.stderr
    assert not (tmp_path / "a").exists()
    with Served(tmp_path / "b", "--no-auth") as server, server.http() as http:
        assert any("--no-auth" in line for line in server.stdout_lines)
        assert server.admin_key is None
        assert http.post("/memories", json={"messages": "I like tea",
                                            "user_id": "x"}).status_code == 200
        # a loopback server answers only requests addressed to a loopback name
        rebound = http.get("/memories", params={"user_id": "x"},
                           headers={"host": "evil.example:8765"})
        assert rebound.status_code == 421


def test_another_opener_is_told_where_the_store_is_served(served):
    import subprocess
    import sys

    held = subprocess.run([sys.executable, "-m", "hybridmem.cli", "stats", "--data-dir",
                           str(served.data_dir)], capture_output=True, text=True, timeout=120)
    assert held.returncode == 3
    assert "served by `hybridmem serve`" in held.stderr and served.url in held.stderr


def test_an_add_keeps_the_timestamp_its_body_gives(served, user):
    _, key = user
    with served.http(key) as http:
        added = http.post("/memories", json={"messages": "I adopted a cat yesterday",
                                             "infer": False,
                                             "timestamp": "2023-05-08T13:56:00Z"}).json()
        memory = http.get(f"/memories/{added['results'][0]['id']}").json()
        assert memory["created_at"] == "2023-05-08T13:56:00.000000+00:00"
        bad = http.post("/memories", json={"messages": "x", "timestamp": "last tuesday"})
        assert bad.status_code == 400 and "timestamp" in bad.text
