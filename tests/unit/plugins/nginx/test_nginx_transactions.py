"""Checkpoints: exact bytes back after rollback, created files removed, crash recovery at every step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plugins.nginx.transactions import Checkpoints, TransactionError


class Crash(BaseException):
    """Stands for a kill -9: nothing after the step runs (BaseException, so no handler catches it)."""


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    conf = tmp_path / "etc"
    conf.mkdir()
    a = conf / "a.conf"
    b = conf / "b.conf"
    a.write_bytes(b"server {\r\n  listen 80;\r\n}\r\n")  # CRLF and no final newline in b
    b.write_bytes(b"# b\n\xff\xfe raw bytes")
    os.chmod(b, 0o640)
    return a, b, conf / "new.conf"


def test_commit_then_rollback_restores_bytes_modes_and_removes_created_files(tmp_path: Path) -> None:
    a, b, new = _files(tmp_path)
    before = {p: p.read_bytes() for p in (a, b)}
    checkpoints = Checkpoints(tmp_path / "work" / "nginx-checkpoints")
    checkpoint = checkpoints.commit("install", {a: b"changed a", b: b"changed b", new: b"created"})
    assert a.read_bytes() == b"changed a" and new.read_bytes() == b"created"
    assert oct(b.stat().st_mode & 0o777) == oct(0o640), "a rewrite keeps the file's mode"
    assert set(checkpoint.files) == {a, b, new}
    assert [c.title for c in checkpoints.entries()] == ["install"]

    rolled = checkpoints.rollback(1)
    assert [c.title for c in rolled] == ["install"]
    assert {p: p.read_bytes() for p in (a, b)} == before
    assert not new.exists()
    assert oct(b.stat().st_mode & 0o777) == oct(0o640)
    assert checkpoints.entries() == []


def test_unchanged_files_are_not_touched_and_an_empty_commit_saves_nothing(tmp_path: Path) -> None:
    a, _, _ = _files(tmp_path)
    inode = a.stat().st_ino
    checkpoints = Checkpoints(tmp_path / "cp")
    checkpoint = checkpoints.commit("noop", {a: a.read_bytes()})
    assert checkpoint.files == ()
    assert a.stat().st_ino == inode
    assert checkpoints.entries() == []


def test_rollback_of_several_checkpoints_goes_newest_first(tmp_path: Path) -> None:
    a, _, _ = _files(tmp_path)
    original = a.read_bytes()
    checkpoints = Checkpoints(tmp_path / "cp")
    checkpoints.commit("one", {a: b"1"})
    checkpoints.commit("two", {a: b"2"})
    checkpoints.commit("three", {a: b"3"})
    checkpoints.rollback(1)
    assert a.read_bytes() == b"2"
    checkpoints.rollback(2)
    assert a.read_bytes() == original


def test_rollback_of_more_than_saved_reverts_nothing(tmp_path: Path) -> None:
    a, _, _ = _files(tmp_path)
    checkpoints = Checkpoints(tmp_path / "cp")
    checkpoints.commit("one", {a: b"1"})
    with pytest.raises(TransactionError, match="only 1 saved"):
        checkpoints.rollback(2)
    assert a.read_bytes() == b"1"


def test_temporary_checkpoints_are_not_rolled_back_by_count(tmp_path: Path) -> None:
    a, b, _ = _files(tmp_path)
    original_b = b.read_bytes()
    checkpoints = Checkpoints(tmp_path / "cp")
    checkpoints.commit("install", {a: b"installed"})
    temporary = checkpoints.commit("challenge", {b: b"challenge"}, temporary=True)
    assert [c.title for c in checkpoints.entries(temporary=False)] == ["install"]
    checkpoints.revert([temporary.id])
    assert b.read_bytes() == original_b
    assert a.read_bytes() == b"installed"


@pytest.mark.parametrize("crash_at", ["snapshot", "write-first", "write-second", "done"])
def test_recover_after_a_crash_at_each_step_restores_the_original(tmp_path: Path, crash_at: str) -> None:
    a, b, new = _files(tmp_path)
    before = {p: p.read_bytes() for p in (a, b)}
    steps: list[str] = []

    def step(name: str) -> None:
        steps.append(name)
        label = {"snapshot": "snapshot", "write-first": f"write {a}", "write-second": f"write {b}",
                 "done": "done"}[crash_at]
        if name == label:
            raise Crash(name)

    root = tmp_path / "cp"
    with pytest.raises(Crash):
        Checkpoints(root, step=step).commit("install", {a: b"A", b: b"B", new: b"N"})
    # a new process: the crashed one's pid is gone, which the manifest records
    _pretend_dead(root)
    rolled_back = Checkpoints(root).recover()
    assert rolled_back == ["install"]
    assert {p: p.read_bytes() for p in (a, b)} == before
    assert not new.exists()
    assert not (root / "in-progress").exists()
    assert Checkpoints(root).entries() == []


def _pretend_dead(root: Path) -> None:
    for manifest in root.glob("*/manifest.json"):
        data = json.loads(manifest.read_text())
        data["pid"] = 2**22 + 12345  # above pid_max's default: no such process
        manifest.write_text(json.dumps(data))


def test_confirmed_checkpoints_survive_recovery_and_pending_ones_of_live_processes_too(tmp_path: Path) -> None:
    a, b, _ = _files(tmp_path)
    root = tmp_path / "cp"
    checkpoints = Checkpoints(root)
    confirmed = checkpoints.commit("confirmed", {a: b"A"})
    checkpoints.commit("pending, this process", {b: b"B"})
    checkpoints.confirm([confirmed.id])
    assert Checkpoints(root).recover() == []  # the pending one belongs to this live process
    assert b.read_bytes() == b"B"
    _pretend_dead(root)
    assert Checkpoints(root).recover() == ["pending, this process"]
    assert a.read_bytes() == b"A"
    assert [c.title for c in Checkpoints(root).entries()] == ["confirmed"]


def test_an_unreadable_manifest_is_reported_with_its_folder(tmp_path: Path) -> None:
    a, _, _ = _files(tmp_path)
    root = tmp_path / "cp"
    checkpoint = Checkpoints(root).commit("one", {a: b"1"})
    (root / checkpoint.id / "manifest.json").write_text("{not json")
    with pytest.raises(TransactionError, match=checkpoint.id):
        Checkpoints(root).rollback(1)
