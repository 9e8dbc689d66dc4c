"""A store is its configuration: two configurations never see each other's memories,
whatever folder they run from, and no file of one store serves another."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hybridmem import ConfigError, Memory, StoreError
from hybridmem._failpoints import arm, disarm


def tenant(name: str, graph: str | None = None, **vector: str) -> dict:
    return {
        "embedder": {"provider": "hash"},
        "vector_store": {"provider": "milvus", "config": {"collection_name": name, **vector}},
        "graph_store": {"provider": "kuzu", "config": {"db": graph or f"{name}.kuzu"}},
    }


def everything(memory: Memory, user: str) -> dict:
    listed = memory.get_all(user_id=user)
    ids = [r["id"] for r in listed["results"]]
    return {
        "memories": sorted(r["memory"] for r in listed["results"]),
        "relations": sorted(r["memory"] for r in listed["relations"]),
        "search": sorted(h["memory"] for h in memory.search("Paris", user_id=user)["results"]),
        "graph": sorted(d["name"] for _, d in memory.graph(user_id=user).nodes(data=True)),
        "export": sorted(line.get("text", line.get("name", "")) for line in
                         memory.export(user_id=user) if line["kind"] != "header"),
        "history": [memory.history(i) != [] for i in ids],
    }


def test_two_collections_in_one_folder_never_see_each_other(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYBRIDMEM_HOME", raising=False)
    with Memory.from_config(tenant("tenant_a")) as a:
        [added] = a.add("My friend Ann lives in Paris", user_id="same-user")["results"]
    with Memory.from_config(tenant("tenant_b")) as b:
        assert everything(b, "same-user") == {"memories": [], "relations": [], "search": [],
                                              "graph": [], "export": [], "history": []}
        assert b.get(added["id"]) is None and b.history(added["id"]) == []
        b.add("My friend Bob lives in Paris", user_id="same-user")
    # both open at once in one process, each on its own files
    with Memory.from_config(tenant("tenant_a")) as a, \
            Memory.from_config(tenant("tenant_b")) as b:
        seen_a, seen_b = everything(a, "same-user"), everything(b, "same-user")
        assert seen_a["memories"] == ["My friend Ann lives in Paris"]
        assert seen_b["memories"] == ["My friend Bob lives in Paris"]
        assert "Bob" not in str(seen_a) and "Ann" not in str(seen_b)
        assert a.stats()["memories"] == b.stats()["memories"] == 1
    # each record beside its graph (tenant_a.kuzu, in the working folder)
    assert (tmp_path / "tenant_a.sqlite").exists()
    assert (tmp_path / "tenant_b.sqlite").exists()


def test_a_catalog_opened_for_another_identity_is_refused(tmp_path):
    base = {"data_dir": str(tmp_path), **tenant("mem0_test3", str(tmp_path / "a.kuzu"))}
    with Memory.from_config(base) as memory:
        memory.add("I enjoy hiking", user_id="u")
    renamed = {**base, **{k: v for k, v in tenant("other", str(tmp_path / "a.kuzu")).items()
                          if k == "vector_store"}}
    with pytest.raises(ConfigError, match="belongs to the store with collection 'mem0_test3'"
                                          ".*own graph_store.db"):
        Memory.from_config(renamed)
    # Another graph, the same Milvus collection: refused at open too (Milvus Lite is
    # otherwise opened at the first write), and the new graph's record and graph go.
    moved = {**base, "graph_store": {"provider": "kuzu", "config": {
        "db": str(tmp_path / "b.kuzu")}}}
    with pytest.raises(ConfigError, match="Milvus collection .* belongs to another store"):
        Memory.from_config(moved)
    assert not (tmp_path / "b.sqlite").exists() and not (tmp_path / "b.kuzu").exists()
    # the right configuration still opens, and finds its memory
    with Memory.from_config(base) as memory:
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == [
            "I enjoy hiking"]


def test_a_graph_of_another_store_is_refused(tmp_path):
    shared_graph = str(tmp_path / "shared.kuzu")
    with Memory.from_config({"data_dir": str(tmp_path), **tenant("one", shared_graph)}) as m:
        m.add("My friend Ann lives in Paris", user_id="u")
    # its record is named after the graph, so it refuses first ...
    with pytest.raises(ConfigError, match="belongs to the store with collection 'one'"):
        Memory.from_config({"data_dir": str(tmp_path), **tenant("two", shared_graph)})
    # ... and with a record of its own, the graph's mark does
    with pytest.raises(ConfigError, match="Kuzu graph .* belongs to another store"):
        Memory.from_config({"data_dir": str(tmp_path), **tenant("two", shared_graph),
                            "history_db_path": str(tmp_path / "two.sqlite")})


def test_a_lost_catalog_is_refused_then_rebuilt_by_repair(tmp_path):
    config = {"data_dir": str(tmp_path), **tenant("keep", str(tmp_path / "keep.kuzu"))}
    with Memory.from_config(config) as memory:
        [item] = memory.add("My friend Ann lives in Paris", user_id="u")["results"]
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"keep.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match="hybridmem repair"):
        Memory.from_config(config)
    from hybridmem import MemoryConfig

    with Memory(MemoryConfig.from_dict(config), repair=True) as memory:
        assert memory.recovered["memories_recovered"] == 1
        assert memory.get(item["id"])["memory"] == "My friend Ann lives in Paris"
        assert ("Ann", "lives_in", "Paris") in {
            (r["source"], r["relationship"], r["target"])
            for r in memory.get_all(user_id="u")["relations"]}
        assert memory.check()["clean"]


# ---------------------------------------------------------------- a failed open claims nothing


def practice_2(url: str | None) -> dict:
    """The article's Practice 2 config (its LLM and embedder are not called by an open)."""
    vector = {"collection_name": "mem0_test3", "embedding_model_dims": "128",
              "token": "root:xxx", "db_name": "default", **({"url": url} if url else {})}
    return {
        "llm": {"provider": "openai", "config": {"model": "qwen-plus", "api_key": "sk-xx",
                                                 "openai_base_url": "http://127.0.0.1:9/v1"}},
        "embedder": {"provider": "openai", "config": {
            "model": "text-embedding-v3", "embedding_dims": 128, "api_key": "sk-xx",
            "openai_base_url": "http://127.0.0.1:9/v1"}},
        "vector_store": {"provider": "milvus", "config": vector},
        "graph_store": {"provider": "kuzu", "config": {"db": "./mem0-example.kuzu"}},
        "version": "v1.1",
    }


