"""One ranked list: the article's queries on real engines, and the fusion's properties."""

from __future__ import annotations

import itertools

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hybridmem import Memory, MemoryConfig
from hybridmem.config import SearchConfig
from hybridmem.read.merger import Candidate, fuse
from hybridmem.schemas import load_schema


def test_what_is_my_name(shared_memory, alice):
    top = shared_memory.search("What is my name?", user_id=alice)["results"][0]
    assert top["type"] == "relation"
    assert (top["source"], top["relationship"], top["destination"]) == ("Alice", "name", "Alice")
    assert top["memory"] == "Alice's name is Alice"
    components = top["score_components"]
    assert set(components) == {"vector", "bm25", "graph"}
    assert components["graph"]["normalized"] > 0  # "my" names the user, weakly
    assert components["vector"]["raw"] > 0.5
    [memory_id] = top["provenance"]["memory_ids"]
    assert shared_memory.get(memory_id)["memory"] == "My name is Alice"


def test_who_is_spider_man(shared_memory, alice):
    # asked with a plain hyphen, answered with the name as Practice 2 wrote it (U+2011)
    top = shared_memory.search("Who is Spider-Man?", user_id=alice)["results"][0]
    assert (top["source"], top["relationship"], top["destination"]) == (
        "Peter", "is", "Spider\u2011Man")


def test_do_i_like_badminton(shared_memory, alice):
    hits = shared_memory.search("Do I like badminton?", user_id=alice)["results"]
    texts = [h["memory"] for h in hits]
    assert texts[0] == "Alice dislikes badminton"
    # The stale "likes" edge and the superseded memory behind it never appear.
    assert "Alice likes badminton" not in texts and "I like badminton" not in texts


def test_results_are_one_list_of_both_kinds(shared_memory, alice):
    result = shared_memory.search("Who has a dog?", user_id=alice, limit=10)
    jsonschema.validate(result, load_schema("search_result"))
    hits = result["results"]
    assert {h["type"] for h in hits} == {"memory", "relation"}
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    for h in hits:
        assert h["provenance"]["memory_ids"] and h["provenance"]["created_at"]
        assert 0.0 <= h["score"] <= 1.0


def test_a_relation_and_its_fact_are_one_hit(shared_memory, alice):
    hits = shared_memory.search("What is my name?", user_id=alice, limit=20)["results"]
    name_memory = hits[0]["provenance"]["memory_ids"][0]
    assert name_memory not in {h["id"] for h in hits}  # absorbed by the relation
    assert sum(1 for h in hits if name_memory in h["provenance"]["memory_ids"]) == 1


def test_search_never_crosses_scopes(shared_memory, alice):
    other = alice + "-eve"
    shared_memory.add("My name is Eve", user_id=other)
    for query in ["What is my name?", "Eve", "Alice", "badminton"]:
        mine = shared_memory.search(query, user_id=alice)["results"]
        theirs = shared_memory.search(query, user_id=other)["results"]
        assert all("Eve" not in h["memory"] for h in mine)
        assert all(h.get("user_id", other) == other for h in theirs)
        assert all("Alice" not in h["memory"] for h in theirs)


def test_signals_can_be_restricted(shared_memory, alice):
    only_bm25 = shared_memory.search("Spider-Man", user_id=alice, signals=["bm25"])["results"]
    assert only_bm25
    for h in only_bm25:
        assert h["score_components"]["vector"]["raw"] == 0.0
        assert h["score_components"]["graph"]["raw"] == 0.0


# ---------------------------------------------------------------- fusion properties

signal = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def _candidates(raws: list[dict[str, float]]) -> list[Candidate]:
    return [Candidate(f"m{i}", "memory", raw=dict(r), memory_ids=[f"m{i}"])
            for i, r in enumerate(raws)]


@given(base=st.lists(st.fixed_dictionaries({"vector": signal, "bm25": signal}), min_size=2,
                     max_size=8),
       which=st.sampled_from(["vector", "bm25"]), bump=st.floats(0.01, 0.5),
       method=st.sampled_from(["weighted", "rrf"]),
       evidence=st.sampled_from([{}, {"bm25_ideal": 2.0, "vector_mean": 0.3,
                                      "vector_std": 0.1}]))
