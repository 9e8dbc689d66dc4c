"""The same code on a real Milvus server: the core scenario through `Memory.from_config`
with a `url`, as a user pointing hybridmem at Milvus standalone/distributed would."""

from __future__ import annotations

import importlib.util

import pytest

from hybridmem import ConfigError, DimensionMismatchError, Memory

pytestmark = [
    pytest.mark.slow,
    # one server on a fixed port per module: its tests share one xdist worker
    pytest.mark.xdist_group("milvus_server"),
    pytest.mark.skipif(importlib.util.find_spec("milvus") is None,
                       reason="needs `pip install milvus==2.3.5` (.ci/run installs it)"),
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    from tests.milvus_server import milvus_server

    with milvus_server(tmp_path_factory.mktemp("milvus-server")) as url:
        yield url


def config(url: str, data_dir, **vector) -> dict:
    return {
        "data_dir": str(data_dir),
        "vector_store": {"provider": "milvus", "config": {
            "url": url, "token": "root:Milvus", "db_name": "default",
            "collection_name": "hybridmem_server_test", "embedding_model_dims": "384",
            **vector}},
    }


def test_core_scenario_on_a_server(server_url, tmp_path):
    with Memory.from_config(config(server_url, tmp_path)) as memory:
        assert not memory.engines.vectors.is_lite
        for text in ["I enjoy hiking", "I like badminton", "I dislike badminton",
                     "My name is Alice", "My friend Peter is Spider-Man"]:
            memory.add(text, user_id="alice")
        memory.add("I like badminton", user_id="bob", metadata={"src": "chat"})
        top = memory.search("What is my name?", user_id="alice")["results"][0]
        assert top["memory"] == "Alice's name is Alice"
        assert memory.search("Who is Spider-Man?", user_id="alice")["results"][0][
            "destination"] == "Spider-Man"
        hits = memory.search("badminton", user_id="bob", filters={"src": "chat"})["results"]
        assert [h["memory"] for h in hits] == ["bob likes badminton"]
        assert all("Alice" not in h["memory"] for h in
                   memory.search("badminton", user_id="bob")["results"])
        [hiking] = [r for r in memory.get_all(user_id="alice")["results"]
                    if r["memory"] == "I enjoy hiking"]
        memory.update(hiking["id"], "I enjoy sailing")
        assert memory.search("sailing", user_id="alice", limit=1)["results"][0][
            "memory"] == "Alice enjoys sailing"
        memory.delete(hiking["id"])
        memory.delete_all(user_id="bob")
        assert memory.get_all(user_id="bob")["results"] == []
        assert memory.stats()["vectors"] == memory.stats()["memories"] == 4
    # Reopen: the server kept the vectors.
    with Memory.from_config(config(server_url, tmp_path)) as memory:
        assert memory.stats()["vectors"] == 4


def test_dimension_mismatch_on_a_server(server_url, tmp_path):
    raw = config(server_url, tmp_path, embedding_model_dims=64)
    raw["embedder"] = {"provider": "hash", "config": {"embedding_dims": 64}}
    with pytest.raises(DimensionMismatchError):
        Memory.from_config(raw)


def test_a_second_host_with_its_own_catalog_is_refused(server_url, tmp_path):
    """Two hosts (two data dirs) pointed at one server collection: the collection belongs
    to the store whose catalog made it; the other is refused, never left to diverge."""
    first = config(server_url, tmp_path / "host-a", collection_name="shared_across_hosts")
    second = config(server_url, tmp_path / "host-b", collection_name="shared_across_hosts")
    with Memory.from_config(first) as memory:
        memory.add("I enjoy hiking", user_id="alice")
    with pytest.raises(ConfigError, match="belongs to another store"):
        Memory.from_config(second)
    with Memory.from_config(first) as memory:  # the owner is unaffected
        assert memory.stats()["memories"] == memory.stats()["vectors"] == 1
