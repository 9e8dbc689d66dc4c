"""Failed writes and their replays: a call that raises changes nothing, a replay is planned
against the state of its moment, input an engine would refuse never reaches the journal,
and nothing that keeps failing can block a store from opening."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hybridmem import (
    ConfigError,
    InvalidInputError,
    Memory,
    MemoryConfig,
    ScopeError,
    StoreError,
)
from hybridmem._failpoints import arm, disarm


@pytest.fixture
def config(tmp_path) -> MemoryConfig:
    return MemoryConfig(data_dir=str(tmp_path / "data"), embedder={"provider": "hash"},
                        dedup_threshold=0.9999)


@pytest.fixture(autouse=True)
def _disarm():
    yield
    disarm()


def relations(memory: Memory, user: str) -> set[tuple[str, str, str]]:
    rels = memory.get_all(user_id=user)["relations"]
    return {(r["source"], r["relationship"], r["target"]) for r in rels}


# ---------------------------------------------------------------- input engines refuse


@pytest.mark.parametrize("call", [
    lambda m: m.add("hello there", user_id="bad\udc00id"),
    lambda m: m.add("hello there", user_id="u", metadata={"n": 2**70}),
    lambda m: m.add("hello there", user_id="u", metadata={"k\ud800": 1}),
    lambda m: m.add("x" * 40_000 + "é" * 20_000, user_id="u", infer=False),
    lambda m: m.search("hi", user_id="u", filters={"k": {"gt": float("inf")}}),
    lambda m: m.search("hi", user_id="u", filters={"k": 2**64}),
    lambda m: m.get_all(user_id="u", filters={"k": "a\ud800"}),
], ids=["surrogate-user-id", "int-over-64-bits", "surrogate-metadata-key", "text-over-64KiB",
        "infinite-filter", "filter-int-over-64-bits", "surrogate-filter-value"])
def test_input_an_engine_would_refuse_is_refused_before_the_journal(config, call):
    with Memory(config) as memory:
        with pytest.raises(InvalidInputError):
            call(memory)
        assert memory.pending() == []
        memory.add("still fine", user_id="u", infer=False)
    with Memory(config) as memory:  # and the store opens as usual
        assert memory.recovered["pending"] == 0
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == ["still fine"]


def test_an_add_that_keeps_failing_is_quarantined_and_never_blocks_open(config):
    with Memory(config) as memory:
        arm("milvus.written")
        with pytest.raises(StoreError, match="injected"):
            memory.add("My friend Ann lives in Oslo", user_id="u")
        for _ in range(2):
            arm("milvus.written")
            assert memory.retry_pending() == {"finished": 0, "pending": 1}
        [op] = memory.pending()
        assert op["status"] == "quarantined" and op["attempts"] == 3
        assert "injected failure" in op["error"]
        assert memory.get_all(user_id="u")["results"] == []
        assert memory.retry_pending() == {"finished": 0, "pending": 0}  # left alone
    with Memory(config) as memory:
        [op] = memory.pending()
        memory.discard_pending(op["id"])
        assert memory.pending() == []
        assert memory.check()["clean"]


# ---------------------------------------------------------------- stale replays


def test_an_update_that_failed_never_comes_back_after_a_delete(config):
    with Memory(config) as memory:
        [item] = memory.add("My friend Ann lives in Oslo", user_id="u")["results"]
        arm("kuzu.written")
        with pytest.raises(StoreError):
            memory.update(item["id"], "My friend Ann lives in Rome")
        assert memory.get(item["id"])["memory"] == "My friend Ann lives in Oslo"
        assert ("Ann", "lives_in", "Oslo") in relations(memory, "u")
        memory.delete(item["id"])
        memory.retry_pending()
        assert memory.get(item["id"]) is None
    with Memory(config) as memory:
        assert memory.get(item["id"]) is None
        assert relations(memory, "u") == set()
        assert memory.check()["clean"]


def test_a_replayed_add_adds_support_and_never_overwrites_it(config):
    with Memory(config) as memory:
        arm("kuzu.written")
        with pytest.raises(StoreError):
            memory.add("Bob lives in Paris", user_id="u")
        [later] = memory.add("My friend Bob lives in Paris", user_id="u")["results"]
        assert memory.retry_pending() == {"finished": 1, "pending": 0}
        replayed = next(r for r in memory.get_all(user_id="u")["results"]
                        if r["memory"] == "Bob lives in Paris")
        edge = next(r for r in memory.get_all(user_id="u")["relations"]
                    if r["relationship"] == "lives_in")
        assert set(edge["memory_ids"]) == {later["id"], replayed["id"]}
        memory.delete(replayed["id"])
        # the acknowledged later memory still states the edge: it stays
        assert ("Bob", "lives_in", "Paris") in relations(memory, "u")
        assert memory.check()["clean"]


def test_a_replayed_add_keeps_its_timestamp(config):
    """The timestamp is journaled with the input: a failed add replayed later is dated
    when it was said, not when it was replayed, and its "yesterday" resolves the same."""
    with Memory(config) as memory:
        arm("milvus.written")
        with pytest.raises(StoreError):
            memory.add("I went to the support group yesterday", user_id="u", infer=False,
                       timestamp="2023-05-08T13:56:00Z")
        assert memory.retry_pending() == {"finished": 1, "pending": 0}
        [replayed] = memory.get_all(user_id="u")["results"]
        assert replayed["created_at"] == "2023-05-08T13:56:00.000000+00:00"
        found = memory.search("7 May 2023", user_id="u", signals=["bm25"])["results"]
        assert [h["id"] for h in found] == [replayed["id"]]


def test_a_delete_all_that_failed_is_not_run_at_the_next_open(config):
    with Memory(config) as memory:
        for i in range(3):
            memory.add(f"Early note {i}", user_id="u", infer=False)
        arm("milvus.written")
        with pytest.raises(StoreError):
            memory.delete_all(user_id="u")
        assert len(memory.get_all(user_id="u")["results"]) == 3
        for i in range(2):
            memory.add(f"Later note {i}", user_id="u", infer=False)
    with Memory(config) as memory:
        assert len(memory.get_all(user_id="u")["results"]) == 5
        assert memory.pending() == []
        assert memory.check()["clean"]


@pytest.mark.parametrize("point", ["milvus.written", "kuzu.written"])
def test_a_failed_add_shows_no_memory_without_its_edges(config, point):
    with Memory(config) as memory:
        arm(point)
        with pytest.raises(StoreError):
            memory.add("My friend Cleo lives in Lima", user_id="u")
        assert memory.get_all(user_id="u") == {"results": [], "relations": []}
        assert memory.search("Cleo", user_id="u")["results"] == []
        assert memory.check()["clean"]  # what reached an engine was undone
        assert memory.retry_pending() == {"finished": 1, "pending": 0}
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == [
            "My friend Cleo lives in Lima"]
        assert {("u", "friend", "Cleo"), ("Cleo", "lives_in", "Lima")} <= relations(memory, "u")


# ---------------------------------------------------------------- big calls


def test_a_long_conversation_is_stored_in_journaled_batches(tmp_path):
    config = MemoryConfig(data_dir=str(tmp_path / "data"), embedder={"provider": "hash"},
                          add_batch_messages=100)
    messages = [{"role": "user", "content": f"Batch note number {i}"} for i in range(250)]
    with Memory(config) as memory:
        arm("plan.stored", 3)  # the third batch fails
        with pytest.raises(StoreError) as failure:
            memory.add(messages, user_id="u", infer=False)
        assert "messages 0-199 of this call were stored" in str(failure.value.__notes__)
        assert len(memory.get_all(user_id="u", limit=1000)["results"]) == 200
        assert memory.retry_pending() == {"finished": 1, "pending": 0}
        assert len(memory.get_all(user_id="u", limit=1000)["results"]) == 250
        assert len(memory.add(messages[:10], user_id="v", infer=False)["results"]) == 10


# ---------------------------------------------------------------- bad places


@pytest.mark.parametrize("where", ["/proc/hybridmem-test", "a-file"])
def test_a_data_dir_that_cannot_be_created_is_a_config_error(tmp_path, where):
    path = Path(where) if where.startswith("/") else tmp_path / where
    if not where.startswith("/"):
        path.write_text("not a folder")
    with pytest.raises(ConfigError, match=str(path)):
        Memory(MemoryConfig(data_dir=str(path), embedder={"provider": "hash"}))


@pytest.mark.slow
def test_a_full_disk_at_open_is_a_store_error_and_leaks_no_lock(tmp_path):
    disk = tmp_path / "tiny"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"the OS forbids mounting a tmpfs: {done.stderr.strip()}")
    try:
        (disk / "filler").write_bytes(b"x" * (60 * 1024))
        config = MemoryConfig(data_dir=str(disk / "data"), embedder={"provider": "hash"})
        with pytest.raises(StoreError):
            Memory(config)
        (disk / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        with Memory(config) as memory:  # same process: no lock was left behind
            memory.add("now there is room", user_id="u", infer=False)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_scope_errors_name_the_scope(config):
    with Memory(config) as memory, pytest.raises(ScopeError, match="user_id"):
        memory.add("x y", user_id="")


@pytest.mark.parametrize("then", ["write", "close"])
def test_a_delete_that_raised_is_never_applied_even_if_its_failure_was_not_recorded(
        config, monkeypatch, then):
    """A full disk can refuse the very write that marks a failed delete as failed: the
    plan stays `planned`, as one a crash interrupted. The next write, or the next open,
    must still undo it, not finish it (they finished it: a memory whose deletion the
    caller was told had failed disappeared)."""
    from hybridmem.stores.journal import Journal

    with Memory(config) as memory:
        [kept] = memory.add("I keep bees", user_id="u", infer=False)["results"]

        def disk_full(*args, **kwargs):
            raise StoreError("the catalog failed (write): database or disk is full")

        arm("milvus.written")
        monkeypatch.setattr(Journal, "fail", disk_full)
        with pytest.raises(StoreError):
            memory.delete(kept["id"])
        monkeypatch.undo()  # the disk has room again
        if then == "write":
            memory.add("I sell honey", user_id="u", infer=False)
            assert memory.get(kept["id"])["memory"] == "I keep bees"
    with Memory(config) as memory:
        assert memory.get(kept["id"])["memory"] == "I keep bees"
        assert memory.pending() == []
        assert memory.check()["clean"]
