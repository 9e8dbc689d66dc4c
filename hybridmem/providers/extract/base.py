"""What an extractor returns, and the protocol extractors implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

#: The placeholder extractors use for the scope's own user ("I", "me", "my").
SELF = "@self"
#: The object of a retraction that names no one thing ("I don't have any pets anymore"):
#: every current edge of that relation (and kind) ends.
ANY = "*"

ENTITY_TYPES = (
    "person", "place", "organization", "animal", "activity", "thing", "name", "event",
    "date", "number", "concept", "other",
)


@dataclass(frozen=True)
class Message:
    """One chat message: its role and its text."""

    role: str
    content: str
    name: str | None = None


@dataclass(frozen=True)
class ExtractedRelation:
    """`source -relation-> target`, stated (or, if `negated`, retracted) by fact `fact_index`.

    `source`/`target` are surface names; `SELF` stands for the scope's user.
    """

    source: str
    relation: str
    target: str
    source_type: str = "other"
    target_type: str = "other"
    fact_index: int | None = None
    negated: bool = False


@dataclass
class Extraction:
    """Facts to embed, and relations to put into the graph, from one add (`dropped`:
    parts of a model's answer that could not be read)."""

    facts: list[str] = field(default_factory=list)
    relations: list[ExtractedRelation] = field(default_factory=list)
    dropped: int = 0


class Extractor(Protocol):
    """Turns the messages of one add into facts and relations."""

    #: "rules" or "llm"; recorded in the journal with the result.
    name: str

    def extract(self, messages: list[Message], *, user_name: str | None = None) -> Extraction:
        """Extract facts and relations (at most one LLM call).

        `user_name` is the scope user's learned name, if any, so "Alice" and "I" meet.
        """
        ...
