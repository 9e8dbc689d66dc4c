"""Turning extracted relations into graph changes of a `WritePlan`: resolve entities,
reuse or create edges, end contradicted edges, and forget edges when memories go."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from hybridmem.config import GraphRules
from hybridmem.providers.extract.base import ANY, SELF, ExtractedRelation
from hybridmem.read.render import render
from hybridmem.read.snapshot import GraphSnapshots, ScopeGraph
from hybridmem.records import (
    SELF_KEY,
    EdgeRecord,
    EntityRecord,
    HistoryEntry,
    Invalidation,
    MemoryRecord,
    Supersession,
    SupportChange,
    WritePlan,
    pack_vector,
)
from hybridmem.scope import Scope
from hybridmem.stores.base import GraphStore
from hybridmem.text import entity_key, said_text
from hybridmem.vocabulary import ended_together
from hybridmem.write.conflicts import PARTNERED, ConflictRules, LLMConflictJudge, NewEdge
from hybridmem.write.resolve import EntityResolver


@dataclass
class FactLinks:
    """Which memory each extracted fact became (new or existing), and its text."""

    memory_ids: list[str]
    texts: list[str]
    new_ids: set[str] = field(default_factory=set)

    def memory_of(self, index: int | None) -> list[str]:
        """The memory ids a relation with this fact index is supported by."""
        if index is not None and 0 <= index < len(self.memory_ids):
            return [self.memory_ids[index]]
        return list(dict.fromkeys(self.memory_ids))

    def text_of(self, index: int | None) -> str:
        """The sentence a relation came from ("" if unknown)."""
        if index is not None and 0 <= index < len(self.texts):
            return self.texts[index]
        return ""

    def text_by_id(self, memory_id: str | None) -> str | None:
        """The text of one of these facts' memories (None if it is none of them)."""
        if memory_id in self.memory_ids:
            return self.texts[self.memory_ids.index(memory_id)]
        return None


