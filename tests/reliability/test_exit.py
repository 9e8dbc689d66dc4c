"""A process that used a Memory always exits, whatever way it ends, and keeps what it added.

Each scenario runs REPEAT times in a fresh process on one data dir: every run first checks
that all the memories the earlier runs acknowledged are there, adds one, and then ends its
own way (never closing, raising, `exit()` in an interactive session, the README quickstart
verbatim, a Jupyter kernel shut down mid-session). A run that hangs fails on its timeout
(it would also keep the data-dir lock, so the next run would fail with StoreLockedError).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.readme import python_blocks

REPEAT = 10
EXIT_TIMEOUT = 60  # seconds for one whole process, start-up included

ROOT = Path(__file__).resolve().parents[2]

# Checks the earlier runs' memories, adds one; what comes after is the scenario's ending.
PRELUDE = textwrap.dedent("""
    import sys
    from hybridmem import Memory
    run = int(sys.argv[1])
    m = Memory()
    seen = {r["memory"] for r in m.get_all(user_id="exit-test", limit=1000)["results"]}
    missing = {f"Exit note {i}" for i in range(run)} - seen
    assert not missing, f"lost after exit: {sorted(missing)}"
    m.add(f"Exit note {run}", user_id="exit-test", infer=False)
    print("acknowledged", run, flush=True)
""")

SCENARIOS = {
    # The script ends with the Memory still open and never closed.
    "never_closed": PRELUDE,
    # An exception escapes after an acknowledged add.
    "raises": PRELUDE + "raise RuntimeError('the agent crashed')\n",
    # A daemon thread is in the middle of searching when the main thread ends: closing
    # waits for the search in flight, and later calls get HybridMemError, never a raw
    # engine error (a traceback other than that fails the test).
    "busy_thread": PRELUDE + textwrap.dedent("""
        import threading
        from hybridmem import HybridMemError
        def spin():
            try:
                while True:
                    m.search("note", user_id="exit-test", limit=3)
            except HybridMemError as exc:
                assert "closed" in str(exc), exc
        threading.Thread(target=spin, daemon=True).start()
    """),
}


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HYBRIDMEM_HOME": str(home), "PYTHONPATH": str(ROOT)}


def _run_scenario(name: str, home: Path) -> list[str]:
    problems = []
    for run in range(REPEAT):
        try:
            proc = subprocess.run(
                [sys.executable, "-c", SCENARIOS[name], str(run)], env=_env(home),
                capture_output=True, text=True, timeout=EXIT_TIMEOUT, cwd=home,
            )
        except subprocess.TimeoutExpired:
            problems.append(f"{name} run {run}: did not exit within {EXIT_TIMEOUT} s")
            break
        if f"acknowledged {run}" not in proc.stdout:
            problems.append(f"{name} run {run}: {proc.stderr.strip()[-800:]}")
            break
        if "Traceback" in proc.stderr and name != "raises":
            problems.append(f"{name} run {run} printed a traceback: {proc.stderr[-800:]}")
    return problems


@pytest.mark.slow
def test_scripts_exit_and_keep_what_they_added(tmp_path):
    with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        futures = {}
        for name in SCENARIOS:
            (tmp_path / name).mkdir()
            futures[name] = pool.submit(_run_scenario, name, tmp_path / name)
        problems = [p for f in futures.values() for p in f.result()]
    assert problems == []


@pytest.mark.slow
def test_interactive_exit_call_exits(tmp_path):
    """`python -i`, then `exit()` at the prompt, as a user in a REPL would."""
    for run in range(REPEAT):
        proc = subprocess.run(
            [sys.executable, "-i", "-c", PRELUDE, str(run)], input="exit()\n",
            env=_env(tmp_path), capture_output=True, text=True, timeout=EXIT_TIMEOUT,
            cwd=tmp_path,
        )
        assert f"acknowledged {run}" in proc.stdout, proc.stderr[-800:]
        assert proc.returncode == 0, proc.stderr[-800:]


@pytest.mark.slow
def test_readme_quickstart_verbatim_exits(tmp_path):
    """`python -c` with the README's first Python block, exactly as printed."""
    quickstart = python_blocks()[0]
    for run in range(REPEAT):
        proc = subprocess.run(
            [sys.executable, "-c", quickstart], env=_env(tmp_path / f"home{run}"),
            capture_output=True, text=True, timeout=EXIT_TIMEOUT, cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-800:]
        assert proc.stdout.strip(), "the quickstart prints its answer"


@pytest.mark.slow
def test_jupyter_kernel_shut_down_mid_session_exits(tmp_path):
    """A kernel holding an open Memory is shut down (as closing a notebook tab does):
    the kernel process exits on its own and the next kernel finds the memories."""
    jupyter_client = pytest.importorskip("jupyter_client", reason="needs the [notebook] extra")
    for run in range(REPEAT):
        manager = jupyter_client.KernelManager(kernel_name="python3")
        manager.start_kernel(env=_env(tmp_path), cwd=str(tmp_path))
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=EXIT_TIMEOUT)
            reply = client.execute_interactive(
                f"import sys; sys.argv = ['kernel', '{run}']\n" + PRELUDE,
                timeout=EXIT_TIMEOUT, store_history=False,
            )
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            client.stop_channels()
        # shutdown_request: the kernel exits by itself; it is killed only if it hangs.
        manager.request_shutdown()
        exited = _wait_exit(manager, EXIT_TIMEOUT)
        manager.shutdown_kernel(now=True)
        assert exited, f"run {run}: the kernel did not exit after a shutdown request"


def _wait_exit(manager, seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not manager.is_alive():
            return True
        time.sleep(0.2)
    return False
