"""One run at a time per lakehouse: an OS file lock on a local lake, released by the OS when the process dies;
on object storage a lock object (see ``state/object_lock.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from lakeforge.errors import RunInProgress

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from lakeforge.lake.base import Lake


def lake_lock(lake: Lake, kind: str = "run") -> AbstractContextManager[object]:
    """The ``kind`` lock (``run``, ``build``) of ``lake``: ``<lake>/_lakeforge/<kind>.lock``."""
    if lake.is_local:
        return RunLock(Path(lake.root.removeprefix("file://")) / "_lakeforge" / f"{kind}.lock")
    from lakeforge.state.object_lock import ObjectLock

    return ObjectLock(lake, kind)


def is_locked(lake: Lake, kind: str = "run") -> bool:
    """Whether a live run holds the lock now."""
    if not lake.is_local:
        from lakeforge.state.object_lock import ObjectLock

        return ObjectLock(lake, kind).held()
    try:
        with lake_lock(lake, kind):
            return False
    except RunInProgress:
        return True


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            raise RunInProgress(f"another lakeforge run holds {self.path}; wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