def test_fusion_is_monotonic_in_each_signal(base, which, bump, method, evidence):
    """Raising one hit's signal never lowers its rank, with or without the per-query
    background and coverage."""
    before = fuse(_candidates(base), SearchConfig(fusion=method), evidence)
    rank_before = [c.id for c in before].index("m0")
    raised = [dict(r) for r in base]
    raised[0][which] = raised[0][which] + bump
    after = fuse(_candidates(raised), SearchConfig(fusion=method), evidence)
    assert [c.id for c in after].index("m0") <= rank_before


@pytest.mark.parametrize("method", ["weighted", "rrf"])
def test_ties_break_deterministically(method):
    raws = [{"vector": 0.5, "bm25": 1.0}] * 4
    orders = set()
    for perm in itertools.permutations(range(4)):
        cands = [Candidate(f"m{i}", "memory", raw=dict(raws[i])) for i in perm]
        orders.add(tuple(c.id for c in fuse(cands, SearchConfig(fusion=method))))
    assert orders == {("m0", "m1", "m2", "m3")}


# Under RRF only ranks count, so a single-signal hit beats the top hit of a heavier signal
# only by being ranked first in a signal of at least the same weight; the magnitude-aware
# weighted fusion (the default) is where weak matches lose to one strong signal.
def test_a_bm25_only_hit_can_rank_first():
    cands = [
        Candidate("lexical", "memory", raw={"bm25": 12.0}),
        Candidate("weak1", "memory", raw={"vector": 0.21, "bm25": 1.0}),
        Candidate("weak2", "memory", raw={"vector": 0.20}),
    ]
    assert fuse(cands, SearchConfig())[0].id == "lexical"


def test_a_graph_only_hit_can_rank_first():
    cands = [
        Candidate("edge", "relation", raw={"graph": 1.0}, memory_ids=["x"]),
        Candidate("m1", "memory", raw={"vector": 0.15}),
        Candidate("m2", "memory", raw={"vector": 0.12}),
    ]
    assert fuse(cands, SearchConfig())[0].id == "edge"


def test_weak_best_vector_match_stays_weak():
    config = SearchConfig(vector_floor=0.15, vector_ceiling=0.75,
                          weights={"vector": 1.0, "bm25": 1.0, "graph": 1.0})
    [c] = fuse([Candidate("m", "memory", raw={"vector": 0.3})], config)
    assert c.normalized["vector"] == pytest.approx(0.25)  # (0.3 - 0.15) / (0.75 - 0.15)
    assert c.score == pytest.approx(0.25 / 3)  # equal weights over three signals


def test_a_tiny_bm25_is_no_evidence_even_when_it_is_the_best():
    [c] = fuse([Candidate("m", "memory", raw={"bm25": 1e-06})], SearchConfig())
    assert c.normalized["bm25"] < 1e-6


def test_relation_absorbs_its_memory():
    cands = [
        Candidate("m1", "memory", raw={"vector": 0.8, "bm25": 3.0}, memory_ids=["m1"]),
        Candidate("e1", "relation", raw={"graph": 1.0, "bm25": 1.0}, memory_ids=["m1"]),
        Candidate("m2", "memory", raw={"vector": 0.3}, memory_ids=["m2"]),
    ]
    ranked = fuse(cands, SearchConfig())
    assert [c.id for c in ranked] == ["e1", "m2"]
    config = SearchConfig()  # per signal, the better of the relation's and its memory's
    bm25 = max(3 / (3 + config.bm25_half), 1 / (1 + config.relation_bm25_half))
    vector = min(0.8 / config.vector_ceiling, 1.0)  # the memory's (no background given)
    assert ranked[0].normalized == {"vector": pytest.approx(vector),
                                    "bm25": pytest.approx(bm25), "graph": 1.0}
    assert ranked[0].raw["vector"] == 0.8


