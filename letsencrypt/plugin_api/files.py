"""Atomic, durable changes of single paths, for plugins that edit a server's configuration.

A reader (the web server, a crash-recovery run) sees either the old or the new state of a path,
never a mix: new bytes go to a temporary name beside the path, are fsynced and renamed over it, and
the folder is fsynced. :class:`Content` names a path's whole state (bytes, a :class:`Link`, or
nothing) so that a caller can record it and put it back exactly; :mod:`.checkpoints` builds
rollback on these.

Allowed imports: the standard library.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from letsencrypt.acme.records import record

__all__ = [
    "Content", "Link", "atomic_symlink", "atomic_write", "current", "fsync_dir", "missing_parents", "remove",
    "through", "write_new",
]

NEW_FILE_MODE = 0o644


@record
class Link:
    """What a path should become: a symbolic link to ``target`` (kept as written, often relative)."""

    target: str


Content = bytes | Link | None
"""A path's state: these bytes, a symlink, or (None) nothing at all."""


def fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.letsencrypt-{secrets.token_hex(4)}")


@contextlib.contextmanager
def _replacing(temporary: Path, path: Path) -> Iterator[None]:
    """Once the block has made ``temporary`` whole, rename it over ``path`` and fsync the folder.

    If the block or the rename raises, ``temporary`` is removed and ``path`` is left as it was.
    """
    try:
        yield
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data`` in one step: temporary file beside it, fsync, rename, folder fsync.

    ``mode`` defaults to the current file's mode (0644 for a new file); ``owner`` (uid, gid) is
    applied when given and possible.
    """
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = NEW_FILE_MODE
    temporary = _beside(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with _replacing(temporary, path), os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fchmod(handle.fileno(), mode)
        if owner is not None:
            with contextlib.suppress(PermissionError):
                os.fchown(handle.fileno(), *owner)
        os.fsync(handle.fileno())


def atomic_symlink(path: Path, target: str) -> None:
    """Make ``path`` a symlink to ``target`` in one step (link beside it, rename), whatever was there."""
    temporary = _beside(path)
    os.symlink(target, temporary)
    with _replacing(temporary, path):
        pass


def remove(path: Path) -> None:
    """Remove a file or a link (not a folder); nothing there is fine."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(FileNotFoundError):
        fsync_dir(path.parent)


def current(path: Path) -> Content:
    """What is at ``path`` now, as :data:`Content` (a folder raises ``IsADirectoryError``)."""
    if path.is_symlink():
        return Link(os.readlink(path))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) with ``data``, mode 0600, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def through(path: Path) -> Path:
    """The file a symlink to a file names (what a write of bytes changes); else ``path`` itself."""
    return path.resolve() if path.is_symlink() and path.resolve().is_file() else path


def missing_parents(path: Path) -> list[Path]:
    """The folders to make before ``path`` can be created, outermost first."""
    chain = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        chain.append(parent)
        parent = parent.parent
    return list(reversed(chain))
