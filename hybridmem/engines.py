"""The engines behind one `Memory`, typed by what they are, for diagnostics, benchmarks,
notebooks and tests (`memory.engines`).

Reading through them is safe; writing through them bypasses the journal, the record and
the caches, so a store written that way is one `check()` reports as out of step. Not part
of the mem0-compatible surface: names here may change between minor versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from hybridmem.providers.chat import JSONChat
from hybridmem.providers.embed.base import Embedder
from hybridmem.read.lexical_index import LexicalIndex
from hybridmem.read.retriever import Retriever
from hybridmem.read.snapshot import GraphSnapshots
from hybridmem.read.vector_index import VectorIndex
from hybridmem.stores.base import GraphStore, VectorStore
from hybridmem.stores.catalog import MemoryCatalog
from hybridmem.stores.projection import Projections


@dataclass(frozen=True)
class Engines:
    """One open store's parts."""

    #: Milvus (opened on first use).
    vectors: VectorStore
    #: Kuzu: the current graph and its history.
    graph: GraphStore
    #: The SQLite record: memories, their contexts and their vectors.
    catalog: MemoryCatalog
    #: Keeps Milvus and Kuzu in step with the record (`flush()` makes Milvus durable).
    projections: Projections
    #: The read path's per-scope graph cache.
    snapshots: GraphSnapshots
    #: BM25 over the memories of recently searched scopes, in process.
    lexical: LexicalIndex
    #: Exact vector search over recently searched scopes, in process (None when a Milvus
    #: server is searched instead).
    vector_index: VectorIndex | None
    embedder: Embedder
    #: The LLM client (`calls` counts requests), or None on the offline default.
    chat: JSONChat | None
    #: The read path: each signal's candidates (`candidates`), before fusion.
    retriever: Retriever
