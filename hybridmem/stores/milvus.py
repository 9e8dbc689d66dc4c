"""The vector store on `pymilvus.MilvusClient`: a Milvus Lite directory by default, a Milvus
server / Zilliz Cloud when a `url` is configured. The only module that writes Milvus filter
expressions; every value in one is a JSON-escaped literal, never pasted text.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from hybridmem.config import VectorStoreConfig
from hybridmem.errors import DimensionMismatchError, StoreError, StoreLockedError
from hybridmem.filters import And, Condition, Filter, Not, Or
from hybridmem.records import MemoryRecord
from hybridmem.scope import Scope

log = logging.getLogger(__name__)

# Rows are spread over this many partitions by a hash of their user (else agent, else run)
# id; a search that names a user_id scans one partition. Milvus Lite's search cost grows
# with the rows it scans whatever the filter keeps (measured: a 1k-memory user among 19k
# rows, 11 ms over the whole collection, 3.4 ms over its partition).
PARTITIONS = 64
MAX_ID_BYTES = 2048  # scope ids are at most 512 characters, 4 bytes each in UTF-8
MAX_TEXT_BYTES = 65_535
_FIELDS = {"id", "vector", "user_id", "agent_id", "run_id", "text", "hash", "created_at",
           "updated_at", "metadata"}


class MilvusVectorStore:
    """Memories' vectors with their scope ids, text, hash, timestamps and metadata."""

    def __init__(self, config: VectorStoreConfig, data_dir: Path, dims: int) -> None:
        from pymilvus import MilvusClient

        self.config = config
        self.dims = dims
        self.collection = config.collection_name
        self._lite_path: str | None = None
        self._unflushed = 0
        self._lock = threading.Lock()
        url = config.url
        if url is None or not url.startswith(("http://", "https://", "tcp://", "unix:")):
            path = Path(url).expanduser() if url else data_dir / "milvus.db"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lite_path = str(path.resolve())
            uri = self._lite_path
        else:
            uri = url
        kwargs: dict[str, Any] = {"uri": uri}
        if config.token:
            kwargs["token"] = config.token
        if config.db_name and self._lite_path is None:
            kwargs["db_name"] = config.db_name
        try:
            self._client = MilvusClient(**kwargs)
        except Exception as exc:  # noqa: BLE001 - every open failure is named
            if "lock" in str(exc).lower() or "Open local milvus failed" in str(exc):
                raise StoreLockedError(
                    f"Milvus Lite data at {uri} is in use by another process"
                ) from exc
            raise StoreError(f"cannot open Milvus at {uri}: {exc}") from exc
        self._ensure_collection()

    @property
    def is_lite(self) -> bool:
        """Whether this is an embedded Milvus Lite directory."""
        return self._lite_path is not None

    # ------------------------------------------------------------ schema

    def _ensure_collection(self) -> None:
        from pymilvus import DataType

        client = self._client
        if client.has_collection(self.collection):
            info = client.describe_collection(self.collection)
            names = {f["name"] for f in info["fields"]}
            if names != _FIELDS:
                raise StoreError(
                    f"collection {self.collection!r} exists with fields {sorted(names)}, not "
                    "hybridmem's; use another collection_name"
                )
            dim = next(int(f["params"]["dim"]) for f in info["fields"] if f["name"] == "vector")
            if dim != self.dims:
                raise DimensionMismatchError(
                    f"collection {self.collection!r} stores {dim}-d vectors but the embedder "
                    f"makes {self.dims}-d vectors; use the same embedder or another "
                    "collection_name"
                )
        else:
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dims)
            for name in ("user_id", "agent_id", "run_id"):
                schema.add_field(name, DataType.VARCHAR, max_length=MAX_ID_BYTES)
            schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
            schema.add_field("hash", DataType.VARCHAR, max_length=64)
            schema.add_field("created_at", DataType.INT64)
            schema.add_field("updated_at", DataType.INT64)
            schema.add_field("metadata", DataType.JSON)
            index = client.prepare_index_params()
            params = {"M": 16, "efConstruction": 200} if self.config.index_type == "HNSW" else {}
            index.add_index(
                "vector", index_type=self.config.index_type, metric_type="COSINE", params=params
            )
            client.create_collection(self.collection, schema=schema, index_params=index)
        existing = set(client.list_partitions(self.collection))
        for name in (partition_name(i) for i in range(PARTITIONS)):
            if name not in existing:
                client.create_partition(self.collection, name)
        client.load_collection(self.collection)

    # ------------------------------------------------------------ writes

    def upsert(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        """Insert or replace rows by id."""
        if not records:
            return
        groups: dict[str, list[dict[str, Any]]] = {}
        for r, vec in zip(records, vectors, strict=True):
            groups.setdefault(_row_partition(r.user_id, r.agent_id, r.run_id), []).append({
                "id": r.id,
                "vector": [float(x) for x in vec],
                "user_id": r.user_id,
                "agent_id": r.agent_id,
                "run_id": r.run_id,
                "text": _truncate_utf8(r.text, MAX_TEXT_BYTES),
                "hash": r.hash,
                "created_at": _epoch_ms(r.created_at),
                "updated_at": _epoch_ms(r.updated_at or r.created_at),
                "metadata": r.metadata,
            })
        for partition, rows in groups.items():
            self._client.upsert(self.collection, rows, partition_name=partition)
        self._wrote(len(records))

    def delete(self, ids: list[str]) -> None:
        """Delete rows by primary key."""
        if ids:
            self._client.delete(self.collection, ids=list(ids))
            self._wrote(len(ids))

    def delete_scope(self, scope: Scope) -> None:
        """Delete every row inside a read scope."""
        self._client.delete(self.collection, filter=scope_expression(scope))
        self._wrote(1)

    def _wrote(self, n: int) -> None:
        with self._lock:
            self._unflushed += n
            due = self._unflushed >= self.config.flush_every
        if due:
            self.flush()

    def flush(self) -> None:
        """Seal written rows into segments so searches stop brute-forcing them."""
        with self._lock:
            if not self._unflushed:
                return
            self._unflushed = 0
        self._client.flush(self.collection)

    # ------------------------------------------------------------ reads

    def search(
        self, vectors: np.ndarray, scope: Scope, limit: int, where: Filter | None = None
    ) -> list[list[tuple[str, float]]]:
        """Top `limit` (id, cosine similarity) per query vector, inside the scope."""
        if limit <= 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        expr = scope_expression(scope)
        if where is not None:
            expr = f"({expr}) and ({filter_expression(where)})"
        kwargs: dict[str, Any] = {}
        if scope.user_id:
            kwargs["partition_names"] = [_row_partition(scope.user_id, "", "")]
        if not self.is_lite:
            kwargs["consistency_level"] = "Session"
        hits = self._client.search(
            self.collection,
            data=[[float(x) for x in v] for v in vectors],
            limit=min(limit, 16384),
            filter=expr,
            output_fields=["id"],
            search_params={"metric_type": "COSINE", "params": {"ef": max(64, limit)}},
            **kwargs,
        )
        return [[(h["id"], float(h["distance"])) for h in row] for row in hits]

    def count(self, scope: Scope | None = None) -> int:
        """Number of rows (inside a read scope, or in all)."""
        expr = scope_expression(scope) if scope else 'id != ""'
        rows = self._client.query(self.collection, filter=expr, output_fields=["count(*)"],
                                  **self._strong())
        return int(rows[0]["count(*)"]) if rows else 0

    def ids(self, scope: Scope) -> set[str]:
        """Ids of every row inside a read scope (for consistency checks)."""
        rows = self._client.query(self.collection, filter=scope_expression(scope),
                                  output_fields=["id"], limit=16384, **self._strong())
        return {r["id"] for r in rows}

    def _strong(self) -> dict[str, Any]:
        # Counts and consistency checks must see every acknowledged write; on a server the
        # collection's default (Bounded) may not yet. Lite is always consistent.
        return {} if self.is_lite else {"consistency_level": "Strong"}

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id."""
        if not ids:
            return {}
        rows = self._client.get(self.collection, ids=list(ids), output_fields=["id", "vector"])
        return {r["id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}

    # ------------------------------------------------------------ lifecycle

    def drop(self) -> None:
        """Drop the collection and create it empty (for `reset`)."""
        self._client.drop_collection(self.collection)
        self._unflushed = 0
        self._ensure_collection()

    def close(self) -> None:
        """Flush, and stop the embedded server so a reopen finds clean files."""
        try:
            self.flush()
        finally:
            try:
                self._client.close()
            finally:
                if self._lite_path is not None:
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(self._lite_path)


# ---------------------------------------------------------------- expressions


# The escapes both Milvus Lite's and the server's expression parsers read; every other
# character stands for itself inside a double-quoted literal.
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def literal(value: Any) -> str:
    """A Milvus literal for a str/int/float/bool (strings quoted and escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    raise TypeError(f"cannot write {type(value).__name__} into a Milvus filter")


def scope_expression(scope: Scope) -> str:
    """`user_id == "..." and ...` for the ids a scope gives."""
    return " and ".join(f"{field} == {literal(value)}" for field, value in scope.ids().items())


def filter_expression(node: Filter) -> str:
    """Compile a metadata filter to a Milvus JSON-field expression with the same semantics."""
    if isinstance(node, And):
        return " and ".join(f"({filter_expression(c)})" for c in node.children)
    if isinstance(node, Or):
        return " or ".join(f"({filter_expression(c)})" for c in node.children)
    if isinstance(node, Not):
        return f"not ({filter_expression(node.child)})"
    return _condition(node)


def _condition(cond: Condition) -> str:
    field = f"metadata[{literal(cond.key)}]"
    op = cond.op
    if op == "exists":
        return f"exists {field}"
    if op in ("eq", "ne", "gt", "gte", "lt", "lte"):
        sym = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"{field} {sym} {literal(cond.value)}"
    if op == "in":
        return " or ".join(f"{field} == {literal(v)}" for v in cond.value)
    if op == "nin":
        return " and ".join(f"{field} != {literal(v)}" for v in cond.value)
    if op == "contains":
        parts = [f"json_contains({field}, {literal(cond.value)})"]
        if not any(ch in cond.value for ch in "%_\\"):
            parts.append(f"{field} like {literal('%' + cond.value + '%')}")
        return " or ".join(f"({p})" for p in parts)
    raise ValueError(f"operator {op!r} has no exact Milvus form")


def partition_name(index: int) -> str:
    """The name of partition number `index`."""
    return f"scope_{index:02d}"


def _row_partition(user_id: str, agent_id: str, run_id: str) -> str:
    key = f"u:{user_id}" if user_id else (f"a:{agent_id}" if agent_id else f"r:{run_id}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return partition_name(int.from_bytes(digest[:4], "big") % PARTITIONS)


def _truncate_utf8(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


def _epoch_ms(stamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(stamp).timestamp() * 1000)
