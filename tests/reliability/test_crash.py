"""Crash consistency: a child process is SIGKILLed at every named point of the write path
(and at random moments); after each kill the store is reopened and checked."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hybridmem import Memory, MemoryConfig
from hybridmem._failpoints import POINTS
from tests.reliability.consistency import problems
from tests.reliability.crash_worker import USERS

ROOT = Path(__file__).resolve().parents[2]
OPS = 40


def run_worker(data_dir: Path, ack: Path, seed: int, failpoint: str | None,
               kill_after: float | None = None) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HYBRIDMEM_FAILPOINT", None)
    if failpoint:
        env["HYBRIDMEM_FAILPOINT"] = failpoint
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_worker", str(data_dir), str(ack),
         str(seed), str(OPS)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"worker failed ({proc.returncode}):\n{err[-3000:]}")
    return proc.returncode


def verify(data_dir: Path, ack: Path) -> list[str]:
    with Memory(MemoryConfig(data_dir=str(data_dir), embedder={"provider": "hash"})) as memory:
        return problems(memory, ack, USERS)


DETERMINISTIC = [(point, n) for point in POINTS for n in (1, 3, 9)]


@pytest.mark.slow
def test_kill_at_every_point_of_the_write_path(tmp_path):
    trials, kills, failures = 0, 0, []
    for i, (point, n) in enumerate(DETERMINISTIC):
        data_dir, ack = tmp_path / f"d{i}", tmp_path / f"ack{i}.jsonl"
        code = run_worker(data_dir, ack, seed=i, failpoint=f"{point}:{n}")
        kills += code == -signal.SIGKILL
        found = verify(data_dir, ack)
        trials += 1
        failures += [f"{point}:{n}: {p}" for p in found]
    print(f"\ncrash trials (failpoints): {trials}, killed: {kills}, "
          f"inconsistencies: {len(failures)}")
    assert kills == trials, "every failpoint should have been reached"
    assert failures == [], "\n".join(failures)


@pytest.mark.slow
def test_kill_during_recovery_then_recover(tmp_path):
    """A crash while replaying a plan at open is itself repaired by the next open."""
    failures = []
    for i, point in enumerate(("milvus.written", "kuzu.written")):
        data_dir, ack = tmp_path / f"r{i}", tmp_path / f"ack{i}.jsonl"
        run_worker(data_dir, ack, seed=100 + i, failpoint=f"{point}:2")
        # The reopen replays the plan and is killed again at the same point.
        code = run_worker(data_dir, ack, seed=200 + i, failpoint=f"{point}:1")
        assert code == -signal.SIGKILL
        failures += verify(data_dir, ack)
    assert failures == []


@pytest.mark.slow
def test_kill_at_random_moments(tmp_path):
    rng = random.Random(1234)
    trials, failures = 6, []
    for i in range(trials):
        data_dir, ack = tmp_path / f"x{i}", tmp_path / f"ack{i}.jsonl"
        run_worker(data_dir, ack, seed=500 + i, failpoint=None,
                   kill_after=rng.uniform(2.0, 5.0))
        failures += [f"trial {i}: {p}" for p in verify(data_dir, ack)]
    print(f"\ncrash trials (random SIGKILL): {trials}, inconsistencies: {len(failures)}")
    assert failures == []
