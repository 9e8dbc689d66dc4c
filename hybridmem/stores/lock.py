"""One process per data directory: an exclusive lock file, taken before any engine opens."""

from __future__ import annotations

import os
from pathlib import Path

from hybridmem.errors import StoreLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the engines' own locks still refuse
    fcntl = None


class DataDirLock:
    """Holds `<data_dir>/.lock` with `flock` for the life of a `Memory`."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / ".lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(self._fd)
            raise StoreLockedError(
                f"{data_dir} is in use by another Memory (pid {holder}); hybridmem allows one "
                "open Memory per data directory: close the other one, or use another data_dir"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode("ascii"), 0)

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