def test_a_turn_is_found_by_the_words_of_the_turns_before_it(tmp_path):
    from hybridmem import Memory

    config = {"data_dir": str(tmp_path), "embedder": {"provider": "hash"}}
    turns = ["Ana: I joined a pottery class downtown", "Ben: Nice! What did you make?",
             "Ana: A small blue vase, my first one", "Ben: I fixed my bike today"]
    with Memory.from_config(config) as memory:
        for turn in turns:
            memory.add(turn, user_id="u", infer=False)
        ranked = [h["memory"] for h in memory.search(
            "pottery", user_id="u", limit=3, signals=["bm25"])["results"]]
        # the vase turn never says "pottery"; the turn two before it does
        assert set(ranked) == {turns[0], turns[1], turns[2]}
    config["search"] = {"context_memories": 0}
    with Memory.from_config({**config, "data_dir": str(tmp_path / "alone")}) as memory:
        for turn in turns:
            memory.add(turn, user_id="u", infer=False)
        assert [h["memory"] for h in memory.search(
            "pottery", user_id="u", limit=3, signals=["bm25"])["results"]] == [turns[0]]


def test_deleted_or_changed_words_leave_the_context_too(tmp_path):
    from hybridmem import Memory

    config = {"data_dir": str(tmp_path), "embedder": {"provider": "hash"}}
    with Memory.from_config(config) as memory:
        ids = [memory.add(turn, user_id="u", infer=False)["results"][0]["id"] for turn in (
            "My locker code is zebra", "I parked on level 3", "Lunch was good")]
        memory.delete(ids[0])
        assert memory.search("zebra", user_id="u", signals=["bm25"])["results"] == []
        memory.update(ids[1], "I parked on level 5 near the gate")
        found = memory.search("gate", user_id="u", signals=["bm25"])["results"]
        assert [h["memory"] for h in found] == ["I parked on level 5 near the gate",
                                                "Lunch was good"]


WORDS_OF_MEMORIES = ["alice", "bob", "tea", "paris", "dog", "rex", "the"]


def test_bm25_never_finds_a_superseded_memory(shared_memory, uid):
    """Memories superseded after the scope's postings were loaded leave them (and the
    words they held count no more), so they cannot crowd the current one out."""
    from hybridmem.scope import Scope

    scope = Scope.of(uid)
    shared_memory.search("load the scope's postings", user_id=uid)
    cities = ["Lisbon", "Porto", "Braga", "Faro", "Evora", "Sintra"]
    for city in cities:
        shared_memory.add(f"I live in {city}", user_id=uid)
    shared_memory.add("I live in Coimbra", user_id=uid)  # current: one matching word less
    texts = {m["id"]: m["memory"] for m in shared_memory.get_all(user_id=uid)["results"]}
    assert list(texts.values()) == ["I live in Coimbra"]  # the six were superseded
    lexical = shared_memory.engines.lexical
    for limit in (1, 2, 3):
        # (without context: Coimbra's holds the two cities said before it)
        found = lexical.search("live " + " ".join(cities), scope, limit, context_weight=0)
        assert [texts.get(i) for i, _ in found] == ["I live in Coimbra"]


def test_cached_postings_equal_a_fresh_load(fresh_memory):
    """Writes patch the loaded postings (adds, an update that rewrites the contexts
    quoting it, a delete, a supersession, a sub-scope's delete_all); after each, every
    query scores as on postings loaded from the record."""
    from hybridmem.read.lexical_index import LexicalIndex
    from hybridmem.scope import Scope

    memory, scope = fresh_memory, Scope.of("u")
    catalog = memory.engines.catalog

    def check() -> None:
        fresh = LexicalIndex(catalog.scope_texts, 2**20)
        for query in ["pottery", "chess", "Ana Lima", "live Porto Braga", "bread sister"]:
            for weight in (0.0, 0.5, 1.0):
                cached = memory.engines.lexical.search(query, scope, 50, context_weight=weight)
                again = fresh.search(query, scope, 50, context_weight=weight)
                assert dict(cached) == pytest.approx(dict(again)), (query, weight)

    memory.search("load the scope's postings", user_id="u")
    ids = [memory.add(text, user_id="u", infer=False)["results"][0]["id"] for text in [
        "I adore pottery", "My sister Ana paints", "We met at the pottery class",
        "Ana moved to Lima", "I bake bread on Sundays"]]
    memory.add("Lena plays chess", user_id="u", agent_id="coach", infer=False)
    check()
    memory.update(ids[0], "I adore chess")  # the next two memories quote it
    check()
    found = memory.engines.lexical.search("pottery", scope, 50, context_weight=0)
    assert [i for i, _ in found] == [ids[2]]
    memory.delete(ids[3])  # quoted by the last one
    check()
    memory.add("I live in Porto", user_id="u")
    memory.add("I live in Braga", user_id="u")  # supersedes Porto
    check()
    memory.delete_all(user_id="u", agent_id="coach")
    check()


