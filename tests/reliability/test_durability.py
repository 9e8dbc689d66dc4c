"""1k adds, close, reopen: everything is there, and opening rebuilds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridmem import Memory, MemoryConfig


def milvus_files(data_dir: Path) -> dict[str, float]:
    root = data_dir / "milvus.db"
    return {str(p.relative_to(root)): p.stat().st_mtime_ns
            for p in root.rglob("*") if p.is_file()}


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
    files = milvus_files(tmp_path)
    assert any(f.endswith(".parquet") for f in files), "closing seals the rows in segments"
    # Searches run in process: the Lite collection keeps no index (a copy of every vector)
    assert not [f for f in files if "indexes" in Path(f).parts or f.endswith(".idx")]
    with Memory(config) as memory:
        assert memory.recovered == {"finished": 0, "pending": 0}
        assert memory.stats() == before
        assert before["memories"] == 1000 and before["relations"] == 500
        for user in (f"d{k}" for k in range(5)):
            assert len(memory.get_all(user_id=user, limit=1000)["results"]) == 200
        assert memory.get(ids[999])["memory"] == "Durable note 999"
        top = memory.search("Durable note 998", user_id="d3", limit=1)["results"][0]
        assert top["memory"] == "Durable note 998"
        # Opening and searching wrote no Milvus file: nothing was rebuilt or rewritten.
        assert milvus_files(tmp_path) == files


# The FTS5 text index of schema versions 2 and 3 (version 3 added the context column).
_FTS_INDEX = {
    2: ["CREATE VIRTUAL TABLE memories_fts USING fts5 (text, scope_tokens, content='memories',"
        " content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')",
        "CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN INSERT INTO memories_fts "
        "(rowid, text, scope_tokens) VALUES (new.rowid, new.text, new.scope_tokens); END",
        "CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN INSERT INTO memories_fts "
        "(memories_fts, rowid, text, scope_tokens) VALUES ('delete', old.rowid, old.text, "
        "old.scope_tokens); END"],
    3: ["CREATE VIRTUAL TABLE memories_fts USING fts5 (text, context, scope_tokens, "
        "content='memories', content_rowid='rowid', "
        "tokenize='porter unicode61 remove_diacritics 2')",
        "CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN INSERT INTO memories_fts "
        "(rowid, text, context, scope_tokens) VALUES (new.rowid, new.text, new.context, "
        "new.scope_tokens); END",
        "CREATE TRIGGER memories_au AFTER UPDATE OF text, context, scope_tokens ON memories "
        "BEGIN INSERT INTO memories_fts (memories_fts, rowid, text, context, scope_tokens) "
        "VALUES ('delete', old.rowid, old.text, old.context, old.scope_tokens); END"],
}


@pytest.mark.parametrize("version", [2, 3, 4])
def test_an_older_record_is_upgraded_in_place(tmp_path, version):
    import sqlite3

    config = {"data_dir": str(tmp_path), "embedder": {"provider": "hash"}}
    with Memory.from_config(config) as memory:
        memory.add("I keep bees in Oslo", user_id="u", infer=False)
    path = next(tmp_path.glob("*.sqlite"))
    conn = sqlite3.connect(path)  # made into what an older hybridmem wrote
    conn.execute("DROP TABLE api_keys")  # version 5 added the keys and idempotency
    conn.execute("DROP INDEX ops_idem")
    for column in ("idem_key", "idem_input", "result"):
        conn.execute(f"ALTER TABLE ops DROP COLUMN {column}")
    if version < 4:
        conn.execute("ALTER TABLE memories ADD COLUMN scope_tokens TEXT NOT NULL DEFAULT 'u1'")
    if version == 2:
        conn.execute("ALTER TABLE memories DROP COLUMN context")
    for statement in _FTS_INDEX.get(version, []):
        conn.execute(statement)
    if version < 4:
        conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('rebuild')")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.commit()
    conn.close()
    with Memory.from_config(config) as memory:
        assert [h["memory"] for h in memory.search(
            "bees", user_id="u", signals=["bm25"])["results"]] == ["I keep bees in Oslo"]
        memory.add("My hive is on the roof", user_id="u", infer=False)
        assert [h["memory"] for h in memory.search(
            "bees", user_id="u", signals=["bm25"])["results"]] == [
            "I keep bees in Oslo", "My hive is on the roof"]  # found by its context too
        assert memory.check()["clean"]
        # version 5: an idempotent add
        first = memory.add("I sell honey", user_id="u", infer=False, idempotency_key="k")
        assert memory.add("I sell honey", user_id="u", infer=False,
                          idempotency_key="k") == first
    conn = sqlite3.connect(path)
    assert conn.execute(
        "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "5"
    assert conn.execute("SELECT count(*) FROM api_keys").fetchone()[0] == 0
    assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%fts%' "
                        "OR sql LIKE '%fts%'").fetchall() == []  # the index and its triggers
    assert "scope_tokens" not in {r[1] for r in conn.execute("PRAGMA table_info(memories)")}
