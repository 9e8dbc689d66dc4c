"""Scores claim only the evidence they have: the ranking cases of issue #10.5, each with
sentences of our own, on the offline default (local embedder, rules extractor)."""

from __future__ import annotations

import pytest

from hybridmem import Memory


def top(memory: Memory, query: str, user: str, n: int = 1) -> list[str]:
    return [h["memory"] for h in memory.search(query, user_id=user, limit=n)["results"]]


def components(memory: Memory, query: str, user: str) -> list[dict]:
    return [h["score_components"] for h in memory.search(query, user_id=user)["results"]]


def test_bm25_of_a_word_every_memory_has_is_no_evidence(fresh_memory):
    """FTS5 gives a word in every document an IDF of 1e-06: the best BM25 of the query,
    and no evidence at all."""
    for text in ["I like tea", "I like coffee", "I like cake"]:
        fresh_memory.add(text, user_id="u", infer=False)
    found = components(fresh_memory, "what do I like", "u")
    assert found and all(0 < p["bm25"]["raw"] < 0.01 for p in found)
    assert all(p["bm25"]["normalized"] < 0.01 for p in found), found


def test_a_hub_does_not_hand_full_graph_evidence_to_all_its_edges(shared_memory, uid):
    for text in ["My sister Ana lives in Lima", "I work at Siemens", "I like jazz",
                 "My friend Bob lives in Munich", "I live in Berlin", "I'm vegetarian."]:
        shared_memory.add(text, user_id=uid)
    assert top(shared_memory, "What food restrictions do I have?", uid) == ["I'm vegetarian."]
    hits = shared_memory.search("What food restrictions do I have?", user_id=uid)["results"]
    self_edges = [h for h in hits if h["type"] == "relation" and h["source"] == uid]
    assert self_edges and all(h["score_components"]["graph"]["normalized"] < 0.5
                              for h in self_edges)


@pytest.mark.parametrize(("query", "expected"), [
    ("Where does Ana live?", "Ana lives in Lima"),
    ("Who is my sister?", "Ana is {uid}'s sister"),
    ("Where does Bob live?", "Bob lives in Munich"),
])
def test_a_relations_own_text_decides_between_relations_of_one_sentence(
        shared_memory, uid, query, expected):
    for text in ["My sister Ana lives in Lima", "My friend Bob lives in Munich"]:
        shared_memory.add(text, user_id=uid)
    assert top(shared_memory, query, uid) == [expected.format(uid=uid)]


def test_a_memory_without_relations_reaches_the_top(shared_memory, uid):
    for text in ["My sister Ana lives in Lima", "I work at Siemens", "My friend Bob is a chef",
                 "The wifi password at home is hunter2", "I like jazz"]:
        shared_memory.add(text, user_id=uid)
    assert top(shared_memory, "what is the wifi password?", uid) == [
        "The wifi password at home is hunter2"]
