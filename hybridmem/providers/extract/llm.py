"""Extraction with an LLM: facts, entities and relations in ONE schema-checked call."""

from __future__ import annotations

from hybridmem.providers.chat import JSONChat
from hybridmem.providers.extract.base import (
    ENTITY_TYPES,
    SELF,
    ExtractedRelation,
    Extraction,
    Message,
)
from hybridmem.schemas import load_schema
from hybridmem.text import clean_text, relation_name

USER_PLACEHOLDER = "USER"
_SELF_WORDS = {"user", "i", "me", "my", "myself", "mine", "the user"}

SYSTEM_PROMPT = f"""You extract long-term memories about the user from a conversation.
Return:
- facts: short self-contained sentences worth remembering across sessions (preferences,
  personal details, people in the user's life, plans). One fact per sentence, written from
  the user's perspective ("I enjoy hiking"). Skip greetings, questions and small talk.
- entities: every person, place, organization, animal, activity or thing the facts name,
  with a lowercase type (one of: {", ".join(ENTITY_TYPES)}).
- relations: (source, relation, target) triples the facts state. Refer to the user as
  "{USER_PLACEHOLDER}". relation is lower snake case, e.g. name, likes, dislikes, enjoys,
  lives_in, works_at, is_from, friend, sister, has_dog, is. fact_index is the index of the
  fact that states it. Set negated=true only when a fact says a relation is no longer true
  ("I no longer work at IBM" -> USER works_at IBM, negated=true).
Only extract what is stated; never guess."""


class LLMExtractor:
    """One chat request per add, answered as the `extraction` JSON Schema."""

    name = "llm"

    def __init__(self, chat: JSONChat, custom_prompt: str | None = None) -> None:
        self._chat = chat
        self._system = SYSTEM_PROMPT + (f"\n\n{custom_prompt}" if custom_prompt else "")

    def extract(self, messages: list[Message], *, user_name: str | None = None) -> Extraction:
        """Ask the LLM once; map "USER"/"I"/the user's name to the scope's own entity."""
        lines = [f"{m.role}: {m.content}" for m in messages]
        known = f"The user's name is {user_name}.\n" if user_name else ""
        answer = self._chat.ask(
            system=self._system,
            user=f"{known}Conversation:\n" + "\n".join(lines),
            schema=load_schema("extraction"),
        )
        return _to_extraction(answer, user_name)


def _to_extraction(answer: dict, user_name: str | None) -> Extraction:
    self_names = set(_SELF_WORDS) | {USER_PLACEHOLDER.casefold()}
    if user_name:
        self_names.add(user_name.casefold())

    def who(name: str) -> str:
        name = clean_text(name)
        return SELF if name.casefold() in self_names else name

    facts = [clean_text(f) for f in answer["facts"] if clean_text(f)]
    types = {who(e["name"]): e["type"].strip().lower() for e in answer["entities"]}
    out = Extraction(facts=facts)
    for rel in answer["relations"]:
        source, target = who(rel["source"]), who(rel["target"])
        index = rel["fact_index"]
        if not source or not target or (index is not None and index >= len(facts)):
            index = None
        relation = relation_name(rel["relation"])
        if relation == "name" and source == SELF and target == SELF and user_name:
            target = user_name
        out.relations.append(ExtractedRelation(
            source=source, relation=relation, target=target,
            source_type="person" if source == SELF else types.get(source, "other"),
            target_type="name" if relation == "name" else types.get(target, "other"),
            fact_index=index, negated=bool(rel["negated"]),
        ))
    out.entity_types = {k: v for k, v in types.items() if k != SELF}
    return out
