"""Durable file operations shared by the storage modules: atomic writes, private folders, dir fsync.

An atomic write puts the bytes into a temporary file beside the target (created with the final
mode, so a private key is never readable by others, not even for an instant), fsyncs it, renames
it over the target and fsyncs the folder: after a crash the target holds either the old or the
new content, never a mix. Temporary files are named ``.<target>.tmp-<random>``;
``remove_temporaries`` deletes the ones an interrupted write left behind.

These are not :mod:`letsencrypt.plugin_api.files` (whose ``fsync_dir`` they share): a write here
creates the temporary file with its final mode, names it with :data:`TEMP_MARKER` so that
:func:`remove_temporaries` finds what a crash left, and offers the ``before_rename`` crash seam;
:func:`atomic_symlink` leaves the folder fsync to the caller, which switches several links at once.

Imports: the standard library, ``letsencrypt.errors`` and ``letsencrypt.plugin_api.files``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from letsencrypt.plugin_api.files import fsync_dir

__all__ = [
    "TEMP_MARKER",
    "atomic_symlink",
    "atomic_write",
    "ensure_dir",
    "fsync_dir",
    "remove_temporaries",
]

TEMP_MARKER = ".tmp-"

Step = Callable[[str], None]


def ensure_dir(path: Path, mode: int) -> Path:
    """Create ``path`` and its missing parents with ``mode``; existing folders keep their mode."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        os.chmod(folder, mode)  # mkdir's mode is filtered by the umask
    return path


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}{TEMP_MARKER}{secrets.token_hex(4)}")


def atomic_write(
    target: Path,
    data: bytes,
    *,
    mode: int = 0o600,
    keep_mode: bool = False,
    before_rename: Step | None = None,
    label: str = "write",
) -> None:
    """Replace ``target`` with ``data`` atomically and durably.

    ``mode`` is the mode of a new file; with ``keep_mode`` an existing target keeps its own mode
    (certbot's ``atomic_rewrite`` idea for files a person may have chmod-ed). ``before_rename`` is a
    test seam called with ``f"{label}:before-rename"`` once the temporary file is durable.
    """
    if keep_mode:
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(target).st_mode & 0o7777
    temp = _temp_name(target)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    if before_rename is not None:  # a simulated crash leaves the temporary file, as a real one would
        before_rename(f"{label}:before-rename")
    try:
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` (a relative path as given) by renaming a fresh symlink over it."""
    temp = _temp_name(link)
    os.symlink(target, temp)
    try:
        os.replace(temp, link)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files interrupted writes left in ``folder``; the paths removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.name.startswith(".") and TEMP_MARKER in entry.name and (entry.is_symlink() or not entry.is_dir()):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