def unreachable_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def files_in(folder: Path) -> dict[str, str]:
    """Every file under `folder` (outside Milvus Lite's own directory), with the digest of
    each record (Kuzu rewrites its file's pages when opened, whatever it holds)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.suffix == ".sqlite" else "" for p in sorted(folder.rglob("*"))
            if p.is_file() and "milvus.db" not in p.relative_to(folder).parts}


@pytest.mark.parametrize("then", ["offline", "lite_with_the_llm"])
def test_an_open_that_failed_leaves_no_claim(tmp_path, monkeypatch, then):
    """Practice 2 as written, its server out of reach: nothing is stored and nothing is
    left, so the next run in that folder opens with another configuration (it failed
    with DimensionMismatchError, or ConfigError "belongs to the store ... http://...")."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYBRIDMEM_HOME", raising=False)
    with pytest.raises(StoreError, match="cannot open Milvus"):
        Memory.from_config(practice_2(unreachable_url()))
    assert list(tmp_path.iterdir()) == []
    if then == "offline":
        offline = {"vector_store": {"provider": "milvus",
                                    "config": {"collection_name": "mem0_test3"}},
                   "graph_store": {"provider": "kuzu", "config": {"db": "./mem0-example.kuzu"}}}
        with Memory.from_config(offline) as memory:
            memory.add("My name is Alice", user_id="alice")
            assert memory.search("What is my name?", user_id="alice")["results"][0][
                "memory"].endswith("name is Alice")
    else:
        with Memory.from_config(practice_2(None)) as memory:
            assert memory.stats()["memories"] == 0


