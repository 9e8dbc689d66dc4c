"""The mem0-shaped API end to end on the real embedded engines (Milvus Lite, Kuzu, SQLite)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hybridmem import (
    DimensionMismatchError,
    InvalidInputError,
    Memory,
    MemoryConfig,
    NotFoundError,
    ScopeError,
    StoreLockedError,
)
from tests.conftest import PRACTICE_2


def texts(result: dict) -> list[str]:
    return [r["memory"] for r in result["results"]]


def test_add_search_get_roundtrip(shared_memory, uid):
    added = shared_memory.add("I enjoy hiking in the Alps", user_id=uid, metadata={"src": "t"})
    [item] = added["results"]
    assert item["event"] == "ADD" and item["memory"] == "I enjoy hiking in the Alps"
    got = shared_memory.get(item["id"])
    assert got["memory"] == "I enjoy hiking in the Alps"
    assert got["user_id"] == uid and got["metadata"] == {"src": "t"}
    assert got["created_at"] and got["hash"]
    hits = shared_memory.search("mountain walks", user_id=uid)["results"]
    assert hits and hits[0]["id"] == item["id"]
    assert 0 < hits[0]["score"] <= 1


def test_paraphrased_query_finds_its_memory_with_the_local_embedder(shared_memory, uid):
    for text in ["My daughter's birthday is on March 3rd", "I drive a blue Toyota",
                 "I am allergic to peanuts", "Our team meeting is every Monday"]:
        shared_memory.add(text, user_id=uid, infer=False)
    top = shared_memory.search("what food should I avoid", user_id=uid, limit=1)
    assert texts(top) == ["I am allergic to peanuts"]
    top = shared_memory.search("what car do I have", user_id=uid, limit=1)
    assert texts(top) == ["I drive a blue Toyota"]


def test_scopes_are_walls(shared_memory, uid):
    other = uid + "-other"
    shared_memory.add("I keep bees on my roof", user_id=uid, infer=False)
    shared_memory.add("I keep bees in the garden", user_id=other, infer=False)
    mine = shared_memory.search("bees", user_id=uid)["results"]
    assert texts({"results": mine}) == ["I keep bees on my roof"]
    assert {r["user_id"] for r in shared_memory.get_all(user_id=other)["results"]} == {other}


def test_runs_and_agents_narrow_a_user_scope(shared_memory, uid):
    shared_memory.add("Run one fact", user_id=uid, run_id="r1", infer=False)
    shared_memory.add("Run two fact", user_id=uid, run_id="r2", infer=False)
    shared_memory.add("Agent fact", user_id=uid, agent_id="helper", infer=False)
    assert len(shared_memory.get_all(user_id=uid)["results"]) == 3
    assert texts(shared_memory.get_all(user_id=uid, run_id="r1")) == ["Run one fact"]
    assert texts(shared_memory.get_all(user_id=uid, agent_id="helper")) == ["Agent fact"]
    assert texts(shared_memory.search("fact", user_id=uid, run_id="r2")) == ["Run two fact"]


def test_a_scope_id_is_required_and_never_defaulted(shared_memory):
    with pytest.raises(ScopeError):
        shared_memory.add("hello there friend")
    with pytest.raises(ScopeError):
        shared_memory.search("anything")
    with pytest.raises(ScopeError):
        shared_memory.get_all()
    with pytest.raises(ScopeError):
        shared_memory.delete_all()
    with pytest.raises(ScopeError):
        shared_memory.add("text", user_id="   ")
    with pytest.raises(ScopeError):
        shared_memory.add("text", user_id=42)


def test_infer_false_stores_verbatim_and_dedups_exact_hash(shared_memory, uid):
    messages = [{"role": "user", "content": "Do you know a good pasta place?"},
                {"role": "assistant", "content": "Try Luigi's on 5th."}]
    first = shared_memory.add(messages, user_id=uid, infer=False)
    assert [r["event"] for r in first["results"]] == ["ADD", "ADD"]
    again = shared_memory.add(messages, user_id=uid, infer=False)
    assert [r["event"] for r in again["results"]] == ["NONE", "NONE"]
    assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]
    assert len(shared_memory.get_all(user_id=uid)["results"]) == 2
    # Same text in another scope is another memory.
    other = shared_memory.add(messages[0], user_id=uid + "-x", infer=False)
    assert other["results"][0]["event"] == "ADD"
    roles = {r["memory"]: r["role"] for r in shared_memory.get_all(user_id=uid)["results"]}
    assert roles["Try Luigi's on 5th."] == "assistant"


def test_a_fact_said_twice_that_nearly_repeats_a_memory_is_one_memory(shared_memory, uid):
    # The same sentence twice in one add, near-identical (cosine >= dedup_threshold, not
    # the same hash: the case differs) to a memory already stored, raised KeyError: the
    # second copy had no vector, the first having been matched to the stored memory.
    [stored] = shared_memory.add("My sister Ana lives in Porto.", user_id=uid)["results"]
    again = shared_memory.add(["my sister Ana lives in Porto.", "my sister Ana lives in Porto."],
                              user_id=uid)
    assert [r["id"] for r in again["results"]] == [stored["id"]]
    assert [r["event"] for r in again["results"]] == ["NONE"]
    assert [m["id"] for m in shared_memory.get_all(user_id=uid)["results"]] == [stored["id"]]
    # A new fact twice beside a near-duplicate one: one new memory, stored once.
    mixed = shared_memory.add(["my sister Ana lives in Porto.", "I enjoy sailing.",
                               "I enjoy sailing."], user_id=uid)
    assert sorted(r["event"] for r in mixed["results"]) == ["ADD", "NONE"]
    assert len(shared_memory.get_all(user_id=uid)["results"]) == 2


def test_infer_true_offline_stores_statements_not_questions(shared_memory, uid):
    result = shared_memory.add(
        [{"role": "user", "content": "Hi! I live in Porto. What's the weather like?"},
         {"role": "assistant", "content": "Sunny in Porto today."}],
        user_id=uid,
    )
    assert texts(result) == ["I live in Porto."]
    assert result["relations"]["added_entities"] == [
        {"source": uid, "relationship": "lives_in", "target": "Porto"}
    ]


FILTER_CASES = [
    ({"topic": "work"}, {"a", "b"}),
    ({"topic": {"ne": "work"}}, {"c", "d"}),
    ({"priority": {"gte": 2}}, {"b", "c"}),
    ({"priority": {"gt": 2}}, {"c"}),
    ({"priority": {"lt": 2}}, {"a"}),
    ({"priority": {"lte": 2}}, {"a", "b"}),
    ({"priority": {"gte": 1, "lt": 3}}, {"a", "b"}),
    ({"topic": {"in": ["home", "hobby"]}}, {"c", "d"}),
    ({"topic": {"nin": ["home", "hobby"]}}, {"a", "b"}),
    ({"tags": {"contains": "urgent"}}, {"b", "d"}),
    ({"note": {"contains": "call"}}, {"a"}),
    ({"note": {"icontains": "CALL"}}, {"a", "c"}),
    ({"note": "*"}, {"a", "c"}),
    ({"OR": [{"topic": "home"}, {"priority": 1}]}, {"a", "c"}),
    ({"AND": [{"topic": "work"}, {"priority": {"gt": 1}}]}, {"b"}),
    ({"NOT": [{"topic": "work"}]}, {"c", "d"}),
    ({"topic": "work", "NOT": [{"tags": {"contains": "urgent"}}]}, {"a"}),
]


@pytest.fixture
def filter_scope(shared_memory, uid):
    rows = {
        "a": {"topic": "work", "priority": 1, "tags": ["x"], "note": "call Bob"},
        "b": {"topic": "work", "priority": 2, "tags": ["urgent"]},
        "c": {"topic": "home", "priority": 3, "tags": [], "note": "Call mom"},
        "d": {"topic": "hobby", "priority": "high", "tags": ["urgent", "fun"]},
    }
    ids = {}
    for name, metadata in rows.items():
        result = shared_memory.add(f"Task note {name} about planning", user_id=uid,
                                   metadata={**metadata, "name": name}, infer=False)
        ids[result["results"][0]["id"]] = name
    return uid, ids


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
def test_filters_on_get_all_and_search(shared_memory, filter_scope, filters, expected):
    uid, _ = filter_scope
    got = {r["metadata"]["name"] for r in
           shared_memory.get_all(user_id=uid, filters=filters)["results"]}
    assert got == expected
    found = {r["metadata"]["name"] for r in
             shared_memory.search("task planning", user_id=uid, filters=filters)["results"]}
    assert found == expected


def test_filter_errors_are_named(shared_memory, uid):
    with pytest.raises(InvalidInputError, match="regex"):
        shared_memory.search("x", user_id=uid, filters={"a": {"regex": "x"}})
    with pytest.raises(InvalidInputError, match="non-empty list"):
        shared_memory.search("x", user_id=uid, filters={"a": {"in": []}})
    with pytest.raises(InvalidInputError, match="'AND'"):
        shared_memory.search("x", user_id=uid, filters={"and": [{"a": 1}]})


def test_scope_ids_inside_filters_like_mem0(shared_memory, uid):
    shared_memory.add("Scoped via filters", user_id=uid, infer=False)
    assert texts(shared_memory.search("scoped", filters={"user_id": uid})) == [
        "Scoped via filters"]


def test_threshold_and_limit(shared_memory, uid):
    for i in range(6):
        shared_memory.add(f"Grocery item number {i} is apples", user_id=uid, infer=False)
    assert len(shared_memory.search("apples", user_id=uid, limit=3)["results"]) == 3
    all_hits = shared_memory.search("apples", user_id=uid)["results"]
    cut = all_hits[2]["score"]
    above = shared_memory.search("apples", user_id=uid, threshold=cut)["results"]
    assert above and all(h["score"] >= cut for h in above)
    assert len(above) < len(all_hits) or cut == all_hits[-1]["score"]
    for bad in (0, -1, 10**9, 2.5, "3"):
        with pytest.raises(InvalidInputError, match="limit"):
            shared_memory.search("apples", user_id=uid, limit=bad)
    with pytest.raises(InvalidInputError, match="threshold"):
        shared_memory.search("apples", user_id=uid, threshold=1.5)


def test_update_delete_and_history(shared_memory, uid):
    [item] = shared_memory.add("I drink tea every morning", user_id=uid,
                               infer=False)["results"]
    memory_id = item["id"]
    shared_memory.update(memory_id, "I drink coffee every morning")
    assert shared_memory.get(memory_id)["memory"] == "I drink coffee every morning"
    assert texts(shared_memory.search("coffee", user_id=uid, limit=1)) == [
        "I drink coffee every morning"]
    shared_memory.delete(memory_id)
    assert shared_memory.get(memory_id) is None
    assert shared_memory.search("coffee", user_id=uid)["results"] == []
    rows = shared_memory.history(memory_id)
    assert [r["event"] for r in rows] == ["ADD", "UPDATE", "DELETE"]
    assert rows[0]["new_memory"] == "I drink tea every morning"
    assert (rows[1]["old_memory"], rows[1]["new_memory"]) == (
        "I drink tea every morning", "I drink coffee every morning")
    assert rows[2]["old_memory"] == "I drink coffee every morning" and rows[2]["is_deleted"]
    with pytest.raises(NotFoundError):
        shared_memory.update(memory_id, "again")
    with pytest.raises(NotFoundError):
        shared_memory.delete(memory_id)


def test_delete_all_leaves_other_scopes(shared_memory, uid):
    shared_memory.add("A fact of mine", user_id=uid, infer=False)
    shared_memory.add("A fact of theirs", user_id=uid + "-b", infer=False)
    shared_memory.delete_all(user_id=uid)
    assert shared_memory.get_all(user_id=uid)["results"] == []
    assert shared_memory.search("fact", user_id=uid)["results"] == []
    assert texts(shared_memory.get_all(user_id=uid + "-b")) == ["A fact of theirs"]


def test_reset_is_explicit_and_total(fresh_memory):
    fresh_memory.add("I like tennis", user_id="a")
    fresh_memory.add("I like golf", user_id="b", infer=False)
    fresh_memory.reset()
    assert fresh_memory.stats() == {"memories": 0, "vectors": 0, "entities": 0,
                                    "relations": 0, "pending_operations": 0}
    fresh_memory.add("I like chess", user_id="a")
    assert texts(fresh_memory.get_all(user_id="a")) == ["I like chess"]


def test_reopen_after_close_keeps_everything(tmp_path):
    config = MemoryConfig(data_dir=str(tmp_path))
    with Memory(config) as memory:
        ids = [memory.add(f"Reopen fact {i} about sailing", user_id="u",
                          infer=False)["results"][0]["id"] for i in range(20)]
        memory.add("My name is Zoe", user_id="u")
    with Memory(config) as memory:
        assert memory.recovered == {"finished": 0, "pending": 0}
        assert {r["id"] for r in memory.get_all(user_id="u", limit=100)["results"]} >= set(ids)
        assert memory.stats()["vectors"] == 21
        top = memory.search("What is my name?", user_id="u", limit=1)["results"][0]
        assert top["type"] == "relation" and top["destination"] == "Zoe"


def test_repair_writes_only_what_differs(tmp_path):
    """A clean store is not written (repair rewrote all 7 vectors and 19 graph rows of
    the Practice 2 store every time); a damaged one gets exactly the rows that differ."""
    config = MemoryConfig(data_dir=str(tmp_path), embedder={"provider": "hash"})
    with Memory(config) as memory:
        for text in PRACTICE_2:
            memory.add(text, user_id="u")
        assert memory.repair() == {"repaired": {}, "clean": True, "found": {}}
        engines = memory.engines
        lost, changed = [r["id"] for r in memory.get_all(user_id="u")["results"][:2]]
        engines.vectors.delete([lost])
        record = engines.catalog.get(changed)
        engines.vectors.upsert([record.model_copy(update={"metadata": {"k": "stale"}})],
                               np.vstack([engines.catalog.vectors([changed])[changed]]))
        store_id, epoch = engines.graph.marker()
        edge = engines.graph.edges(None, include_invalid=True)[0]
        entity = next(e for e in engines.graph.entities(None)
                      if e.id not in (edge.source_id, edge.target_id))
        engines.graph.restore(entities=[entity.model_copy(update={"name": "Mallory"})],
                              edges=[], drop_edge_ids=[edge.id], store_id=store_id,
                              epoch=epoch)
        assert memory.check()["found"] == {"vectors_missing": 1, "vectors_differ": 1,
                                           "entities_differ": 1, "edges_missing": 1}
        assert memory.repair() == {"repaired": {"vectors_written": 2, "graph_rows_written": 2},
                                   "clean": True, "found": {}}
        assert memory.repair()["repaired"] == {}


def test_dimension_mismatch_is_a_clear_error(tmp_path):
    with Memory(MemoryConfig(data_dir=str(tmp_path))):
        pass
    config = MemoryConfig(data_dir=str(tmp_path), embedder={"provider": "hash",
                                                            "embedding_dims": 64})
    with pytest.raises(DimensionMismatchError, match="384-d.*64-d"):
        Memory(config)
    # The failed open released the directory.
    with Memory(MemoryConfig(data_dir=str(tmp_path))):
        pass


def test_second_open_of_one_data_dir(tmp_path):
    config = MemoryConfig(data_dir=str(tmp_path))
    with Memory(config):
        with pytest.raises(StoreLockedError, match="in use"):
            Memory(config)
        script = textwrap.dedent(f"""
            from hybridmem import Memory, MemoryConfig, StoreLockedError
            try:
                Memory(MemoryConfig(data_dir={str(tmp_path)!r}, embedder={{"provider": "hash"}}))
            except StoreLockedError as exc:
                print("LOCKED", exc)
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=120)
        assert out.stdout.startswith("LOCKED"), out.stderr