@given(st.lists(st.tuples(st.lists(st.sampled_from(WORDS_OF_MEMORIES), max_size=6),
                          st.lists(st.sampled_from(WORDS_OF_MEMORIES), max_size=6)),
                min_size=1, max_size=30),
       st.data())
def test_memory_bm25_patched_in_steps_scores_as_the_formula(docs, data):
    """Adds, removals (compacted after two) and re-adds leave the postings scoring every
    query as BM25 written out over the memories left."""
    import math

    from hybridmem.read.lexical_index import _ScopePostings

    postings = _ScopePostings(compact_after=2)
    live: dict[str, tuple[list[str], list[str]]] = {}
    for i, (own, near) in enumerate(docs):
        postings.add(f"m{i}", own, near)
        live[f"m{i}"] = (own, near)
        if data.draw(st.booleans()):
            gone = data.draw(st.sampled_from(sorted(live)))
            postings.remove(gone)
            del live[gone]
    again = data.draw(st.sampled_from([f"m{i}" for i in range(len(docs))]))
    postings.add(again, ["alice", "tea"], [])
    live[again] = (["alice", "tea"], [])
    for weight in (0.0, 0.5, 1.0):
        for words in (["alice"], ["tea", "paris"], ["bob", "rex", "dog"]):
            n = len(live)
            total = sum(len(o) + (len(c) if weight else 0) for o, c in live.values())
            expected = {}
            for word in words:
                tf = {m: o.count(word) + weight * c.count(word) for m, (o, c) in live.items()}
                df = sum(1 for v in tf.values() if v > 0)
                idf = max(math.log(1 + (n - df + 0.5) / (df + 0.5))
                          - math.log(1 + 0.5 / (n + 0.5)), 1e-6)
                for m, (o, c) in live.items():
                    if tf[m] > 0:
                        length = len(o) + (len(c) if weight else 0)
                        part = idf * tf[m] * 2.2 / (tf[m] + 1.2 * (0.25 + 0.75 * length
                                                                   / (total / n)))
                        expected[m] = expected.get(m, 0.0) + part
            scores = postings.scores(words, weight)
            got = {postings.ids[r]: s for r, s in enumerate(scores) if s > 0}
            assert got == pytest.approx(expected), (words, weight)


def test_memory_bm25_ties_at_the_cut_go_by_id():
    """Fifty memories score the same: the top five are the five smallest ids, whatever
    the order the postings hold them in."""
    from hybridmem.read.lexical_index import LexicalIndex
    from hybridmem.records import MemoryText
    from hybridmem.scope import Scope

    docs = [MemoryText(f"m{i:03d}", "I like tea", ()) for i in reversed(range(50))]
    index = LexicalIndex(lambda scope: [*docs, MemoryText("x", "coffee")], 2**20)
    found = index.search("tea", Scope.of("u"), 5)
    assert [i for i, _ in found] == ["m000", "m001", "m002", "m003", "m004"]


@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(
    ["\u2019", "\u2011", "\x00", "\x1f", "\u00a0", "\uff21", "_", " ", "\n"])))
