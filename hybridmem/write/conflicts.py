"""When a new relation contradicts an active one.

Three rules, in order:
1. single-valued relations (`GraphRules.single_valued`): a subject holds one active value
   ("lives_in Berlin" ends "lives_in Paris");
2. opposite polarity on the same object (`GraphRules.opposites`): "dislikes badminton"
   ends "likes badminton" and the other way round;
3. with an LLM configured, one more call judges the remaining *candidates*: active edges
   of the same subject that share the relation (another object) or the object (another
   relation). It sees only those edges, never the whole graph, and is made only when
   there is at least one candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from hybridmem.config import GraphRules
from hybridmem.providers.chat import JSONChat
from hybridmem.records import EdgeRecord
from hybridmem.schemas import load_schema


@dataclass(frozen=True)
class NewEdge:
    """A relation an add asserts, with its ends resolved to entity ids."""

    id: str
    source_id: str
    relation: str
    target_id: str
    text: str


class ConflictRules:
    """The rule-based part: single-valued relations and opposite polarity."""

    def __init__(self, rules: GraphRules) -> None:
        self.single_valued = set(rules.single_valued)
        self.opposites: dict[str, set[str]] = {}
        for a, b in rules.opposites:
            self.opposites.setdefault(a, set()).add(b)
            self.opposites.setdefault(b, set()).add(a)

    def reason(self, new: NewEdge, old: EdgeRecord) -> str | None:
        """Why `new` ends `old`, or None if the rules see no contradiction."""
        if old.source_id != new.source_id or not old.valid:
            return None
        if old.relation == new.relation and old.target_id != new.target_id and (
            new.relation in self.single_valued
        ):
            return f"single-valued relation '{new.relation}' now has another value"
        if old.target_id == new.target_id and old.relation in self.opposites.get(
            new.relation, ()
        ):
            return f"opposite polarity: '{new.relation}' replaces '{old.relation}'"
        return None

    def is_candidate(self, new: NewEdge, old: EdgeRecord) -> bool:
        """Whether an LLM should judge `old` against `new` (the rules could not decide)."""
        if old.source_id != new.source_id or not old.valid or old.id == new.id:
            return False
        same_relation = old.relation == new.relation and old.target_id != new.target_id
        same_object = old.target_id == new.target_id and old.relation != new.relation
        return same_relation or same_object


SYSTEM_PROMPT = """You keep a personal knowledge graph current. New statements were just
learned. For each EXISTING relation listed, decide whether the new statements make it no
longer true (contradicted=true) or whether both can hold at once (contradicted=false).
Different objects of the same relation usually coexist (one can like tea and coffee);
contradict only what the new statements rule out. Give a short reason."""


class LLMConflictJudge:
    """The second (and last) LLM call of an add, made only when candidates exist."""

    def __init__(self, chat: JSONChat) -> None:
        self._chat = chat

    def judge(self, new: list[NewEdge], candidates: list[EdgeRecord],
              render_old) -> dict[str, str]:
        """edge id -> reason, for each candidate the LLM says is contradicted."""
        known = {c.id for c in candidates}
        lines_new = "\n".join(f"- {n.text}" for n in new)
        lines_old = "\n".join(f"- [{c.id}] {render_old(c)}" for c in candidates)
        answer = self._chat.ask(
            system=SYSTEM_PROMPT,
            user=f"New statements:\n{lines_new}\n\nExisting relations:\n{lines_old}",
            schema=load_schema("conflict"),
        )
        return {
            d["edge_id"]: d["reason"] or "contradicted by a new statement (LLM)"
            for d in answer["decisions"]
            if d["contradicted"] and d["edge_id"] in known
        }