def test_a_refused_open_takes_back_what_it_made_and_leaves_the_rest(tmp_path):
    """A configuration refused for using another store's graph leaves neither a record
    nor a Milvus collection behind (either would refuse that collection_name later with
    another embedder), and the other store's files are as they were."""
    shared_graph = str(tmp_path / "shared.kuzu")
    with Memory.from_config({"data_dir": str(tmp_path), **tenant("one", shared_graph)}) as m:
        m.add("My friend Ann lives in Paris", user_id="u")
    before = files_in(tmp_path)
    with pytest.raises(ConfigError, match="Kuzu graph .* belongs to another store"):
        Memory.from_config({"data_dir": str(tmp_path), **tenant("two", shared_graph),
                            "history_db_path": str(tmp_path / "two-record.sqlite")})
    assert files_in(tmp_path) == before
    other_size = {"data_dir": str(tmp_path), **tenant("two"),
                  "embedder": {"provider": "hash", "config": {"embedding_dims": 32}}}
    other_size["graph_store"]["config"]["db"] = str(tmp_path / "two.kuzu")
    with Memory.from_config(other_size) as memory:
        memory.add("My friend Bob lives in Rome", user_id="u")
        assert memory.stats()["vectors"] == 1
    with Memory.from_config({"data_dir": str(tmp_path), **tenant("one", shared_graph)}) as m:
        assert [r["memory"] for r in m.get_all(user_id="u")["results"]] == [
            "My friend Ann lives in Paris"]


def test_an_open_that_fails_after_making_the_store_removes_it(tmp_path):
    config = {"data_dir": str(tmp_path / "data"), "embedder": {"provider": "hash"}}
    arm("open.checked")
    try:
        with pytest.raises(StoreError, match="injected"):
            Memory.from_config(config)
    finally:
        disarm()
    assert list(tmp_path.iterdir()) == []
    config["embedder"] = {"provider": "hash", "config": {"embedding_dims": 32}}
    with Memory.from_config(config) as memory:
        memory.add("I enjoy hiking", user_id="u")


def test_an_open_killed_before_it_finished_binds_nothing(tmp_path):
    """SIGKILL leaves no chance to clean up: the record it made says no open finished,
    so the next configuration's identity and vector size are taken instead."""
    data = tmp_path / "data"
    child = subprocess.run(
        [sys.executable, "-c", "from hybridmem import Memory\n"
         f"Memory.from_config({{'data_dir': {str(data)!r}, 'embedder': {{'provider': 'hash'}},"
         " 'graph_store': {'provider': 'kuzu', 'config': {'db': "
         f"{str(data / 'hybridmem.kuzu')!r}}}}}}})"],
        env={**os.environ, "HYBRIDMEM_FAILPOINT": "open.checked:1"}, timeout=300)
    assert child.returncode == -signal.SIGKILL
    assert (data / "hybridmem.sqlite").exists()
    config = {"data_dir": str(data), "embedder": {"provider": "hash",
                                                  "config": {"embedding_dims": 32}}}
    with Memory.from_config(config) as memory:
        memory.add("I enjoy hiking", user_id="u")
        assert memory.stats()["memories"] == 1
    with Memory.from_config(config) as memory:  # and now it is claimed
        assert memory.stats()["memories"] == 1


# ---------------------------------------------------------------- where the record is kept


def by_path(folder: Path, collection: str = "c") -> dict:
    """A store configured by explicit engine paths, all in `folder`."""
    return {
        "embedder": {"provider": "hash"},
        "vector_store": {"provider": "milvus", "config": {
            "collection_name": collection, "url": str(folder / "m.db")}},
        "graph_store": {"provider": "kuzu", "config": {"db": str(folder / "g.kuzu")}},
    }


