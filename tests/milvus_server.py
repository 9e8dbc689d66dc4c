"""One real Milvus standalone server (PyPI `milvus==2.3.5`) for a whole test run.

Whichever process needs it first (an xdist worker, or pytest itself with `-n0`) starts it
while holding a file lock in the run's shared directory; the others wait on that lock and
then read the server's URL from a state file beside it. The controller stops it when the
run ends (`stop_run_server`, from `tests/conftest.py`'s `pytest_unconfigure`); a small
reaper process kills it if the controller dies first, so no run leaves a 0.5 GB server
behind on a shared machine.

The server is launched here rather than with the package's `MilvusServer.start()`, which
on a machine that runs more than one server (two workers, two runs) fails in three ways:
it picks each port by scanning up from the default (two servers starting together pick the
same ones); the embedded etcd listens on 2379/2380 whatever `etcd_port` says; and the
binary flocks `/run/milvus/standalone.pid`. Its `wait_started` also keeps waiting on a
process that already exited, so any of these showed as "Milvus not started in 180
seconds". Here every listener gets a port the kernel just handed out, etcd gets its own
config file, the pid file gets a unique name (`-alias`), and readiness is a pymilvus
client listing collections, waited for with a deadline meant for a loaded machine.
The server ignores SIGTERM, so it is stopped with SIGKILL (NOTES-engines.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Every component registers itself on loopback.
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode",
              "dataCoord", "dataNode")
# The run's shared directory: made by the controller in pytest_configure and inherited by
# the xdist workers it spawns afterwards.
SHARED_ENV = "HYBRIDMEM_TEST_SHARED_DIR"
# Quiet, the server answers in ~9 s; two busy cores and a CPU hog stretch that a lot.
READY_TIMEOUT_S = float(os.environ.get("HYBRIDMEM_MILVUS_READY_TIMEOUT", "600"))
# A start that loses a port to another process between choosing and binding it exits at
# once; it is tried again with new ports.
START_ATTEMPTS = 3

# Kills the server once the test run's controller is gone (polling: it must not depend on
# being the server's parent).
_REAPER = """
import os, sys, time
owner, server = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
while alive(server):
    if not alive(owner):
        os.kill(server, 9)
        break
    time.sleep(1)
"""


def shared_dir(fallback: Path) -> Path:
    """The directory every process of this run shares (`fallback` when pytest runs without
    tests/conftest.py's controller hook, e.g. a bare import)."""
    raw = os.environ.get(SHARED_ENV)
    return Path(raw) if raw else fallback


def run_server_url(shared: Path) -> str:
    """The URL of this run's server, started by the first caller (later callers wait on
    the lock, then reuse it; a server that died is started again)."""
    shared.mkdir(parents=True, exist_ok=True)
    state_file = shared / "milvus-server.json"
    with _locked(shared / "milvus-server.lock"):
        state = _read_state(state_file)
        if state is not None and _alive(state["pid"]):
            return state["url"]
        owner = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()
        state = start_server(shared / "milvus-server", owner=owner)
        state_file.write_text(json.dumps(state), "utf-8")
        return state["url"]


def stop_run_server(shared: Path) -> None:
    """Kill this run's server, if one was started."""
    with _locked(shared / "milvus-server.lock"):
        state = _read_state(shared / "milvus-server.json")
        if state is not None:
            kill_server(state["pid"], state.get("alias", ""))
            (shared / "milvus-server.json").unlink()


def start_server(base: Path, *, owner: int) -> dict:
    """Start a server under `base`, wait until a client can use it, and return
    `{"url", "pid"}`. `owner` is the process whose end also ends the server.

    Raises:
        RuntimeError: no attempt answered in time (the message holds the log's tail).
    """
    from milvus import MilvusServerConfig, _initialize_data_files

    base.mkdir(parents=True, exist_ok=True)
    _initialize_data_files(str(base))  # unpacks bin/ once; each attempt has its own data
    exe = base / "bin" / "milvus"
    failures = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    for attempt in range(START_ATTEMPTS):
        data = base / f"run-{attempt}"
        config = MilvusServerConfig(data_dir=str(data))
        port_keys = [k for k in config.configurable_items if k.endswith("_port")]
        ports = _free_ports(len(port_keys) + 2)
        config.update(**dict(zip(port_keys, ports, strict=False)))
        for component in COMPONENTS:
            config.extra_configs[f"{component}.ip"] = "127.0.0.1"
        config.resolve()  # checks each port binds, writes configs/milvus.yaml
        etcd_client, etcd_peer, metrics = config.get("etcd_port"), ports[-2], ports[-1]
        etcd_config = data / "configs" / "embedEtcd.yaml"
        etcd_config.write_text(
            f"listen-client-urls: http://127.0.0.1:{etcd_client}\n"
            f"advertise-client-urls: http://127.0.0.1:{etcd_client}\n"
            f"listen-peer-urls: http://127.0.0.1:{etcd_peer}\n"
            f"initial-advertise-peer-urls: http://127.0.0.1:{etcd_peer}\n"
            f"initial-cluster: default=http://127.0.0.1:{etcd_peer}\n", "utf-8")
        env = {**os.environ, "DEPLOY_MODE": "STANDALONE", "METRICS_PORT": str(metrics),
               "ETCD_CONFIG_PATH": str(etcd_config),
               "LD_LIBRARY_PATH": f"{exe.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
        log_path = data / "logs" / "milvus-stdout.log"
        alias = f"hybridmem-{os.getpid()}-{attempt}"
        with open(log_path, "wb") as log:
            # A session of its own: Ctrl-C on the terminal reaches pytest, which stops the
            # server itself; -alias makes the pid file /run/milvus/standalone-<alias>.pid.
            proc = subprocess.Popen(
                [str(exe), "run", "standalone", "-alias", alias],
                cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        subprocess.Popen([sys.executable, "-c", _REAPER, str(owner), str(proc.pid)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{config.get('proxy_port')}"
        try:
            _wait_ready(proc, url, deadline)
        except RuntimeError as exc:
            kill_server(proc.pid, alias)
            failures.append(f"attempt {attempt + 1}: {exc}; log tail:\n{_tail(log_path)}")
            if time.monotonic() >= deadline:
                break
            continue
        return {"url": url, "pid": proc.pid, "alias": alias}
    raise RuntimeError("the Milvus test server did not start:\n" + "\n".join(failures))


def kill_server(pid: int, alias: str = "") -> None:
    """SIGKILL a server (it ignores SIGTERM), wait until it is gone, and remove the pid
    file it leaves (its lock died with it; the file would stay, one per run)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # our child: reap it
    for _ in range(300):
        if not _alive(pid):
            break
        time.sleep(0.1)
    if alias:
        for run_dir in ("/run/milvus", "/tmp/milvus"):  # the binary's fallback
            with contextlib.suppress(OSError):
                os.unlink(f"{run_dir}/standalone-{alias}.pid")


def _wait_ready(proc: subprocess.Popen, url: str, deadline: float) -> None:
    """Poll until a client lists collections; give up when the process exits or time
    runs out."""
    from pymilvus import MilvusClient

    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        client = None
        try:
            client = MilvusClient(uri=url, token="root:Milvus", timeout=10)
            client.list_collections()
            return
        except Exception as exc:  # noqa: BLE001 - pymilvus raises several types while starting
            last = f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        time.sleep(1)
    raise RuntimeError(f"no client could use {url} within {READY_TIMEOUT_S:.0f} s ({last})")


def _free_ports(n: int) -> list[int]:
    """`n` distinct ports the kernel hands out as free now (all held until all are
    chosen, so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that exited but was not reaped yet still answers signal 0.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
