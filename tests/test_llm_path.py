"""The LLM path end to end: the real `openai` client against a scripted OpenAI-compatible
server on 127.0.0.1, the real embedded engines behind it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from hybridmem import EmbeddingError, ExtractionError, LLMError, Memory
from hybridmem.providers.chat import wire_schema
from hybridmem.schemas import load_schema
from tests.conftest import llm_config
from tests.fake_openai import Reply, content_reply, tool_reply

T = TypeVar("T")

EMPTY = {"facts": []}


def extraction(facts, relations=(), entities=()):
    """An answer in the extraction schema's shape: relations (s, r, t, fact index,
    negated) go under the fact they name. (`entities` is accepted and ignored.)"""
    out = [{"text": f, "relations": []} for f in facts]
    for s, r, t, i, neg in relations:
        out[i]["relations"].append({"subject": s, "relation": r, "object": t, "negated": neg})
    return {"facts": out}


def answers(by_statement: dict[str, dict], judge=None):
    """A chat handler: extraction answers by the statement in the prompt; conflict
    answers from `judge(stored texts)` -> the texts it calls contradicted."""

    def handle(body: dict) -> Reply:
        tool = body["tools"][0]["function"]["name"] if body.get("tools") else None
        prompt = body["messages"][-1]["content"]
        if tool == "judge_conflicts":
            stored = {line.split("] ", 1)[1]: line.split("]")[0][1:]
                      for line in prompt.splitlines() if line.startswith("[")}
            ended = judge(list(stored)) if judge else []
            return tool_reply({"contradicted": [stored[t] for t in ended]}, "judge_conflicts")
        for statement, answer in by_statement.items():
            if statement in prompt:
                return tool_reply(answer)
        return tool_reply(EMPTY)

    return handle


def _calls(fake: Any, call: Callable[[], T]) -> tuple[T, int]:
    """What `call` returned, and how many chat requests it made of the scripted server."""
    before = len(fake.chat_requests())
    result = call()
    return result, len(fake.chat_requests()) - before


def test_one_chat_call_per_add_and_none_per_search(fake_openai, tmp_path):
    fake_openai.chat_handler = answers({
        "I adore Lisbon": extraction(["I adore Lisbon", "My name is Ines"],
                                     [("USER", "loves", "Lisbon", 0, False),
                                      ("USER", "name", "Ines", 1, False)],
                                     [("Lisbon", "place"), ("Ines", "person")]),
    })
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        result = memory.add("I adore Lisbon. Oh and my name is Ines.", user_id="u1")
        assert [r["memory"] for r in result["results"]] == ["I adore Lisbon", "My name is Ines"]
        assert len(fake_openai.chat_requests()) == 1
        request = fake_openai.chat_requests()[0]
        assert request["tools"][0]["function"]["name"] == "record_memories"
        # The model gets the schema's shape, not its limits (grammar engines choke on them).
        sent = request["tools"][0]["function"]["parameters"]
        assert sent == wire_schema(load_schema("extraction"))
        assert "maxLength" not in json.dumps(sent) and "minLength" not in json.dumps(sent)
        assert request["tool_choice"]["function"]["name"] == "record_memories"
        # One embedding batch per add, requested base64 by the client and decoded.
        embeds = fake_openai.embedding_requests()
        assert len(embeds) == 1 and embeds[0]["encoding_format"] == "base64"
        assert embeds[0]["dimensions"] == fake_openai.embedding_dims

        before = len(fake_openai.requests)
        hits = memory.search("What is my name?", user_id="u1")["results"]
        new = fake_openai.requests[before:]
        assert [p.rsplit("/", 1)[-1] for p, _ in new] == ["embeddings"]
        assert hits[0]["type"] == "relation" and hits[0]["destination"] == "Ines"
        rels = {(r["source"], r["relationship"], r["target"])
                for r in memory.get_all(user_id="u1")["relations"]}
        assert rels == {("Ines", "loves", "Lisbon"), ("Ines", "name", "Ines")}


def test_conflict_call_only_when_candidates_exist(fake_openai, tmp_path):
    fake_openai.chat_handler = answers(
        {
            "I live in Paris": extraction(["I live in Paris"],
                                          [("USER", "lives_in", "Paris", 0, False)]),
            "I live in Rome": extraction(["I live in Rome"],
                                         [("USER", "lives_in", "Rome", 0, False)]),
            "I play chess": extraction(["I play chess"],
                                       [("USER", "plays", "chess", 0, False)]),
            "I play go": extraction(["I play go"], [("USER", "plays", "go", 0, False)]),
            "I quit chess": extraction(["I only play checkers now"],
                                       [("USER", "plays", "checkers", 0, False)]),
        },
        judge=lambda stored: [t for t in stored if t in contradicted],
    )
    contradicted: set[str] = set()  # stored texts the scripted judge calls contradicted
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        def calls_for(text: str) -> int:
            before = len(fake_openai.chat_requests())
            memory.add(text, user_id="u")
            return len(fake_openai.chat_requests()) - before

        assert calls_for("I live in Paris") == 1
        # The single-valued rule decides lives_in: no second call.
        assert calls_for("I live in Rome") == 1
        assert calls_for("I play chess") == 1
        # Another object of the same relation is a candidate: the LLM judges it (keeps it).
        assert calls_for("I play go") == 2
        contradicted.update(r["memory"] for r in memory.get_all(user_id="u")["relations"]
                            if r["target"] == "chess")
        assert calls_for("I quit chess") == 2
        current = {(r["relationship"], r["target"])
                   for r in memory.get_all(user_id="u")["relations"]}
        assert current == {("lives_in", "Rome"), ("plays", "go"), ("plays", "checkers")}
        ended = {r["target"]: r for r in memory.get_all(user_id="u", include_invalid=True)[
            "relations"] if not r["valid"]}
        assert set(ended) == {"Paris", "chess"}
        assert ended["chess"]["reason"] == "LLM: contradicted by 'I only play checkers now'"
        assert ended["Paris"]["reason"].startswith("single-valued")


def test_malformed_answer_is_asked_again_once(fake_openai, tmp_path):
    good = extraction(["I surf"], [("USER", "enjoys", "surfing", 0, False)])
    fake_openai.chat_script = [tool_reply("{not json"), tool_reply(good)]
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        result = memory.add("I surf", user_id="u")
        assert [r["memory"] for r in result["results"]] == ["I surf"]
        requests = fake_openai.chat_requests()
        assert len(requests) == 2
        assert "rejected" in requests[1]["messages"][-1]["content"]


def test_two_bad_answers_raise_and_the_input_waits_in_the_journal(fake_openai, tmp_path):
    broken = {"memos": ["x"]}  # no shape normalisation can read
    fake_openai.chat_script = [tool_reply(broken), tool_reply("[1, 2")]
    config = llm_config(fake_openai, tmp_path)
    with Memory.from_config(config) as memory:
        with pytest.raises(ExtractionError) as info:
            memory.add("I collect stamps", user_id="u")
        assert info.value.provider == "openai" and info.value.failure == "schema"
        assert memory.get_all(user_id="u")["results"] == []
        [pending] = memory.pending()
        assert pending["kind"] == "add" and "schema" in pending["error"]
        fake_openai.chat_handler = answers({"I collect stamps": extraction(["I collect stamps"])})
        assert memory.retry_pending() == {"finished": 1, "pending": 0}
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == [
            "I collect stamps"]
        assert memory.pending() == []


def test_what_a_fact_says_is_not_so_is_not_put_in_the_graph_as_current():
    from hybridmem.providers.extract import SELF
    from hybridmem.providers.extract.llm import to_extraction

    answer = extraction(
        ["I don't own a bike", "I might move to Oslo", "I broke up with Tom",
         "I don't like olives", "I moved to Bergen and no longer live in Rome"],
        [("USER", "owns", "bike", 0, False), ("USER", "lives_in", "Oslo", 1, False),
         ("USER", "partner", "Tom", 2, False), ("USER", "dislikes", "olives", 3, False),
         ("USER", "lives_in", "Bergen", 4, False), ("USER", "lives_in", "Rome", 4, True)])
    got = {(r.source, r.relation, r.target, r.negated)
           for r in to_extraction(answer, None).relations}
    assert got == {(SELF, "partner", "Tom", True), (SELF, "dislikes", "olives", False),
                   (SELF, "lives_in", "Bergen", False), (SELF, "lives_in", "Rome", True)}


def test_a_runaway_answer_keeps_what_it_completed_and_is_not_asked_again(fake_openai,
                                                                          tmp_path):
    loop = json.dumps(extraction(["I surf", "My dog is Rex"],
                                 [("USER", "has_dog", "Rex", 1, False)]))[:-2]
    loop += ', {"text": "I surf", "relations": []}' * 30 + ', {"text": "I su'
    fake_openai.chat_script = [tool_reply(loop, finish_reason="length")]
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        result = memory.add("I surf. My dog is Rex.", user_id="u")
        assert [r["memory"] for r in result["results"]] == ["I surf", "My dog is Rex"]
        assert [r["target"] for r in memory.get_all(user_id="u")["relations"]] == ["Rex"]
        [request] = fake_openai.chat_requests()
        # sized by what was said (22 characters), not the config's 2,000
        assert request["max_tokens"] < 400


def test_an_answer_cut_before_one_item_fails_once_and_waits(fake_openai, tmp_path):
    fake_openai.chat_script = [tool_reply('{"facts": [{"text": "I coll', finish_reason="length")]
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        with pytest.raises(ExtractionError) as info:
            memory.add("I collect stamps", user_id="u")
        assert info.value.failure == "truncated" and "max_tokens" in str(info.value)
        assert len(fake_openai.chat_requests()) == 1
        [pending] = memory.pending()
        assert "truncated" in pending["error"]


def test_rate_limit_with_retry_after_then_success(fake_openai, tmp_path):
    fake_openai.chat_script = [
        Reply(status=429, headers={"Retry-After": "0.05"},
              body={"error": {"message": "slow down", "type": "rate_limit"}}),
        tool_reply(extraction(["I row"])),
    ]
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        assert memory.add("I row", user_id="u")["results"][0]["event"] == "ADD"
        assert len(fake_openai.chat_requests()) == 2


def test_timeout_is_named_and_the_add_resumes_on_next_open(fake_openai, tmp_path):
    fake_openai.chat_script = [Reply(delay=1.5, body={}) for _ in range(3)]
    config = llm_config(fake_openai, tmp_path, timeout=0.5, max_retries=1)
    with Memory.from_config(config) as memory:
        with pytest.raises(LLMError) as info:
            memory.add("I fence", user_id="u")
        assert info.value.failure == "timeout" and "openai" in str(info.value)
        assert len(fake_openai.chat_requests()) == 2  # first try + one retry
    fake_openai.chat_script = []
    fake_openai.chat_handler = answers({"I fence": extraction(["I fence"])})
    with Memory.from_config(config) as memory:
        assert memory.recovered == {"finished": 1, "pending": 0}
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == ["I fence"]


def test_a_body_that_is_not_json(fake_openai, tmp_path):
    fake_openai.chat_script = [Reply(body="<html>gateway</html>")] * 3
    with Memory.from_config(llm_config(fake_openai, tmp_path, max_retries=0)) as memory:
        with pytest.raises(LLMError) as info:
            memory.add("I knit", user_id="u")
        assert info.value.failure == "bad_response"
        assert memory.get_all(user_id="u")["results"] == []


def test_embedding_of_the_wrong_dimension(fake_openai, tmp_path):
    fake_openai.chat_handler = answers({"I paint": extraction(["I paint"])})
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        fake_openai.embedding_script = [Reply(body={
            "object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 7}],
        })]
        with pytest.raises(EmbeddingError, match="dimension 64"):
            memory.add("I paint", user_id="u")
        assert memory.get_all(user_id="u")["results"] == []
        assert len(memory.pending()) == 1
        chat_before = len(fake_openai.chat_requests())
        assert memory.retry_pending()["finished"] == 1
        # The extraction was journaled: finishing the add needed no second chat call.
        assert len(fake_openai.chat_requests()) == chat_before
        assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == ["I paint"]


@pytest.mark.parametrize("mode", ["json_schema", "json_object"])
def test_structured_output_modes(fake_openai, tmp_path, mode):
    fake_openai.chat_script = [content_reply(json.dumps(extraction(["I sing"])))]
    with Memory.from_config(llm_config(fake_openai, tmp_path, mode=mode)) as memory:
        assert memory.add("I sing", user_id="u")["results"][0]["memory"] == "I sing"
    request = fake_openai.chat_requests()[0]
    assert request["response_format"]["type"] == mode
    assert "tools" not in request


# ---------------------------------------------------------------- what small models answer


def test_near_miss_answers_are_read_and_the_rest_counted():
    from hybridmem.providers.extract.llm import _Dropped, normalize, to_extraction

    raw = {"facts": [
        "I love hiking",                                                 # a bare string
        {"fact": "My name is Alice", "relations": [["user", "Name", "Alice"]]},  # a list
        {"text": "Bob works at Acme", "relations": [
            {"source": "Bob", "predicate": "works for", "target": "Acme", "negated": "false"},
            {"source": "Bob", "predicate": "works for", "target": "Acme"},    # duplicate
            {"subject": "Bob"},                                              # unreadable
            42,                                                              # unreadable
        ]},
        {"text": "Alice moved to Oslo", "relations": [
            {"subject": "Alice", "relation": "moved to", "object": "Oslo", "negated": False}]},
        {"nothing": "here"},                                             # no text: dropped
    ], "relations": [{"subject": "I", "relation": "likes", "object": "hiking",
                      "fact_index": 0}, {"subject": "I", "relation": "x", "object": "y",
                                         "fact_index": 9}]}
    counter = _Dropped()
    extraction = to_extraction(normalize(raw, counter), user_name="Alice")
    assert extraction.facts == ["I love hiking", "My name is Alice", "Bob works at Acme",
                                "Alice moved to Oslo", "I x y"]
    triples = {(r.source, r.relation, r.target, r.fact_index) for r in extraction.relations}
    assert triples == {("@self", "likes", "hiking", 0), ("@self", "name", "Alice", 1),
                       ("Bob", "works_at", "Acme", 2), ("@self", "lives_in", "Oslo", 3),
                       ("@self", "x", "y", 4)}
    assert counter.n == 3 and extraction.dropped == 1  # 2 bad relations + 1 fact; 1 duplicate


@pytest.mark.parametrize(("status", "message", "mode", "next_mode"), [
    (500, "json_schema response_format is not supported", "json_schema", "json_object"),
    (400, "This model does not support tools", "tools", "json_schema"),
])
def test_a_server_that_refuses_a_mode_gets_the_next_once(fake_openai, tmp_path, caplog, status,
                                                         message, mode, next_mode):
    refused: list[str] = []

    def handle(body: dict) -> Reply:
        used = "tools" if body.get("tools") else body["response_format"]["type"]
        if used == mode:
            refused.append(used)
            return Reply(status=status, body={"error": {"message": message}})
        return content_reply(json.dumps(extraction(["I sing"])))

    fake_openai.chat_handler = handle
    with Memory.from_config(llm_config(fake_openai, tmp_path, mode=mode,
                                       max_retries=0)) as memory:
        memory.add("I sing", user_id="u")
        memory.add("I dance", user_id="u")
    assert refused == [mode]  # asked once in the refused mode, never again
    kinds = ["tools" if b.get("tools") else b["response_format"]["type"]
             for b in fake_openai.chat_requests()]
    assert kinds == [mode, next_mode, next_mode]
    assert f"refused mode '{mode}'" in caplog.text and f"using '{next_mode}'" in caplog.text


def test_a_plain_server_error_is_not_taken_for_a_refused_mode(fake_openai, tmp_path):
    fake_openai.chat_script = [Reply(status=500, body={"error": {"message": "boom"}})]
    config = llm_config(fake_openai, tmp_path, max_retries=0)
    with Memory.from_config(config) as memory, pytest.raises(LLMError, match="server_error"):
        memory.add("I sing", user_id="u")
    assert [bool(b.get("tools")) for b in fake_openai.chat_requests()] == [True]


def test_a_contradiction_without_a_triple_is_caught_by_the_judge(fake_openai, tmp_path):
    """'I'm vegetarian' then 'I eat meat again': no relation states either, so only the
    second call, shown the close memories, can end the first."""
    fake_openai.chat_handler = answers(
        {"I'm vegetarian": extraction(["I am vegetarian"]),
         "I eat meat again": extraction(["I eat meat again"]),
         "I like jazz": extraction(["I like jazz"])},
        judge=lambda stored: [t for t in stored if "vegetarian" in t],
    )
    config = {**llm_config(fake_openai, tmp_path), "conflict_candidate_threshold": 0.01}
    with Memory.from_config(config) as memory:
        [old] = memory.add("I'm vegetarian", user_id="u")["results"]
        _, calls = _calls(fake_openai, lambda: memory.add("I eat meat again", user_id="u"))
        assert calls == 2  # extraction + judge
        current = [r["memory"] for r in memory.get_all(user_id="u")["results"]]
        assert current == ["I eat meat again"]
        history = [h["event"] for h in memory.history(old["id"])]
        assert history == ["ADD", "SUPERSEDE"]
        assert memory.search("Am I vegetarian?", user_id="u")["results"][0]["memory"] == (
            "I eat meat again")


def test_the_rules_relations_win_over_the_models_on_the_same_object():
    from hybridmem.providers.extract import SELF, LLMExtractor, Message

    class Answers:  # what a small model answered for these messages
        def ask(self, **_):
            return extraction(
                ["Bruce Wayne is Batman", "My son Leo is allergic to peanuts", "I surf"],
                [("USER", "is", "Batman", 0, False), ("Leo", "allergic_to", "peanuts", 1, False),
                 ("USER", "likes", "surfing", 2, False)])

    said = "Bruce Wayne is Batman. My son Leo is allergic to peanuts. I surf."
    got = LLMExtractor(Answers()).extract([Message("user", said)])
    assert {(r.source, r.relation, r.target, r.fact_index) for r in got.relations} == {
        ("Bruce Wayne", "is", "Batman", 0), (SELF, "son", "Leo", 1),
        ("Leo", "allergic_to", "peanuts", 1), (SELF, "likes", "surfing", 2)}


def test_the_models_text_and_names_are_kept_as_answered(fake_openai, tmp_path):
    fake_openai.chat_handler = answers({
        "Spider": extraction(["My friend Peter is Spider\u2011Man"],
                             [("Peter", "is", "Spider\u2011Man", 0, False)]),
    })
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        memory.add("My friend Peter is Spider\u2011Man", user_id="u")
        everything = memory.get_all(user_id="u")
        assert [m["memory"] for m in everything["results"]] == [
            "My friend Peter is Spider\u2011Man"]
        assert ("Peter", "is", "Spider\u2011Man") in {
            (r["source"], r["relationship"], r["target"]) for r in everything["relations"]}


def test_a_verdict_on_an_old_memory_ends_only_the_relations_it_shares(fake_openai, tmp_path):
    """A judge that calls everything it is shown contradicted: "Oskar plays the drums
    now" ends `Oskar plays cello` only. The brother is never put to the judge (another
    relation of Oskar is no tie of the user's), and the first memory stays current for
    him, its provenance, and searchable."""
    fake_openai.chat_handler = answers(
        {"My brother Oskar plays the cello": extraction(
            ["My brother Oskar plays the cello"],
            [("USER", "brother", "Oskar", 0, False), ("Oskar", "plays", "cello", 0, False)]),
         "Oskar plays the drums now": extraction(
            ["Oskar plays the drums now"], [("Oskar", "plays", "drums", 0, False)])},
        judge=lambda stored: list(stored),
    )
    config = {**llm_config(fake_openai, tmp_path), "conflict_candidate_threshold": 0.01}
    with Memory.from_config(config) as memory:
        [old] = memory.add("My brother Oskar plays the cello", user_id="u")["results"]
        memory.add("Oskar plays the drums now", user_id="u")
        judged = [b for b in fake_openai.chat_requests()
                  if b["tools"][0]["function"]["name"] == "judge_conflicts"]
        assert len(judged) == 1
        shown = [line for line in judged[0]["messages"][-1]["content"].splitlines()
                 if line.startswith("[")]
        assert shown == ["[1] Oskar plays cello"]
        relations = memory.get_all(user_id="u", include_invalid=True)["relations"]
        current = {(r["source"], r["relationship"], r["target"]) for r in relations
                   if r["valid"]}
        assert current == {("u", "brother", "Oskar"), ("Oskar", "plays", "drums")}
        [brother] = [r for r in relations if r["relationship"] == "brother"]
        assert brother["memory_ids"] == [old["id"]]
        [cello] = [r for r in relations if r["target"] == "cello"]
        assert not cello["valid"] and cello["reason"].startswith("LLM: contradicted")
        assert old["id"] in {m["id"] for m in memory.get_all(user_id="u")["results"]}
        assert [h["event"] for h in memory.history(old["id"])] == ["ADD", "INVALIDATE"]
        hits = memory.search("Who is my brother?", user_id="u")["results"]
        assert old["id"] in hits[0]["provenance"]["memory_ids"]


def test_a_memory_without_relations_is_judged_whole(fake_openai, tmp_path):
    """What the graph holds no relation of ("I'm single") can still be ended by the
    judge, as a memory; the memories that do hold relations are not shown with it."""
    fake_openai.chat_handler = answers(
        {"I'm single": extraction(["I'm single"]),
         "I live in Rome": extraction(["I live in Rome"],
                                      [("USER", "lives_in", "Rome", 0, False)]),
         "I got married to Sam": extraction(["I got married to Sam"],
                                            [("USER", "married_to", "Sam", 0, False)])},
        judge=lambda stored: list(stored),
    )
    config = {**llm_config(fake_openai, tmp_path), "conflict_candidate_threshold": 0.01}
    with Memory.from_config(config) as memory:
        memory.add("I live in Rome", user_id="u")
        added, calls = _calls(fake_openai, lambda: memory.add("I'm single", user_id="u"))
        [single] = added["results"]
        assert calls == 1  # "I live in Rome" not judged
        memory.add("I got married to Sam", user_id="u")
        prompt = fake_openai.chat_requests()[-1]["messages"][-1]["content"]
        assert "I'm single" in prompt and "Rome" not in prompt
        current = {m["memory"] for m in memory.get_all(user_id="u")["results"]}
        assert current == {"I live in Rome", "I got married to Sam"}
        assert single["id"] not in {m["id"] for m in memory.get_all(user_id="u")["results"]}


def test_another_tie_to_the_same_person_is_never_judged(fake_openai, tmp_path):
    """"Lars is also my colleague" beside "my friend Lars": two ties, no judge call."""
    fake_openai.chat_handler = answers(
        {"My friend Lars": extraction(["My friend Lars lives in Aarhus"],
                                      [("USER", "friend", "Lars", 0, False),
                                       ("Lars", "lives_in", "Aarhus", 0, False)]),
         "Lars is my colleague": extraction(["Lars is my colleague"],
                                            [("USER", "colleague", "Lars", 0, False)])},
        judge=lambda stored: list(stored),
    )
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        memory.add("My friend Lars lives in Aarhus", user_id="u")
        _, calls = _calls(fake_openai, lambda: memory.add("Lars is my colleague", user_id="u"))
        assert calls == 1  # the extraction only
        current = {(r["relationship"], r["target"])
                   for r in memory.get_all(user_id="u")["relations"]}
        assert current == {("friend", "Lars"), ("lives_in", "Aarhus"), ("colleague", "Lars")}


def test_assistant_turns_and_questions_are_never_extracted(fake_openai, tmp_path):
    """The model is shown the user's statements only: an assistant's restatement never
    becomes a memory, and a message that only asks costs no call and ends nothing."""
    fake_openai.chat_handler = answers(
        {"I have a golden retriever called Biscuit": extraction(
            ["I have a golden retriever called Biscuit"],
            [("USER", "has_dog", "Biscuit", 0, False)])},
        judge=lambda stored: list(stored),
    )
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        memory.add([{"role": "user", "content": "I have a golden retriever called Biscuit."},
                    {"role": "assistant", "content": "What a lovely dog! How old is he?"}],
                   user_id="dana")
        prompt = fake_openai.chat_requests()[-1]["messages"][-1]["content"]
        assert "lovely" not in prompt and "Assistant" not in prompt
        before = len(fake_openai.chat_requests())
        result = memory.add(
            [{"role": "user", "content": "What is my dog's name, and where do I live?"},
             {"role": "assistant", "content": "Your dog's name is Biscuit."}],
            user_id="dana")
        assert result["results"] == []
        assert len(fake_openai.chat_requests()) == before
        assert {(r["relationship"], r["target"]) for r in memory.get_all(
            user_id="dana")["relations"]} == {("has_dog", "Biscuit")}
        assert [m["memory"] for m in memory.get_all(user_id="dana")["results"]] == [
            "I have a golden retriever called Biscuit"]


def test_a_model_that_calls_an_instrument_a_job_is_corrected(fake_openai, tmp_path):
    """`works_as drums` from a small model is `plays drums`; the rules' change of state
    ends the cello."""
    fake_openai.chat_handler = answers(
        {"My brother Oskar plays the cello": extraction(
            ["My brother Oskar plays the cello"],
            [("USER", "brother", "Oskar", 0, False), ("Oskar", "plays", "cello", 0, False)]),
         "Oskar gave up the cello": extraction(
            ["Oskar gave up the cello and took up the drums"],
            [("Oskar", "works_as", "drums", 0, False)])},
    )
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        memory.add("My brother Oskar plays the cello.", user_id="u")
        memory.add("Oskar gave up the cello and took up the drums.", user_id="u")
        relations = memory.get_all(user_id="u", include_invalid=True)["relations"]
        current = {(r["source"], r["relationship"], r["target"]) for r in relations
                   if r["valid"]}
        assert current == {("u", "brother", "Oskar"), ("Oskar", "plays", "drums")}
        [cello] = [r for r in relations if r["target"] == "cello"]
        assert cello["reason"].startswith("retracted")


def test_a_partner_ends_being_single(fake_openai, tmp_path):
    """`is single` (how a small model states "I'm single") ends when a partner is stated,
    by rule: no judge needed, and the rest of the user's relations stay."""
    fake_openai.chat_handler = answers(
        {"I'm single": extraction(["I'm single and I live in Rome"],
                                  [("USER", "is", "single", 0, False),
                                   ("USER", "lives_in", "Rome", 0, False)]),
         "I got married to Sam": extraction(["I got married to Sam"],
                                            [("USER", "married_to", "Sam", 0, False)])},
    )
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        memory.add("I'm single and I live in Rome", user_id="u")
        memory.add("I got married to Sam", user_id="u")
        relations = memory.get_all(user_id="u", include_invalid=True)["relations"]
        assert {(r["relationship"], r["target"]) for r in relations if r["valid"]} == {
            ("lives_in", "Rome"), ("married_to", "Sam")}
        [single] = [r for r in relations if r["target"] == "single"]
        assert single["reason"] == "'married_to' ends being single"


