"""Checkpoints of the nginx configuration: exact bytes before every edit, crash-safe, byte-for-byte rollback.

Role: the transaction layer under the installer and the authenticator. Every write of a
configuration file goes through :meth:`Checkpoints.commit`, which first snapshots the exact bytes
(and mode and owner) of each file it is about to replace and notes each file it creates, then writes
the new files atomically (temporary file, fsync, rename). Rolling a checkpoint back writes the old
bytes back the same way and removes the files it created, so the configuration is restored byte for
byte.

On disk, under ``<work-dir>/nginx-checkpoints``::

    000007/manifest.json      one saved checkpoint: title, files (with their blob), files created
    000007/blobs/0, 1, ...    the exact bytes of each file before the change
    in-progress/              the checkpoint of a commit that is writing files right now
    .staging-*/, .trash-*/    being built / being deleted (never read back)

The commit steps, and what :meth:`Checkpoints.recover` finds after a crash at any instant:

1. build the snapshot in ``.staging-*`` (fsynced), rename it to ``in-progress`` (the marker);
2. replace the configuration files one by one (each atomic);
3. rename ``in-progress`` to its sequence number; the manifest says ``pending`` until
   :meth:`Checkpoints.confirm` (the installer confirms once nginx has reloaded with it).

``recover`` rolls back ``in-progress`` (an interrupted commit), checkpoints still ``pending`` and
``temporary`` checkpoints (challenge configuration) whose process is gone, newest first. A
temporary checkpoint is never listed for ``rollback``.

Allowed imports: the standard library and ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from letsencrypt.plugin_api import PluginError

__all__ = ["Checkpoint", "Checkpoints", "TransactionError", "atomic_write"]

logger = logging.getLogger(__name__)

_IN_PROGRESS = "in-progress"
_MANIFEST = "manifest.json"
_FORMAT = 1
_NEW_FILE_MODE = 0o644

Step = Callable[[str], None]


class TransactionError(PluginError):
    """A checkpoint could not be written, read or rolled back; the message names the file."""


def _no_step(_: str) -> None:
    """The production value of the ``step`` test seam (tests raise from it to simulate a crash)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data`` in one step: temporary file beside it, fsync, rename, folder fsync.

    ``mode`` defaults to the current file's mode (0644 for a new file); ``owner`` (uid, gid) is
    applied when given and possible. Readers (nginx) see either the old or the new bytes.
    """
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = _NEW_FILE_MODE
    temporary = path.with_name(f".{path.name}.letsencrypt-{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if owner is not None:
                with contextlib.suppress(PermissionError):
                    os.fchown(handle.fileno(), *owner)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_dir(path.parent)


@dataclasses.dataclass(frozen=True, slots=True)
class _Saved:
    """One file as it was before a checkpoint: where its bytes are kept, its mode and owner."""

    path: Path
    blob: str
    mode: int
    uid: int
    gid: int

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "blob": self.blob, "mode": self.mode, "uid": self.uid, "gid": self.gid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Saved:
        return cls(Path(data["path"]), str(data["blob"]), int(data["mode"]), int(data["uid"]), int(data["gid"]))


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """A saved checkpoint: ``id`` (its folder name), ``title``, the files it saved and created."""

    id: str
    title: str
    temporary: bool
    pending: bool
    pid: int
    created_at: float
    saved: tuple[_Saved, ...]
    created: tuple[Path, ...]

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file the checkpoint touched: the ones it replaced and the ones it created."""
        return tuple(s.path for s in self.saved) + self.created

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT, "title": self.title, "temporary": self.temporary, "pending": self.pending,
            "pid": self.pid, "created_at": self.created_at, "saved": [s.to_json() for s in self.saved],
            "created": [str(p) for p in self.created],
        }

    @classmethod
    def from_json(cls, checkpoint_id: str, data: Mapping[str, Any]) -> Checkpoint:
        return cls(
            id=checkpoint_id, title=str(data["title"]), temporary=bool(data["temporary"]),
            pending=bool(data["pending"]), pid=int(data["pid"]), created_at=float(data["created_at"]),
            saved=tuple(_Saved.from_json(s) for s in data["saved"]),
            created=tuple(Path(p) for p in data["created"]),
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Checkpoints:
    """The checkpoints kept in ``root`` (``<work-dir>/nginx-checkpoints``).

    ``step`` is a test seam called with the name of each commit step, so that a test can raise
    from it to simulate a crash there. All methods raise :class:`TransactionError` on I/O errors.
    """

    def __init__(self, root: Path, *, step: Step = _no_step) -> None:
        self.root = root
        self._step = step

    # --- reading ---------------------------------------------------------------------------------

    def entries(self, *, temporary: bool | None = None) -> list[Checkpoint]:
        """Saved checkpoints, oldest first; ``temporary`` filters by kind (None: both)."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            if entry.name.isdigit() and (entry / _MANIFEST).is_file():
                checkpoint = self._read(entry)
                if temporary is None or checkpoint.temporary == temporary:
                    found.append(checkpoint)
        return found

    def _read(self, folder: Path) -> Checkpoint:
        try:
            data = json.loads((folder / _MANIFEST).read_text())
            return Checkpoint.from_json(folder.name, data)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise TransactionError(
                f"the nginx checkpoint {folder} cannot be read: {err}",
                hint=f"inspect {folder}; move it away to ignore it",
            ) from err

    # --- writing ---------------------------------------------------------------------------------

    def commit(self, title: str, writes: Mapping[Path, bytes], *, temporary: bool = False,
               private: Collection[Path] = ()) -> Checkpoint:
        """Snapshot every file in ``writes``, then write each one's new bytes; return the checkpoint.

        Files whose bytes do not change are left alone. A commit with nothing to change returns a
        checkpoint with no files (nothing written on disk). Files in ``private`` (keys) are written 0600.
        """
        changes = {path: data for path, data in writes.items() if _read_or_none(path) != data}
        checkpoint_id = self._next_id()
        if not changes:
            return Checkpoint(checkpoint_id, title, temporary, False, os.getpid(), time.time(), (), ())
        in_progress = self.root / _IN_PROGRESS
        if in_progress.exists():
            raise TransactionError(
                f"an interrupted nginx configuration change is still recorded in {in_progress}",
                hint="run the command again: it rolls the interrupted change back first",
            )
        try:
            checkpoint = self._stage(checkpoint_id, title, changes, temporary)
            self._step("snapshot")
            for path, data in changes.items():
                atomic_write(path, data, mode=0o600 if path in private else None)
                self._step(f"write {path}")
            os.replace(in_progress, self.root / checkpoint_id)
            _fsync_dir(self.root)
        except OSError as err:
            raise TransactionError(f"writing the nginx configuration failed: {err}",
                                   hint="check the permissions of the server root; nothing was lost: "
                                   "the next run restores the files as they were") from err
        self._step("done")
        logger.info("nginx checkpoint %s saved (%s): %s", checkpoint_id, title,
                    ", ".join(str(p) for p in changes))
        return checkpoint

    def _stage(self, checkpoint_id: str, title: str, changes: Mapping[Path, bytes], temporary: bool) -> Checkpoint:
        """Write the snapshot of ``changes``' files and rename it to ``in-progress`` (the marker)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = self.root / f".staging-{secrets.token_hex(4)}"
        (staging / "blobs").mkdir(parents=True, mode=0o700)
        saved: list[_Saved] = []
        created: list[Path] = []
        for index, path in enumerate(changes):
            try:
                status = path.stat()
                original = path.read_bytes()
            except FileNotFoundError:
                created.append(path)
                continue
            blob = staging / "blobs" / str(index)
            _write_durably(blob, original)
            saved.append(_Saved(path, str(index), status.st_mode & 0o7777, status.st_uid, status.st_gid))
        checkpoint = Checkpoint(checkpoint_id, title, temporary, True, os.getpid(), time.time(),
                                tuple(saved), tuple(created))
        _write_durably(staging / _MANIFEST, json.dumps(checkpoint.to_json(), indent=1).encode())
        _fsync_dir(staging / "blobs")
        _fsync_dir(staging)
        os.replace(staging, self.root / _IN_PROGRESS)
        _fsync_dir(self.root)
        return checkpoint

    def _next_id(self) -> str:
        numbers = [int(p.name) for p in self.root.iterdir() if p.name.isdigit()] if self.root.is_dir() else []
        return f"{max(numbers, default=0) + 1:06d}"

    def confirm(self, checkpoint_ids: Iterable[str]) -> None:
        """Mark checkpoints as no longer pending: nginx runs with them, ``recover`` must keep them."""
        for checkpoint_id in checkpoint_ids:
            folder = self.root / checkpoint_id
            if not (folder / _MANIFEST).is_file():
                continue
            checkpoint = dataclasses.replace(self._read(folder), pending=False)
            atomic_write(folder / _MANIFEST, json.dumps(checkpoint.to_json(), indent=1).encode(), mode=0o600)

    # --- rolling back ----------------------------------------------------------------------------

    def rollback(self, count: int = 1) -> list[Checkpoint]:
        """Revert the last ``count`` saved (non-temporary) checkpoints, newest first; return them.

        Raises :class:`TransactionError` when fewer than ``count`` exist (nothing is reverted then).
        """
        saved = self.entries(temporary=False)
        if count > len(saved):
            raise TransactionError(
                f"cannot roll back {count} nginx checkpoint(s): only {len(saved)} saved in {self.root}",
                hint=f"give --checkpoints {len(saved)} or fewer" if saved else "there is nothing to roll back",
            )
        chosen = saved[len(saved) - count:]
        self.revert([c.id for c in chosen])
        return chosen

    def revert(self, checkpoint_ids: Iterable[str]) -> None:
        """Revert the given checkpoints (any kind), newest first; unknown ids are skipped."""
        for checkpoint_id in sorted(set(checkpoint_ids), reverse=True):
            folder = self.root / checkpoint_id
            if (folder / _MANIFEST).is_file():
                self._revert_folder(folder)

    def recover(self) -> list[str]:
        """Roll back what a crashed run left; return the titles of what was rolled back.

        That is an interrupted commit (``in-progress``), checkpoints saved but never confirmed, and
        temporary checkpoints, in each case only when the process that made them is gone.
        """
        rolled_back: list[str] = []
        in_progress = self.root / _IN_PROGRESS
        if (in_progress / _MANIFEST).is_file():
            rolled_back.append(self._read(in_progress).title)
            self._revert_folder(in_progress)
        elif in_progress.exists():  # a rename never leaves it without its manifest; be safe anyway
            _remove_tree(in_progress)
        for checkpoint in reversed(self.entries()):
            if not (checkpoint.pending or checkpoint.temporary):
                continue
            if checkpoint.pid == os.getpid() or _pid_alive(checkpoint.pid):
                continue
            rolled_back.append(checkpoint.title)
            self._revert_folder(self.root / checkpoint.id)
        for leftover in self.root.glob(".staging-*") if self.root.is_dir() else ():
            _remove_tree(leftover)
        for leftover in self.root.glob(".trash-*") if self.root.is_dir() else ():
            _remove_tree(leftover)
        for title in rolled_back:
            logger.warning("rolled back the nginx configuration change %r that an earlier run left unfinished", title)
        return rolled_back

    def _revert_folder(self, folder: Path) -> None:
        """Write back every saved file, remove every created one, then delete the checkpoint folder."""
        checkpoint = self._read(folder)
        try:
            for saved in checkpoint.saved:
                original = (folder / "blobs" / saved.blob).read_bytes()
                if _read_or_none(saved.path) != original or _mode_or_none(saved.path) != saved.mode:
                    saved.path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(saved.path, original, mode=saved.mode, owner=(saved.uid, saved.gid))
            for path in checkpoint.created:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            trash = self.root / f".trash-{secrets.token_hex(4)}"
            os.replace(folder, trash)
            _fsync_dir(self.root)
            _remove_tree(trash)
        except OSError as err:
            raise TransactionError(
                f"rolling back the nginx checkpoint {checkpoint.title!r} failed: {err}",
                hint=f"its saved files are in {folder}; restore them by hand if the error persists",
            ) from err
        logger.info("nginx checkpoint %s rolled back (%s)", checkpoint.id, checkpoint.title)


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _mode_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
