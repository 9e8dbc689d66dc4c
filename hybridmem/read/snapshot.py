"""A cached view of one read scope's current graph: entities, active edges, rendered
relation texts and their BM25 model. Loaded from Kuzu once, then kept current by applying
each write plan to it (copy-on-write), so neither adds nor searches reload a whole scope."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import cached_property
from typing import Protocol

import numpy as np
from immutables import Map

from hybridmem.read.bm25 import RelationBM25
from hybridmem.read.render import render
from hybridmem.records import SELF_KEY, EdgeRecord, EntityRecord, WritePlan, unpack_vector
from hybridmem.scope import Scope
from hybridmem.stores.base import GraphStore
from hybridmem.text import STOPWORDS, tokenize


class EntityIndex(Protocol):
    """An index over one exact scope's entities that a snapshot carries forward (the write
    path's entity resolver is one)."""

    def patched(self, changed: list[EntityRecord], dropped: set[str]) -> EntityIndex:
        """A copy with `changed` entities added or replaced and `dropped` ids removed."""
        ...


class ScopeGraph:
    """Entities and active edges of one read scope, with derived indexes built on demand.

    A snapshot is never changed once built: a write makes a patched copy (`patched`)
    that shares what the write did not change, so adds stay flat as a scope grows.
    """

    def __init__(self, entities: list[EntityRecord] | Map[str, EntityRecord],
                 edges: list[EdgeRecord] | Map[str, EdgeRecord]) -> None:
        # Persistent maps (immutables' HAMT): a patched copy shares all it did not change
        self.entity_by_id: Map[str, EntityRecord] = (
            entities if isinstance(entities, Map) else Map({e.id: e for e in entities}))
        self.edge_by_id: Map[str, EdgeRecord] = (
            edges if isinstance(edges, Map) else Map({e.id: e for e in edges}))
        self._entity_indexes: dict[tuple[tuple[str, str, str], str], EntityIndex] = {}
        # (source, relation) and (source, target) -> edge ids, built on first use
        self._ends: tuple[Map[tuple[str, str], tuple[str, ...]], ...] | None = None

    @cached_property
    def entities(self) -> list[EntityRecord]:
        """Every entity of the scope, oldest first."""
        return sorted(self.entity_by_id.values(), key=lambda e: (e.created_at, e.id))

    @cached_property
    def edges(self) -> list[EdgeRecord]:
        """Every active edge of the scope, oldest first."""
        return sorted(self.edge_by_id.values(), key=lambda e: (e.created_at, e.id))

    def edges_at(self, source_id: str, *, relation: str | None = None,
                 target_id: str | None = None) -> list[EdgeRecord]:
        """The active edges from `source_id` with this relation, or to this target (give
        one of the two), in the order they were added."""
        if (relation is None) == (target_id is None):
            raise ValueError("edges_at takes a relation or a target_id")
        if self._ends is None:
            by_relation: dict[tuple[str, str], tuple[str, ...]] = {}
            by_target: dict[tuple[str, str], tuple[str, ...]] = {}
            for edge in self.edges:
                by_relation[(edge.source_id, edge.relation)] = (
                    *by_relation.get((edge.source_id, edge.relation), ()), edge.id)
                by_target[(edge.source_id, edge.target_id)] = (
                    *by_target.get((edge.source_id, edge.target_id), ()), edge.id)
            self._ends = (Map(by_relation), Map(by_target))
        by_relation_map, by_target_map = self._ends
        ids = (by_relation_map.get((source_id, relation), ()) if relation is not None
               else by_target_map.get((source_id, target_id), ()))
        return [self.edge_by_id[i] for i in ids]

    def entity_index(self, scope: Scope, name: str,
                     build: Callable[[list[EntityRecord]], EntityIndex]) -> EntityIndex:
        """The index `name` over the entities of exactly `scope`, built once by `build`
        and then carried to each patched copy of this snapshot."""
        key = (_exact_key(scope), name)
        index = self._entity_indexes.get(key)
        if index is None:
            index = self._entity_indexes[key] = build(self.exact(scope))
        return index

    def patched(self, plan: WritePlan, scope: Scope) -> ScopeGraph | None:
        """This graph with `plan` applied, or None when the plan changes nothing in it.
        Its cost grows with what the plan changed, not with the scope's size (except when
        an entity is deleted or renamed: then one pass over the edges)."""
        entities = {e.id: e for e in plan.entities if scope.contains(e.model_dump())}
        edges = [e for e in plan.edges if scope.contains(e.model_dump())]
        support = {c.edge_id: c.memory_ids for c in plan.support if c.edge_id in self.edge_by_id}
        ended = {i.edge_id for i in plan.invalidations} | set(plan.delete_edge_ids)
        ended = {i for i in ended if i in self.edge_by_id}
        dropped = {i for i in plan.delete_entity_ids if i in self.entity_by_id}
        if not (entities or edges or support or ended or dropped):
            return None
        merged = self.entity_by_id.update(entities)
        with merged.mutate() as change:
            for entity_id in dropped:
                change.pop(entity_id, None)
            merged = change.finish()
        renamed = {i for i, e in entities.items()
                   if i in self.entity_by_id and self.entity_by_id[i].name != e.name}
        edge_by_id, gone, worded = self._patched_edges(edges, support, ended, dropped,
                                                       renamed, merged)
        fresh = ScopeGraph(merged, edge_by_id)
        for (exact, name), index in self._entity_indexes.items():
            changed = [e for e in entities.values() if _exact_key(e) == exact]
            left = {i for i in dropped if _exact_key(self.entity_by_id[i]) == exact}
            fresh._entity_indexes[(exact, name)] = (
                index.patched(changed, left) if changed or left else index)
        if self._ends is not None and not dropped:
            fresh._ends = self._patched_ends(ended, edges)
        if "bm25" in self.__dict__:  # built by a search: carried, not built again
            fresh.__dict__["bm25"] = self.bm25.patched(
                [(i, fresh.text(fresh.edge_by_id[i])) for i in worded], gone)
        self._carry_search_views(fresh, entities, dropped, edges, gone)
        return fresh

    def _patched_edges(self, edges: list[EdgeRecord], support: dict[str, list[str]],
                       ended: set[str], dropped: set[str], renamed: set[str],
                       entities: Map[str, EntityRecord]
                       ) -> tuple[Map[str, EdgeRecord], set[str], set[str]]:
        """The edge map with a plan applied, the edges that left it, and those whose
        sentence is new (added, or an end renamed)."""
        gone = set(ended)
        worded = {e.id for e in edges}
        with self.edge_by_id.mutate() as kept:
            for edge_id in ended:
                kept.pop(edge_id)
            for edge in edges:
                kept[edge.id] = edge
            if dropped or renamed:  # rare (a delete, a learned name): one pass over edges
                for edge in [*self.edge_by_id.values(), *edges]:
                    if edge.id in ended:
                        continue
                    if edge.source_id in dropped or edge.target_id in dropped:
                        kept.pop(edge.id, None)
                        gone.add(edge.id)
                        worded.discard(edge.id)
                    elif edge.source_id in renamed or edge.target_id in renamed:
                        worded.add(edge.id)
                        source, target = entities.get(edge.source_id), entities.get(
                            edge.target_id)
                        kept[edge.id] = edge.model_copy(update={
                            "source_name": source.name if source else edge.source_name,
                            "target_name": target.name if target else edge.target_name})
            for edge_id, memory_ids in support.items():
                current = kept.get(edge_id)
                if current is not None:
                    kept[edge_id] = current.model_copy(update={"memory_ids": memory_ids})
            return kept.finish(), gone, worded

    def _patched_ends(self, ended: set[str], added: list[EdgeRecord]
                      ) -> tuple[Map[tuple[str, str], tuple[str, ...]], ...]:
        """`edges_at`'s two indexes with edges ended and added (work per changed edge)."""
        by_relation, by_target = self._ends or (Map(), Map())
        for edge_id in ended:
            edge = self.edge_by_id[edge_id]
            by_relation = _discard(by_relation, (edge.source_id, edge.relation), edge_id)
            by_target = _discard(by_target, (edge.source_id, edge.target_id), edge_id)
        for edge in added:
            if edge.id not in self.edge_by_id:
                by_relation = _append(by_relation, (edge.source_id, edge.relation), edge.id)
                by_target = _append(by_target, (edge.source_id, edge.target_id), edge.id)
        return by_relation, by_target

    def exact(self, scope: Scope) -> list[EntityRecord]:
        """The entities written with exactly this scope's ids."""
        return self._by_exact_scope.get(_exact_key(scope), [])

    @cached_property
    def _by_exact_scope(self) -> dict[tuple[str, str, str], list[EntityRecord]]:
        # An add asks for its exact scope's entities several times; group them once.
        out: dict[tuple[str, str, str], list[EntityRecord]] = {}
        for e in self.entities:
            out.setdefault(_exact_key(e), []).append(e)
        return out

    def text(self, edge: EdgeRecord) -> str:
        """The edge as a sentence, with the ends' current names."""
        return render(edge.source_name, edge.relation, edge.target_name)

    @cached_property
    def bm25(self) -> RelationBM25:
        """BM25 over every active relation's sentence (a patched snapshot derives its
        model from this one's)."""
        return RelationBM25([(e.id, self.text(e)) for e in self.edges])

    @cached_property
    def incident(self) -> Map[str, Map[str, bool]]:
        """Entity id -> the ids of the current edges touching it (as a map's keys)."""
        out: dict[str, dict[str, bool]] = {}
        for e in self.edge_by_id.values():
            out.setdefault(e.source_id, {})[e.id] = True
            out.setdefault(e.target_id, {})[e.id] = True
        return Map({entity_id: Map(edges) for entity_id, edges in out.items()})

    def degree_of(self, entity_id: str) -> int:
        """How many current edges touch an entity."""
        return len(self.incident.get(entity_id, ()))

    def neighbourhood(self, seed_id: str, hops: int) -> dict[str, int]:
        """Current edges within `hops` of an entity: edge id -> fewest hops to reach it
        (breadth first over `incident`; what Kuzu's variable-length match returned, at a
        cost in the edges reached rather than in the paths through a hub)."""
        reach: dict[str, int] = {}
        seen, frontier = {seed_id}, [seed_id]
        for depth in range(1, hops + 1):
            after: list[str] = []
            for node in frontier:
                for edge_id in self.incident.get(node, ()):
                    reach.setdefault(edge_id, depth)
                    edge = self.edge_by_id[edge_id]
                    for end in (edge.source_id, edge.target_id):
                        if end not in seen:
                            seen.add(end)
                            after.append(end)
            frontier = after
        return reach

    @cached_property
    def self_ids(self) -> list[str]:
        """Ids of the scope's own user entities."""
        return sorted(e.id for e in self.entity_by_id.values() if e.key == SELF_KEY)

    @cached_property
    def phrases(self) -> Map[tuple[str, ...], frozenset[str]]:
        """Word tuples of every key and alias -> entity ids (stopword-only names left out;
        for spotting entities named in a query)."""
        out: dict[tuple[str, ...], set[str]] = {}
        for e in self.entity_by_id.values():
            for words in _phrases_of(e):
                out.setdefault(words, set()).add(e.id)
        return Map({words: frozenset(ids) for words, ids in out.items()})

    @cached_property
    def name_vectors(self) -> tuple[list[str], np.ndarray | None]:
        """(entity ids, matrix of their name embeddings)."""
        ids = sorted(e.id for e in self.entity_by_id.values() if e.embedding)
        if not ids:
            return [], None
        return ids, np.vstack([unpack_vector(self.entity_by_id[i].embedding) for i in ids])

    def _carry_search_views(self, fresh: ScopeGraph, entities: dict[str, EntityRecord],
                            dropped: set[str], added: list[EdgeRecord],
                            gone: set[str]) -> None:
        """Give `fresh` the search-side views this snapshot has built, patched with the
        plan's changes rather than rebuilt over the scope (the first search after each
        write would otherwise pay for all of them: 250 ms at 5k entities, 10k edges)."""
        views, carried = self.__dict__, fresh.__dict__
        changed = [*dropped, *entities]
        if "incident" in views:
            carried["incident"] = self._patched_incident(added, gone)
        if "self_ids" in views and all(
                _is_self(self.entity_by_id.get(i))
                == (i not in dropped and _is_self(entities.get(i))) for i in changed):
            carried["self_ids"] = self.self_ids  # the user was touched, not added or gone
        if "phrases" in views:
            carried["phrases"] = self._patched_phrases(entities, dropped)
        if "name_vectors" in views and not any(
                self.entity_by_id.get(i) is not None and (
                    i in dropped or self.entity_by_id[i].embedding != entities[i].embedding)
                for i in changed):  # only new names: their rows are appended
            carried["name_vectors"] = self._appended_name_vectors(entities, dropped)

    def _patched_incident(self, added: list[EdgeRecord], gone: set[str]
                          ) -> Map[str, Map[str, bool]]:
        incident = self.incident.mutate()
        for edge_id in gone:
            edge = self.edge_by_id.get(edge_id)
            if edge is None:  # a new edge the same plan dropped again
                continue
            for end in (edge.source_id, edge.target_id):
                rest = incident.get(end, Map())
                rest = rest.delete(edge_id) if edge_id in rest else rest
                if rest:
                    incident[end] = rest
                else:
                    incident.pop(end, None)
        for edge in added:
            if edge.id not in self.edge_by_id and edge.id not in gone:
                for end in (edge.source_id, edge.target_id):
                    incident[end] = incident.get(end, Map()).set(edge.id, True)
        return incident.finish()

    def _patched_phrases(self, entities: dict[str, EntityRecord], dropped: set[str]
                         ) -> Map[tuple[str, ...], frozenset[str]]:
        phrases = self.phrases.mutate()
        for entity_id in [*dropped, *entities]:
            old = self.entity_by_id.get(entity_id)
            for words in _phrases_of(old) if old is not None else ():
                rest = phrases.get(words, frozenset()) - {entity_id}
                if rest:
                    phrases[words] = rest
                else:
                    phrases.pop(words, None)
        for entity in entities.values():
            if entity.id not in dropped:
                for words in _phrases_of(entity):
                    phrases[words] = phrases.get(words, frozenset()) | {entity.id}
        return phrases.finish()

    def _appended_name_vectors(self, entities: dict[str, EntityRecord], dropped: set[str]
                               ) -> tuple[list[str], np.ndarray | None]:
        ids, matrix = self.name_vectors
        new = sorted(i for i, e in entities.items()
                     if i not in self.entity_by_id and i not in dropped and e.embedding)
        if not new:
            return ids, matrix
        # appended after the sorted rows: nothing needs the order
        rows = np.vstack([unpack_vector(entities[i].embedding) for i in new])
        return [*ids, *new], rows if matrix is None else np.vstack([matrix, rows])


