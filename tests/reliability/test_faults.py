"""The fault matrix: real storage faults under real engines, no mocks.

- ENOSPC: each engine's files (and the whole data dir) on a small tmpfs that fills up;
- EACCES: the Milvus or Kuzu files made read-only under a process without
  CAP_DAC_OVERRIDE (root would ignore the permission bits otherwise);
- damage: each of the SQLite file and its -wal, the Kuzu database and its WAL, the Milvus
  manifest and a data file, deleted / emptied / truncated / scribbled over, after a run
  that was killed (so the write-ahead logs hold data);
- a repair killed part-way, then run again.

Every case runs its writes in a child process and asserts: the child did not crash (no
signal), every acknowledged operation is present with its acknowledged text after reopen
(or after `repair=True` when opening refused with a message naming the damaged file and
the repair command), no deleted memory came back, and `check()` finds the engines equal
to the record.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Where a scribble lands: fixed, so a failure reproduces; set FAULT_SEED to explore others.
SEED = os.environ.get("FAULT_SEED", "")


def _run(*args: str, timeout: float = 600, wrap: list[str] | None = None,
         kill_after: float | None = None) -> tuple[int, dict | None, str]:
    command = [*(wrap or []), sys.executable, "-m", "tests.reliability.fault_worker", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return proc.returncode, (json.loads(lines[-1]) if lines else None), err


def _config(tmp: Path, **parts: str) -> Path:
    raw = {"data_dir": str(tmp / "data"), "embedder": {"provider": "hash"},
           # distinct sentences must stay distinct memories under the hash embedder
           "dedup_threshold": 0.9999, "vector_store": {"provider": "milvus", "config": {
               "flush_every": 16, **({"url": parts["milvus"]} if "milvus" in parts else {})}}}
    if "kuzu" in parts:
        raw["graph_store"] = {"provider": "kuzu", "config": {"db": parts["kuzu"]}}
        # A record follows its graph; this case puts the graph alone on the small disk.
        raw["history_db_path"] = str(tmp / "data" / "hybridmem.sqlite")
    if "sqlite" in parts:
        raw["history_db_path"] = parts["sqlite"]
    if "data" in parts:
        raw["data_dir"] = parts["data"]
    path = tmp / "config.json"
    path.write_text(json.dumps(raw))
    return path


def _assert_consistent(result: dict | None, where: str) -> None:
    assert result is not None and result["opened"], f"{where}: {result}"
    assert result["missing"] == [], f"{where}: acknowledged memories lost"
    assert result["wrong_text"] == [], f"{where}: acknowledged texts changed"
    assert result["deleted_back"] == [], f"{where}: deleted memories came back"
    assert result["check"]["clean"], f"{where}: engines differ from the record: {result['check']}"


def _verify(config: Path, acks: Path, where: str) -> dict:
    """Open; if opening refuses, the message must name a file and the repair, and the
    repair must then bring everything back."""
    code, result, err = _run("verify", str(config), str(acks))
    assert code == 0, f"{where}: verifier crashed ({code}): {err[-2000:]}"
    if result and not result["opened"]:
        assert "/" in result["error"] and "repair" in result["error"], result["error"]
        code, result, err = _run("verify", str(config), str(acks), "--repair")
        assert code == 0, f"{where}: repair crashed ({code}): {err[-2000:]}"
    _assert_consistent(result, where)
    return result


# ---------------------------------------------------------------- ENOSPC


def _mount(point: Path, size: str) -> None:
    point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"\nSKIPPED: cannot mount a tmpfs here ({done.stderr.strip()})")
        pytest.skip(f"the OS forbids mounting a tmpfs: {done.stderr.strip()}")


def _grow(point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=512M", str(point)], check=True)


DISK_FULL = {
    # where the small disk is mounted, its size, which part lives on it
    "milvus": ("milvus.db", "6M"),
    "kuzu": ("graph", "10M"),
    "sqlite": ("catalog", "1M"),
    "everything": ("data", "14M"),
}


@pytest.mark.slow
@pytest.mark.parametrize("part", sorted(DISK_FULL))
def test_disk_full(tmp_path, part):
    folder, size = DISK_FULL[part]
    disk = tmp_path / folder
    _mount(disk, size)
    try:
        config = _config(tmp_path, **{
            "milvus": {"milvus": str(disk / "m.db")},
            "kuzu": {"kuzu": str(disk / "g.kuzu")},
            "sqlite": {"sqlite": str(disk / "c.sqlite")},
            "everything": {"data": str(disk)},
        }[part])
        acks = tmp_path / "acks.jsonl"
        code, result, err = _run("write", str(config), str(acks), "4000")
        assert code == 0, f"writer crashed ({code}): {err[-3000:]}"
        assert result["errors"] > 0, f"the {size} disk never filled up: {result}"
        assert "HybridMemError" not in result["first_error"]
        _grow(disk)
        _verify(config, acks, f"disk full under {part}")
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# ---------------------------------------------------------------- EACCES

DROP_CAPS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner",
             "--inh-caps=-dac_override,-dac_read_search,-fowner"]


@pytest.mark.slow
@pytest.mark.parametrize("part", ["milvus", "kuzu"])
def test_files_become_read_only(tmp_path, part):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    where = tmp_path / "data" / ("milvus.db" if part == "milvus" else "hybridmem.kuzu")
    target = where if part == "milvus" else tmp_path / "data"
    config = _config(tmp_path)
    acks = tmp_path / "acks.jsonl"
    try:
        code, result, err = _run("write", str(config), str(acks), "400", "--then-readonly",
                                 str(target), "40", wrap=DROP_CAPS)
        assert code == 0, f"writer crashed ({code}): {err[-3000:]}"
        assert result["errors"] > 0, f"no write failed after chmod: {result}"
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], check=True)
    _verify(config, acks, f"read-only {part}")


# ---------------------------------------------------------------- damaged files


def _targets(data: Path) -> dict[str, Path | None]:
    manifest = next(data.glob("milvus.db/collections/*/manifest.json"), None)
    parquet = next(data.glob("milvus.db/collections/*/partitions/*/data/*.parquet"), None)
    return {
        "sqlite": data / "hybridmem.sqlite", "sqlite-wal": data / "hybridmem.sqlite-wal",
        "kuzu": data / "hybridmem.kuzu", "kuzu-wal": data / "hybridmem.kuzu.wal",
        "milvus-manifest": manifest, "milvus-data": parquet,
    }


def _damage(path: Path, action: str, rng: random.Random) -> None:
    if action == "delete":
        path.unlink()
    elif action == "empty":
        path.write_bytes(b"")
    elif action == "truncate":
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size // 2)
    else:  # scribble: 512 random bytes in the middle
        with path.open("r+b") as f:
            f.seek(path.stat().st_size // 2)
            f.write(rng.randbytes(512))


@pytest.fixture(scope="module")
def killed_store(tmp_path_factory) -> tuple[Path, Path]:
    """A store written by a process that was then SIGKILLed (its WALs hold data)."""
    tmp = tmp_path_factory.mktemp("killed")
    config = _config(tmp)
    acks = tmp / "acks.jsonl"
    code, _, err = _run("write", str(config), str(acks), "150", "--then-kill")
    assert code == -signal.SIGKILL, err[-2000:]
    return tmp, acks


@pytest.mark.slow
@pytest.mark.parametrize("action", ["delete", "empty", "truncate", "scribble"])
@pytest.mark.parametrize("target", ["sqlite", "sqlite-wal", "kuzu", "kuzu-wal",
                                    "milvus-manifest", "milvus-data"])
def test_damaged_file(tmp_path, killed_store, target, action):
    source, acks = killed_store
    shutil.copytree(source / "data", tmp_path / "data")
    path = _targets(tmp_path / "data")[target]
    if path is None or not path.exists():
        pytest.skip(f"the killed store has no {target} file to damage")
    _damage(path, action, random.Random(zlib.crc32(f"{target}/{action}/{SEED}".encode())))
    _verify(_config(tmp_path), acks, f"{action} {target}")


@pytest.mark.slow
def test_repair_killed_then_run_again(tmp_path, killed_store):
    source, acks = killed_store
    shutil.copytree(source / "data", tmp_path / "data")
    (tmp_path / "data" / "hybridmem.kuzu").unlink()
    shutil.rmtree(tmp_path / "data" / "milvus.db")
    config = _config(tmp_path)
    for delay in (1.0, 2.5, 4.0):
        code, _, _ = _run("verify", str(config), str(acks), "--repair", kill_after=delay)
        assert code in (0, -signal.SIGKILL)
    _verify(config, acks, "repair killed three times")

