"""Opening one store: its lock, its record, its two engines, and the check that binds them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hybridmem.config import MemoryConfig
from hybridmem.stores.catalog import MemoryCatalog
from hybridmem.stores.identity import StorePaths, store_paths
from hybridmem.stores.journal import Journal
from hybridmem.stores.kuzu import KuzuGraphStore
from hybridmem.stores.lock import StoreLock
from hybridmem.stores.milvus import MilvusVectorStore
from hybridmem.stores.mirror import GraphMirror
from hybridmem.stores.projection import Projections, Report
from hybridmem.stores.sqlite import Database

log = logging.getLogger(__name__)


@dataclass
class Stores:
    """Everything one open store holds."""

    paths: StorePaths
    lock: StoreLock
    db: Database
    catalog: MemoryCatalog
    journal: Journal
    mirror: GraphMirror
    vectors: MilvusVectorStore
    graph: KuzuGraphStore
    projections: Projections
    opened: Report

    def close(self) -> None:
        """Make Milvus durable up to the record, close every engine, release the lock.
        Never raises: each part is closed whatever happened to the others."""
        _quietly(self.projections.flush)
        for part in (self.vectors, self.graph, self.db):
            _quietly(part.close)
        self.lock.release()


def open_stores(config: MemoryConfig, dims: int, *, repair: bool = False) -> Stores:
    """Open a store for `config`, with an embedder of `dims` dimensions.

    Engines that fell behind the record are brought up to date; with `repair`, a record
    that lost writes is rebuilt from the engines (see `stores/projection.py`).

    Raises:
        ConfigError: the config names a store whose files belong to another one.
        StoreLockedError: another Memory holds this store.
        StoreError: a file is damaged or an engine cannot be opened (the message names it
            and the command that repairs it).
    """
    paths = store_paths(config)
    lock = StoreLock(paths.lock, paths.data_dir)
    opened: list[Any] = []
    try:
        db = Database(paths.catalog)
        opened.append(db)
        vectors = MilvusVectorStore(config.vector_store, paths.milvus_uri,
                                    lite=paths.milvus_lite, dims=dims)
        opened.append(vectors)
        graph = KuzuGraphStore(paths.graph)
        opened.append(graph)
        catalog, journal, mirror = MemoryCatalog(db), Journal(db), GraphMirror(db)
        projections = Projections(paths=paths, db=db, journal=journal, catalog=catalog,
                                  mirror=mirror, vectors=vectors, graph=graph)
        report = projections.check_at_open(rebuild_record=repair)
        if repair:
            report.found.update(projections.repair().found)
    except BaseException:
        for part in reversed(opened):
            _quietly(part.close)
        lock.release()
        raise
    return Stores(paths=paths, lock=lock, db=db, catalog=catalog, journal=journal,
                  mirror=mirror, vectors=vectors, graph=graph, projections=projections,
                  opened=report)


def _quietly(fn) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - closing goes on with the other parts
        log.warning("while closing: %s", exc)
