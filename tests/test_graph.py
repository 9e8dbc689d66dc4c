"""The graph path on real Kuzu: the article's Practice 2, resolution, conflicts, provenance."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import networkx as nx
import numpy as np
import pytest

from hybridmem import Memory, MemoryConfig


def current(memory: Memory, **scope) -> set[tuple[str, str, str]]:
    return {(r["source"], r["relationship"], r["target"])
            for r in memory.get_all(**scope)["relations"]}


def test_practice_2_current_graph(shared_memory, alice):
    assert current(shared_memory, user_id=alice) == {
        ("Alice", "enjoys", "hiking"),
        ("Alice", "dislikes", "badminton"),
        ("Alice", "friend", "John"),
        ("John", "has_dog", "Tommy"),
        ("Alice", "name", "Alice"),
        ("John", "enjoys", "hiking"),
        ("Harry", "enjoys", "hiking"),
        ("Alice", "friend", "Peter"),
        ("Peter", "is", "Spider\u2011Man"),  # as said (matching folds it)
    }


def test_practice_2_stale_edge_is_history_with_its_reason(shared_memory, alice):
    everything = shared_memory.get_all(user_id=alice, include_invalid=True)["relations"]
    [stale] = [r for r in everything if not r["valid"]]
    assert (stale["source"], stale["relationship"], stale["target"]) == (
        "Alice", "likes", "badminton")
    assert stale["reason"] == "opposite polarity: 'dislikes' replaces 'likes'"
    assert stale["invalidated_at"] and stale["superseded_by"]
    dislike = next(r for r in everything if r["relationship"] == "dislikes")
    assert stale["superseded_by"] == dislike["id"]
    # The memory behind it is superseded: out of search, in history.
    [liked] = stale["memory_ids"]
    events = [h["event"] for h in shared_memory.history(liked)]
    assert events == ["ADD", "INVALIDATE", "SUPERSEDE"]
    row = shared_memory.history(liked)[1]
    # Rendered with the names known when it ended (the name came later).
    assert row["old_memory"] == f"{alice} likes badminton"
    assert row["new_memory"] == f"{alice} dislikes badminton"
    assert "opposite polarity" in row["detail"]["reason"]
    # Superseded: what it said, what replaced it, and why.
    superseded = shared_memory.history(liked)[2]
    assert (superseded["old_memory"], superseded["new_memory"]) == (
        "I like badminton", "I dislike badminton")
    assert superseded["detail"]["reason"] == row["detail"]["reason"]
    assert superseded["detail"]["superseded_by"] == dislike["memory_ids"][0]
    assert liked not in {r["id"] for r in shared_memory.get_all(user_id=alice)["results"]}
    found = {h["memory"] for h in shared_memory.search("badminton", user_id=alice)["results"]}
    assert "I like badminton" not in found and "Alice likes badminton" not in found
    assert "Alice dislikes badminton" in found


def test_practice_2_second_user_untouched(shared_memory, alice):
    shared_memory.add("I like badminton", user_id=alice + "-bob")
    assert current(shared_memory, user_id=alice + "-bob") == {
        (alice + "-bob", "likes", "badminton")}
    assert ("Alice", "dislikes", "badminton") in current(shared_memory, user_id=alice)


def test_graph_export(shared_memory, alice):
    graph = shared_memory.graph(user_id=alice)
    assert isinstance(graph, nx.MultiDiGraph)
    names = nx.get_node_attributes(graph, "name")
    by_name = {v: k for k, v in names.items()}
    assert graph.nodes[by_name["Tommy"]]["type"] == "animal"
    [(key, data)] = graph.get_edge_data(by_name["John"], by_name["Tommy"]).items()
    assert data["relation"] == "has_dog"
    assert data["fact"] == "My friend John has a dog named Tommy"
    assert data["text"] == "John has a dog named Tommy" and data["valid"]
    assert len(data["memory_ids"]) == 1
    assert shared_memory.get(data["memory_ids"][0])["memory"] == data["fact"]
    assert graph.number_of_edges() == 9
    assert shared_memory.graph(user_id=alice, include_invalid=True).number_of_edges() == 10


def test_as_of_reads_the_past(shared_memory, uid):
    shared_memory.add("I live in Paris", user_id=uid)
    time.sleep(0.01)
    between = shared_memory.get_all(user_id=uid)["results"][0]["created_at"]
    time.sleep(0.01)
    shared_memory.add("I live in Madrid", user_id=uid)
    assert current(shared_memory, user_id=uid) == {(uid, "lives_in", "Madrid")}
    then = shared_memory.get_all(user_id=uid, as_of=between)
    assert {(r["relationship"], r["target"]) for r in then["relations"]} == {
        ("lives_in", "Paris")}
    assert [r["memory"] for r in then["results"]] == ["I live in Paris"]
    assert shared_memory.graph(user_id=uid, as_of=between).number_of_edges() == 1


def test_learning_and_changing_the_users_name(shared_memory, uid):
    shared_memory.add("My name is Alice", user_id=uid)
    shared_memory.add("Alice loves jazz", user_id=uid)  # third person, same entity
    assert current(shared_memory, user_id=uid) == {
        ("Alice", "name", "Alice"), ("Alice", "loves", "jazz")}
    shared_memory.add("Call me Ally", user_id=uid)
    assert current(shared_memory, user_id=uid) == {
        ("Ally", "name", "Ally"), ("Ally", "loves", "jazz")}
    top = shared_memory.search("What is my name?", user_id=uid, limit=1)["results"][0]
    assert top["memory"] == "Ally's name is Ally"


def test_resolution_same_person(shared_memory, uid):
    shared_memory.add("My friend Bob lives in Denver", user_id=uid)
    shared_memory.add("bob works at Initech", user_id=uid)  # lower case: same key
    shared_memory.add("Bob Smith loves fishing", user_id=uid)  # unique name part: same
    graph = shared_memory.graph(user_id=uid)
    people = [d for _, d in graph.nodes(data=True) if d["type"] == "person" and not d["is_user"]]
    assert len(people) == 1
    # "bob works at Initech" starts lower case, so the rules read no name in it.
    assert current(shared_memory, user_id=uid) == {
        (uid, "friend", "Bob"), ("Bob", "lives_in", "Denver"), ("Bob", "loves", "fishing")}


def test_resolution_keeps_different_people_apart(shared_memory, uid):
    shared_memory.add("My colleague Bob Smith lives in Austin", user_id=uid)
    shared_memory.add("My cousin Bob Jones lives in Perth", user_id=uid)
    shared_memory.add("My friend Rob lives in Oslo", user_id=uid)
    shared_memory.add("My friend Jon lives in Lima", user_id=uid)
    shared_memory.add("My friend John lives in Cairo", user_id=uid)
    homes = {(s, t) for s, r, t in current(shared_memory, user_id=uid) if r == "lives_in"}
    assert homes == {("Bob Smith", "Austin"), ("Bob Jones", "Perth"), ("Rob", "Oslo"),
                     ("Jon", "Lima"), ("John", "Cairo")}
    # "Bob" now fits two people: ambiguous, so it is not merged into either.
    shared_memory.add("Bob loves karaoke", user_id=uid)
    people = {d["name"] for _, d in shared_memory.graph(user_id=uid).nodes(data=True)
              if d["type"] == "person" and not d["is_user"]}
    assert {"Bob Smith", "Bob Jones", "Bob"} <= people


def test_resolution_never_crosses_scopes(shared_memory, uid):
    shared_memory.add("My friend Nadia lives in Hanoi", user_id=uid)
    shared_memory.add("My friend Nadia lives in Quito", user_id=uid + "-other")
    mine = shared_memory.graph(user_id=uid)
    theirs = shared_memory.graph(user_id=uid + "-other")
    assert set(mine.nodes).isdisjoint(theirs.nodes)
    assert current(shared_memory, user_id=uid) == {(uid, "friend", "Nadia"),
                                                   ("Nadia", "lives_in", "Hanoi")}


def test_retraction_ends_an_edge_without_a_new_one(shared_memory, uid):
    shared_memory.add("I work at IBM", user_id=uid)
    result = shared_memory.add("I no longer work at IBM", user_id=uid)
    assert result["relations"]["added_entities"] == []
    assert current(shared_memory, user_id=uid) == set()
    [ended] = shared_memory.get_all(user_id=uid, include_invalid=True)["relations"]
    assert ended["reason"].startswith("retracted")


def test_a_memory_half_contradicted_and_half_said_again_is_superseded(shared_memory, uid):
    shared_memory.add("My sister Kim lives in Rome", user_id=uid)
    shared_memory.add("My sister Kim moved to Madrid", user_id=uid)
    assert [m["memory"] for m in shared_memory.get_all(user_id=uid)["results"]] == [
        "My sister Kim moved to Madrid"]
    assert {(r, t) for _, r, t in current(shared_memory, user_id=uid)} == {
        ("sister", "Kim"), ("lives_in", "Madrid")}
    # "I like tea" said again beside a new fact does not end the memory it came from
    shared_memory.add("I like tea", user_id=uid)
    shared_memory.add("I like tea. I live in Oslo", user_id=uid)
    assert "I like tea" in {m["memory"] for m in shared_memory.get_all(user_id=uid)["results"]}


def test_a_new_favourite_ends_the_old_one(shared_memory, uid):
    shared_memory.add("My favorite season is autumn", user_id=uid)
    shared_memory.add("My favorite season is spring now", user_id=uid)
    assert {(r, t) for _, r, t in current(shared_memory, user_id=uid)} == {
        ("favorite_season", "spring")}


def test_delete_erases_edges_and_orphan_entities(shared_memory, uid):
    keep = shared_memory.add("My sister Maria lives in Madrid", user_id=uid)
    gone = shared_memory.add("My brother Luis has a cat named Miso", user_id=uid)
    shared_memory.delete(gone["results"][0]["id"])
    assert current(shared_memory, user_id=uid) == {(uid, "sister", "Maria"),
                                                   ("Maria", "lives_in", "Madrid")}
    names = {d["name"] for _, d in shared_memory.graph(user_id=uid).nodes(data=True)}
    assert "Luis" not in names and "Miso" not in names
    assert shared_memory.graph(user_id=uid, include_invalid=True).number_of_edges() == 2
    shared_memory.delete(keep["results"][0]["id"])
    assert shared_memory.graph(user_id=uid).number_of_nodes() == 0


def test_deleting_the_name_memory_forgets_the_name(shared_memory, uid):
    named = shared_memory.add("My name is Wen", user_id=uid)
    shared_memory.add("I enjoy kayaking", user_id=uid)
    shared_memory.delete(named["results"][0]["id"])
    graph = shared_memory.graph(user_id=uid)
    [me] = [d for _, d in graph.nodes(data=True) if d["is_user"]]
    assert me["name"] == uid and "wen" not in me["aliases"]


def test_shared_edge_survives_until_its_last_memory_goes(shared_memory, uid):
    first = shared_memory.add("I enjoy sailing", user_id=uid)
    # Cosine 0.89 to the first: below the near-duplicate threshold, so a memory of its own.
    second = shared_memory.add("I still enjoy sailing", user_id=uid)
    [edge] = shared_memory.get_all(user_id=uid)["relations"]
    assert len(edge["memory_ids"]) == 2
    shared_memory.delete(first["results"][0]["id"])
    [edge] = shared_memory.get_all(user_id=uid)["relations"]
    assert edge["memory_ids"] == [second["results"][0]["id"]]


def test_a_near_duplicate_is_found_in_its_own_exact_scope_only(shared_memory, uid):
    shared_memory.search("load the user's vectors", user_id=uid)  # the in-process index
    own = shared_memory.add("I love hiking in the Alps", user_id=uid)
    # Closer copies in other exact scopes of the same user: they must neither count as
    # duplicates here nor crowd the own scope's near duplicate (cosine 0.976) out.
    for n in range(1, 4):
        shared_memory.add("I love hiking in the Alps" + "!" * n, user_id=uid, agent_id=f"a{n}")
    again = shared_memory.add("I love hiking in the Alps!", user_id=uid)
    assert [(r["event"], r["id"]) for r in again["results"]] == [
        ("NONE", own["results"][0]["id"])]


def test_update_derives_edges_again(shared_memory, uid):
    [item] = shared_memory.add("I live in Berlin", user_id=uid)["results"]
    shared_memory.update(item["id"], "I live in Dublin")
    assert current(shared_memory, user_id=uid) == {(uid, "lives_in", "Dublin")}
    # The Berlin edge was erased (its only memory changed), not kept as history.
    assert len(shared_memory.get_all(user_id=uid, include_invalid=True)["relations"]) == 1


def test_graph_db_held_by_another_process(tmp_path):
    graph_db = str(tmp_path / "shared.kuzu")
    config = MemoryConfig.from_dict({
        "data_dir": str(tmp_path / "a"), "embedder": {"provider": "hash"},
        "graph_store": {"provider": "kuzu", "config": {"db": graph_db}}})
    # Its own record (history_db_path): else the record beside the graph, already locked,
    # refuses before Kuzu is reached.
    script = textwrap.dedent(f"""
        from hybridmem import Memory, MemoryConfig, StoreLockedError
        try:
            Memory(MemoryConfig.from_dict({{
                "data_dir": {str(tmp_path / "b")!r}, "embedder": {{"provider": "hash"}},
                "history_db_path": {str(tmp_path / "b" / "b.sqlite")!r},
                "graph_store": {{"provider": "kuzu", "config": {{"db": {graph_db!r}}}}}}}))
        except StoreLockedError as exc:
            print("LOCKED", exc)
    """)
    with Memory(config):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=120)
    assert out.stdout.startswith("LOCKED") and "Kuzu" in out.stdout, out.stderr


def test_cached_graph_equals_a_fresh_load(shared_memory, uid):
    """Writes patch the cached scope graph; it must equal what Kuzu holds."""
    from hybridmem.read.snapshot import ScopeGraph
    from hybridmem.scope import Scope

    scope = Scope.of(uid)
    shared_memory.search("warm the cache", user_id=uid)
    first = shared_memory.add("My name is Kofi", user_id=uid)
    shared_memory.search("who is Kofi", user_id=uid)  # builds the relation BM25 to carry
    for text in ["My friend Lena lives in Oslo", "Lena loves jazz", "I like tea",
                 "I dislike tea", "Call me Kof", "My friend Lena lives in Lima"]:
        shared_memory.add(text, user_id=uid)
    shared_memory.delete(first["results"][0]["id"])
    shared_memory.search("Lena in Lima", user_id=uid)  # views dropped by the delete: rebuilt
    shared_memory.add("Lena loves tango", user_id=uid)  # indexes built, then carried
    shared_memory.add("I like tea", user_id=uid)
    cached = shared_memory.engines.snapshots.get(scope)
    store = shared_memory.engines.graph
    fresh = ScopeGraph(store.entities(scope), store.edges(scope))

    def edges(g):
        return sorted((e.id, e.source_name, e.relation, e.target_name, tuple(e.memory_ids))
                      for e in g.edges)

    def entities(g):
        return sorted((e.id, e.name, tuple(e.aliases), e.mentions) for e in g.entities)

    assert edges(cached) == edges(fresh) and entities(cached) == entities(fresh)
    assert {cached.text(e) for e in cached.edges} >= {"Lena lives in Lima", "Lena loves jazz"}
    # The indexes carried from snapshot to snapshot (edges by their ends, the entity resolver
    # the adds built once) answer as ones built from the fresh load do.
    for edge in fresh.edges:
        for ends in ({"relation": edge.relation}, {"target_id": edge.target_id}):
            assert ([e.id for e in cached.edges_at(edge.source_id, **ends)]
                    == [e.id for e in fresh.edges_at(edge.source_id, **ends)])
    from hybridmem.records import SELF_KEY
    from hybridmem.write.resolve import EntityResolver

    built = []

    def build(entities):
        built.append(len(entities))
        return EntityResolver(entities, 0.88)

    carried = cached.entity_index(scope, "resolver", build)
    assert built == []  # the adds built it; each patched snapshot carried it on
    rebuilt = fresh.entity_index(scope, "resolver", build)
    for name, kind in [("Lena", "person"), ("lena", "person"), ("Oslo", "place"),
                       ("Lima", "place"), ("tea", "other"), ("jazz", "other"),
                       ("Kofi", "person"), ("Kof", "name")]:
        found, expected = carried.lookup(name, kind), rebuilt.lookup(name, kind)
        assert (found and found.id) == (expected and expected.id), name
    assert carried.by_key(SELF_KEY).id == rebuilt.by_key(SELF_KEY).id
    # carried from the search's snapshot, not rebuilt
    assert {"bm25", "incident", "phrases", "name_vectors"} <= cached.__dict__.keys()
    assert ({e: set(ids) for e, ids in cached.incident.items()}
            == {e: set(ids) for e, ids in fresh.incident.items()})
    # two hops walked in the cached graph reach what Kuzu's variable-length match reaches
    for entity in fresh.entities:
        assert cached.neighbourhood(entity.id, 2) == store.neighbourhood([entity.id], 2)
    assert dict(cached.phrases) == dict(fresh.phrases)
    assert sorted(cached.self_ids) == sorted(fresh.self_ids)
    ids, matrix = cached.name_vectors
    fresh_ids, fresh_matrix = fresh.name_vectors
    assert sorted(ids) == fresh_ids
    assert np.allclose(matrix[np.argsort(ids)], fresh_matrix)
    for query in ["Lena Lima", "Who does Kof know?", "tea", "tango jazz"]:
        assert cached.bm25.scores(query) == pytest.approx(fresh.bm25.scores(query)), query


def test_made_up_names_one_letter_apart_never_merge(shared_memory, uid):
    """Precision first: 'Zorax' and 'Zorbx' are two people; merging them would let one's
    single-valued lives_in end the other's."""
    names = [f"Zor{c}x" for c in "abcdefghij"]
    for i, name in enumerate(names):
        shared_memory.add(f"My friend {name} lives in Vel{'aeiouy'[i % 6]}ra{i}", user_id=uid)
    relations = shared_memory.get_all(user_id=uid)["relations"]
    homes = {r["source"]: r["target"] for r in relations if r["relationship"] == "lives_in"}
    assert sorted(homes) == names
    assert all(r["valid"] for r in shared_memory.get_all(user_id=uid,
                                                         include_invalid=True)["relations"])
    people = [d["name"] for _, d in shared_memory.graph(user_id=uid).nodes(data=True)
              if d["type"] == "person" and not d["is_user"]]
    assert sorted(people) == names


