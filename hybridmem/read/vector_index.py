"""Exact vector search over a scope's memories, in process, from the record's vectors.

On the embedded default Milvus Lite is a pure-Python engine in this same process: it
scans a partition row by row and goes through a gRPC round trip per search (measured:
229 ms at 100k memories per user where a numpy top-k over the same vectors takes 5.9 ms).
So searches read the vectors the record keeps: each searched scope's matrix is loaded once
from SQLite, kept current by every applied plan, and evicted least-recently-used beyond a
memory budget. Milvus Lite stays the durable vector projection; a Milvus server is
searched directly (see `Retriever`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from typing import Any

import numpy as np

from hybridmem.filters import Filter, matches
from hybridmem.read.scope_cache import (
    TRIM_AFTER_ROWS,
    CachedScopes,
    ScopeCache,
    release_free_memory,
)
from hybridmem.records import MemoryRecord, WritePlan, metadata_json, unpack_vector
from hybridmem.scope import SCOPE_FIELDS, Scope

# Spare rows allocated with a loaded scope's matrix, as a fraction of its rows.
SPARE_ROWS = 0.125


class _Codes:
    """Each row's value as a small integer, so a test on the value runs once per distinct
    value and reaches the rows through one numpy gather."""

    def __init__(self, keys: list[Any], capacity: int) -> None:
        self.code_of: dict[Any, int] = {}
        self.keys: list[Any] = []
        self.of_row = np.zeros(capacity, np.int32)
        for i, key in enumerate(keys):
            self.set(i, key)

    def set(self, row: int, key: Any) -> None:
        code = self.code_of.get(key)
        if code is None:
            code = self.code_of[key] = len(self.keys)
            self.keys.append(key)
        self.of_row[row] = code

    def grown(self, capacity: int) -> None:
        codes = np.zeros(capacity, np.int32)
        codes[: len(self.of_row)] = self.of_row
        self.of_row = codes


@dataclass
class _ScopeVectors:
    """One read scope's memories: ids, vectors (rows of a growable matrix), and each row's
    own scope ids and metadata as codes."""

    ids: list[str]
    matrix: np.ndarray  # capacity >= len(ids); rows past len(ids) are unused
    metadata: InitVar[list[str]]  # each row's metadata as the record stores it (JSON)
    exact: InitVar[list[tuple[str, str, str]]]  # each row's own scope ids
    row: dict[str, int] = field(default_factory=dict)
    # "written in exactly this scope" is one numpy comparison (an add asks it for every
    # new fact: near duplicates); a metadata filter is evaluated once per distinct
    # metadata (a Python pass over 100k rows' metadata was most of a filtered search)
    scopes: _Codes = field(init=False)
    metadatas: _Codes = field(init=False)
    _parsed: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self, metadata: list[str], exact: list[tuple[str, str, str]]) -> None:
        self.row = {memory_id: i for i, memory_id in enumerate(self.ids)}
        self.scopes = _Codes(exact, len(self.matrix))
        self.metadatas = _Codes(metadata, len(self.matrix))

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes

    def upsert(self, record: MemoryRecord, vector: np.ndarray) -> None:
        i = self.row.get(record.id)
        if i is None:
            i = len(self.ids)
            if i == len(self.matrix):  # grow by half again, amortised O(1) appends
                grown = np.zeros((max(16, i + i // 2), self.matrix.shape[1]), np.float32)
                grown[:i] = self.matrix[:i]
                self.matrix = grown
                self.scopes.grown(len(grown))
                self.metadatas.grown(len(grown))
            self.ids.append(record.id)
            self.scopes.set(i, (record.user_id, record.agent_id, record.run_id))
            self.row[record.id] = i
        self.metadatas.set(i, metadata_json(record.metadata))
        self.matrix[i] = vector

    def remove(self, memory_id: str) -> None:
        i = self.row.pop(memory_id, None)
        if i is None:
            return
        last = len(self.ids) - 1
        if i != last:  # move the last row into the hole
            self.ids[i] = self.ids[last]
            self.matrix[i] = self.matrix[last]
            for codes in (self.scopes, self.metadatas):
                codes.of_row[i] = codes.of_row[last]
            self.row[self.ids[i]] = i
        self.ids.pop()

    def passing(self, where: Filter) -> np.ndarray:
        """Which rows' metadata pass the filter."""
        keys = self.metadatas.keys
        for code in range(len(self._parsed), len(keys)):  # new distinct metadata only
            self._parsed[code] = json.loads(keys[code])
        verdict = np.fromiter((matches(where, self._parsed[c]) for c in range(len(keys))),
                              bool, len(keys))
        return verdict[self.metadatas.of_row[: len(self.ids)]]


