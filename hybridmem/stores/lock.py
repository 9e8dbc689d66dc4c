"""One open Memory per store: an exclusive lock file beside the record, taken before any
engine opens."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from hybridmem.errors import ConfigError, StoreError, StoreLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the engines' own locks still refuse
    fcntl = None


class StoreLock:
    """Holds `<catalog>.lock` with `flock` for the life of a `Memory`."""

    def __init__(self, path: Path, data_dir: Path) -> None:
        self.path = path
        self._fd = -1
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ConfigError(f"cannot create the data dir {path.parent}: a file is in the "
                              "way; choose another data_dir") from None
        except OSError as exc:
            raise ConfigError(f"cannot create the data dir {path.parent}: "
                              f"{exc.strerror or exc}; choose another data_dir") from None
        while True:
            try:
                self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(f"cannot open the lock file {path}: {exc.strerror or exc}"
                                 ) from None
            if fcntl is None:
                return
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "?"
                self.release()
                raise StoreLockedError(
                    f"the store {path.name.removesuffix('.sqlite.lock')!r} in {data_dir} is in "
                    f"use by another Memory (pid {holder}); one Memory may hold a store at a "
                    "time: close the other one, or use another data_dir or collection_name"
                ) from None
            if self._same_file():
                break
            # The holder removed the file before releasing it (a failed open takes its
            # lock file with it): this lock guards nothing, take the new file's.
            self.release()
        # The holder's pid, for the message above; a full disk only loses this hint.
        with suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(os.getpid()).encode("ascii"), 0)

    def _same_file(self) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(self._fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def release(self, *, remove: bool = False) -> None:
        """Release the lock (idempotent); with `remove`, delete the lock file first (an
        opener waiting on the old file sees it gone and takes a new one)."""
        if self._fd >= 0:
            if remove:
                with suppress(OSError):
                    os.unlink(self.path)
            with suppress(OSError):
                os.close(self._fd)
            self._fd = -1
