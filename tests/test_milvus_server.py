"""The same code on a real Milvus server: the core scenario through `Memory.from_config`
with a `url`, as a user pointing hybridmem at Milvus standalone/distributed would."""

from __future__ import annotations

import importlib.util
import os

import pytest

from hybridmem import ConfigError, DimensionMismatchError, Memory, StoreError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("milvus") is None,
                       reason="needs `pip install milvus==2.3.5` (.ci/run installs it)"),
]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """The run's one server, whichever worker's test asks first (tests/milvus_server.py);
    the run's controller stops it at the end. Each test uses collections of its own."""
    from tests.milvus_server import run_server_url, shared_dir

    return run_server_url(shared_dir(tmp_path_factory.getbasetemp()))


def config(url: str, data_dir, collection: str, **vector) -> dict:
    return {
        "data_dir": str(data_dir),
        "vector_store": {"provider": "milvus", "config": {
            "url": url, "token": "root:Milvus", "db_name": "default",
            "collection_name": collection, "embedding_model_dims": "384", **vector}},
    }


def test_core_scenario_on_a_server(server_url, tmp_path):
    with Memory.from_config(config(server_url, tmp_path, "core_scenario")) as memory:
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
    with Memory.from_config(config(server_url, tmp_path, "core_scenario")) as memory:
        assert memory.stats()["vectors"] == 4


def test_dimension_mismatch_on_a_server(server_url, tmp_path):
    """The collection's own size is checked (another host's record, so the local record
    cannot catch it first)."""
    with Memory.from_config(config(server_url, tmp_path / "host-a", "sized_384")):
        pass
    raw = config(server_url, tmp_path / "host-b", "sized_384", embedding_model_dims=64)
    raw["embedder"] = {"provider": "hash", "config": {"embedding_dims": 64}}
    with pytest.raises(DimensionMismatchError, match="stores 384-d vectors"):
        Memory.from_config(raw)


def test_a_second_host_with_its_own_catalog_is_refused(server_url, tmp_path):
    """Two hosts (two data dirs) pointed at one server collection: the collection belongs
    to the store whose catalog made it; the other is refused, never left to diverge."""
    first = config(server_url, tmp_path / "host-a", "shared_across_hosts")
    second = config(server_url, tmp_path / "host-b", "shared_across_hosts")
    with Memory.from_config(first) as memory:
        memory.add("I enjoy hiking", user_id="alice")
    with pytest.raises(ConfigError, match="belongs to another store"):
        Memory.from_config(second)
    with Memory.from_config(first) as memory:  # the owner is unaffected
        assert memory.stats()["memories"] == memory.stats()["vectors"] == 1


def test_a_second_server_starts_beside_the_runs_own(server_url, tmp_path):
    """Two servers on one machine (two workers, or two engineers' runs) each get their own
    ports, etcd and pid file: the package's defaults made the second one exit, and a run
    then waited 180 s for it."""
    from tests.milvus_server import kill_server, start_server

    second = start_server(tmp_path / "second", owner=os.getpid())
    try:
        assert second["url"] != server_url
        for url, collection in ((server_url, "on_the_first"), (second["url"], "on_the_second")):
            with Memory.from_config(config(url, tmp_path / collection, collection)) as memory:
                memory.add("I enjoy hiking", user_id="alice")
                assert memory.stats()["vectors"] == 1
    finally:
        kill_server(second["pid"], second["alias"])


def test_an_open_that_failed_leaves_no_collection_on_the_server(server_url, tmp_path):
    """The collection an open made goes with it when the open fails: another store may
    then take that name with vectors of another size."""
    from hybridmem._failpoints import arm, disarm

    arm("open.checked")
    try:
        with pytest.raises(StoreError, match="injected"):
            Memory.from_config(config(server_url, tmp_path / "failed", "made_then_failed"))
    finally:
        disarm()
    assert not (tmp_path / "failed").exists()
    raw = config(server_url, tmp_path / "next", "made_then_failed", embedding_model_dims=64)
    raw["embedder"] = {"provider": "hash", "config": {"embedding_dims": 64}}
    with Memory.from_config(raw) as memory:
        memory.add("I enjoy hiking", user_id="alice")
        assert memory.stats()["vectors"] == 1
