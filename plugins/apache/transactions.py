"""Checkpoints of the Apache configuration: files and symlinks as they were, crash-safe, restored exactly.

Role: the transaction layer under the installer and the authenticator. Every change on disk (a
configuration file rewritten, a ``sites-available`` file created, a ``sites-enabled`` or
``mods-enabled`` symlink made, a temporary challenge file) goes through :meth:`Checkpoints.commit`.
It first records the state of each path it is about to change: the exact bytes, mode and owner of a
file, the target of a symlink, or that nothing was there; also the directories it has to create.
Then it makes the changes, each one atomic (temporary file or link beside it, fsync, rename).
Rolling a checkpoint back puts every path back the same way and removes the directories it made,
so the configuration is restored byte for byte and link for link.

A path that is a symlink to a file (``sites-enabled/x.conf``) is written through: the file it names
is what changes and what is recorded, the link stays.

On disk, under ``<work-dir>/apache-checkpoints``::

    000007/manifest.json      one saved checkpoint: title, kind, each path's earlier state
    000007/blobs/0, 1, ...    the exact bytes of each file before the change
    in-progress/              the checkpoint of a commit that is changing files right now
    .staging-*/, .trash-*/    being built / being deleted (never read back)

The commit steps, and what :meth:`Checkpoints.recover` finds after a crash at any instant:

1. build the record in ``.staging-*`` (fsynced), rename it to ``in-progress`` (the marker);
2. change the paths one by one (each atomic);
3. rename ``in-progress`` to its sequence number; the manifest says ``pending`` until
   :meth:`Checkpoints.confirm` (the installer confirms once Apache has reloaded with it).

``recover`` rolls back ``in-progress`` (an interrupted commit), checkpoints still ``pending`` and
``temporary`` checkpoints (challenge configuration), in each case only when the process that made
them is gone, newest first. A temporary checkpoint is never listed for ``rollback``.

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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from letsencrypt.plugin_api import PluginError

__all__ = ["Checkpoint", "Checkpoints", "Content", "Link", "TransactionError", "atomic_write"]

logger = logging.getLogger(__name__)

_IN_PROGRESS = "in-progress"
_MANIFEST = "manifest.json"
_FORMAT = 1
_NEW_FILE_MODE = 0o644
_NEW_DIR_MODE = 0o755

Step = Callable[[str], None]


class TransactionError(PluginError):
    """A checkpoint could not be written, read or rolled back; the message names the file."""


@dataclasses.dataclass(frozen=True, slots=True)
class Link:
    """What a path should become: a symbolic link to ``target`` (kept as written, often relative)."""

    target: str


Content = bytes | Link | None
"""A path's new state: these bytes, a symlink, or (None) nothing at all."""


def _no_step(_: str) -> None:
    """The production value of the ``step`` test seam (tests raise from it to simulate a crash)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.letsencrypt-{secrets.token_hex(4)}")


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data`` in one step: temporary file beside it, fsync, rename, folder fsync.

    ``mode`` defaults to the current file's mode (0644 for a new file); ``owner`` (uid, gid) is
    applied when given and possible. Readers (Apache) see either the old or the new bytes.
    """
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = _NEW_FILE_MODE
    temporary = _beside(path)
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


