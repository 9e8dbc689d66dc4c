"""When something new contradicts something stored.

Three rules, in order:
1. single-valued relations (`GraphRules.single_valued`): a subject holds one active value
   ("lives_in Berlin" ends "lives_in Paris");
2. opposite polarity on the same object (`GraphRules.opposites`): "dislikes badminton"
   ends "likes badminton" and the other way round;
3. a partner ends being single ("I'm single" -> "I got married to Sam");
4. with an LLM configured, one more call judges the remaining *candidates*: active edges
   of the same subject that share the relation (another object) or the object (another
   relation), and the scope's current memories closest to the new facts that support no
   current relation (so a contradiction is caught even when the model found no triple
   in it). It sees only those, never the whole graph, and is made only when there is at
   least one candidate.

Verdicts are per relation: the judge names edges, and an edge ends only when it is
named. A memory ends when every relation it supports has ended (or, holding none, when
the judge names it), so a change of instrument never ends the brother who plays it.
Ties between people and identities (kinship, a partner, `name`, `is`) are never
candidates because another relation names the same person: only a statement of that
same tie (another partner) or its end ("we broke up", a retraction) touches them. A
statement that adds ("also", "too", "as well", "another") ends no other object of the
relation it adds to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hybridmem.config import GraphRules
from hybridmem.providers.chat import JSONChat
from hybridmem.records import EdgeRecord
from hybridmem.schemas import load_schema
from hybridmem.vocabulary import is_tie

# "I also play the piano", "Ben lives in Paris too": one more, not instead.
# "too" and "as well" only at the end of the statement: "coffee is too bitter" adds
# nothing ("I prefer tea now, coffee is too bitter" must still be judged).
_ADDS = re.compile(r"\b(?:also|another|second|as\s+well\s+as)\b"
                   r"|\b(?:too|as\s+well)\W*$", re.IGNORECASE)
# Being single, as a model states it (`is single`, `relationship_status single`), and the
# relations that end it.
SINGLE = {"single", "unmarried", "not married", "not in a relationship", "alone"}
PARTNERED = {"married_to", "partner", "wife", "husband", "spouse", "boyfriend",
              "girlfriend", "fiance", "fiancee", "engaged_to", "dating"}


@dataclass(frozen=True)
class NewEdge:
    """A relation an add asserts, with its ends resolved to entity ids."""

    id: str
    source_id: str
    relation: str
    target_id: str
    text: str
    fact: str = ""  # the sentence that stated it


class ConflictRules:
    """The rule-based part: single-valued relations and opposite polarity."""

    def __init__(self, rules: GraphRules) -> None:
        self.single_valued = {r for r in rules.single_valued if not r.endswith("*")}
        self._single_prefixes = tuple(r[:-1] for r in rules.single_valued if r.endswith("*"))
        self.coexisting = set(rules.coexisting)
        self.opposites: dict[str, set[str]] = {}
        for a, b in rules.opposites:
            self.opposites.setdefault(a, set()).add(b)
            self.opposites.setdefault(b, set()).add(a)

    def reason(self, new: NewEdge, old: EdgeRecord) -> str | None:
        """Why `new` ends `old`, or None if the rules see no contradiction."""
        if old.source_id != new.source_id or not old.valid:
            return None
        if old.relation == new.relation and old.target_id != new.target_id and (
            new.relation in self.single_valued or new.relation.startswith(self._single_prefixes)
        ):
            return f"single-valued relation '{new.relation}' now has another value"
        if old.target_id == new.target_id and old.relation in self.opposites.get(
            new.relation, ()
        ):
            return f"opposite polarity: '{new.relation}' replaces '{old.relation}'"
        if (new.relation in PARTNERED and old.relation in ("is", "relationship_status", "status")
                and old.target_name.casefold() in SINGLE):
            return f"'{new.relation}' ends being {old.target_name}"
        return None

    def holds_many(self, relation: str) -> bool:
        """Whether a subject may hold this relation to many objects at once (two of its
        edges with this relation never conflict: neither `reason` nor `is_candidate`)."""
        return relation in self.coexisting and not (
            relation in self.single_valued or relation.startswith(self._single_prefixes))

    def coexists(self, new: NewEdge, old: EdgeRecord) -> bool:
        """Whether `old` is another object of a relation a subject holds many of."""
        return (old.source_id == new.source_id and old.relation == new.relation
                and old.relation in self.coexisting and old.target_id != new.target_id)

    def is_candidate(self, new: NewEdge, old: EdgeRecord) -> bool:
        """Whether an LLM should judge `old` against `new` (the rules could not decide)."""
        if old.source_id != new.source_id or not old.valid or old.id == new.id:
            return False
        same_relation = (old.relation == new.relation and old.target_id != new.target_id
                         and not self.coexists(new, old) and not _ADDS.search(new.fact))
        # Another relation to the same person is another tie ("my friend Lars" and "Lars
        # is my colleague"), never the end of one.
        same_object = (old.target_id == new.target_id and old.relation != new.relation
                       and not is_tie(old.relation) and not is_tie(new.relation))
        return same_relation or same_object


SYSTEM_PROMPT = "\n".join([
    "A user just told an assistant something new. Below are things stored about the user "
    "earlier, each with a number. List the numbers of those the new statements make no "
    "longer true: the user changed their mind, moved, left, ended or stopped something, or "
    "now says the opposite. Two things that can both be true are not contradicted (playing "
    "chess and playing golf; a cousin and an uncle in one town; what someone else does). "
    "Saying a stored thing again, or asking about it, contradicts nothing.",
    'Answer JSON: {"contradicted": ["2"]}, or {"contradicted": []} when nothing is.',
    "",
    "Example:",
    "New: I moved to Oslo.",
    "Stored:",
    "[1] I live in Rome",
    "[2] I like hiking",
    '{"contradicted":["1"]}',
])


class LLMConflictJudge:
    """The second (and last) LLM call of an add, made only when candidates exist."""

    def __init__(self, chat: JSONChat) -> None:
        self._chat = chat

    def judge(self, new_statements: list[str], stored: list[str]) -> set[int]:
        """Indexes into `stored` of the items the LLM says the new statements end."""
        listing = "\n".join(f"[{i + 1}] {text}" for i, text in enumerate(stored))
        answer = self._chat.ask(
            system=SYSTEM_PROMPT,
            user="New: " + " ".join(new_statements) + f"\nStored:\n{listing}",
            schema=load_schema("conflict"),
            max_tokens=48 + 8 * len(stored),  # {"contradicted": ["12", ...]} and a wrapper
        )
        out = set()
        for label in answer["contradicted"]:
            digits = "".join(ch for ch in label if ch.isdigit())
            if digits and 1 <= int(digits) <= len(stored):
                out.add(int(digits) - 1)
        return out
