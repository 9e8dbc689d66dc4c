"""A store's identity, and where its files live.

A store IS its configuration: the Milvus target (a Lite directory, or a server URL and
database) with a collection name, and the Kuzu graph path. Everything it keeps on the side
belongs to that identity. The SQLite record sits beside the graph and is named after it
(`x.kuzu` -> `x.sqlite`; `history_db_path` names it outright): by default the graph is
`<data_dir>/<collection>.kuzu`, so the record is `<data_dir>/<collection>.sqlite`, and a
store configured with its own `graph_store.db` keeps its record there, whatever the data
dir. A graph serves one store only (it carries the owner's id), so neither does its record.
The record notes the identity it was created for and refuses to serve another. Paths in the
identity are relative to the record's folder when inside it, so that folder can be moved
or restored elsewhere as a whole.

Before records followed their graph, every record was `<data_dir>/<collection>.sqlite`,
which two stores with their own graphs and the same collection name shared (the second was
refused). `StorePaths.legacy_catalog` names that place, where `stores/opened.py` finds such
a record and moves it beside its graph.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hybridmem.config import MemoryConfig
from hybridmem.errors import ConfigError

_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")


@dataclass(frozen=True)
class StoreIdentity:
    """What makes two configurations the same store."""

    vector: str  # "lite:<path>" or "<server url>/<db_name>"
    collection: str
    graph: str  # the Kuzu database path

    def to_json(self) -> str:
        """A canonical JSON form (recorded in the catalog)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StoreIdentity:
        """The inverse of `to_json`."""
        return cls(**json.loads(text))

    def describe(self) -> str:
        """For error messages: "collection 'x' in lite:milvus.db, graph x.kuzu"."""
        return f"collection {self.collection!r} in {self.vector}, graph {self.graph}"


@dataclass(frozen=True)
class StorePaths:
    """Where one store's parts live, resolved from a config."""

    identity: StoreIdentity
    data_dir: Path
    catalog: Path
    lock: Path
    graph: Path
    milvus_uri: str
    milvus_lite: bool
    # The setting that names the record's file, for messages: "collection_name" (the
    # default graph is named after it), "graph_store.db" or "history_db_path".
    catalog_setting: str = "collection_name"
    # Where the record was kept before it followed its graph, when that is elsewhere.
    legacy_catalog: Path | None = None
    # The identity as recorded then (paths relative to the data dir), when it differs.
    legacy_identity: StoreIdentity | None = None


def store_paths(config: MemoryConfig) -> StorePaths:
    """Resolve a config to its store's identity and file locations.

    Raises:
        ConfigError: the data dir path is unusable (e.g. it names a file).
    """
    data_dir = config.resolved_data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"data_dir {data_dir} exists and is not a directory")
    collection = config.vector_store.collection_name
    url = config.vector_store.url
    lite_dir: Path | None = None
    if url and url.startswith(_SERVER_SCHEMES):
        milvus_uri, lite = url, False
    else:
        lite_dir = Path(url).expanduser().resolve() if url else data_dir / "milvus.db"
        milvus_uri, lite = str(lite_dir), True
    graph = (Path(config.graph_store.db).expanduser().resolve() if config.graph_store.db
             else data_dir / f"{collection}.kuzu")
    legacy = data_dir / f"{collection}.sqlite"
    if config.history_db_path:
        catalog, setting = Path(config.history_db_path).expanduser().resolve(), "history_db_path"
    else:
        catalog = (graph.with_suffix(".sqlite") if graph.suffix == ".kuzu"
                   else graph.with_name(graph.name + ".sqlite"))
        setting = "graph_store.db" if config.graph_store.db else "collection_name"

    def identity_from(base: Path) -> StoreIdentity:
        vector = (f"lite:{_relative(lite_dir, base)}" if lite_dir is not None
                  else f"{url.rstrip('/')}/{config.vector_store.db_name or 'default'}")
        return StoreIdentity(vector=vector, collection=collection,
                             graph=_relative(graph, base))

    identity, legacy_identity = identity_from(catalog.parent), identity_from(data_dir)
    return StorePaths(
        identity=identity, data_dir=data_dir, catalog=catalog,
        lock=catalog.with_name(catalog.name + ".lock"), graph=graph, milvus_uri=milvus_uri,
        milvus_lite=lite, catalog_setting=setting,
        legacy_catalog=None if config.history_db_path or legacy == catalog else legacy,
        legacy_identity=None if legacy_identity == identity else legacy_identity,
    )


def store_exists(paths: StorePaths) -> bool:
    """Whether any part of this store is on disk: its record (where it is kept, or where
    an older hybridmem kept it), or an engine a lost record is rebuilt from (`hybridmem
    repair`). A config that names no store has none of them (a mistyped data dir), and
    commands that only read refuse it rather than create one."""
    if paths.catalog.exists() or paths.graph.exists():
        return True
    if paths.legacy_catalog is not None and paths.legacy_catalog.exists():
        return True
    return paths.milvus_lite and (
        Path(paths.milvus_uri) / "collections" / paths.identity.collection).exists()


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
