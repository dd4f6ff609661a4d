"""Checkpoints of a server's configuration: paths as they were, crash-safe, rolled back exactly.

Role: the transaction layer a configuration-editing plugin (an installer, or an authenticator that
adds temporary configuration) writes through. Every change on disk happens inside a
:class:`Transaction`, which first records each path's state durably: a file's exact bytes, mode and
owner, a symlink's target, or that nothing was there, and the folders it makes. Rolling back
restores every path the same way, byte for byte and link for link. Bytes for a symlink to a file go
to that file (as most configuration editors save).

On disk, under ``root`` (the nginx and Apache plugins use ``<work-dir>/<server>-checkpoints``):
``000007/manifest.json`` and ``000007/blobs/N`` (a saved checkpoint and the earlier bytes of its
files), ``in-progress/`` (the transaction changing files now; a path changes only once its state is
in that manifest), ``.staging-*``/``.trash-*``.

:meth:`Checkpoints.recover` rolls back, newest first and only when the process that made them is
gone: ``in-progress``, checkpoints still ``pending`` (saved, but :meth:`Checkpoints.confirm` was not
called once the server reloaded with them) and ``temporary`` ones (challenge configuration, never
listed for ``rollback``).

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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from letsencrypt.acme.records import record
from letsencrypt.plugin_api import PluginError
from letsencrypt.plugin_api.files import (
    Content,
    Link,
    atomic_symlink,
    atomic_write,
    current,
    fsync_dir,
    missing_parents,
    remove,
    through,
    write_new,
)
from letsencrypt.plugin_api.probes import process_exists

__all__ = ["Checkpoint", "Checkpoints", "Transaction", "TransactionError"]

logger = logging.getLogger(__name__)

_IN_PROGRESS = "in-progress"
_MANIFEST = "manifest.json"
_FORMAT = 1
_NEW_DIR_MODE = 0o755


class TransactionError(PluginError):
    """A checkpoint could not be written, read or rolled back; the message names the file."""


def _no_step(_: str) -> None:
    """The production value of the ``step`` test seam (tests raise from it to simulate a crash)."""


@record
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

    def content(self, folder: Path) -> Content:
        if self.kind == "absent":
            return None
        if self.kind == "link":
            return Link(self.target)
        return (folder / "blobs" / self.blob).read_bytes()


@record
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

    def to_json(self) -> dict[str, Any]:
        return {"format": _FORMAT, "title": self.title, "temporary": self.temporary, "pending": self.pending,
                "pid": self.pid, "created_at": self.created_at, "before": [b.to_json() for b in self.before],
                "directories": [str(p) for p in self.directories]}

    @classmethod
    def from_json(cls, checkpoint_id: str, data: Mapping[str, Any]) -> Checkpoint:
        if "saved" in data:  # the nginx plugin's first format: files saved, files created
            before = [_Before(Path(s["path"]), "file", str(s["blob"]), int(s["mode"]), int(s["uid"]), int(s["gid"]))
                      for s in data["saved"]]
            before += [_Before(Path(p), "absent") for p in data["created"]]
            data = {**data, "before": [b.to_json() for b in before], "directories": []}
        return cls(
            id=checkpoint_id, title=str(data["title"]), temporary=bool(data["temporary"]),
            pending=bool(data["pending"]), pid=int(data["pid"]), created_at=float(data["created_at"]),
            before=tuple(_Before.from_json(b) for b in data["before"]),
            directories=tuple(Path(p) for p in data["directories"]),
        )


class Transaction:
    """Changes recorded before they are made; see :meth:`Checkpoints.transaction`."""

    def __init__(self, store: Checkpoints, title: str, temporary: bool) -> None:
        self._store = store
        self._title = title
        self._temporary = temporary
        self._before: dict[Path, _Before] = {}
        self._directories: list[Path] = []
        self._folder: Path | None = None
        self.checkpoint: Checkpoint | None = None

    def _checkpoint(self, checkpoint_id: str, *, empty: bool = False) -> Checkpoint:
        before, directories = ((), ()) if empty else (tuple(self._before.values()), tuple(self._directories))
        return Checkpoint(checkpoint_id, self._title, self._temporary, not empty, os.getpid(), time.time(),
                          before, directories)

    def _save_manifest(self) -> None:
        """Write the manifest (creating ``in-progress`` on first use); durable when it returns."""
        data = json.dumps(self._checkpoint(_IN_PROGRESS).to_json(), indent=1).encode()
        if self._folder is not None:
            atomic_write(self._folder / _MANIFEST, data, mode=0o600)
            return
        root = self._store.root
        if (root / _IN_PROGRESS).exists():
            raise TransactionError(
                f"an interrupted {self._store.server} configuration change is still recorded in {root / _IN_PROGRESS}",
                hint="run the command again: it rolls the interrupted change back first")
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = root / f".staging-{secrets.token_hex(4)}"
        (staging / "blobs").mkdir(parents=True, mode=0o700)
        write_new(staging / _MANIFEST, data)
        fsync_dir(staging)
        os.replace(staging, root / _IN_PROGRESS)
        fsync_dir(root)
        self._folder = root / _IN_PROGRESS

    def record(self, paths: Iterable[Path], directories: Iterable[Path] = ()) -> None:
        """Record the present state of ``paths`` (and folders about to be made) before anything changes them."""
        added = False
        for path in (through(p) for p in paths):
            if path in self._before:
                continue
            now = current(path)
            if not isinstance(now, bytes):
                self._before[path] = _Before(path, "link", target=now.target) if now else _Before(path, "absent")
            else:
                if self._folder is None:
                    self._save_manifest()
                assert self._folder is not None
                blob = str(len(self._before))
                write_new(self._folder / "blobs" / blob, now)
                status = path.stat()
                self._before[path] = _Before(path, "file", blob, status.st_mode & 0o7777, status.st_uid, status.st_gid)
            added = True
        for directory in directories:
            if directory not in self._directories:
                self._directories.append(directory)
                added = True
        if added:
            if self._folder is not None:
                fsync_dir(self._folder / "blobs")
            self._save_manifest()
            self._store.step("snapshot")

    def write(self, changes: Mapping[Path, Content], *, mode: int | None = None,
              private: Collection[Path] = ()) -> None:
        """Record, then give each path its content (bytes, :class:`Link`, None: removed).

        ``mode`` is that of the files written (default: the file's present mode, 0644 for a new one);
        files in ``private`` (keys) are written 0600.
        """
        wanted: dict[Path, Content] = {}
        modes: dict[Path, int | None] = {}
        for path, content in changes.items():
            target = through(path) if isinstance(content, bytes) else path
            if current(target) != content:
                wanted[target] = content
                modes[target] = 0o600 if path in private else mode
        folders = [d for p, c in wanted.items() if c is not None for d in missing_parents(p)]
        self.record(wanted, dict.fromkeys(folders))
        for folder in dict.fromkeys(folders):
            folder.mkdir(mode=_NEW_DIR_MODE, exist_ok=True)
        for path, content in wanted.items():
            if isinstance(content, bytes):
                atomic_write(path, content, mode=modes[path])
            elif isinstance(content, Link):
                atomic_symlink(path, content.target)
            else:
                remove(path)
            self._store.step(f"write {path}")

    def changed(self) -> bool:
        """True when some recorded path differs from its recorded state (or a folder was made)."""
        if self._directories:
            return True
        folder = self._folder or Path()  # without a folder nothing recorded is a file, so no blob is read
        return any(current(b.path) != b.content(folder) for b in self._before.values())

    def finish(self) -> Checkpoint:
        """Save the checkpoint (pending until confirmed); nothing is kept when nothing changed."""
        checkpoint_id = self._store.next_id()
        if not self.changed():
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
            self.checkpoint = self._checkpoint(checkpoint_id, empty=True)
            return self.checkpoint
        assert self._folder is not None, "a change is made only after its record is saved"
        self.checkpoint = self._checkpoint(checkpoint_id)
        atomic_write(self._folder / _MANIFEST, json.dumps(self.checkpoint.to_json(), indent=1).encode(), mode=0o600)
        os.replace(self._folder, self._store.root / checkpoint_id)
        fsync_dir(self._store.root)
        self._store.step("done")
        logger.info("%s checkpoint %s saved (%s): %s", self._store.server.lower(), checkpoint_id, self._title,
                    ", ".join(str(p) for p in self._before))
        return self.checkpoint

    def abort(self) -> None:
        """Put back everything recorded so far and forget the transaction."""
        if self._folder is not None:
            self._store.revert_folder(self._folder)
            self._folder = None


class Checkpoints:
    """The checkpoints kept in ``root`` (``<work-dir>/<server>-checkpoints``).

    ``server`` names the server in messages and logs (``"nginx"``, ``"Apache"``). ``step`` is a test
    seam called with the name of each step (``snapshot``, ``write <path>``, ``done``), so that a test
    can raise from it to simulate a crash there. Methods raise :class:`TransactionError` on I/O errors.
    """

    def __init__(self, root: Path, *, server: str, step: Callable[[str], None] = _no_step) -> None:
        self.root = root
        self.server = server
        self.step = step

    @contextlib.contextmanager
    def transaction(self, title: str, *, temporary: bool = False) -> Iterator[Transaction]:
        """A transaction saved as a checkpoint when the block ends, rolled back if the block raises."""
        transaction = Transaction(self, title, temporary)
        try:
            yield transaction
            transaction.finish()
        except OSError as err:
            transaction.abort()
            raise TransactionError(f"changing the {self.server} configuration failed: {err}",
                                   hint="check the permissions of the server root; the files were restored") from err
        except Exception:
            transaction.abort()
            raise

    def commit(self, title: str, changes: Mapping[Path, Content], *, temporary: bool = False,
               private: Collection[Path] = ()) -> Checkpoint:
        """One transaction that writes ``changes`` (``private`` files 0600); the checkpoint (empty if no change)."""
        with self.transaction(title, temporary=temporary) as transaction:
            transaction.write(changes, private=private)
        assert transaction.checkpoint is not None
        return transaction.checkpoint

    def entries(self, *, temporary: bool | None = None) -> list[Checkpoint]:
        """Saved checkpoints, oldest first; ``temporary`` filters by kind (None: both)."""
        if not self.root.is_dir():
            return []
        found = [self._read(entry) for entry in sorted(self.root.iterdir())
                 if entry.name.isdigit() and (entry / _MANIFEST).is_file()]
        return [c for c in found if temporary is None or c.temporary == temporary]

    def _read(self, folder: Path) -> Checkpoint:
        try:
            return Checkpoint.from_json(folder.name, json.loads((folder / _MANIFEST).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise TransactionError(f"the {self.server} checkpoint {folder} cannot be read: {err}",
                                   hint=f"inspect {folder}; move it away to ignore it") from err

    def next_id(self) -> str:
        numbers = [int(p.name) for p in self.root.iterdir() if p.name.isdigit()] if self.root.is_dir() else []
        return f"{max(numbers, default=0) + 1:06d}"

    def confirm(self, checkpoint_ids: Iterable[str]) -> None:
        """Mark checkpoints as no longer pending: the server runs with them, ``recover`` must keep them."""
        for folder in (self.root / checkpoint_id for checkpoint_id in checkpoint_ids):
            if (folder / _MANIFEST).is_file():
                checkpoint = dataclasses.replace(self._read(folder), pending=False)
                atomic_write(folder / _MANIFEST, json.dumps(checkpoint.to_json(), indent=1).encode(), mode=0o600)

    def rollback(self, count: int = 1) -> list[Checkpoint]:
        """Revert the last ``count`` saved (non-temporary) checkpoints, newest first; return them.

        Raises :class:`TransactionError` when fewer than ``count`` exist (nothing is reverted then).
        """
        saved = self.entries(temporary=False)
        if count > len(saved):
            raise TransactionError(
                f"cannot roll back {count} {self.server} checkpoint(s): only {len(saved)} saved in {self.root}",
                hint=f"give --checkpoints {len(saved)} or fewer" if saved else "there is nothing to roll back",
            )
        chosen = saved[len(saved) - count:]
        self.revert([c.id for c in chosen])
        return chosen

    def revert(self, checkpoint_ids: Iterable[str]) -> None:
        """Revert the given checkpoints (any kind), newest first; unknown ids are skipped."""
        for checkpoint_id in sorted(set(checkpoint_ids), reverse=True):
            if (self.root / checkpoint_id / _MANIFEST).is_file():
                self.revert_folder(self.root / checkpoint_id)

    def recover(self) -> list[str]:
        """Roll back what a crashed run left; the titles of what was rolled back.

        That is an interrupted transaction (``in-progress``), checkpoints saved but never confirmed,
        and temporary checkpoints, in each case only when the process that made them is gone.
        """
        rolled_back: list[str] = []
        in_progress = self.root / _IN_PROGRESS
        if (in_progress / _MANIFEST).is_file():
            checkpoint = self._read(in_progress)
            if checkpoint.pid == os.getpid() or not process_exists(checkpoint.pid):
                rolled_back.append(checkpoint.title)
                self.revert_folder(in_progress)
        elif in_progress.exists():  # a rename never leaves it without its manifest; be safe anyway
            shutil.rmtree(in_progress, ignore_errors=True)
        for checkpoint in reversed(self.entries()):
            if (checkpoint.pending or checkpoint.temporary) and checkpoint.pid != os.getpid() \
                    and not process_exists(checkpoint.pid):
                rolled_back.append(checkpoint.title)
                self.revert_folder(self.root / checkpoint.id)
        for pattern in (".staging-*", ".trash-*"):
            for leftover in self.root.glob(pattern) if self.root.is_dir() else ():
                shutil.rmtree(leftover, ignore_errors=True)
        for title in rolled_back:
            logger.warning("rolled back the %s configuration change %r that an earlier run left unfinished",
                           self.server, title)
        return rolled_back

    def revert_folder(self, folder: Path) -> None:
        """Put every recorded path back, remove the folders made, then delete the checkpoint folder."""
        checkpoint = self._read(folder)
        try:
            for before in reversed(checkpoint.before):
                _restore(folder, before)
            for directory in reversed(checkpoint.directories):
                with contextlib.suppress(OSError):  # not empty: something else lives there now
                    directory.rmdir()
            trash = self.root / f".trash-{secrets.token_hex(4)}"
            os.replace(folder, trash)
            fsync_dir(self.root)
            shutil.rmtree(trash, ignore_errors=True)
        except OSError as err:
            raise TransactionError(
                f"rolling back the {self.server} checkpoint {checkpoint.title!r} failed: {err}",
                hint=f"its saved files are in {folder}; restore them by hand if the error persists",
            ) from err
        logger.info("%s checkpoint %s rolled back (%s)", self.server.lower(), checkpoint.id, checkpoint.title)


def _restore(folder: Path, before: _Before) -> None:
    """Give ``before.path`` its recorded state again, touching it only when it differs."""
    path, now, then = before.path, current(before.path), before.content(folder)
    if isinstance(then, bytes):
        if isinstance(now, Link):
            remove(path)
            now = None
        if now != then or (path.stat().st_mode & 0o7777) != before.mode:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, then, mode=before.mode, owner=(before.uid, before.gid))
    elif now != then:
        if then is None:
            remove(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_symlink(path, then.target)
