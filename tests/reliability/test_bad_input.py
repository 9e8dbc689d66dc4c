"""Bad and hostile input: every call gets a result or a clear error, a refused call
changes nothing, and no value reaches Cypher or a Milvus filter as code."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridmem import HybridMemError, InvalidInputError, Memory, ScopeError
from tests.conftest import llm_config
from tests.fake_openai import tool_reply

HOSTILE_IDS = [
    'quote"inside', "single'quote", "back\\slash", "new\nline", "tab\tand\rreturn",
    '" or 1==1', "' or '1'='1", "'}) DETACH DELETE n //", "user_id != \"\"",
    "😀 emoji user", "用户名字", "  padded  ", "a" * 480,
]

REFUSED = [
    ("empty message", dict(messages="")),
    ("whitespace message", dict(messages=" \n\t ")),
    ("None message", dict(messages=None)),
    ("bytes message", dict(messages=b"I like tea")),
    ("non-UTF-8 text", dict(messages="I like \udcff tea")),
    ("1 MB message", dict(messages="x" * 1_000_000)),
    ("message list of ints", dict(messages=[1, 2])),
    ("content not text", dict(messages=[{"role": "user", "content": {"a": 1}}])),
    ("unknown role", dict(messages=[{"role": "root", "content": "hi"}])),
    ("deep metadata", dict(messages="ok text",
                           metadata={"a": json.loads('{"b":' * 12 + "1" + "}" * 12)})),
    ("metadata with a set", dict(messages="ok text", metadata={"s": {1, 2}})),
    ("metadata with bytes", dict(messages="ok text", metadata={"b": b"x"})),
    ("metadata not a dict", dict(messages="ok text", metadata=["a"])),
    ("metadata inf", dict(messages="ok text", metadata={"x": float("inf")})),
    ("infer not a bool", dict(messages="ok text", infer="yes")),
]


@pytest.mark.parametrize(("case", "kwargs"), REFUSED, ids=[c for c, _ in REFUSED])
def test_refused_adds_change_nothing(shared_memory, uid, case, kwargs):
    before = shared_memory.stats()
    with pytest.raises(InvalidInputError) as info:
        shared_memory.add(user_id=uid, **kwargs)
    assert str(info.value)  # a message that names the problem
    assert shared_memory.stats() == before


@pytest.mark.parametrize("limit", [0, -5, 10**12, None, 3.0, True])
def test_bad_limits(shared_memory, uid, limit):
    with pytest.raises(InvalidInputError, match="limit"):
        shared_memory.search("tea", user_id=uid, limit=limit)
    with pytest.raises(InvalidInputError, match="limit"):
        shared_memory.get_all(user_id=uid, limit=limit)


@pytest.mark.parametrize("filters", [
    {"k": {"$regex": "x"}}, {"k": {"between": [1, 2]}}, {"OR": "notalist"},
    {"k": {"in": "notalist"}}, {"k": {"gt": [1]}}, {"k": {"eq": {"nested": 1}}},
    {"": 1}, {"k\n": 1}, "not a dict",
])
def test_bad_filters(shared_memory, uid, filters):
    with pytest.raises(InvalidInputError):
        shared_memory.search("tea", user_id=uid, filters=filters)


@pytest.mark.parametrize("bad", [None, 5, "", "   ", "x" * 513, "nul\x00byte", ["a"]])
def test_bad_scope_ids(shared_memory, bad):
    with pytest.raises(ScopeError):
        shared_memory.add("I like tea", user_id=bad)
    with pytest.raises(ScopeError):
        shared_memory.search("tea", user_id=bad, agent_id=None)


@pytest.mark.parametrize("hostile", HOSTILE_IDS, ids=range(len(HOSTILE_IDS)))
def test_hostile_scope_ids_are_just_ids(shared_memory, uid, hostile):
    scope_id = f"{hostile}|{uid}"  # unique per test run
    neighbour = uid  # a plain scope that must stay invisible and intact
    shared_memory.add("My friend Otto lives in Bern", user_id=neighbour)
    added = shared_memory.add("My friend Otto lives in Vienna", user_id=scope_id)
    assert added["results"][0]["event"] == "ADD"
    found = shared_memory.search("Where does Otto live?", user_id=scope_id)["results"]
    assert found and all("Bern" not in h["memory"] for h in found)
    assert {r["target"] for r in shared_memory.get_all(user_id=scope_id)["relations"]} == {
        "Otto", "Vienna"}
    assert shared_memory.graph(user_id=scope_id).number_of_edges() == 2
    shared_memory.delete_all(user_id=scope_id)
    assert shared_memory.get_all(user_id=scope_id)["results"] == []
    assert len(shared_memory.get_all(user_id=neighbour)["results"]) == 1
    assert shared_memory.graph(user_id=neighbour).number_of_edges() == 2


def test_hostile_metadata_keys_and_values(shared_memory, uid):
    metadata = {'k"ey': "va\"l'ue", "back\\slash": "x\\y", "emoji😀": "中文", "or": '" or 1==1'}
    shared_memory.add("A note with odd metadata", user_id=uid, metadata=metadata,
                      infer=False)
    for key, value in metadata.items():
        hits = shared_memory.search("note", user_id=uid, filters={key: value})["results"]
        assert [h["metadata"] for h in hits] == [metadata]
        assert shared_memory.search("note", user_id=uid,
                                    filters={key: value + "x"})["results"] == []


def test_hostile_entity_and_relation_names_from_an_llm(fake_openai, tmp_path):
    hostile = "'}) DETACH DELETE n //"
    answer = {
        "facts": ["x"], "entities": [{"name": hostile, "type": "person"}],
        "relations": [
            {"source": "USER", "relation": "likes`) DELETE r //", "target": hostile,
             "fact_index": 0, "negated": False},
            {"source": hostile, "relation": "é_relación Ünïcode", "target": "Kuzu \"db\"",
             "fact_index": 0, "negated": False},
        ],
    }
    fake_openai.chat_script = [tool_reply(answer)]
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        memory.add("something odd", user_id="victim")
        rels = {(r["source"], r["relationship"], r["target"])
                for r in memory.get_all(user_id="victim")["relations"]}
        assert rels == {("victim", "likes_delete_r", hostile),
                        (hostile, "é_relación_ünïcode", 'Kuzu "db"')}
        assert memory.stats()["entities"] == 3


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=st.text(max_size=300), scope_id=st.text(min_size=1, max_size=40),
       infer=st.booleans())
def test_arbitrary_text_and_scope_ids(shared_memory, text, scope_id, infer):
    """Any text and any scope id: a result or a clear error, never a crash or a leak."""
    scope_id = "hyp-" + scope_id
    before = shared_memory.stats()
    try:
        result = shared_memory.add(text, user_id=scope_id, infer=infer)
    except InvalidInputError:
        assert shared_memory.stats() == before
        return
    except HybridMemError as exc:  # pragma: no cover - would be a bug
        raise AssertionError(f"unexpected {exc!r}") from exc
    for item in result["results"]:
        stored = shared_memory.get(item["id"])
        assert stored is not None and stored["user_id"] == scope_id
    if text.strip():
        hits = shared_memory.search(text.strip()[:200] or "x", user_id=scope_id)["results"]
        assert all(h.get("user_id", scope_id) == scope_id for h in hits)
    shared_memory.delete_all(user_id=scope_id)
    assert shared_memory.get_all(user_id=scope_id)["results"] == []
