"""Opening one store: its lock, its record, its two engines, and the check that binds them."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from hybridmem._failpoints import checkpoint
from hybridmem.config import MemoryConfig
from hybridmem.errors import DimensionMismatchError, StoreError
from hybridmem.stores.catalog import MemoryCatalog
from hybridmem.stores.identity import StorePaths, store_paths
from hybridmem.stores.journal import Journal
from hybridmem.stores.kuzu import KuzuGraphStore
from hybridmem.stores.lock import StoreLock
from hybridmem.stores.milvus import MilvusVectorStore
from hybridmem.stores.mirror import GraphMirror
from hybridmem.stores.projection import Projections, Report
from hybridmem.stores.sqlite import Database, read_meta

log = logging.getLogger(__name__)
T = TypeVar("T")


class LazyVectors:
    """The Milvus store, opened on its first use and checked against the record then.

    Reads never need Milvus (searches use the record's vectors, see
    `read/vector_index.py`), so opening a store and answering a search never pays for
    importing pymilvus (~1.4 s here, pandas included) or starting Milvus Lite.
    Attribute access opens it; `opened` tells whether it was.
    """

    def __init__(self, open_store: Callable[[], MilvusVectorStore]) -> None:
        self._open = open_store
        self._store: MilvusVectorStore | None = None
        self._lock = threading.RLock()
        self.on_open: Callable[[], object] | None = None
        self.opened_report: Report | None = None
        self.tried = False  # whether opening was attempted (its files may then be new)

    @property
    def opened(self) -> bool:
        """Whether Milvus was opened."""
        return self._store is not None

    def get(self) -> MilvusVectorStore:
        """The open store (opening and checking it the first time)."""
        with self._lock:
            if self._store is None:
                self.tried = True
                store = self._open()
                self._store = store
                if self.on_open is not None:
                    try:
                        self.opened_report = self.on_open()
                    except BaseException:
                        self._store = None
                        if store.created:  # an empty collection that failed its check
                            _quietly(store.unmake)
                        _quietly(store.close)
                        raise
            return self._store

    def ensure_open(self) -> None:
        """Open (and check) Milvus now."""
        self.get()

    def __getattr__(self, name: str):
        return getattr(self.get(), name)

    def close(self) -> None:
        """Close Milvus if it was opened."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


@dataclass
class Stores:
    """Everything one open store holds."""

    paths: StorePaths
    lock: StoreLock
    db: Database
    catalog: MemoryCatalog
    journal: Journal
    mirror: GraphMirror
    vectors: LazyVectors
    graph: KuzuGraphStore
    projections: Projections
    opened: Report

    def close(self) -> None:
        """Make Milvus durable up to the record, close every engine, release the lock.
        Never raises: each part is closed whatever happened to the others."""
        if self.vectors.opened:
            _quietly(self.projections.flush)
        for part in (self.vectors, self.graph, self.db):
            _quietly(part.close)
        self.lock.release()


