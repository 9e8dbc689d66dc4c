"""Extraction with an LLM: facts and the relations each states, in ONE schema-checked call.

Written for small local models (a 1.5B model on llama.cpp follows it) as much as for
hosted ones: one short instruction, worked examples for each case that matters (names,
relations to the user and between others, preferences and their opposites, negation,
retractions, changes of state told as events), and an answer shape with one level of
nesting (each fact carries its relations, so no index has to be copied). The system
prompt is the same for every call, so servers that cache a prompt prefix (llama.cpp,
vLLM) pay for it once; what varies comes last, in the user message.

Small models answer in many near-miss forms; `normalize` reads what can be read (facts as
strings or objects, triples as lists, "source"/"target" keys, "USER"/"I"/the user's name
as subject, relation names with spaces or verbs) and drops the rest, counting it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from hybridmem.providers.chat import JSONChat
from hybridmem.providers.extract.base import SELF, ExtractedRelation, Extraction, Message
from hybridmem.providers.extract.merge import with_rules
from hybridmem.providers.extract.rules import RulesExtractor, statements
from hybridmem.schemas import load_schema
from hybridmem.text import entity_key, relation_name, said_text
from hybridmem.vocabulary import INSTRUMENTS, RELATION_ALIASES, object_type, subject_type

log = logging.getLogger(__name__)

USER_PLACEHOLDER = "USER"
_SELF_WORDS = {"user", "i", "me", "my", "myself", "mine", "the user", "we", "us", "our"}

_RULES = [
    "You record what a user tells an assistant, for the assistant to remember later.",
    'Return JSON: {"facts": [{"text": ..., "relations": [{"subject": ..., "relation": ..., '
    '"object": ..., "negated": false}]}]}',
    "- facts: each thing the USER states about themselves or people, places and things in "
    "their life, as a short sentence in the user's words. No facts from greetings, "
    "questions, small talk, or what the assistant says.",
    '- relations: the (subject, relation, object) triples the fact states. The user is '
    '"USER". relation is one lower_snake_case word or phrase: name, likes, dislikes, '
    "lives_in, works_at, works_as, is_from, born_in, studies_at, married_to, partner, "
    "friend, sister, brother, mother, father, has_dog, has_cat, is, age.",
    '- "My friend/sister/boss X ..." states USER friend/sister/boss X first, then what '
    "it says about X.",
    "- A change is the new state: moved to X -> lives_in X; started at / joined / was hired "
    "by X -> works_at X; adopted or got a dog Y -> has_dog Y.",
    "- no longer, quit, left, stopped, broke up with, sold, moved out of: the old relation "
    'with "negated": true.',
    "- Negations, wishes, plans, maybes and the past (\"I don't have a car\", \"I might "
    'move", "I used to") are facts without relations.',
]


def _fact_json(text: str, *triples: tuple) -> dict:
    return {"text": text, "relations": [
        {"subject": s, "relation": r, "object": o, "negated": bool(rest and rest[0])}
        for s, r, o, *rest in triples]}


# Worked examples (names and sentences of their own, not from any evaluation set).
EXAMPLES = [
    ("My name is Zed and I adore chess.",
     [_fact_json("My name is Zed", ("USER", "name", "Zed")),
      _fact_json("I love chess", ("USER", "likes", "chess"))]),
    ("I can't stand opera. My cousin Ivo has a cat called Pip.",
     [_fact_json("I dislike opera", ("USER", "dislikes", "opera")),
      _fact_json("My cousin Ivo has a cat called Pip", ("USER", "cousin", "Ivo"),
                 ("Ivo", "has_cat", "Pip"))]),
    ("My neighbour Ola is a pilot.",
     [_fact_json("My neighbour Ola is a pilot", ("USER", "neighbor", "Ola"),
                 ("Ola", "works_as", "pilot"))]),
    ("Mara works at Initrode and Lex is Captain Nova.",
     [_fact_json("Mara works at Initrode", ("Mara", "works_at", "Initrode")),
      _fact_json("Lex is Captain Nova", ("Lex", "is", "Captain Nova"))]),
    ("I left Vandex last month and moved to Turin. I don't own a bike.",
     [_fact_json("I no longer work at Vandex", ("USER", "works_at", "Vandex", True)),
      _fact_json("I moved to Turin", ("USER", "lives_in", "Turin")),
      _fact_json("I don't own a bike")]),
    ("hey, how's it going?", []),
]

SYSTEM_PROMPT = "\n".join(_RULES) + "\n\nExamples:\n" + "\n".join(
    f"User: {said}\n" + json.dumps({"facts": facts}, separators=(",", ":"))
    for said, facts in EXAMPLES
)


class LLMExtractor:
    """One chat request per add, answered as the `extraction` JSON Schema."""

    name = "llm"

    def __init__(self, chat: JSONChat, custom_prompt: str | None = None) -> None:
        self._chat = chat
        self._rules = RulesExtractor()
        self._system = SYSTEM_PROMPT + (f"\n\n{custom_prompt}" if custom_prompt else "")

    def extract(self, messages: list[Message], *, user_name: str | None = None) -> Extraction:
        """Ask the LLM once; map "USER"/"I"/the user's name to the scope's own entity.

        Only what the user states is shown: an assistant's reply is context the user
        already has, and a small model takes its restatements ("Your dog's name is
        Biscuit") for new facts; a question states nothing. A message with no statement
        left costs no call.
        """
        said_lines = [" ".join(statements(m.content)) for m in messages
                      if m.role in ("user", "human")]
        lines = [f"User: {line}" for line in said_lines if line]
        if not lines:
            return Extraction()
        known = f"(The user's name is {user_name}.)\n" if user_name else ""
        counter = _Dropped()
        said = sum(len(line) for line in said_lines)
        answer = self._chat.ask(system=self._system, user=known + "\n".join(lines),
                                schema=load_schema("extraction"),
                                normalize=lambda raw: normalize(raw, counter),
                                max_tokens=answer_budget(said))
        extraction = with_rules(to_extraction(answer, user_name),
                                self._rules.extract(messages, user_name=user_name))
        extraction.dropped += counter.n
        if extraction.dropped:
            log.info("extraction: dropped %d unreadable items of the model's answer",
                     extraction.dropped)
        return extraction


def answer_budget(chars: int) -> int:
    """Tokens an extraction of `chars` characters of user text may take.

    A full answer to the worked examples is under 2 tokens per character said (the
    cousin-and-cat example: 56 characters, about 110 tokens of JSON); the rest is the tool
    call's wrapper. Anything longer is a model repeating itself.
    """
    return 160 + 2 * chars


class _Dropped:
    def __init__(self) -> None:
        self.n = 0


def normalize(raw: Any, dropped: _Dropped | None = None) -> dict[str, Any]:
    """Map the forms small models answer with onto the extraction schema's shape."""
    counter = dropped or _Dropped()
    if isinstance(raw, list):
        raw = {"facts": raw}
    if not isinstance(raw, dict) or not {"facts", "memories", "fact", "relations"} & set(raw):
        return raw  # not a shape we can read: the schema check asks the model again
    facts = raw.get("facts", raw.get("memories", raw.get("fact", [])))
    if isinstance(facts, (str, dict)):
        facts = [facts]
    loose = raw.get("relations") if isinstance(raw.get("relations"), list) else []
    out: list[dict[str, Any]] = []
    for item in facts if isinstance(facts, list) else []:
        fact = _fact(item)
        if fact is None:
            counter.n += 1
            continue
        fact["relations"] = [{k: v for k, v in r.items() if k != "fact_index"}
                             for r in _relations(fact["relations"], counter)]
        out.append(fact)
    for rel in _relations(loose, counter):  # a flat shape: relations beside the facts
        index = rel.pop("fact_index", None)
        if isinstance(index, int) and 0 <= index < len(out):
            out[index]["relations"].append(rel)
            continue
        names = [rel["object"]] + ([] if entity_key(rel["subject"]) in _SELF_WORDS | {"user"}
                                   else [rel["subject"]])
        home = next((f for name in names for f in out if _mentions(f["text"], name)), None)
        if home is None:
            words = rel["relation"].replace("_", " ")
            home = {"text": f"{rel['subject']} {words} {rel['object']}", "relations": []}
            out.append(home)
        home["relations"].append(rel)
    return {"facts": out}


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE) is not None


