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
                store = f"the store {path.name.removesuffix('.sqlite.lock')!r} in {data_dir}"
                url = _served_by(path, holder)
                if url is not None:
                    raise StoreLockedError(
                        f"{store} is served by `hybridmem serve` (pid {holder}) at {url}: "
                        f"reach it through that server (MemoryClient(host={url!r}, "
                        "api_key=...), its REST API, or `hybridmem mcp --url`)") from None
                raise StoreLockedError(
                    f"{store} is in use by another Memory (pid {holder}); one Memory may hold "
                    "a store at a time: close the other one, use another data_dir or "
                    "collection_name, or share it through `hybridmem serve`"
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


def announce_server(record: Path, url: str) -> None:
    """Note beside the store's lock that this process serves it at `url`, so another
    opener is told where to reach it (`withdraw_server` removes the note)."""
    with suppress(OSError):
        _server_note(record).write_text(f"{os.getpid()} {url}", encoding="utf-8")


def withdraw_server(record: Path) -> None:
    """Remove the note `announce_server` wrote."""
    with suppress(OSError):
        _server_note(record).unlink()


def _server_note(record: Path) -> Path:
    return record.with_name(record.name + ".lock.serving")


def _served_by(lock: Path, holder: str) -> str | None:
    """The URL the lock's holder serves the store at, if it announced one (a note left
    by a process that died is ignored: its pid is not the holder's)."""
    try:
        pid, url = lock.with_name(lock.name + ".serving").read_text("utf-8").split(" ", 1)
    except (OSError, ValueError):
        return None
    return url.strip() if pid == holder else None
