"""1k adds, close, reopen: everything is there, and opening rebuilds no index."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridmem import Memory, MemoryConfig


def index_files(data_dir: Path) -> dict[str, float]:
    root = data_dir / "milvus.db"
    return {str(p.relative_to(root)): p.stat().st_mtime_ns
            for p in root.rglob("*") if p.is_file() and "indexes" in p.parts}


@pytest.mark.slow
def test_thousand_adds_close_reopen(tmp_path):
    config = MemoryConfig(data_dir=str(tmp_path), embedder={"provider": "hash"})
    ids = []
    with Memory(config) as memory:
        for i in range(1000):
            user = f"d{i % 5}"
            text = f"My friend P{i} lives in Oslo" if i % 4 == 0 else f"Durable note {i}"
            ids.append(memory.add(text, user_id=user, infer=i % 4 == 0)["results"][0]["id"])
        before = memory.stats()
    files = index_files(tmp_path)
    assert files, "closing should leave the sealed segments' index files on disk"
    with Memory(config) as memory:
        assert memory.recovered == {"finished": 0, "pending": 0}
        assert memory.stats() == before
        assert before["memories"] == 1000 and before["relations"] == 500
        for user in (f"d{k}" for k in range(5)):
            assert len(memory.get_all(user_id=user, limit=1000)["results"]) == 200
        assert memory.get(ids[999])["memory"] == "Durable note 999"
        top = memory.search("Durable note 998", user_id="d3", limit=1)["results"][0]
        assert top["memory"] == "Durable note 998"
        # Opening and searching wrote no index file: nothing was rebuilt.
        assert index_files(tmp_path) == files