class VectorIndex(CachedScopes[_ScopeVectors]):
    """Per-scope exact cosine top-k, loaded from the record and patched by each plan."""

    def __init__(self, load: Callable[[Scope, float], tuple[list[str], np.ndarray,
                                                            list[str],
                                                            list[tuple[str, str, str]]]],
                 dims: int, budget_bytes: int) -> None:
        self._load = load
        self._dims = dims
        self._cache: ScopeCache[_ScopeVectors] = ScopeCache(self._loaded, budget_bytes)

    def search(self, query: np.ndarray, scope: Scope, limit: int, where: Filter | None = None,
               *, exact: bool = False, background: dict[str, float] | None = None
               ) -> list[tuple[str, float]]:
        """The `limit` most similar memories of a read scope: (id, cosine), best first.
        `where` filters on metadata; `exact` keeps only rows written with exactly these
        scope ids. `background`, when given, receives the mean and standard deviation
        of the query's cosine over every memory searched (`vector_mean`, `vector_std`):
        how similar a memory of this scope is to the query by chance."""
        with self._cache.lock:
            vectors = self._cache.get(scope)
            n = len(vectors.ids)
            if n == 0 or limit <= 0:
                return []
            scores = vectors.matrix[:n] @ np.asarray(query, dtype=np.float32)
            keep = vectors.passing(where) if where is not None else None
            if exact:
                row = scope.as_row()
                code = vectors.scopes.code_of.get(
                    (row["user_id"], row["agent_id"], row["run_id"]))
                mask = vectors.scopes.of_row[:n] == (-1 if code is None else code)
                keep = mask if keep is None else keep & mask
            if background is not None:
                searched = scores if keep is None else scores[keep]
                if len(searched):
                    # float64: float32's own rounding gave 1,000 equal cosines a std of
                    # 6e-8, and each a z of +-1 from noise alone
                    background["vector_mean"] = float(searched.mean(dtype=np.float64))
                    background["vector_std"] = float(searched.std(dtype=np.float64))
            if keep is not None:
                scores = np.where(keep, scores, -np.inf)
            k = min(limit, n)
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(vectors.ids[i], float(scores[i])) for i in top if scores[i] > -np.inf]

    def search_exact(self, queries: np.ndarray, scope: Scope, limit: int
                     ) -> list[list[tuple[str, float]]]:
        """`search(q, scope, limit, exact=True)` for each row of `queries`, as one matrix
        product per chunk of queries: an add asks it for every new fact (near
        duplicates), and one call per fact cost 0.8 ms each, most of a bulk add's time
        beside the embedder (2,404 facts of 1,000 LoCoMo turns: 1.96 s)."""
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self._dims)
        with self._cache.lock:
            vectors = self._cache.get(scope)
            n = len(vectors.ids)
            if n == 0 or limit <= 0:
                return [[] for _ in range(len(queries))]
            row = scope.as_row()
            code = vectors.scopes.code_of.get((row["user_id"], row["agent_id"], row["run_id"]))
            keep = vectors.scopes.of_row[:n] == (-1 if code is None else code)
            if not keep.any():
                return [[] for _ in range(len(queries))]
            drop = ~keep if not keep.all() else None
            k = min(limit, n)
            out: list[list[tuple[str, float]]] = []
            # ~16 MB of scores per product, whatever the scope's size
            step = max(1, (4 << 20) // n)
            for start in range(0, len(queries), step):
                scores = queries[start : start + step] @ vectors.matrix[:n].T
                if drop is not None:
                    scores[:, drop] = -np.inf
                top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
                for q, picked in enumerate(top):
                    picked = picked[np.argsort(-scores[q, picked], kind="stable")]
                    out.append([(vectors.ids[i], float(scores[q, i])) for i in picked
                                if scores[q, i] > -np.inf])
            return out

    def _loaded(self, scope: Scope) -> _ScopeVectors:
        # 1/8 spare rows: the first adds after a load go into them instead of copying the
        # whole matrix to grow it by half (a 150 MiB matrix at 100k memories, copied to
        # 225 MiB by the first add).
        ids, matrix, metadata, exact = self._load(scope, SPARE_ROWS)
        vectors = _ScopeVectors(ids=ids, matrix=matrix.reshape(-1, self._dims),
                                metadata=metadata, exact=exact)
        if len(ids) >= TRIM_AFTER_ROWS:
            release_free_memory()
        return vectors

    def apply(self, plan: WritePlan) -> None:
        """Bring the cached scopes up to date with an applied plan."""
        def patch(scope: Scope, vectors: _ScopeVectors) -> None:
            for memory_id in plan.delete_memory_ids:
                vectors.remove(memory_id)
            for write in plan.memories:
                if scope.contains(write.record.model_dump(include=set(SCOPE_FIELDS))):
                    vectors.upsert(write.record, unpack_vector(write.vector))

        self._cache.apply(plan, patch)