def test_clean_text_and_tokens_equal_their_general_path(text):
    """ASCII text skips NFKC and the dash/quote folding (they change none) and tokens
    skip the underscore split when there is none: same results as the general path."""
    import re
    import unicodedata

    from hybridmem.text import _DASHES, _QUOTES, _TOKEN, _UNKEEPABLE, clean_text, tokenize

    general = _DASHES.sub("-", unicodedata.normalize("NFKC", _UNKEEPABLE.sub("\ufffd", text)))
    general = re.sub(r"\s+", " ", general.translate(_QUOTES)).strip()
    assert clean_text(text) == general
    parts = [p for t in _TOKEN.findall(general.casefold()) for p in t.split("_") if p]
    assert tokenize(text) == parts


@given(st.text(alphabet="aB-'\"\u2011\u2010\u2014\u2019\u201c \u00a0\t"))
def test_what_was_folded_is_found_as_said(text):
    """`as_said` undoes `clean_text`'s folding of dashes, quotes and spacing."""
    from hybridmem.text import as_said, clean_text

    assert as_said(clean_text(text), text) == text.strip(" \u00a0\t")


def test_as_said_falls_back_to_the_folded_form():
    from hybridmem.text import as_said

    assert as_said("Spider-Man", "I met Spider\u2011Man today") == "Spider\u2011Man"
    assert as_said("ABC", "\uff21\uff22\uff23") == "ABC"  # NFKC changed the letters


@given(st.lists(st.tuples(st.sampled_from(["Alice likes tea", "Bob's dog Rex", "tea in Paris",
                                           "", "the dog_house"]),
                          st.lists(st.sampled_from(["Alice likes tea", "Rex", "Paris"]),
                                   max_size=2)),
                min_size=1, max_size=12))
def test_postings_built_at_once_equal_postings_added_one_by_one(items):
    """A scope's first search builds its postings in one numpy pass; they must score as
    the same memories added one at a time."""
    from hybridmem.read.lexical_index import _ScopePostings, _stemmed
    from hybridmem.records import MemoryText

    texts = [MemoryText(f"m{i}", text, tuple(context)) for i, (text, context) in
             enumerate(items)]
    one_by_one = _ScopePostings()
    for memory_id, own, near in _stemmed(texts):
        one_by_one.add(memory_id, own, near)
    at_once = _ScopePostings.built(texts)
    for weight in (0.0, 1.0):
        for words in (["alic", "tea"], ["rex", "dog"], ["pari"], ["hous"]):
            assert at_once.scores(words, weight) == pytest.approx(
                one_by_one.scores(words, weight)), (words, weight)


WORDS = ["alice", "bob", "lives", "in", "paris", "works", "at", "acme", "likes", "tea",
         "coffee", "sister", "dog", "named", "rex", "the"]


@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=7), min_size=1, max_size=40),
       st.data())
def test_relation_bm25_kept_incrementally_scores_as_rank_bm25(sentences, data):
    """The incremental model, built in two steps with some of the first step's relations
    removed and one reworded, scores every query as rank-bm25 rebuilt over what is left."""
    import math

    from rank_bm25 import BM25Okapi

    from hybridmem.read.bm25 import RelationBM25
    from hybridmem.text import content_stems, stems

    class LuceneIDF(BM25Okapi):
        def _calc_idf(self, nd):
            for word, freq in nd.items():
                self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))

    docs = [(f"r{i}", " ".join(words)) for i, words in enumerate(sentences)]
    half = data.draw(st.integers(0, len(docs)))
    removed = data.draw(st.sets(st.sampled_from([d for d, _ in docs[:half]]))) if half else set()
    model = RelationBM25(docs[:half]).patched(docs[half:], removed)
    model = model.patched([(docs[0][0], "bob likes coffee")], ())
    live = [(d, t) for d, t in docs if d not in removed]
    live = [(d, "bob likes coffee" if d == docs[0][0] else t) for d, t in live]
    if docs[0][0] in removed:
        live.append((docs[0][0], "bob likes coffee"))
    reference = LuceneIDF([stems(t) or ["_"] for _, t in live], k1=1.2, b=0.75)
    for query in ["where does bob live", "alice likes tea", "a dog named rex", "acme"]:
        tokens = list(dict.fromkeys(content_stems(query)))
        expected = {live[i][0]: s for i, s in enumerate(reference.get_scores(tokens)) if s > 0}
        assert model.scores(query) == pytest.approx(expected), query