def _fact(item: Any) -> dict[str, Any] | None:
    if isinstance(item, str):
        return {"text": item, "relations": []} if item.strip() else None
    if not isinstance(item, dict):
        return None
    text = next((item[k] for k in ("text", "fact", "memory", "content", "sentence", "statement")
                 if isinstance(item.get(k), str) and item[k].strip()), None)
    if text is None:
        return None
    relations = item.get("relations", item.get("triples", []))
    return {"text": text, "relations": relations if isinstance(relations, list) else []}


def _relations(items: list[Any], counter: _Dropped) -> list[dict[str, Any]]:
    out = []
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) in (3, 4):
            item = {"subject": item[0], "relation": item[1], "object": item[2],
                    "negated": item[3] if len(item) == 4 else False}
        if not isinstance(item, dict):
            counter.n += 1
            continue
        subject = _first(item, "subject", "source", "subj", "head", "entity")
        relation = _first(item, "relation", "predicate", "rel", "relationship", "type")
        obj = _first(item, "object", "target", "obj", "tail", "value")
        if not (subject and relation and obj):
            counter.n += 1
            continue
        negated = item.get("negated", False)
        if isinstance(negated, str):
            negated = negated.strip().lower() in ("true", "yes", "1")
        out.append({"subject": subject, "relation": relation, "object": obj,
                    "negated": bool(negated),
                    **({"fact_index": item["fact_index"]} if "fact_index" in item else {})})
    return out


