"""Fusing vector, BM25 and graph signals into one ranked list.

Every candidate (a memory or a relation) carries up to three raw signals:

- `vector`: cosine similarity of the query and the memory (a relation inherits the best
  cosine of the memories that support it);
- `bm25`: BM25 of the query over the hit's text (a memory's text and context over the
  scope's current memories, `read/lexical_index.py`; a relation's sentence over the
  scope's relations, `read/bm25.py`);
- `graph`: how well a relation sits among the entities the query names:
  `sum_s strength_s * decay(hops_s) / sum_s strength_s` over the query's entities s
  (strength 1 for a name/alias match, the cosine for an embedding match; decay 1 at one
  hop, 0.5 at two).

A relation and the memories it came from are one hit (`absorb`): the relation keeps, per
signal, the best normalised value among itself and those memories.

A fixed calibration curve per signal makes them comparable, whatever else the query
found (`SearchConfig`), with two per-query facts the retriever measures (`evidence`):
- `vector_n = max(clip((cos - floor) / (ceiling - floor)), clip((z - z_floor) / z_span))`,
  z = (cos - mean) / std over the cosines of every memory of the scope (the scope's
  background, from the in-process index; without it only the cosine curve): a memory
  standing far out from what this query gets by chance is a strong dense match even when
  all the query's cosines are low, as for a remark sharing no word with the memory it
  depends on;
- `bm25_n = bm25 / (bm25 + half)` (memory text and relation sentences each with their own
  `half`), for a memory times its coverage `min(1, share / coverage)`, and 0 when
  `share < min_coverage`, share = bm25 / ideal, ideal = the BM25 a memory holding every
  query word once would get: a match on a word or two of a long query, common ones as a
  rule, is no evidence; a match on most of a question's words is;
- `graph_n = graph` (already 0..1).
A weak best match stays weak, and a BM25 of 1e-06 in a tiny corpus stays ~0 instead of
becoming the query's "best".

Fusion (configurable, `SearchConfig.fusion`):
- `weighted` (default): `score = sum_k w_k * n_k / sum_k w_k`, in [0, 1];
- `rrf`: `score = sum_k w_k / (rrf_k + rank_k) / sum_k w_k / (rrf_k + 1)`, over the
  signals a hit has (rank_k is its 1-based rank by signal k), also in [0, 1].
A memory that also states a relation since ended (it supports a current relation and an
ended one: "My brother Oskar plays the cello" after "Oskar took up the drums") counts
`STALE_WEIGHT` of its normalised signals, for itself and in what a relation absorbs from
it: the relation that holds now, with the memory that states it, ranks first.
Ties break by the hit's own evidence (its signals before absorbing), then by kind
(relation first), then by id, so the order is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hybridmem.config import SearchConfig

SIGNALS = ("vector", "bm25", "graph")
# What a partly out-of-date memory's signals count (see the module docstring). A quarter:
# at a half, "What instrument does my brother play now?" still ranked "Oskar is u's
# brother" (lent the old memory's cosine) over "Oskar plays drums" (0.175 vs 0.171); at a
# quarter the relation that holds now is first on the four changes of tests/test_local_llm.
STALE_WEIGHT = 0.25


@dataclass
class Candidate:
    """One hit before fusion: raw signals, then normalised values and the fused score."""

    id: str
    kind: Literal["memory", "relation"]
    raw: dict[str, float] = field(default_factory=dict)
    normalized: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    memory_ids: list[str] = field(default_factory=list)
    # The hit's own normalised signals before it absorbed any memory: two relations from
    # one memory share what they absorbed, and their own evidence tells them apart.
    own: dict[str, float] = field(default_factory=dict)
    own_score: float = 0.0
    # A memory that supported a relation since ended (set by the retriever).
    stale: bool = False

    def components(self) -> dict[str, dict[str, float]]:
        """Each signal's raw and normalised value (0 where the hit lacks the signal)."""
        return {
            s: {"raw": round(self.raw.get(s, 0.0), 6),
                "normalized": round(self.normalized.get(s, 0.0), 6)}
            for s in SIGNALS
        }


