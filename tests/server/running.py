"""A real `hybridmem serve` process on 127.0.0.1 for the server tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

# A loaded 2-core machine: opening a store and importing the server stack can take a while.
START_TIMEOUT = 120.0


class Served:
    """One `hybridmem serve` child: its URL, the admin key it printed, its log."""

    def __init__(self, data_dir: Path, *args: str, config: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        command = [sys.executable, "-m", "hybridmem.cli", "serve", "--data-dir", str(data_dir),
                   "--port", "0", *args]
        if config is not None:
            path = data_dir.parent / f"{data_dir.name}-config.json"
            path.write_text(json.dumps(config))
            command += ["--config", str(path)]
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self._readers = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.stdout_lines),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr_lines),
                             daemon=True)]
        for reader in self._readers:
            reader.start()
        self.url = self._wait_for_url()
        self.admin_key = next((line for line in self.stdout_lines
                               if re.fullmatch(r"hm_[0-9a-f]{12}_\S+", line)), None)
        self._wait_healthy()

    @staticmethod
    def _pump(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.stdout_lines:
                found = re.search(r"serving .*? at (http://[^\s/]+)", line)
                if found:
                    return found.group(1)
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the readers drain
                raise RuntimeError(f"serve exited {self.process.returncode}: "
                                   + "\n".join(self.stdout_lines + self.stderr_lines))
            time.sleep(0.05)
        raise TimeoutError("serve printed no URL:\n" + "\n".join(self.stderr_lines))

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("serve never became healthy")

    def log(self, waiting_for: str | None = None, timeout: float = 30.0) -> str:
        """Everything the server wrote to stderr so far (once `waiting_for` is in it: a
        request's log line is written after its answer was sent)."""
        deadline = time.monotonic() + timeout
        while waiting_for is not None and waiting_for not in "\n".join(self.stderr_lines) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        return "\n".join(self.stderr_lines)

    def http(self, key: str | None = None, **options: Any) -> httpx.Client:
        """An HTTP client on this server, sending `key` as a bearer token."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **options)

    def key(self, *args: str) -> str:
        """A new key made with `hybridmem keys create ARGS` beside the running server."""
        done = subprocess.run(
            [sys.executable, "-m", "hybridmem.cli", "keys", "create", *args, "--data-dir",
             str(self.data_dir)], capture_output=True, text=True, timeout=120, check=True)
        return done.stdout.strip().splitlines()[-1]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the server and wait for it to exit; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            for reader in self._readers:
                reader.join(timeout=5)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.stop(signal.SIGKILL if exc[0] else signal.SIGTERM)
