"""The filter grammar: Python evaluation and the Milvus expression agree, on real Milvus."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridmem.filters import And, Condition, Not, Or, matches, parse_filters, pushdown
from hybridmem.scope import Scope

KEYS = ["k", "n", "s", "tags"]
VALUES = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "ab", "B", "a%b", "é"]),
                   st.booleans(), st.floats(-2, 2, allow_nan=False))


def metadata(rng: random.Random) -> dict:
    out = {}
    if rng.random() < 0.8:
        out["k"] = rng.choice([-1, 0, 1, 2, 2.5, True, "a", "b"])
    if rng.random() < 0.8:
        out["n"] = rng.randint(-3, 3)
    if rng.random() < 0.7:
        out["s"] = rng.choice(["a", "ab", "xaby", "B", "a%b", "é", ""])
    if rng.random() < 0.6:
        out["tags"] = rng.sample(["a", "b", "c", "é"], rng.randint(0, 3))
    if rng.random() < 0.1:
        out["k"] = None
    return out


ORDERED = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "ab", "B", "é"]),
                    st.floats(-2, 2, allow_nan=False))
conditions = st.one_of(
    st.builds(Condition, st.sampled_from(KEYS), st.sampled_from(["eq", "ne"]), VALUES),
    st.builds(Condition, st.sampled_from(KEYS), st.sampled_from(["gt", "gte", "lt", "lte"]),
              ORDERED),
    st.builds(Condition, st.sampled_from(KEYS), st.sampled_from(["in", "nin"]),
              st.lists(VALUES, min_size=1, max_size=3).map(tuple)),
    st.builds(Condition, st.sampled_from(KEYS), st.sampled_from(["contains", "icontains"]),
              st.sampled_from(["a", "b", "%", "é", "A"])),
    st.builds(Condition, st.sampled_from(KEYS), st.just("exists")),
)
trees = st.recursive(
    conditions,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda c: And(tuple(c))),
        st.lists(inner, min_size=2, max_size=3).map(lambda c: Or(tuple(c))),
        inner.map(Not),
    ),
    max_leaves=5,
)


@pytest.fixture(scope="module")
def rows(shared_memory):
    rng = random.Random(42)
    user = "filters-agreement"
    shared_memory.delete_all(user_id=user)
    out = {}
    for i in range(40):
        md = metadata(rng)
        result = shared_memory.add(f"row {i} of the filter table", user_id=user, metadata=md,
                                   infer=False)
        out[result["results"][0]["id"]] = md
    shared_memory.engines.projections.flush()
    return user, out


def as_dict(tree) -> dict:
    """The mem0-grammar dict of a filter tree (the inverse of parse_filters)."""
    if isinstance(tree, Condition):
        if tree.op == "exists":
            return {tree.key: "*"}
        value = list(tree.value) if tree.op in ("in", "nin") else tree.value
        return {tree.key: {tree.op: value}}
    if isinstance(tree, Not):
        return {"NOT": [as_dict(tree.child)]}
    return {"AND" if isinstance(tree, And) else "OR": [as_dict(c) for c in tree.children]}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees)
def test_milvus_and_python_agree(shared_memory, rows, tree):
    """Milvus, given the pushed-down filter, never drops a row Python keeps; and what a
    user sees (search re-checks in Python) is exactly the rows the filter matches."""
    user, table = rows
    assert parse_filters(as_dict(tree)) == tree
    expected = {i for i, md in table.items() if matches(tree, md)}
    query = np.ones((1, shared_memory.engines.embedder.dims), dtype=np.float32)
    got = {i for i, _ in shared_memory.engines.vectors.search(query, Scope.of(user), 100,
                                                       pushdown(tree))[0]}
    assert got >= expected
    found = {h["id"] for h in shared_memory.search("row of the filter table", user_id=user,
                                                    limit=100, filters=as_dict(tree))["results"]}
    assert found == expected


def test_parse_mem0_grammar():
    tree = parse_filters({"user_id": "ignored-here", "a": 1, "b": {"gte": 2, "lt": 5},
                          "c": "*", "OR": [{"d": "x"}, {"NOT": [{"e": {"in": [1, 2]}}]}]})
    assert tree == And((
        Condition("a", "eq", 1), Condition("b", "gte", 2), Condition("b", "lt", 5),
        Condition("c", "exists"),
        Or((Condition("d", "eq", "x"), Not(Condition("e", "in", (1, 2))))),
    ))


@pytest.mark.parametrize(("tree", "md", "expected"), [
    (Condition("k", "ne", 1), {}, False),           # missing key: unknown, not a match
    (Not(Condition("k", "eq", 1)), {}, False),      # NOT unknown is unknown
    (Condition("k", "gt", 1), {"k": "str"}, False),  # incomparable types
    (Condition("k", "eq", 1), {"k": True}, True),   # JSON true == 1, as in Milvus
    (Condition("k", "contains", "b"), {"k": ["a", "b"]}, True),
    (Condition("k", "contains", "b"), {"k": "abc"}, True),
    (Condition("k", "icontains", "B"), {"k": "abc"}, True),
    (Condition("k", "exists"), {"k": None}, False),
    (Or((Condition("k", "eq", 1), Condition("j", "eq", 2))), {"j": 2}, True),
])
def test_three_valued_logic(tree, md, expected):
    assert matches(tree, md) is expected


def test_in_process_filter_follows_writes_after_the_scope_is_loaded(fresh_memory):
    """The in-process index evaluates a filter once per distinct metadata; metadata added,
    changed and moved (a delete fills the hole with the last row) after the scope was
    loaded must filter as the record says."""
    from hybridmem.filters import parse_filters
    from hybridmem.scope import Scope

    memory = fresh_memory
    query = memory.engines.embedder.embed(["notes about the garden"])[0]

    def found(filters):
        hits = memory.engines.vector_index.search(query, Scope.of("u"), 50,
                                                  parse_filters(filters))
        return sorted(memory.get(i)["memory"] for i, _ in hits)

    ids = [memory.add(text, user_id="u", metadata=md, infer=False)["results"][0]["id"]
           for text, md in [("garden note one", {"topic": "home"}),
                            ("garden note two", {"topic": "work"}),
                            ("garden note three", {"topic": "home", "p": 2})]]
    assert found({"topic": "home"}) == ["garden note one", "garden note three"]  # loaded
    memory.add("garden note four", user_id="u", metadata={"topic": "work", "p": 5},
               infer=False)
    memory.update(ids[1], "garden note two", metadata={"topic": "home"})
    memory.delete(ids[0])  # the last row moves into its place
    assert found({"topic": "home"}) == ["garden note three", "garden note two"]
    assert found({"p": {"gte": 2}}) == ["garden note four", "garden note three"]
    assert found({"NOT": [{"topic": "home"}]}) == ["garden note four"]