def test_another_liked_thing_is_not_asked_about(fake_openai, tmp_path):
    """Two objects of a relation a subject holds many of: the graph knows both hold, so
    no conflict call is made and nothing ends, whatever a judge would have said."""
    from tests.conftest import llm_config
    from tests.fake_openai import tool_reply

    def answer(body):
        if body.get("tools") and body["tools"][0]["function"]["name"] == "judge_conflicts":
            return tool_reply({"contradicted": ["1"]}, "judge_conflicts")  # a wrong judge
        said = body["messages"][-1]["content"].split("User: ")[-1]
        thing = said.split()[-1].strip(".")
        return tool_reply({"facts": [{"text": said, "relations": [
            {"subject": "USER", "relation": "likes", "object": thing, "negated": False}]}]})

    fake_openai.chat_handler = answer
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        memory.add("I like tea", user_id="u")
        memory.add("I like coffee", user_id="u")
        assert {m["memory"] for m in memory.get_all(user_id="u")["results"]} == {
            "I like tea", "I like coffee"}
        assert len(fake_openai.chat_requests()) == 2  # two extractions, no judge call


def test_graph_signal_keeps_the_edges_with_most_evidence(shared_memory, uid):
    """Two hops from a friend pass through the user, who knows everyone: the signal keeps
    the k edges with the most evidence (the friend's own first), not all the user's."""
    from hybridmem.scope import Scope

    friends = ["Bram", "Cleo", "Dario", "Elif", "Farid", "Gita", "Hugo", "Ines", "Jonas"]
    for i, name in enumerate(friends):
        shared_memory.add(f"My friend {name} lives in Velra{i}", user_id=uid)
    retriever = shared_memory.engines.retriever
    kept, pool, graph = retriever.candidates("Where does Cleo live?", Scope.of(uid), k=3,
                                             signals=("graph",))
    reached = graph.neighbourhood(next(e.id for e in graph.entities if e.name == "Cleo"), 2)
    assert len(reached) > 3  # the user's edges to every friend are two hops away
    ranked = sorted(kept, key=lambda c: -c.raw["graph"])
    assert len(ranked) == 3
    own = {graph.text(pool.edges[c.id]) for c in ranked[:2]}  # one hop: both of Cleo's
    assert "Cleo lives in Velra1" in own and all("Cleo" in text for text in own)