def _first(item: dict, *keys: str) -> str | None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value).strip()
            if text:
                return text
    return None


# A fact that says something is not, or not yet, so: its relations are not current state
# ("I don't own a bike", "I might move to Oslo"). Small models attach the positive triple
# anyway, so such triples are dropped unless the relation itself carries the "not"
# (dislikes, a negated retraction) or the fact tells an ending ("no longer", "quit").
_NOT_A_STATE = re.compile(
    r"\b(?:not|never|might|maybe|perhaps|want|wants|wanted|plan|plans|planning|hope|wish|"
    r"would|could|going\s+to|gonna|will|thinking\s+(?:of|about)|considering|if)\b|n't\b",
    re.IGNORECASE,
)
_ENDING = re.compile(
    r"\b(?:no\s+longer|anymore|any\s+more|quit|stopped|left(?!\s+for\b)|broke\s+up|moved\s+out|"
    r"gave\s+up|sold|done\s+with)\b",
    re.IGNORECASE,
)
_NEGATIVE_RELATIONS = {"dislikes", "hates", "avoids", "allergic_to"}
# Relation names a small model gives an instrument instead of `plays`.
_NOT_PLAYED = {"works_as", "is", "has", "owns", "does", "practices", "plays_the", "play",
               "learns", "studies", "took_up", "started", "picked_up", "switched_to"}


def tells_an_ending(fact: str) -> bool:
    """Whether a fact tells that something ended ("no longer", "quit", "broke up")."""
    return bool(_ENDING.search(fact))


def states_no_current(fact: str, relation: str, negated: bool) -> bool:
    """Whether a fact's text says its (non-negated) relation is not current state."""
    if negated or relation in _NEGATIVE_RELATIONS or relation.startswith(("not_", "no_")):
        return False
    return bool(_NOT_A_STATE.search(fact)) and not tells_an_ending(fact)


def to_extraction(answer: dict, user_name: str | None) -> Extraction:
    """Facts and relations from a schema-valid answer, with the user as `SELF`."""
    self_names = set(_SELF_WORDS) | {USER_PLACEHOLDER.casefold()}
    if user_name:
        self_names.add(entity_key(user_name))

    def who(name: str) -> str:
        name = said_text(name)
        key = entity_key(name)
        return SELF if key in self_names or key.startswith(("user's ", "the user's")) else name

    out = Extraction()
    seen: set[tuple] = set()
    for fact in answer["facts"]:
        text = said_text(fact["text"])
        if not text or text.endswith("?"):  # a question the model copied is no fact
            out.dropped += 1
            continue
        index = len(out.facts)
        out.facts.append(text)
        # One relation told as an ending ("I broke up with Tom") is the relation that ended,
        # whether or not the model set the flag.
        ended = len(fact["relations"]) == 1 and tells_an_ending(text)
        for rel in fact["relations"]:
            source, target = who(rel["subject"]), who(rel["object"])
            relation = relation_name(rel["relation"])
            relation = RELATION_ALIASES.get(relation, relation)
            if relation in _NOT_PLAYED and entity_key(target).split()[-1:] and \
                    entity_key(target).split()[-1] in INSTRUMENTS:
                relation = "plays"  # "works_as drums": a small model's name for playing
            if relation == "name" and source == SELF and target == SELF and user_name:
                target = user_name
            negated = rel["negated"] or (ended and relation not in _NEGATIVE_RELATIONS)
            key = (source, relation, target, negated)
            if not source or not target or source == target or key in seen or \
                    states_no_current(text, relation, negated):
                out.dropped += 1
                continue
            seen.add(key)
            out.relations.append(ExtractedRelation(
                source=source, relation=relation, target=target,
                source_type="person" if source == SELF else subject_type(relation),
                target_type=object_type(relation), fact_index=index, negated=negated,
            ))
    return out

