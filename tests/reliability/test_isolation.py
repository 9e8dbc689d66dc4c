"""Tenant isolation, property-based: random interleavings of writes and reads across
users, agents and runs never show one scope's memories or relations to another."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridmem.scope import Scope

SCOPES = [
    {"user_id": "A"}, {"user_id": "B"}, {"user_id": "A", "run_id": "r1"},
    {"user_id": "A", "agent_id": "x"}, {"agent_id": "x"}, {"user_id": "B", "run_id": "r1"},
    {"run_id": "r1"},
]
STATEMENTS = [
    "My friend {n} lives in Bern", "I enjoy {n} dancing", "My name is {n}",
    "{n} loves jazz", "I dislike {n} dancing", "My sister {n} works at Acme",
]
NAMES = ["Otto", "Pia", "Quin", "Rafa"]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, len(SCOPES) - 1),
                  st.integers(0, len(STATEMENTS) - 1), st.integers(0, len(NAMES) - 1),
                  st.booleans()),
        st.tuples(st.just("read"), st.integers(0, len(SCOPES) - 1)),
        st.tuples(st.just("delete_all"), st.integers(0, len(SCOPES) - 1)),
        st.tuples(st.just("update"), st.integers(0, 50), st.integers(0, len(NAMES) - 1)),
    ),
    min_size=4, max_size=14,
)
_examples = itertools.count()
CHECKS = {"reads": 0, "hits": 0}


@pytest.fixture(scope="module", autouse=True)
def report():
    """Print how many scoped reads were checked (figures for the closing note)."""
    yield
    print(f"\nisolation: {CHECKS['reads']} scoped reads, {CHECKS['hits']} hits checked")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(program=ops)
def test_interleavings_never_leak(shared_memory, program):
    prefix = f"iso{next(_examples)}-"
    scopes = [{k: prefix + v for k, v in s.items()} for s in SCOPES]
    model: dict[str, dict[str, str]] = {}  # memory id -> its exact scope row

    def check_read(index: int) -> None:
        scope = Scope.of(**scopes[index])
        CHECKS["reads"] += 1
        got = shared_memory.get_all(**scopes[index], limit=1000)
        search = shared_memory.search("Who lives in Bern and loves jazz?", **scopes[index])
        for item in got["results"] + [h for h in search["results"] if h["type"] == "memory"]:
            CHECKS["hits"] += 1
            assert scope.contains(model[item["id"]]), (item, scopes[index])
        for rel in got["relations"]:
            assert all(scope.contains(model[m]) for m in rel["memory_ids"]), rel
        for hit in search["results"]:
            assert all(scope.contains(model[m]) for m in hit["provenance"]["memory_ids"])
        graph = shared_memory.graph(**scopes[index])
        for _, _, data in graph.edges(data=True):
            assert all(scope.contains(model[m]) for m in data["memory_ids"])
        expected = {i for i, row in model.items() if scope.contains(row)}
        current = {r["id"] for r in shared_memory.get_all(
            **scopes[index], limit=1000, include_invalid=True)["results"]}
        assert current == expected

    for op in program:
        if op[0] == "add":
            _, index, statement, name, infer = op
            text = STATEMENTS[statement].format(n=NAMES[name])
            result = shared_memory.add(text, **scopes[index], infer=infer)
            row = Scope.of(**scopes[index]).as_row()
            for item in result["results"]:
                model.setdefault(item["id"], row)
        elif op[0] == "read":
            check_read(op[1])
        elif op[0] == "delete_all":
            scope = Scope.of(**scopes[op[1]])
            shared_memory.delete_all(**scopes[op[1]])
            model = {i: row for i, row in model.items() if not scope.contains(row)}
        elif model:
            memory_id = sorted(model)[op[1] % len(model)]
            shared_memory.update(memory_id, f"My friend {NAMES[op[2]]} lives in Bern")
    for index in range(len(scopes)):
        check_read(index)
    for scope in scopes:
        shared_memory.delete_all(**scope)

