"""A store's identity, and where its files live.

A store IS its configuration: the Milvus target (a Lite directory, or a server URL and
database) with a collection name, and the Kuzu graph path. Everything it keeps on the side
belongs to that identity: the SQLite record is `<data_dir>/<collection>.sqlite` (so two
collections never share one), it records the identity it was created for, and refuses to
serve another. Paths inside the data dir are recorded relative to it, so a data dir can
be moved or restored elsewhere as a whole.
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
    if url and url.startswith(_SERVER_SCHEMES):
        milvus_uri, lite = url, False
        vector = f"{url.rstrip('/')}/{config.vector_store.db_name or 'default'}"
    else:
        lite_dir = Path(url).expanduser().resolve() if url else data_dir / "milvus.db"
        milvus_uri, lite = str(lite_dir), True
        vector = f"lite:{_relative(lite_dir, data_dir)}"
    graph = (Path(config.graph_store.db).expanduser().resolve() if config.graph_store.db
             else data_dir / f"{collection}.kuzu")
    catalog = (Path(config.history_db_path).expanduser().resolve() if config.history_db_path
               else data_dir / f"{collection}.sqlite")
    identity = StoreIdentity(vector=vector, collection=collection,
                             graph=_relative(graph, data_dir))
    return StorePaths(identity=identity, data_dir=data_dir, catalog=catalog,
                      lock=catalog.with_name(catalog.name + ".lock"), graph=graph,
                      milvus_uri=milvus_uri, milvus_lite=lite)


def store_exists(paths: StorePaths) -> bool:
    """Whether any part of this store is on disk: its record, or an engine a lost record
    is rebuilt from (`hybridmem repair`). A config that names no store has none of them
    (a mistyped data dir), and commands that only read refuse it rather than create one."""
    if paths.catalog.exists() or paths.graph.exists():
        return True
    return paths.milvus_lite and (
        Path(paths.milvus_uri) / "collections" / paths.identity.collection).exists()


def _relative(path: Path, data_dir: Path) -> str:
    try:
        return str(path.relative_to(data_dir))
    except ValueError:
        return str(path)