def test_one_users_delete_all_leaves_the_other_users_views_loaded(fresh_memory):
    """delete_all drops the in-process views that share rows with the deleted scope only:
    another user's postings and vectors stay loaded (a 100k-memory scope takes seconds to
    load again)."""
    memory = fresh_memory
    for user in ("ana", "ben"):
        memory.add([f"{user} keeps bees", f"{user} rides a bike"], user_id=user, infer=False)
    engines = memory.engines
    memory.search("bees", user_id="ben")
    ben_only = (engines.lexical.nbytes, engines.vector_index.nbytes)
    memory.search("bees", user_id="ana")
    memory.search("bees", user_id="ana", agent_id="coach")  # a view inside ana's rows
    assert engines.lexical.nbytes > ben_only[0]
    memory.delete_all(user_id="ana")
    assert (engines.lexical.nbytes, engines.vector_index.nbytes) == ben_only
    assert memory.search("bees", user_id="ana")["results"] == []
    assert [h["memory"] for h in memory.search("bees", user_id="ben", limit=1)["results"]] \
        == ["ben keeps bees"]


def test_cached_vectors_equal_a_fresh_load_after_writes(tmp_path):
    """A scope's matrix is loaded with spare rows: adds after the load fill them, then
    grow it; a delete moves the last row into the hole. After each step the cached view
    scores every row for every query as a view loaded from the record does."""
    import numpy as np

    from hybridmem.read.vector_index import VectorIndex
    from hybridmem.scope import Scope

    config = MemoryConfig(data_dir=str(tmp_path / "d"), embedder={"provider": "hash"})
    with Memory(config) as memory:
        catalog, scope = memory.engines.catalog, Scope.of("u")
        embed = memory.engines.embedder.embed
        queries = embed(["bees", "a bike in Lisbon", "chess on Sunday"])

        def check() -> None:
            fresh = VectorIndex(catalog.scope_vectors, memory.engines.embedder.dims, 2**30)
            for q in queries:
                cached = memory.engines.vector_index.search(q, scope, 500)
                again = fresh.search(q, scope, 500)
                assert dict(cached) == pytest.approx(dict(again))  # every row, same cosine
                assert np.all(np.diff([s for _, s in cached]) <= 1e-6)  # best first
            view = memory.engines.vector_index._cache.get(scope)
            assert len(view.matrix) >= len(view.ids) == len(again)

        memory.add([f"note {i} about bees and bikes" for i in range(40)], user_id="u",
                   infer=False)
        memory.search("load the scope's vectors", user_id="u")
        loaded = memory.engines.vector_index._cache.get(scope)
        assert len(loaded.matrix) > len(loaded.ids)  # spare rows came with the load
        first = memory.add("chess on Sunday with Ana", user_id="u", infer=False)
        check()
        memory.add([f"more on chess {i}" for i in range(60)], user_id="u", infer=False)
        check()  # grown past the spare rows
        memory.delete(first["results"][0]["id"])
        check()
        memory.add("Lena keeps bees", user_id="u", agent_id="coach", infer=False)
        check()


def test_a_lite_collection_searched_in_process_keeps_no_index_copy(tmp_path):
    """Milvus Lite is not searched when searches run in process: its collection has no
    vector index (the FLAT index files were a second copy of every vector), still holds
    every row, and is rebuilt from the record by repair when its files go."""
    import shutil

    config = MemoryConfig(data_dir=str(tmp_path / "d"), embedder={"provider": "hash"})
    with Memory(config) as memory:
        memory.add([f"fact number {i}" for i in range(300)], user_id="u", infer=False)
        memory.engines.projections.flush()
        assert memory.engines.vectors.count() == 300
        lite = memory.data_dir / "milvus.db"
    assert not [p for p in lite.rglob("*") if "index" in p.name or p.suffix == ".idx"]
    shutil.rmtree(lite)
    with Memory(config, repair=True) as memory:
        assert memory.engines.vectors.count() == 300
        assert memory.search("fact number 7", user_id="u", limit=1)["results"]