def test_a_default_store_keeps_its_record_in_the_data_dir(tmp_path):
    with Memory.from_config({"data_dir": str(tmp_path), "embedder": {"provider": "hash"}}) as m:
        m.add("I enjoy hiking", user_id="u")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hybridmem.kuzu", "hybridmem.sqlite", "hybridmem.sqlite.lock", "milvus.db"]


def test_stores_configured_by_path_keep_their_records_there(tmp_path, monkeypatch):
    """Two projects, each naming its own engine paths, one collection name and one
    HYBRIDMEM_HOME: each store is entirely in its folder (the second was refused:
    "the catalog .../c.sqlite belongs to the store with collection 'c' in lite:/a/m.db")."""
    home = tmp_path / "home"
    monkeypatch.setenv("HYBRIDMEM_HOME", str(home))
    a, b = tmp_path / "a", tmp_path / "b"
    with Memory.from_config(by_path(a)) as memory:
        memory.add("My friend Ann lives in Paris", user_id="u")
    with Memory.from_config(by_path(b)) as memory:
        memory.add("My friend Bob lives in Rome", user_id="u")
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == [
            "My friend Bob lives in Rome"]
    assert (a / "g.sqlite").exists() and (b / "g.sqlite").exists()
    assert not home.exists()
    monkeypatch.delenv("HYBRIDMEM_HOME")  # the data dir no longer matters to them
    with Memory.from_config(by_path(a)) as memory:
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == [
            "My friend Ann lives in Paris"]


def old_rule(config: dict, data_dir: Path) -> dict:
    """The same store as written before records followed their graph: its record is
    `<data_dir>/<collection>.sqlite` (what history_db_path names here), the identity's
    paths relative to the data dir."""
    collection = config["vector_store"]["config"]["collection_name"]
    return {**config, "data_dir": str(data_dir),
            "history_db_path": str(data_dir / f"{collection}.sqlite")}


def test_a_store_written_under_the_old_rule_opens_with_its_data(tmp_path):
    data, project = tmp_path / "data", tmp_path / "project"
    with Memory.from_config(old_rule(by_path(project), data)) as memory:
        [added] = memory.add("My friend Ann lives in Paris", user_id="u")["results"]
        memory.update(added["id"], "My friend Ann lives in Lyon")
        expected = everything(memory, "u")
    assert (data / "c.sqlite").exists() and not (project / "g.sqlite").exists()
    config = {**by_path(project), "data_dir": str(data)}
    with Memory.from_config(config) as memory:  # found there and moved beside its graph
        assert everything(memory, "u") == expected
        assert [h["event"] for h in memory.history(added["id"])] == ["ADD", "UPDATE"]
        assert memory.check()["clean"]
        memory.add("I enjoy hiking", user_id="u")
    assert (project / "g.sqlite").exists()
    assert not any(data.glob("c.sqlite*"))
    with Memory.from_config(by_path(project)) as memory:  # whatever the data dir
        assert memory.stats()["memories"] == 2


def test_an_old_rule_record_of_another_store_is_left_to_it(tmp_path):
    """Under the old rule both stores' records were <data_dir>/c.sqlite; the one there
    belongs to the store that wrote it, and the other gets its own beside its graph."""
    data, x, y = tmp_path / "data", tmp_path / "x", tmp_path / "y"
    with Memory.from_config(old_rule(by_path(x), data)) as memory:
        memory.add("My friend Ann lives in Paris", user_id="u")
    legacy = (data / "c.sqlite").read_bytes()
    with Memory.from_config({**by_path(y), "data_dir": str(data)}) as memory:
        assert memory.stats()["memories"] == 0
        memory.add("My friend Bob lives in Rome", user_id="u")
    assert (data / "c.sqlite").read_bytes() == legacy
    with Memory.from_config({**by_path(x), "data_dir": str(data)}) as memory:
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == [
            "My friend Ann lives in Paris"]
    assert not (data / "c.sqlite").exists() and (x / "g.sqlite").exists()