def atomic_symlink(path: Path, target: str) -> None:
    """Make ``path`` a symlink to ``target`` in one step (link beside it, rename), whatever was there."""
    temporary = _beside(path)
    os.symlink(target, temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_dir(path.parent)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(FileNotFoundError):
        _fsync_dir(path.parent)


def _current(path: Path) -> Content:
    """What is at ``path`` now, in the terms of :data:`Content` (a directory raises ``IsADirectoryError``)."""
    if path.is_symlink():
        return Link(os.readlink(path))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class _Before:
    """One path as it was before a checkpoint: a file (blob, mode, owner), a symlink, or absent."""

    path: Path
    kind: str  # "file", "link" or "absent"
    blob: str = ""
    mode: int = 0
    uid: int = -1
    gid: int = -1
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"path": str(self.path)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Before:
        return cls(Path(data["path"]), str(data["kind"]), str(data["blob"]), int(data["mode"]), int(data["uid"]),
                   int(data["gid"]), str(data["target"]))


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """A saved checkpoint: ``id`` (its folder name), ``title``, the paths it changed, the folders it made."""

    id: str
    title: str
    temporary: bool
    pending: bool
    pid: int
    created_at: float
    before: tuple[_Before, ...]
    directories: tuple[Path, ...]

    @property
    def files(self) -> tuple[Path, ...]:
        """Every path the checkpoint changed (files and links, replaced, created or removed)."""
        return tuple(b.path for b in self.before)

    @property
    def created(self) -> tuple[Path, ...]:
        """The paths where nothing was before the checkpoint."""
        return tuple(b.path for b in self.before if b.kind == "absent")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT, "title": self.title, "temporary": self.temporary, "pending": self.pending,
            "pid": self.pid, "created_at": self.created_at, "before": [b.to_json() for b in self.before],
            "directories": [str(p) for p in self.directories],
        }

    @classmethod
    def from_json(cls, checkpoint_id: str, data: Mapping[str, Any]) -> Checkpoint:
        return cls(
            id=checkpoint_id, title=str(data["title"]), temporary=bool(data["temporary"]),
            pending=bool(data["pending"]), pid=int(data["pid"]), created_at=float(data["created_at"]),
            before=tuple(_Before.from_json(b) for b in data["before"]),
            directories=tuple(Path(p) for p in data["directories"]),
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_through(path: Path, content: Content) -> Path:
    """Where bytes for ``path`` go: the file a symlink names (sites-enabled -> sites-available)."""
    if isinstance(content, bytes) and path.is_symlink() and path.resolve().is_file():
        return path.resolve()
    return path


def _missing_parents(paths: Iterable[Path]) -> list[Path]:
    """The directories that must be made for ``paths``, outermost first, each once."""
    missing: list[Path] = []
    for path in paths:
        chain = []
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            chain.append(parent)
            parent = parent.parent
        missing.extend(p for p in reversed(chain) if p not in missing)
    return missing


class Checkpoints:
    """The checkpoints kept in ``root`` (``<work-dir>/apache-checkpoints``).

    ``step`` is a test seam called with the name of each commit step, so that a test can raise
    from it to simulate a crash there. All methods raise :class:`TransactionError` on I/O errors.
    """

    def __init__(self, root: Path, *, step: Step = _no_step) -> None:
        self.root = root
        self._step = step

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
            return Checkpoint.from_json(folder.name, json.loads((folder / _MANIFEST).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise TransactionError(f"the Apache checkpoint {folder} cannot be read: {err}",
                                   hint=f"inspect {folder}; move it away to ignore it") from err

    def commit(self, title: str, changes: Mapping[Path, Content], *, temporary: bool = False) -> Checkpoint:
        """Record every path in ``changes``, then give each its new content; return the checkpoint.

        Paths already in their new state are left alone; a commit with nothing to change saves
        nothing on disk and returns a checkpoint with no paths.
        """
        wanted: dict[Path, Content] = {}
        for path, content in changes.items():
            target = _write_through(path, content)
            if _current(target) != content:
                wanted[target] = content
        checkpoint_id = self._next_id()
        if not wanted:
            return Checkpoint(checkpoint_id, title, temporary, False, os.getpid(), time.time(), (), ())
        in_progress = self.root / _IN_PROGRESS
        if in_progress.exists():
            raise TransactionError(f"an interrupted Apache configuration change is still recorded in {in_progress}",
                                   hint="run the command again: it rolls the interrupted change back first")
        try:
            directories = _missing_parents(p for p, c in wanted.items() if c is not None)
            checkpoint = self._stage(checkpoint_id, title, wanted, directories, temporary)
            self._step("snapshot")
            for directory in directories:
                directory.mkdir(mode=_NEW_DIR_MODE)
            for path, content in wanted.items():
                if isinstance(content, bytes):
                    atomic_write(path, content)
                elif isinstance(content, Link):
                    atomic_symlink(path, content.target)
                else:
                    _remove(path)
                self._step(f"write {path}")
            os.replace(in_progress, self.root / checkpoint_id)
            _fsync_dir(self.root)
        except OSError as err:
            raise TransactionError(f"changing the Apache configuration failed: {err}",
                                   hint="check the permissions of the server root; nothing was lost: "
                                   "the next run restores the files as they were") from err
        self._step("done")
        logger.info("apache checkpoint %s saved (%s): %s", checkpoint_id, title, ", ".join(str(p) for p in wanted))
        return checkpoint

    def _stage(self, checkpoint_id: str, title: str, wanted: Mapping[Path, Content], directories: list[Path],
               temporary: bool) -> Checkpoint:
        """Write the record of ``wanted``'s paths and rename it to ``in-progress`` (the marker)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = self.root / f".staging-{secrets.token_hex(4)}"
        (staging / "blobs").mkdir(parents=True, mode=0o700)
        before: list[_Before] = []
        for index, path in enumerate(wanted):
            now = _current(path)
            if now is None:
                before.append(_Before(path, "absent"))
            elif isinstance(now, Link):
                before.append(_Before(path, "link", target=now.target))
            else:
                status = path.stat()
                _write_durably(staging / "blobs" / str(index), now)
                before.append(_Before(path, "file", str(index), status.st_mode & 0o7777, status.st_uid,
                                      status.st_gid))
        checkpoint = Checkpoint(checkpoint_id, title, temporary, True, os.getpid(), time.time(),
                                tuple(before), tuple(directories))
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
        """Mark checkpoints as no longer pending: Apache runs with them, ``recover`` must keep them."""
        for checkpoint_id in checkpoint_ids:
            folder = self.root / checkpoint_id
            if not (folder / _MANIFEST).is_file():
                continue
            checkpoint = dataclasses.replace(self._read(folder), pending=False)
            atomic_write(folder / _MANIFEST, json.dumps(checkpoint.to_json(), indent=1).encode(), mode=0o600)

    def rollback(self, count: int = 1) -> list[Checkpoint]:
        """Revert the last ``count`` saved (non-temporary) checkpoints, newest first; return them.

        Raises :class:`TransactionError` when fewer than ``count`` exist (nothing is reverted then).
        """
        saved = self.entries(temporary=False)
        if count > len(saved):
            raise TransactionError(
                f"cannot roll back {count} Apache checkpoint(s): only {len(saved)} saved in {self.root}",
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
            checkpoint = self._read(in_progress)
            if checkpoint.pid == os.getpid() or not _pid_alive(checkpoint.pid):
                rolled_back.append(checkpoint.title)
                self._revert_folder(in_progress)
        elif in_progress.exists():  # a rename never leaves it without its manifest; be safe anyway
            shutil.rmtree(in_progress, ignore_errors=True)
        for checkpoint in reversed(self.entries()):
            if not (checkpoint.pending or checkpoint.temporary):
                continue
            if checkpoint.pid == os.getpid() or _pid_alive(checkpoint.pid):
                continue
            rolled_back.append(checkpoint.title)
            self._revert_folder(self.root / checkpoint.id)
        for pattern in (".staging-*", ".trash-*"):
            for leftover in self.root.glob(pattern) if self.root.is_dir() else ():
                shutil.rmtree(leftover, ignore_errors=True)
        for title in rolled_back:
            logger.warning("rolled back the Apache configuration change %r that an earlier run left unfinished", title)
        return rolled_back

    def _revert_folder(self, folder: Path) -> None:
        """Put every recorded path back, remove the folders the commit made, then delete the checkpoint."""
        checkpoint = self._read(folder)
        try:
            for before in reversed(checkpoint.before):
                _restore(folder, before)
            for directory in reversed(checkpoint.directories):
                with contextlib.suppress(OSError):  # not empty: something else lives there now
                    directory.rmdir()
            trash = self.root / f".trash-{secrets.token_hex(4)}"
            os.replace(folder, trash)
            _fsync_dir(self.root)
            shutil.rmtree(trash, ignore_errors=True)
        except OSError as err:
            raise TransactionError(
                f"rolling back the Apache checkpoint {checkpoint.title!r} failed: {err}",
                hint=f"its saved files are in {folder}; restore them by hand if the error persists",
            ) from err
        logger.info("apache checkpoint %s rolled back (%s)", checkpoint.id, checkpoint.title)


def _restore(folder: Path, before: _Before) -> None:
    """Give ``before.path`` its recorded state again, touching it only when it differs."""
    path = before.path
    now = _current(path)
    if before.kind == "absent":
        if now is not None:
            _remove(path)
    elif before.kind == "link":
        if now != Link(before.target):
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_symlink(path, before.target)
    else:
        original = (folder / "blobs" / before.blob).read_bytes()
        if isinstance(now, Link):
            _remove(path)
            now = None
        if now != original or (path.stat().st_mode & 0o7777) != before.mode:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, original, mode=before.mode, owner=(before.uid, before.gid))


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
