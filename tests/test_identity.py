"""A store is its configuration: two configurations never see each other's memories,
whatever folder they run from, and no file of one store serves another."""

from __future__ import annotations

import pytest

from hybridmem import ConfigError, Memory, StoreError


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
    assert (tmp_path / "hybridmem_data" / "tenant_a.sqlite").exists()
    assert (tmp_path / "hybridmem_data" / "tenant_b.sqlite").exists()


def test_a_catalog_opened_for_another_identity_is_refused(tmp_path):
    base = {"data_dir": str(tmp_path), **tenant("mem0_test3", str(tmp_path / "a.kuzu"))}
    with Memory.from_config(base) as memory:
        memory.add("I enjoy hiking", user_id="u")
    moved = {**base, "graph_store": {"provider": "kuzu", "config": {
        "db": str(tmp_path / "b.kuzu")}}}
    with pytest.raises(ConfigError, match="belongs to the store with collection 'mem0_test3'"):
        Memory.from_config(moved)
    # the right configuration still opens, and finds its memory
    with Memory.from_config(base) as memory:
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == [
            "I enjoy hiking"]


def test_a_graph_of_another_store_is_refused(tmp_path):
    shared_graph = str(tmp_path / "shared.kuzu")
    with Memory.from_config({"data_dir": str(tmp_path), **tenant("one", shared_graph)}) as m:
        m.add("My friend Ann lives in Paris", user_id="u")
    with pytest.raises(ConfigError, match="belongs to another store"):
        Memory.from_config({"data_dir": str(tmp_path), **tenant("two", shared_graph)})


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
