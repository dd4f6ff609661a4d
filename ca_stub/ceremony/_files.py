"""Atomic, permission-aware file writes for the key ceremony.

A crash at any instant leaves either no file or the complete file (write a temporary file in the
same directory, fsync, rename, fsync the directory): the manifest is written last, so a
half-finished ceremony is never mistaken for a finished one.

Imports: stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["ensure_private_dir", "write_atomic"]


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed and make it 0700: only its owner may enter."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_atomic(path: Path, data: bytes, *, mode: int, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` with permissions ``mode``, all or nothing.

    The temporary file is created 0600 (``mkstemp``) and gets ``mode`` before it is renamed, so a
    private key is never readable by others, even for an instant. With ``exclusive`` the final
    step is ``link`` rather than ``rename``: it fails with ``FileExistsError`` instead of
    replacing a file that appeared meanwhile.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        if exclusive:
            os.link(temp, path)
            temp.unlink()
        else:
            temp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
