"""`hybridmem serve`: one process owns the store and serves REST and MCP on one port.

It opens the store first (so `/health` answers 200 from the first connection), makes an
admin key when the store has none (printed once, as Jupyter prints its token), and runs
uvicorn in the foreground. SIGINT/SIGTERM: requests still arriving get 503, running ones
finish, the store is closed, the process exits 0.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from dataclasses import dataclass
from typing import TextIO

from hybridmem.config import MemoryConfig
from hybridmem.errors import ConfigError

log = logging.getLogger("hybridmem.server")

DEFAULT_PORT = 8765


@dataclass
class ServeOptions:
    """What `hybridmem serve` was asked for."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    no_auth: bool = False
    mcp: bool = True
    max_pending_writes: int = 64
    max_active_requests: int = 256
    max_body_mb: float = 8.0
    body_timeout: float = 30.0
    read_workers: int | None = None  # None: one per core, AsyncMemory's default
    write_workers: int = 4
    graceful_seconds: int = 30


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(config: MemoryConfig, options: ServeOptions, out: TextIO = sys.stdout) -> int:
    """Serve the store `config` names until SIGINT/SIGTERM; returns the exit code.

    Raises:
        ConfigError: `--no-auth` on a host other than loopback, or a bad port.
        StoreLockedError: another process holds the store.
    """
    import uvicorn

    from hybridmem.async_memory import READ_WORKERS, AsyncMemory
    from hybridmem.memory import Memory
    from hybridmem.server.access import Access
    from hybridmem.server.app import create_app
    from hybridmem.server.middleware import Gate
    from hybridmem.stores.keys import KeyRing
    from hybridmem.stores.lock import announce_server, withdraw_server

    loopback = is_loopback(options.host)
    if options.no_auth and not loopback:
        raise ConfigError(f"--no-auth is allowed only on a loopback host (127.0.0.1, ::1, "
                          f"localhost); {options.host} is reachable from other machines: "
                          "serve it with keys (`hybridmem keys create`)")
    sock = _bind(options.host, options.port)
    _configure_logging()
    memory = Memory(config)
    keys: KeyRing | None = None
    try:
        store = memory.data_dir
        if not options.no_auth:
            keys = KeyRing(memory.record_path)
            if keys.count() == 0:
                _, secret = keys.create(admin=True, note="made by the first `serve`")
                print("this store had no key: made an admin key (shown once; `hybridmem keys "
                      "create --user U` makes keys bound to one user):", file=out)
                print(secret, file=out, flush=True)
        host, port = sock.getsockname()[:2]
        url = f"http://{_url_host(host)}:{port}"
        if options.no_auth:
            print("hybridmem: --no-auth: no key is asked; anyone on this machine can read "
                  "and change every scope of this store", file=out)
        mcp_note = f", MCP at {url}/mcp" if options.mcp else ""
        print(f"hybridmem serving {store} at {url} (REST, docs at {url}/docs{mcp_note})",
              file=out, flush=True)
        announce_server(memory.record_path, url)
        gate = Gate(max_body_bytes=int(options.max_body_mb * 2**20), loopback_only=loopback,
                    max_active=options.max_active_requests,
                    body_timeout=options.body_timeout)
        async_memory = AsyncMemory(memory=memory,
                                   read_workers=options.read_workers or READ_WORKERS,
                                   write_workers=options.write_workers,
                                   max_pending_writes=options.max_pending_writes)
        app = create_app(async_memory, Access(keys), gate, mcp=options.mcp)
        server = _GracefulServer(uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on",
            timeout_graceful_shutdown=options.graceful_seconds, server_header=False),
            gate)
        server.run(sockets=[sock])
    finally:
        withdraw_server(memory.record_path)
        if keys is not None:
            keys.close()
        memory.close()
        sock.close()
    log.info("closed the store; bye")
    return 0


def _bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0-65535, got {port}")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: a response written in two pieces (h11 writes the
    # head and the body apart) otherwise waits for the client's delayed ACK, ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another "
                          "`hybridmem serve` there? --port picks another port)") from None
    # Listening now, before the URL is printed: a client that connects while the app
    # starts waits in the backlog instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S"))
    for name in ("hybridmem", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    root = logging.getLogger()
    if not root.handlers:  # other libraries' warnings, in the same format
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


class _GracefulServer:
    """uvicorn's server, told to refuse new requests (503) the moment a signal arrives,
    while it lets the running ones finish."""

    def __new__(cls, config, gate):  # noqa: ANN001 - uvicorn is imported lazily
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame):  # noqa: ANN001 - uvicorn's signature
                gate.closing = True
                super().handle_exit(sig, frame)
                # uvicorn raises the signal again once it has shut down, which would kill
                # the process before the store is closed: the stop was asked for, exit 0.
                self._captured_signals.clear()

        return Server(config)
