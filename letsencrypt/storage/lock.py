"""The configuration directory's lock: two runs never work on one ``--config-dir`` at once.

``ConfigLock`` takes an exclusive ``flock`` on ``<config_dir>/.letsencrypt.lock`` without waiting
and writes its pid into the file, so that a second run fails at once with ``LockError`` naming the
process that holds the lock. The kernel drops an flock when its holder exits, however it exits
(kill -9 included), so a lock file left behind never blocks anyone; the file itself is never
removed (removing it would let two runs lock two different files of the same name).

Imports: the standard library and ``letsencrypt.errors``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType

from letsencrypt.errors import LockError

__all__ = ["ConfigLock"]

logger = logging.getLogger(__name__)


class ConfigLock:
    """A non-blocking exclusive lock on ``path``, used as a context manager (not re-entrant)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``LockError`` naming the pid of the run that holds it."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this ConfigLock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise LockError(
                f"cannot open the lock file {self.path}: {err.strerror}",
                hint="check that --config-dir is writable by this user (usually root)",
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise LockError(
                f"another letsencrypt run ({who}) is using {self.path.parent}",
                hint=f"wait for {who} to finish, or stop it if it hangs" + (f" (kill {holder})" if holder else ""),
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        logger.debug("locked %s", self.path)

    def release(self) -> None:
        """Drop the lock (a no-op when it is not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        logger.debug("unlocked %s", self.path)

    def __enter__(self) -> ConfigLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