def test_another_relation_to_a_pet_never_ends_having_it(fake_openai, tmp_path):
    """A joke told as `likes Biscuit` (what the local model made of "Haha, Biscuit thinks
    he is the boss of the house") is not put to the judge against `has_dog Biscuit`."""
    fake_openai.chat_handler = answers(
        {"golden retriever": extraction(["I have a golden retriever called Biscuit"],
                                        [("USER", "has_dog", "Biscuit", 0, False)]),
         "boss of the house": extraction(["Biscuit thinks he is the boss of the house"],
                                         [("USER", "likes", "Biscuit", 0, False)])},
        judge=lambda stored: list(stored),
    )
    with Memory.from_config(llm_config(fake_openai, tmp_path)) as memory:
        memory.add("I have a golden retriever called Biscuit.", user_id="dana")
        _, calls = _calls(fake_openai, lambda: memory.add(
            "Haha, Biscuit thinks he is the boss of the house.", user_id="dana"))
        assert calls == 1  # no judge call
        assert ("has_dog", "Biscuit") in {(r["relationship"], r["target"]) for r in
                                          memory.get_all(user_id="dana")["relations"]}


@pytest.mark.parametrize(("fact", "judged"), [
    ("I also drink green tea", False), ("I drink green tea too.", False),
    ("I drink green tea as well", False),
    ("I drink green tea now, coffee is too bitter", True),
])
def test_only_a_statement_that_adds_keeps_the_judge_away(fact, judged):
    from hybridmem.config import GraphRules
    from hybridmem.records import EdgeRecord
    from hybridmem.write.conflicts import ConflictRules, NewEdge

    rules = ConflictRules(GraphRules())
    old = EdgeRecord(id="e1", source_id="u", target_id="coffee", relation="drinks",
                     created_at="2026-01-01T00:00:00.000000+00:00", user_id="u")
    new = NewEdge(id="e2", source_id="u", relation="drinks", target_id="tea", text="",
                  fact=fact)
    assert rules.is_candidate(new, old) is judged