def test_after_a_change_what_holds_now_ranks_first(shared_memory, uid):
    """The old memory stays current for the brother, but what it says about the cello is
    out of date: the relation that holds now outranks the relations it lends its match to."""
    shared_memory.add("My brother Oskar plays the cello.", user_id=uid)
    shared_memory.add("Oskar gave up the cello and took up the drums.", user_id=uid)
    [top] = shared_memory.search("What instrument does my brother play now?", user_id=uid,
                                 limit=1)["results"]
    assert top["memory"] == "Oskar plays drums"
    assert {(r, t) for _, r, t in current(shared_memory, user_id=uid)} == {
        ("brother", "Oskar"), ("plays", "drums")}


def test_a_restatement_adds_evidence_and_ends_nothing(shared_memory, uid):
    [first] = shared_memory.add("My sister Lina lives in Berlin.", user_id=uid)["results"]
    [again] = shared_memory.add("Yes, my sister Lina lives in Berlin.", user_id=uid)["results"]
    relations = shared_memory.get_all(user_id=uid, include_invalid=True)["relations"]
    assert {(r["relationship"], r["target"], r["valid"]) for r in relations} == {
        ("sister", "Lina", True), ("lives_in", "Berlin", True)}
    assert all(r["memory_ids"] == [first["id"], again["id"]] for r in relations)
