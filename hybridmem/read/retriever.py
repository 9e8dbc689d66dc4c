"""Gathering candidates for one search: nearest memories (in process, or Milvus ANN), BM25
over memory text, the query's entities and their 1-2 hop relations in the scope's cached
graph (loaded from Kuzu), and BM25 over the scope's relation sentences. No LLM call; one
embedding call."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybridmem.config import SearchConfig
from hybridmem.filters import Filter, matches, pushdown
from hybridmem.providers.embed.base import Embedder
from hybridmem.read.lexical_index import LexicalIndex
from hybridmem.read.merger import Candidate, fuse
from hybridmem.read.snapshot import GraphSnapshots, ScopeGraph
from hybridmem.read.vector_index import VectorIndex
from hybridmem.records import EdgeRecord, MemoryRecord
from hybridmem.scope import Scope
from hybridmem.stores.base import VectorStore
from hybridmem.stores.catalog import MemoryCatalog
from hybridmem.text import tokenize

SELF_WORDS = frozenset({"i", "me", "my", "mine", "myself"})
# "I"/"my" name the user in nearly every query to a personal assistant: weak evidence of
# which of the user's facts is asked for, next to a name the query spells out (1.0).
SELF_STRENGTH = 0.5
MAX_SEEDS = 8
HOP_DECAY = {1: 1.0, 2: 0.5}


@dataclass
class Hit:
    """One ranked result: a memory or a relation, with its score and its parts."""

    candidate: Candidate
    text: str
    memory: MemoryRecord | None = None
    edge: EdgeRecord | None = None


class Retriever:
    """Runs one search over the three stores and fuses the signals."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        vectors: VectorStore,
        catalog: MemoryCatalog,
        snapshots: GraphSnapshots,
        config: SearchConfig,
        lexical: LexicalIndex,
        index: VectorIndex | None = None,
    ) -> None:
        self._embedder = embedder
        self._vectors = vectors
        self._catalog = catalog
        self._snapshots = snapshots
        self._index = index
        self._lexical = lexical
        self.config = config

    def search(
        self,
        query: str,
        scope: Scope,
        *,
        limit: int,
        where: Filter | None = None,
        threshold: float | None = None,
        signals: tuple[str, ...] = ("vector", "bm25", "graph"),
    ) -> list[Hit]:
        """The `limit` best hits inside `scope` (fused score >= `threshold` when given).

        `signals` restricts which retrievers run (the benchmarks compare them one by one).
        """
        k = max(limit * self.config.candidate_factor, self.config.min_candidates)
        kept, pool, graph = self.candidates(query, scope, k=k, where=where, signals=signals)
        ranked = fuse(kept, self.config, pool.evidence)
        if threshold is not None:
            ranked = [c for c in ranked if c.score >= threshold]
        ranked = ranked[:limit]
        # records only for what is shown (building one per candidate was ~1/10 of a search)
        records = self._catalog.by_ids(c.id for c in ranked if c.kind == "memory")
        return [
            Hit(c, records[c.id].text, memory=records[c.id]) if c.kind == "memory"
            else Hit(c, graph.text(pool.edges[c.id]), edge=pool.edges[c.id])
            for c in ranked if c.kind == "relation" or c.id in records
        ]

    def candidates(self, query: str, scope: Scope, *, k: int, where: Filter | None = None,
                   signals: tuple[str, ...] = ("vector", "bm25", "graph")):
        """Every visible candidate with its raw signals, before fusion (up to `k` per
        signal). `search` fuses these; `benchmarks/locomo_retrieval.py` fuses them again
        under other settings to fit them.

        Returns (the visible candidates, the pool, the scope graph).
        """
        pool = _Pool()
        # The lexical signals go first: in a fresh process the embedding model is still
        # loading in the background, and they need no vector (fusion does not depend on
        # the order candidates arrive in).
        if "bm25" in signals:
            self._memory_bm25_signal(pool, query, scope, k)
        graph = self._snapshots.get(scope) if ("graph" in signals or "bm25" in signals) else None
        has_edges = graph is not None and len(graph.edge_by_id) > 0
        if has_edges and "bm25" in signals:
            self._relation_bm25_signal(pool, query, graph, k)
        query_vector = (self._embedder.embed([query])[0]
                        if "vector" in signals or "graph" in signals else None)
        if "vector" in signals:
            self._vector_signal(pool, query_vector, scope, k, where)
            self._fill_cosines(pool, query_vector)
        if has_edges and "graph" in signals:
            self._graph_signal(pool, query, query_vector, graph, k)
        return self._visible(pool, scope, where), pool, graph

    # ------------------------------------------------------------ one function per signal

    def _vector_signal(self, pool: _Pool, query_vector: np.ndarray, scope: Scope, k: int,
                       where: Filter | None) -> None:
        """Nearest memories of the scope: raw = cosine. In process over the record's
        vectors (exact, the filter applied exactly), or Milvus ANN with the part of the
        filter Milvus evaluates exactly (the rest is checked in _visible)."""
        if self._index is not None:
            found = self._index.search(query_vector, scope, k, where, background=pool.evidence)
        else:
            extra = 4 if where is not None else 1
            found = self._vectors.search(query_vector[None, :], scope, k * extra,
                                         pushdown(where))[0]
        for memory_id, cosine in found:
            pool.memory(memory_id).raw["vector"] = cosine

    def _memory_bm25_signal(self, pool: _Pool, query: str, scope: Scope, k: int) -> None:
        """BM25 over the scope's current memories (their texts and contexts)."""
        weight = self.config.context_weight
        for memory_id, score in self._lexical.search(query, scope, k, context_weight=weight):
            pool.memory(memory_id).raw["bm25"] = score
        pool.evidence["bm25_ideal"] = self._lexical.ideal(query, scope, context_weight=weight)

    def _fill_cosines(self, pool: _Pool, query_vector: np.ndarray) -> None:
        """Lexical-only candidates get their real cosine too, so fusion compares like with
        like (one primary-key read of the record's vectors, no second search)."""
        missing = [c.id for c in pool.candidates.values()
                   if c.kind == "memory" and "vector" not in c.raw]
        for memory_id, vector in self._catalog.vectors(missing).items():
            pool.candidates[memory_id].raw["vector"] = float(vector @ query_vector)

    def _graph_signal(self, pool: _Pool, query: str, query_vector: np.ndarray | None,
                      graph: ScopeGraph, k: int) -> None:
        """Active edges 1-2 hops from the entities the query names, the `k` with the most
        evidence. Each seed s gives the edges it reaches the evidence `e_s = strength_s *
        decay(hops) * degree_s ** -hub_damping`; an edge's raw graph signal is
        `1 - prod_s (1 - e_s)` (it grows with every seed that reaches it and stays in
        [0, 1]). The hops are walked in the scope's cached graph: two hops from a friend
        pass through the user, who may hold thousands of edges."""
        seeds = spot_entities(query, query_vector, graph, self.config.entity_match_threshold)
        missing: dict[str, float] = {}  # edge id -> prod (1 - e_s)
        for seed, strength in seeds.items():
            specific = max(graph.degree_of(seed), 1) ** -self.config.hub_damping
            for edge_id, hops in graph.neighbourhood(seed, self.config.hops).items():
                evidence = strength * specific * HOP_DECAY.get(hops, 0.0)
                missing[edge_id] = missing.get(edge_id, 1.0) * (1.0 - evidence)
        found = sorted(((rest, edge_id) for edge_id, rest in missing.items() if rest < 1.0))
        for rest, edge_id in found[:k]:
            pool.relation(graph.edge_by_id[edge_id]).raw["graph"] = 1.0 - rest

    def _relation_bm25_signal(self, pool: _Pool, query: str, graph: ScopeGraph,
                              k: int) -> None:
        """BM25 over the natural-language sentences of the scope's relations."""
        ranked = sorted(graph.bm25.scores(query).items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        for edge_id, value in ranked:
            pool.relation(graph.edge_by_id[edge_id]).raw["bm25"] = value

    # ------------------------------------------------------------ assembly

    def _visible(self, pool: _Pool, scope: Scope, where: Filter | None) -> list[Candidate]:
        """Candidates whose memories are current, inside the scope and pass the filter;
        an edge is kept only with a visible memory behind it."""
        rows = self._catalog.current(
            {*(c.id for c in pool.candidates.values() if c.kind == "memory"),
             *(m for e in pool.edges.values() for m in e.memory_ids)}
        )
        visible = {i for i, (ids, metadata) in rows.items()
                   if scope.contains(ids) and matches(where, metadata)}
        # A memory that also states a relation since ended ranks as partly out of date
        # (merger.STALE_WEIGHT). Only a scope with relations can have ended one.
        stale = self._catalog.partly_ended(
            c.id for c in pool.candidates.values()
            if c.kind == "memory" and c.id in visible) if pool.edges else set()
        kept: list[Candidate] = []
        for c in pool.candidates.values():
            if c.kind == "memory":
                if c.id in visible:
                    c.stale = c.id in stale
                    kept.append(c)
            else:
                c.memory_ids = [m for m in pool.edges[c.id].memory_ids if m in visible]
                if c.memory_ids:
                    kept.append(c)
        return kept


class _Pool:
    """The candidates of one search (memories and relations), by id."""

    def __init__(self) -> None:
        self.candidates: dict[str, Candidate] = {}
        self.edges: dict[str, EdgeRecord] = {}
        # per-query facts fusion weighs the signals by (merger.fuse's `evidence`)
        self.evidence: dict[str, float] = {}

    def memory(self, memory_id: str) -> Candidate:
        return self.candidates.setdefault(
            memory_id, Candidate(memory_id, "memory", memory_ids=[memory_id]))

    def relation(self, edge: EdgeRecord) -> Candidate:
        self.edges[edge.id] = edge
        return self.candidates.setdefault(
            edge.id, Candidate(edge.id, "relation", memory_ids=list(edge.memory_ids)))


def spot_entities(
    query: str, query_vector: np.ndarray | None, graph: ScopeGraph, threshold: float
) -> dict[str, float]:
    """Entities a query names: entity id -> strength in (0, 1].

    Self-references ("I", "my") name the scope's user; a run of query words equal to an
    entity's key or alias names that entity (strength 1); an entity name whose embedding
    is close enough to the query's counts with strength = cosine.
    """
    tokens = tokenize(query)
    seeds: dict[str, float] = {}
    if SELF_WORDS.intersection(tokens):
        for entity_id in graph.self_ids:
            seeds[entity_id] = SELF_STRENGTH
    phrases = graph.phrases
    for n in range(1, min(6, len(tokens)) + 1):
        for i in range(len(tokens) - n + 1):
            for entity_id in phrases.get(tuple(tokens[i : i + n]), ()):
                seeds[entity_id] = 1.0
    ids, matrix = graph.name_vectors
    if query_vector is not None and matrix is not None:
        sims = matrix @ query_vector
        for j in np.flatnonzero(sims >= threshold):
            seeds[ids[j]] = max(seeds.get(ids[j], 0.0), float(sims[j]))
    best = sorted(seeds.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_SEEDS]
    return dict(best)