class GraphPlanner:
    """Decides every graph change of an add, update or delete."""

    def __init__(
        self,
        store: GraphStore,
        snapshots: GraphSnapshots,
        rules: GraphRules,
        judge: LLMConflictJudge | None,
    ) -> None:
        self._store = store
        self._snapshots = snapshots
        self._rules = ConflictRules(rules)
        self._threshold = rules.resolution_threshold
        self._judge = judge

    def _resolver(self, graph: ScopeGraph, scope: Scope) -> EntityResolver:
        """The exact scope's entity resolver, built once per scope and carried from one
        graph snapshot to the next (not changed here: a plan works on a copy)."""
        resolver = graph.entity_index(
            scope, "resolver", lambda entities: EntityResolver(entities, self._threshold))
        assert isinstance(resolver, EntityResolver)
        return resolver

    # ------------------------------------------------------------ adds

    def user_name(self, scope: Scope) -> str | None:
        """The scope user's learned name, if any (helps the extractor map "Alice" to "I")."""
        me = self._resolver(self._snapshots.get(scope), scope).by_key(SELF_KEY)
        return me.name if me is not None and me.name != _default_self_name(scope) else None

    def names_to_embed(self, scope: Scope, relations: list[ExtractedRelation]) -> list[str]:
        """Mention names that key/alias lookup cannot resolve (they need an embedding)."""
        resolver = self._resolver(self._snapshots.get(scope), scope)
        out: list[str] = []
        for rel in relations:
            for name, kind in ((rel.source, rel.source_type), (rel.target, rel.target_type)):
                if name != SELF and resolver.lookup(name, kind) is None and name not in out:
                    out.append(name)
        return out

    def plan_relations(
        self,
        plan: WritePlan,
        scope: Scope,
        relations: list[ExtractedRelation],
        facts: FactLinks,
        name_vectors: dict[str, np.ndarray],
        now: str,
        near: list[MemoryRecord] | None = None,
    ) -> None:
        """Add the graph changes of extracted relations to `plan`; `near` are the scope's
        current memories closest to the new facts, which the LLM judge (when there is one)
        may find contradicted even without a relation to compare."""
        near = near or []
        if not relations and not (near and self._judge is not None):
            return
        graph = self._snapshots.get(scope)
        state = _PlanState(plan, scope, graph, self._resolver(graph, scope).copy())
        new_edges: list[NewEdge] = []
        for rel in relations:
            if rel.negated:
                continue
            source = self._resolve(state, rel.source, rel.source_type, name_vectors, now)
            target = self._resolve(state, rel.target, rel.target_type, name_vectors, now)
            if source.id == target.id:
                continue
            for entity in (source, target):
                state.touch(entity.model_copy(update={"mentions": entity.mentions + 1}))
            edge = state.edge_for(source.id, rel.relation, target.id)
            supporting = facts.memory_of(rel.fact_index)
            if edge is None:
                edge = EdgeRecord(
                    id=uuid.uuid4().hex, source_id=source.id, target_id=target.id,
                    relation=rel.relation, fact=facts.text_of(rel.fact_index), created_at=now,
                    memory_ids=supporting, source_name=source.name, target_name=target.name,
                    **scope.as_row(),
                )
                plan.edges.append(edge)
                new_edges.append(NewEdge(edge.id, source.id, rel.relation, target.id,
                                         render(source.name, rel.relation, target.name),
                                         facts.text_of(rel.fact_index)))
            else:
                state.support(edge, supporting)
        self._end_conflicts(state, new_edges, facts, near, now)
        self._retract(state, [r for r in relations if r.negated], facts, now)
        self._learn_name(state, scope)
        self._supersede_memories(state, facts, now)
        state.flush()

    def _resolve(self, state: _PlanState, name: str, kind: str,
                 vectors: dict[str, np.ndarray], now: str) -> EntityRecord:
        if name == SELF:
            return state.self_entity(now)
        found = state.resolver.lookup(name, kind) or state.resolver.by_embedding(
            vectors.get(name), kind, name
        )
        if found is not None:
            return state.entities.get(found.id, found)
        vector = vectors.get(name)
        entity = EntityRecord(
            id=uuid.uuid4().hex, name=said_text(name), key=entity_key(name),
            type=kind or "other", aliases=[], mentions=0, created_at=now,
            embedding=pack_vector(vector) if vector is not None else None, **state.scope.as_row(),
        )
        state.touch(entity)
        return entity

    def _end_conflicts(self, state: _PlanState, new_edges: list[NewEdge], facts: FactLinks,
                       near: list[MemoryRecord], now: str) -> None:
        related = {new.id: self._related(state, new, new_edges) for new in new_edges}
        candidates: dict[str, EdgeRecord] = {}
        for new in new_edges:
            for old in related[new.id]:
                reason = self._rules.reason(new, old)
                if reason is not None:
                    state.invalidate(old, new.id, reason, now)
        for new in new_edges:
            for old in related[new.id]:
                if old.id not in state.ended and self._rules.is_candidate(new, old):
                    candidates[old.id] = old
        # Memories whose edges the rules just ended are decided already. A memory that
        # supports current relations is judged through those relations only (the
        # candidates above): judged whole, a verdict on "My brother Oskar plays the
        # cello" would end the brother with the cello.
        decided = {m for i in state.ended for m in state.graph.edge_by_id[i].memory_ids}
        memories = [m for m in near if m.id not in facts.memory_ids and m.id not in decided]
        if self._judge is not None and memories:  # only a judge call needs it
            related = self._memories_with_relations(state, {m.id for m in memories})
            memories = [m for m in memories if m.id not in related]
        if self._judge is None or not (candidates or memories):
            return
        edges = list(candidates.values())
        said = [facts.texts[i] for i, m in enumerate(facts.memory_ids) if m in facts.new_ids]
        ended = self._judge.judge(said or facts.texts,
                                  [state.graph.text(e) for e in edges] + [m.text for m in memories])
        reason = f"LLM: contradicted by {' '.join(said or facts.texts)!r}"[:300]
        for i in sorted(ended):
            if i < len(edges):
                old = edges[i]
                by = next(n.id for n in new_edges if n.source_id == old.source_id)
                state.invalidate(old, by, reason, now)
            else:
                self._contradicted_memory(state, memories[i - len(edges)], facts, reason, now)

    def _related(self, state: _PlanState, new: NewEdge,
                 new_edges: list[NewEdge]) -> list[EdgeRecord]:
        """The scope's current edges the rules or the judge may weigh against `new`: its
        subject's edges with the same relation (unless the subject holds many of that
        relation, e.g. friends: then none of them can conflict with another) or to the
        same object. Read from the snapshot's indexes, so a subject with thousands of
        edges costs no scan."""
        fresh = {n.id for n in new_edges}
        same_relation = ([] if self._rules.holds_many(new.relation)
                         else state.graph.edges_at(new.source_id, relation=new.relation))
        same_object = state.graph.edges_at(new.source_id, target_id=new.target_id)
        # A partner ends being single, which is stated under another relation.
        status = [e for r in ("is", "relationship_status", "status")
                  for e in state.graph.edges_at(new.source_id, relation=r)
                  ] if new.relation in PARTNERED else []
        out = {e.id: e for e in [*same_relation, *same_object, *status]
               if e.id not in fresh and e.id not in state.gone}
        return list(out.values())

    def _memories_with_relations(self, state: _PlanState, memory_ids: set[str]) -> set[str]:
        """Which of `memory_ids` support a current relation (one this plan leaves
        current)."""
        edges = self._store.edges_supported_by(state.scope, memory_ids)
        return {m for e in edges if e.valid and e.id not in state.gone
                and e.id not in state.ended for m in e.memory_ids if m in memory_ids}

    def _contradicted_memory(self, state: _PlanState, memory: MemoryRecord, facts: FactLinks,
                             reason: str, now: str) -> None:
        """A memory the judge found contradicted (one that supports no current relation,
        the only kind it is shown): it is superseded."""
        by = next(iter(sorted(facts.new_ids)), None)
        state.plan.supersede.append(Supersession(memory_id=memory.id, superseded_by=by, at=now))
        state.history(memory.id, "SUPERSEDE", memory.text, None,
                      {"superseded_by": by, "reason": reason}, now)
        state.judged.add(memory.id)
        for edge in state.graph.edges:
            if memory.id in edge.memory_ids and set(edge.memory_ids) <= state.judged:
                state.invalidate(edge, None, reason, now)

    def _retract(self, state: _PlanState, negated: list[ExtractedRelation], facts: FactLinks,
                 now: str) -> None:
        for rel in negated:
            source = state.self_entity(now) if rel.source == SELF else state.resolver.lookup(
                rel.source, rel.source_type)
            target = None if rel.target == ANY else state.resolver.lookup(
                rel.target, rel.target_type) or state.resolver.lookup(rel.target, "")
            if source is None or (target is None and rel.target != ANY):
                continue
            said = facts.text_of(rel.fact_index)
            reason = f"retracted: {said!r}" if said else "retracted"
            for old in self._retracted(state, source.id, rel.relation,
                                       None if target is None else target.id):
                state.invalidate(old, None, reason, now)

    def _retracted(self, state: _PlanState, source_id: str, relation: str,
                   target_id: str | None) -> list[EdgeRecord]:
        """The current edges a retraction ends: to that object (any object when
        `target_id` is None) under the relation's name or one it is also stored under
        ("gave up the cello" ends `plays cello` or `loves cello`; "I broke up with Tom"
        ends `boyfriend Tom`; `has_pet` stands for every kind of pet)."""
        names = ended_together(relation)
        pets = relation == "has_pet"
        out = []
        # Only a wildcard ("any pets") walks the subject's edges; else the target index.
        edges = (state.graph.edges_at(source_id, target_id=target_id) if target_id is not None
                 else [e for e in state.graph.edges if e.source_id == source_id])
        for old in edges:
            if not old.valid or old.id in state.gone or (
                    target_id is not None and old.target_id != target_id):
                continue
            if old.relation in names or (pets and old.relation.startswith("has_") and (
                    target_id is not None or _is_animal(state, old.target_id))):
                out.append(old)
        return out

    def _learn_name(self, state: _PlanState, scope: Scope) -> None:
        me = state.current_self()
        if me is None:
            return
        ended = {e.target_id for e in state.graph.edges_at(me.id, relation="name")
                 if e.id in state.ended}
        named = [e for e in state.plan.edges if e.source_id == me.id and e.relation == "name"]
        if not ended and not named:
            return
        aliases = [a for a in me.aliases
                   if a not in {state.graph.entity_by_id[i].key for i in ended
                                if i in state.graph.entity_by_id}]
        name = me.name
        for edge in named:
            aliases.append(entity_key(edge.target_name))
            name = edge.target_name
        if not named and ended:
            name = _default_self_name(scope)
        state.touch(me.model_copy(update={"name": name, "aliases": list(dict.fromkeys(aliases))}))

    def _supersede_memories(self, state: _PlanState, facts: FactLinks, now: str) -> None:
        """A memory whose every relation was just ended, or ended and the rest said again
        by this add, is no longer current ("My sister Kim lives in Rome", then "My sister
        Kim moved to Madrid": the sister relation lives on in the new memory). Its
        SUPERSEDE row names the memory that replaced it (`new_memory`) and why; the
        writer adds its own text (`old_memory`), which only the record holds."""
        own = facts.new_ids
        ended_edges = [state.graph.edge_by_id[i] for i in state.ended]
        memory_ids = {m for e in ended_edges for m in e.memory_ids} - own - state.judged
        if not memory_ids:
            return
        by_memory: dict[str, list[EdgeRecord]] = {}
        for edge in self._store.edges_supported_by(state.scope, memory_ids):
            for m in edge.memory_ids:
                by_memory.setdefault(m, []).append(edge)
        for memory_id in sorted(memory_ids):
            edges = by_memory.get(memory_id, [])
            if not edges or not all(not e.valid or e.id in state.ended
                                    or own & set(state.support_of(e)) for e in edges):
                continue
            by_edge, reason = next((state.ended[e.id] for e in edges if e.id in state.ended),
                                   (None, None))
            by_memory_id = next(
                (e.memory_ids[0] for e in state.plan.edges if e.id == by_edge and e.memory_ids),
                None,
            )
            state.plan.supersede.append(
                Supersession(memory_id=memory_id, superseded_by=by_memory_id, at=now)
            )
            detail = {"superseded_by": by_memory_id, **({"reason": reason} if reason else {})}
            state.history(memory_id, "SUPERSEDE", None, facts.text_by_id(by_memory_id),
                          detail, now)

    # ------------------------------------------------------------ deletes

    def plan_forget(self, plan: WritePlan, scope: Scope, memory_ids: set[str]) -> None:
        """Remove `memory_ids` as support; edges left without support, and entities left
        without edges, are deleted for real."""
        edges = self._store.edges_supported_by(scope, memory_ids)
        gone: list[EdgeRecord] = []
        for edge in edges:
            remaining = [m for m in edge.memory_ids if m not in memory_ids]
            if remaining:
                plan.support.append(SupportChange(edge_id=edge.id, memory_ids=remaining))
            else:
                plan.delete_edge_ids.append(edge.id)
                gone.append(edge)
        if not gone:
            return
        ends = {e.source_id for e in gone} | {e.target_id for e in gone}
        lost = {i: sum(1 for e in gone if i in (e.source_id, e.target_id)) for i in ends}
        degree = self._store.degree(ends)
        entities = self._store.entities_by_id(ends)
        for entity_id in sorted(ends):
            if degree.get(entity_id, 0) - lost[entity_id] <= 0:
                plan.delete_entity_ids.append(entity_id)
                continue
            entity = entities.get(entity_id)
            lost_names = {e.target_name for e in gone
                          if e.source_id == entity_id and e.relation == "name"}
            if entity is not None and entity.key == SELF_KEY and lost_names:
                # A deleted "my name is X" takes X out of the user's aliases too.
                keys = {entity_key(n) for n in lost_names}
                row_scope = Scope.of(**{k: v or None for k, v in entity.model_dump(
                    include={"user_id", "agent_id", "run_id"}).items()})
                plan.entities.append(entity.model_copy(update={
                    "aliases": [a for a in entity.aliases if a not in keys],
                    "name": _default_self_name(row_scope),
                }))


