"""The LLM path end to end: the real `openai` client against a scripted OpenAI-compatible
server on 127.0.0.1, the real embedded engines behind it."""

from __future__ import annotations

import json

import pytest
from hybridmem.schemas import load_schema

from hybridmem import EmbeddingError, ExtractionError, LLMError, Memory
from tests.conftest import llm_config
from tests.fake_openai import Reply, content_reply, tool_reply

EMPTY = {"facts": [], "entities": [], "relations": []}


def extraction(facts, relations=(), entities=()):
    return {
        "facts": list(facts),
        "entities": [{"name": n, "type": t} for n, t in entities],
        "relations": [
            {"source": s, "relation": r, "target": t, "fact_index": i, "negated": neg}
            for s, r, t, i, neg in relations
        ],
    }


def answers(by_statement: dict[str, dict], judge=None):
    """A chat handler: extraction answers by the statement in the prompt; conflict
    answers from `judge(candidate_ids)`."""

    def handle(body: dict) -> Reply:
        tool = body["tools"][0]["function"]["name"] if body.get("tools") else None
        prompt = body["messages"][-1]["content"]
        if tool == "judge_conflicts":
            ids = [line.split("]")[0].split("[")[1] for line in prompt.splitlines()
                   if line.startswith("- [")]
            return tool_reply(judge(ids) if judge else {"decisions": []}, "judge_conflicts")
        for statement, answer in by_statement.items():
            if statement in prompt:
                return tool_reply(answer)
        return tool_reply(EMPTY)

    return handle


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
        schema = {k: v for k, v in load_schema("extraction").items() if not k.startswith("$")}
        assert request["tools"][0]["function"]["parameters"] == schema
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
        judge=lambda ids: {"decisions": [
            {"edge_id": i, "contradicted": i in contradicted, "reason": "the user quit chess"}
            for i in ids]},
    )
    contradicted: set[str] = set()  # edge ids the scripted judge will call contradicted
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
        contradicted.update(r["id"] for r in memory.get_all(user_id="u")["relations"]
                            if r["target"] == "chess")
        assert calls_for("I quit chess") == 2
        current = {(r["relationship"], r["target"])
                   for r in memory.get_all(user_id="u")["relations"]}
        assert current == {("lives_in", "Rome"), ("plays", "go"), ("plays", "checkers")}
        ended = {r["target"]: r for r in memory.get_all(user_id="u", include_invalid=True)[
            "relations"] if not r["valid"]}
        assert set(ended) == {"Paris", "chess"}
        assert ended["chess"]["reason"] == "LLM: the user quit chess"
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
    broken = {"facts": ["x"], "entities": []}  # breaks the schema: no relations
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