def test_bad_messages_are_refused_without_writing(shared_memory, uid):
    for bad in ["", "   ", None, b"bytes", [], [{"role": "user", "content": ""}],
                [{"role": "robot", "content": "hi"}], [{"role": "user", "content": 5}],
                "x" * 40_000, "bad \ud800 surrogate"]:
        with pytest.raises(InvalidInputError):
            shared_memory.add(bad, user_id=uid)
    for bad_md in [{"f": object()}, {1: "x"}, "notadict", {"n": float("nan")}]:
        with pytest.raises(InvalidInputError):
            shared_memory.add("fine text here", user_id=uid, metadata=bad_md)
    assert shared_memory.get_all(user_id=uid)["results"] == []
    assert shared_memory.pending() == []


def test_text_is_kept_as_said_and_matched_folded(shared_memory, uid):
    """A non-breaking hyphen (U+2011) and a curly apostrophe stay as the user typed them;
    keys, BM25 and resolution see them folded, so plain ASCII finds and joins them."""
    said = ["My friend Peter is Spider\u2011Man", "I\u2019m from Porto"]
    for text in said:
        shared_memory.add(text, user_id=uid)
    shared_memory.add("Spider-Man lives in New York", user_id=uid)
    assert {m["memory"] for m in shared_memory.get_all(user_id=uid)["results"]} >= set(said)
    relations = {(r["source"], r["relationship"], r["target"])
                 for r in shared_memory.get_all(user_id=uid)["relations"]}
    assert ("Peter", "is", "Spider\u2011Man") in relations
    assert (uid, "is_from", "Porto") in relations
    assert ("Spider\u2011Man", "lives_in", "New York") in relations  # one entity, as first said
    top = shared_memory.search("Who is Spider-Man?", user_id=uid)["results"][0]
    assert (top["source"], top["destination"]) == ("Peter", "Spider\u2011Man")
    [peter] = [m["id"] for m in shared_memory.get_all(user_id=uid)["results"]
               if m["memory"] == said[0]]
    bm25 = shared_memory.search("spider-man", user_id=uid, signals=["bm25"])["results"]
    assert any(peter in h["provenance"]["memory_ids"] and h["score_components"]["bm25"]["raw"]
               for h in bm25)