def open_stores(config: MemoryConfig, dims: int, *, repair: bool = False) -> Stores:
    """Open a store for `config`, with an embedder of `dims` dimensions.

    Engines that fell behind the record are brought up to date; with `repair`, a record
    that lost writes is rebuilt from the engines (see `stores/projection.py`). An open that
    fails leaves no claim: whatever it created (the record, the graph, a collection, the
    lock file, folders) is removed again, so another configuration can use the place;
    what existed before stays as it was.

    Raises:
        ConfigError: the config names a store whose files belong to another one.
        StoreLockedError: another Memory holds this store.
        StoreError: a file is damaged or an engine cannot be opened (the message names it
            and the command that repairs it).
    """
    paths = store_paths(config)
    new = _NewFiles.before(paths)
    lock = StoreLock(paths.lock, paths.catalog.parent)
    opened: list[Any] = []
    moved: list[str] = []
    vectors: LazyVectors | None = None
    try:
        if _adopt_legacy_record(paths):
            new.record = []  # moved here, not made: a failure below must not remove it
        lite_collection = (Path(paths.milvus_uri) / "collections" / config.vector_store
                           .collection_name) if paths.milvus_lite else None
        vectors = LazyVectors(lambda: _open(
            lambda: MilvusVectorStore(config.vector_store, paths.milvus_uri,
                                      lite=paths.milvus_lite, dims=dims),
            repair and lite_collection is not None, moved, paths.data_dir,
            [lite_collection] if lite_collection else []))
        opened.append(vectors)
        if not paths.milvus_lite:  # a server is reached first: an unreachable one then
            vectors.get()          # fails before anything is written (it is checked below)
        db = _open(lambda: _probed(Database(paths.catalog), repair), repair, moved,
                   paths.data_dir, [paths.catalog, *_sidecars(paths.catalog)])
        opened.insert(0, db)
        _unclaim_if_never_opened(db)
        graph = _open(lambda: KuzuGraphStore(paths.graph), repair, moved, paths.data_dir,
                      [paths.graph, paths.graph.with_name(paths.graph.name + ".wal")])
        opened.append(graph)
        _check_dims(db, dims, paths)
        catalog, journal, mirror = MemoryCatalog(db), Journal(db), GraphMirror(db)
        projections = Projections(paths=paths, db=db, journal=journal, catalog=catalog,
                                  mirror=mirror, vectors=vectors, graph=graph)
        report = projections.check_at_open(rebuild_record=repair)
        if vectors.opened and not repair:  # the open check needed Milvus: check it now
            report.found.update(projections.check_vectors().found)
        vectors.on_open = projections.check_vectors
        if (lite_collection is not None and not vectors.opened and lite_collection.exists()
                and catalog.count() == 0 and journal.epoch() == 0):
            # A new record beside a collection that exists: whose it is is checked now
            # (Milvus is opened lazily otherwise), so a configuration sharing another
            # store's collection is refused at open, before it writes anything.
            vectors.get()
        if repair:
            report.found.update(projections.repair().found)
        report.add("files_moved_aside", len(moved), *(
            [f"moved damaged files aside: {', '.join(moved)}"] if moved else []))
        checkpoint("open.checked")
        _confirm(db, paths)
    except BaseException:
        if vectors is not None and vectors.opened and vectors.created:
            _quietly(vectors.unmake)
        for part in reversed(opened):
            _quietly(part.close)
        # Before the lock goes, so no other opener of this store can be using them.
        new.remove_files(graph=any(isinstance(p, KuzuGraphStore) for p in opened),
                         lite=vectors is not None and vectors.tried)
        lock.release(remove=new.lock_file)
        new.remove_folders()
        raise
    return Stores(paths=paths, lock=lock, db=db, catalog=catalog, journal=journal,
                  mirror=mirror, vectors=vectors, graph=graph, projections=projections,
                  opened=report)


# Set in a record its open created, deleted when that open succeeds: a record that still
# has it was left by an open that died (killed, power cut) before it could clean up.
_NEVER_OPENED = "never_opened"


def _unclaim_if_never_opened(db: Database) -> None:
    """A record no open ever finished, holding nothing, binds no configuration: its
    identity and vector size are forgotten and this open's are recorded. Its store id
    stays, since a graph or collection that open made is marked with it."""
    if db.created:
        db.set_meta({_NEVER_OPENED: "1"})
    elif db.get_meta(_NEVER_OPENED) is not None and db.holds_nothing():
        db.delete_meta("identity", "dims")


def _confirm(db: Database, paths: StorePaths) -> None:
    """The open succeeded: the record is this store's, its identity in today's form."""
    if db.get_meta(_NEVER_OPENED) is not None:
        db.delete_meta(_NEVER_OPENED)
    if db.get_meta("identity") != paths.identity.to_json():  # recorded in the legacy form
        db.set_meta({"identity": paths.identity.to_json()})


def _adopt_legacy_record(paths: StorePaths) -> bool:
    """Move this store's record from where every record used to be kept
    (`<data_dir>/<collection>.sqlite`) to its place beside the graph; returns whether it
    did. One rename (on another file system: a copy, fsynced, renamed into place, then
    the old file removed). A record there of another store is left alone.

    Raises:
        StoreLockedError: an older hybridmem has the record open there.
        StoreError: it could not be moved (nothing was lost: it stays where it was).
    """
    old = paths.legacy_catalog
    if old is None or paths.catalog.exists() or not old.is_file():
        return False
    ours = {paths.identity.to_json(),
            *([paths.legacy_identity.to_json()] if paths.legacy_identity else [])}
    if read_meta(old, "identity") not in ours:
        return False
    old_lock = StoreLock(old.with_name(old.name + ".lock"), paths.data_dir)
    try:
        Database(old).close()  # checkpoints the WAL: the main file then holds everything
        if any(f.exists() and f.stat().st_size for f in _sidecars(old)):
            raise StoreError(f"cannot move the catalog {old} to {paths.catalog}: its WAL "
                             "could not be checkpointed; it stays where it is")
        try:
            _move_file(old, paths.catalog)
        except OSError as exc:
            raise StoreError(f"cannot move the catalog {old} to {paths.catalog}: "
                             f"{exc.strerror or exc}; it stays where it is") from exc
        for sidecar in _sidecars(old):
            sidecar.unlink(missing_ok=True)
    finally:
        old_lock.release(remove=True)
    log.warning("moved the catalog %s beside its graph: %s (a store's catalog is named "
                "after its graph now)", old, paths.catalog)
    return True