def _is_animal(state: _PlanState, entity_id: str) -> bool:
    entity = state.entities.get(entity_id) or state.graph.entity_by_id.get(entity_id)
    return entity is not None and entity.type == "animal"


def _default_self_name(scope: Scope) -> str:
    return scope.user_id or "user"


class _PlanState:
    """Working state while one add's graph changes are decided."""

    def __init__(self, plan: WritePlan, scope: Scope, graph: ScopeGraph,
                 resolver: EntityResolver) -> None:
        self.plan = plan
        self.scope = scope
        self.graph = graph
        self.resolver = resolver
        # Changes already in the plan (an update forgets the old text's edges first).
        self.entities: dict[str, EntityRecord] = {e.id: e for e in plan.entities}
        self.gone: set[str] = set(plan.delete_edge_ids)
        self.ended: dict[str, tuple[str | None, str]] = {}
        # Memories the LLM judge found contradicted (superseded by this plan).
        self.judged: set[str] = set()
        self._support: dict[str, list[str]] = {}

    def touch(self, entity: EntityRecord) -> None:
        self.entities[entity.id] = entity
        self.resolver.add(entity)

    def self_entity(self, now: str) -> EntityRecord:
        current = self.current_self()
        if current is not None:
            return current
        user_id = self.scope.user_id
        entity = EntityRecord(
            id=uuid.uuid4().hex, name=_default_self_name(self.scope), key=SELF_KEY,
            type="person", aliases=[entity_key(user_id)] if user_id else [], mentions=0,
            created_at=now, **self.scope.as_row(),
        )
        self.touch(entity)
        return entity

    def current_self(self) -> EntityRecord | None:
        for entity in self.entities.values():
            if entity.key == SELF_KEY:
                return entity
        return self.resolver.by_key(SELF_KEY)

    def edge_for(self, source_id: str, relation: str, target_id: str) -> EdgeRecord | None:
        wanted = (source_id, relation, target_id)
        for edge in [*self.plan.edges, *self.graph.edges_at(source_id, relation=relation)]:
            ends = (edge.source_id, edge.relation, edge.target_id)
            live = edge.id not in self.ended and edge.id not in self.gone
            if ends == wanted and edge.valid and live:
                return edge
        return None

    def support_of(self, edge: EdgeRecord) -> list[str]:
        """The memories an existing edge rests on once this plan is applied."""
        return self._support.get(edge.id, edge.memory_ids)

    def support(self, edge: EdgeRecord, memory_ids: list[str]) -> None:
        if any(e.id == edge.id for e in self.plan.edges):
            edge.memory_ids = list(dict.fromkeys([*edge.memory_ids, *memory_ids]))
            return
        current = self._support.get(edge.id, edge.memory_ids)
        self._support[edge.id] = list(dict.fromkeys([*current, *memory_ids]))

    def invalidate(self, old: EdgeRecord, by: str | None, reason: str, now: str) -> None:
        """End `old`, and note it in the history of every memory that supported it."""
        if old.id in self.ended:
            return
        self.ended[old.id] = (by, reason)
        self.plan.invalidations.append(
            Invalidation(edge_id=old.id, superseded_by=by, reason=reason, at=now)
        )
        new = next((e for e in self.plan.edges if e.id == by), None)
        new_text = render(new.source_name, new.relation, new.target_name) if new else None
        for memory_id in old.memory_ids:
            self.history(memory_id, "INVALIDATE", self.graph.text(old), new_text,
                         {"edge_id": old.id, "reason": reason, "superseded_by": by}, now)

    def history(self, memory_id: str, event: str, old: str | None, new: str | None,
                detail: dict, now: str) -> None:
        self.plan.history.append(HistoryEntry(
            id=uuid.uuid4().hex, memory_id=memory_id, event=event, old_memory=old,
            new_memory=new, detail=detail, created_at=now, **self.scope.as_row(),
        ))

    def flush(self) -> None:
        """Write the collected entity and support changes into the plan."""
        self.plan.entities = list(self.entities.values())
        used = set(self.entities) | {e.source_id for e in self.plan.edges} | {
            e.target_id for e in self.plan.edges}
        self.plan.delete_entity_ids = [i for i in self.plan.delete_entity_ids if i not in used]
        self.plan.support.extend(
            SupportChange(edge_id=i, memory_ids=m) for i, m in self._support.items()
        )