def normalise(candidates: list[Candidate], config: SearchConfig,
              evidence: dict[str, float] | None = None) -> None:
    """Fill `normalized` by the calibration curves in the module docstring (the
    background and coverage terms only with the `evidence` the retriever measured)."""
    evidence = evidence or {}
    mean, std = evidence.get("vector_mean"), evidence.get("vector_std", 0.0)
    background = (config.vector_calibration == "background" and mean is not None
                  and std > 1e-6)  # cosines all but equal: no background to stand out of
    span = config.vector_ceiling - config.vector_floor
    half = {"memory": config.bm25_half, "relation": config.relation_bm25_half}
    # what a memory holding every query word once would score (0: no coverage term)
    ideal = evidence.get("bm25_ideal", 0.0) if config.bm25_coverage > 0 else 0.0
    for c in candidates:
        c.normalized = {}
        if "vector" in c.raw:
            cosine = c.raw["vector"]
            value = _clip((cosine - config.vector_floor) / span)
            if background:  # close in absolute terms, or standing out from the scope
                z = (cosine - mean) / std
                value = max(value, _clip((z - config.vector_z_floor) / config.vector_z_span))
            c.normalized["vector"] = value
        if "bm25" in c.raw:
            raw = max(c.raw["bm25"], 0.0)
            value = raw / (raw + half[c.kind])
            if ideal > 0 and c.kind == "memory":
                share = raw / ideal
                value *= (0.0 if share < config.bm25_min_coverage
                          else min(share / config.bm25_coverage, 1.0))
            c.normalized["bm25"] = value
        if "graph" in c.raw:
            c.normalized["graph"] = _clip(c.raw["graph"])


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def absorb(candidates: list[Candidate]) -> list[Candidate]:
    """Dedup a relation and the memories it came from: a relation takes, per signal, the
    better of its own value and those of its supporting memories among the candidates,
    and those memories leave the list (the relation lists them in `memory_ids`)."""
    memories = {c.id: c for c in candidates if c.kind == "memory"}
    absorbed: set[str] = set()
    for rel in candidates:
        rel.own = dict(rel.normalized)
        if rel.kind != "relation":
            continue
        for memory_id in rel.memory_ids:
            mem = memories.get(memory_id)
            if mem is None:
                continue
            absorbed.add(memory_id)
            for s, value in mem.normalized.items():
                if value > rel.normalized.get(s, 0.0):
                    rel.normalized[s] = value
                    rel.raw[s] = mem.raw[s]
    return [c for c in candidates if c.id not in absorbed]


def fuse(candidates: list[Candidate], config: SearchConfig,
         evidence: dict[str, float] | None = None) -> list[Candidate]:
    """Normalise, dedup, score and sort candidates (best first). `evidence`: what the
    retriever measured for this query (`bm25_ideal`, `vector_mean`, `vector_std`);
    without it the cosine and BM25 curves apply alone."""
    weights, method, rrf_k = config.weights, config.fusion, config.rrf_k
    normalise(candidates, config, evidence)
    for c in candidates:
        if c.stale:
            c.normalized = {s: v * STALE_WEIGHT for s, v in c.normalized.items()}
    candidates = absorb(candidates)
    total = sum(weights.get(s, 0.0) for s in SIGNALS) or 1.0
    if method == "weighted":
        for c in candidates:
            c.score = sum(weights.get(s, 0.0) * c.normalized.get(s, 0.0) for s in SIGNALS) / total
    else:
        ranks: dict[str, dict[str, int]] = {}
        for s in SIGNALS:
            having = [c for c in candidates if c.normalized.get(s, 0.0) > 0]
            having.sort(key=lambda c, s=s: (-c.normalized[s], _tiebreak(c)))
            ranks[s] = {c.id: i + 1 for i, c in enumerate(having)}
        best = total / (rrf_k + 1)
        for c in candidates:
            c.score = sum(
                weights.get(s, 0.0) / (rrf_k + ranks[s][c.id]) for s in SIGNALS if c.id in ranks[s]
            ) / best
    for c in candidates:
        own = sum(weights.get(s, 0.0) * c.own.get(s, 0.0) for s in SIGNALS)
        c.own_score = own
    candidates.sort(key=lambda c: (-round(c.score, 12), -round(c.own_score, 12), _tiebreak(c)))
    return candidates


def _tiebreak(c: Candidate) -> tuple[int, str]:
    return (0 if c.kind == "relation" else 1, c.id)