def _move_file(source: Path, target: Path) -> None:
    """Move a closed file so that the target is either absent or whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        partial = target.with_name(target.name + ".moving")
        shutil.copyfile(source, partial)
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
        os.rename(partial, target)
        source.unlink()
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)


@dataclass
class _NewFiles:
    """The files and folders of a store that did not exist before an open."""

    record: list[Path]
    graph: list[Path]
    lite_dir: Path | None
    lock_file: bool
    folders: list[Path]  # deepest first

    @classmethod
    def before(cls, paths: StorePaths) -> _NewFiles:
        """Note which of the store's places are missing now."""
        lite = Path(paths.milvus_uri) if paths.milvus_lite else None
        folders: set[Path] = set()
        for leaf in {paths.lock.parent, paths.catalog.parent, paths.graph.parent,
                     *([lite.parent] if lite else [])}:
            for folder in (leaf, *leaf.parents):
                if folder.exists():
                    break
                folders.add(folder)
        graph = [paths.graph, *(paths.graph.with_name(paths.graph.name + suffix)
                                for suffix in (".wal", ".shadow"))]
        return cls(
            record=[p for p in (paths.catalog, *_sidecars(paths.catalog)) if not p.exists()],
            graph=[p for p in graph if not p.exists()],
            lite_dir=lite if lite is not None and not lite.exists() else None,
            lock_file=not paths.lock.exists(),
            folders=sorted(folders, key=lambda f: len(f.parts), reverse=True),
        )

    def remove_files(self, *, graph: bool, lite: bool) -> None:
        """Delete the files the failed open created: the record (its lock is held), and
        the graph and Lite directory only if this open had them open (else a process of
        another store sharing them may have made them meanwhile)."""
        for path in [*self.record, *(self.graph if graph else [])]:
            with contextlib.suppress(OSError):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        if lite and self.lite_dir is not None:
            shutil.rmtree(self.lite_dir, ignore_errors=True)

    def remove_folders(self) -> None:
        """Delete the folders the failed open created, if nothing else is in them now."""
        for folder in self.folders:
            with contextlib.suppress(OSError):  # not empty: something else is in it now
                folder.rmdir()


def _open(open_part: Callable[[], T], repair: bool, moved: list[str], data_dir: Path,
          files: list[Path]) -> T:
    """Open one part; with `repair`, a part that fails to open has its files moved aside
    (never deleted) and is opened again, empty, to be rebuilt."""
    try:
        return open_part()
    except StoreError:
        if not repair or not any(f.exists() for f in files):
            raise
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = data_dir / "damaged" / stamp
    aside.mkdir(parents=True, exist_ok=True)
    for path in files:
        if path.exists():
            target = aside / path.name
            shutil.move(str(path), str(target))
            moved.append(str(target))
            log.warning("moved the damaged %s to %s", path, target)
    return open_part()


def _probed(db: Database, repair: bool) -> Database:
    """With `repair`, read every page of the record once, so a damaged file is found now
    (and moved aside) rather than at some later read."""
    if repair:
        try:
            problems = db.damage()
            if problems:
                raise StoreError(f"the catalog {db.path} is damaged: {problems}")
        except StoreError:
            db.close()
            raise
    return db


def _check_dims(db: Database, dims: int, paths: StorePaths) -> None:
    """The record keeps vectors of one size; an embedder of another is refused at open."""
    kept = db.get_meta("dims")
    if kept is None:
        db.set_meta({"dims": dims})
    elif int(kept) != dims:
        raise DimensionMismatchError(
            f"the store {paths.identity.describe()} keeps {kept}-d vectors but the embedder "
            f"makes {dims}-d vectors; use the same embedder, or another collection_name for "
            "a new store"
        )


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]


def _quietly(fn) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - closing goes on with the other parts
        log.warning("while closing: %s", exc)
