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


FILLER = [
    "I asked my boss for a raise today",
    "Again the bus was late today, third time this week",
    "Today I asked the neighbours about the party",
    "I asked again about the concert tickets",
    "My sister painted the kitchen today",
    "We watched the match again last night",
    "Today was rainy so we stayed in",
    "I asked the mechanic to check the brakes again",
    "The garden looks great after the rain",
    "I finished my book again, it is that good",
]
CUE = "I'm lactose intolerant, it started a few years ago."
TRIGGER = "I asked for oat milk in my latte again today."


def _implicit_scope(memory: Memory) -> None:
    for i, text in enumerate(FILLER[:5] + [CUE] + FILLER[5:]):
        memory.add(f"{'Ana' if i % 2 else 'Ben'}: {text}", user_id="u", infer=False)


def test_a_dense_match_is_not_buried_by_matches_on_common_words(fresh_memory):
    """The trigger shares no word with the cue it depends on, and a common word or two
    ("asked", "again", "today") with most filler turns: those matches cover a small
    share of the query's evidence and earn (almost) nothing, so the cue, which stands out
    from the scope's cosines, keeps the rank the vector gives it."""
    _implicit_scope(fresh_memory)
    cue = f"Ana: {CUE}"
    by_vector = [h["memory"] for h in fresh_memory.search(
        TRIGGER, user_id="u", limit=3, signals=["vector"])["results"]]
    assert by_vector[0] == cue
    assert top(fresh_memory, TRIGGER, "u", 1) == [cue]


def test_a_match_on_a_small_share_of_the_query_earns_nothing():
    """A memory matching one word of a long remark (BM25 3 of the 40 a memory with every
    query word would get) earns 7.5 % of its BM25 credit, so a closer dense match ranks
    first; without the coverage term its BM25 outweighs the dense match."""
    from hybridmem.config import SearchConfig
    from hybridmem.read.merger import Candidate, fuse

    def ranked(config: SearchConfig) -> list[str]:
        cands = [Candidate("one-word", "memory", raw={"vector": 0.30, "bm25": 3.0}),
                 Candidate("dense", "memory", raw={"vector": 0.36})]
        return [c.id for c in fuse(cands, config, {"bm25_ideal": 40.0})]

    assert ranked(SearchConfig()) == ["dense", "one-word"]
    assert ranked(SearchConfig(bm25_coverage=0.0)) == ["one-word", "dense"]


def test_a_memory_standing_out_from_the_scope_counts_as_close():
    """Cosine 0.35 is weak in absolute terms, but 7.5 standard deviations above what
    this query gets from the scope's memories (mean 0.05, std 0.04): full vector credit
    with the background, the cosine curve's without it."""
    from hybridmem.config import SearchConfig
    from hybridmem.read.merger import Candidate, fuse

    def vector(evidence: dict[str, float]) -> float:
        [c] = fuse([Candidate("m", "memory", raw={"vector": 0.35})], SearchConfig(), evidence)
        return c.normalized["vector"]

    assert vector({"vector_mean": 0.05, "vector_std": 0.04}) == 1.0
    assert vector({}) == pytest.approx(0.35 / SearchConfig().vector_ceiling)
    # a scope whose cosines are all but equal has no background to stand out of: float32
    # rounding alone (std 6e-8) must not lend a memory z-credit
    assert vector({"vector_mean": 0.35 - 6e-8, "vector_std": 6e-8}) == vector({})
