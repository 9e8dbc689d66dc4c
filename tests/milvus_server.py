"""Start a real Milvus standalone server (PyPI `milvus==2.3.5`) on 127.0.0.1 for tests.

Every component listens on loopback; the server ignores SIGTERM, so it is stopped with
SIGKILL (NOTES-engines.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode",
              "dataCoord", "dataNode")


@contextlib.contextmanager
def milvus_server(data_dir: Path) -> Iterator[str]:
    """Yield the server's URL while it runs."""
    from milvus import MilvusServer, MilvusServerConfig

    config = MilvusServerConfig(data_dir=str(data_dir))
    for component in COMPONENTS:
        config.extra_configs[f"{component}.ip"] = "127.0.0.1"
    server = MilvusServer(config)
    server.start()
    try:
        yield f"http://127.0.0.1:{config.configurable_items['proxy_port'][1]}"
    finally:
        server.server_proc.kill()
        server.server_proc.wait(timeout=30)
        server.server_proc = None