def _is_self(entity: EntityRecord | None) -> bool:
    return entity is not None and entity.key == SELF_KEY


def _phrases_of(entity: EntityRecord) -> set[tuple[str, ...]]:
    """The word tuples a query may name an entity by: its key and aliases, tokenized."""
    out = set()
    for key in {entity.key, *entity.aliases}:
        if key and key != SELF_KEY:
            words = tuple(tokenize(key))
            if words and not all(w in STOPWORDS for w in words):
                out.add(words)
    return out


def _append(index: Map[tuple[str, str], tuple[str, ...]], key: tuple[str, str],
            edge_id: str) -> Map[tuple[str, str], tuple[str, ...]]:
    return index.set(key, (*index.get(key, ()), edge_id))


def _discard(index: Map[tuple[str, str], tuple[str, ...]], key: tuple[str, str],
             edge_id: str) -> Map[tuple[str, str], tuple[str, ...]]:
    rest = tuple(i for i in index.get(key, ()) if i != edge_id)
    if rest:
        return index.set(key, rest)
    return index.delete(key) if key in index else index


def _exact_key(ids: Scope | EntityRecord) -> tuple[str, str, str]:
    return (ids.user_id or "", ids.agent_id or "", ids.run_id or "")


class GraphSnapshots:
    """An LRU of `ScopeGraph`s, invalidated per scope id value on every graph write.

    A write with ids (A, X, R) bumps the counters of user A, agent X and run R; a cached read
    scope is fresh while the counters of its own ids are unchanged. Any write that can change
    what a read scope sees shares that scope's ids, so it always bumps one of them.
    """

    def __init__(self, store: GraphStore, max_scopes: int = 256) -> None:
        self._store = store
        self._max = max_scopes
        self._versions: dict[tuple[str, str], int] = {}
        self._cache: OrderedDict[Scope, tuple[tuple[int, ...], ScopeGraph]] = OrderedDict()
        self._lock = threading.Lock()

    def _stamp(self, scope: Scope) -> tuple[int, ...]:
        return tuple(self._versions.get(item, 0) for item in sorted(scope.ids().items()))

    def get(self, scope: Scope) -> ScopeGraph:
        """The current graph of a read scope."""
        with self._lock:
            stamp = self._stamp(scope)
            cached = self._cache.get(scope)
            if cached is not None and cached[0] == stamp:
                self._cache.move_to_end(scope)
                return cached[1]
        graph = ScopeGraph(self._store.entities(scope), self._store.edges(scope))
        with self._lock:
            if self._stamp(scope) == stamp:
                self._cache[scope] = (stamp, graph)
                self._cache.move_to_end(scope)
                while len(self._cache) > self._max:
                    self._cache.popitem(last=False)
        return graph

    def apply(self, plan: WritePlan, scopes: set[Scope]) -> None:
        """Bring cached graphs up to date after `plan` was applied to Kuzu.

        `scopes` are the exact scopes of the rows the plan wrote; their ids' counters are
        bumped (so a load that raced the write is not cached), and every cached graph the
        plan changes is replaced by its patched copy under the new stamp.
        """
        with self._lock:
            for scope in scopes:
                for item in scope.ids().items():
                    self._versions[item] = self._versions.get(item, 0) + 1
            for cached_scope, (_, graph) in list(self._cache.items()):
                fresh = graph.patched(plan, cached_scope)
                stamp = self._stamp(cached_scope)
                self._cache[cached_scope] = (stamp, fresh if fresh is not None else graph)

    def clear(self) -> None:
        """Forget everything (after `reset`)."""
        with self._lock:
            self._cache.clear()
            self._versions.clear()
