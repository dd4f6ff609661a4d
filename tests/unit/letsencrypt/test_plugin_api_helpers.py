"""The plugin contract's helper submodules: atomic files, checkpoints, probes, challenge solutions.

The nginx and Apache plugins' own tests drive these through their ``Checkpoints``; here is what a
third-party installer relies on directly.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from plugin_fakes import make_task

from letsencrypt.plugin_api import ChallengeSetupError, MisconfigurationError
from letsencrypt.plugin_api.checkpoints import Checkpoints, TransactionError
from letsencrypt.plugin_api.files import Link, atomic_write, current
from letsencrypt.plugin_api.probes import children, pid_alive, process_exists, wait_until
from letsencrypt.plugin_api.solutions import dvsni_solution


def test_atomic_write_keeps_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "f.conf"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f.conf"]


def test_commit_writes_private_files_0600_and_rollback_removes_them(tmp_path: Path) -> None:
    key, conf = tmp_path / "key.pem", tmp_path / "site.conf"
    checkpoints = Checkpoints(tmp_path / "cp", server="Example")
    checkpoint = checkpoints.commit("install", {key: b"KEY", conf: b"CONF"}, private=[key])
    assert key.stat().st_mode & 0o777 == 0o600
    assert set(checkpoint.files) == {key, conf}
    checkpoints.rollback()
    assert current(key) is None and current(conf) is None


def test_messages_name_the_server(tmp_path: Path) -> None:
    with pytest.raises(TransactionError, match="cannot roll back 1 Example checkpoint"):
        Checkpoints(tmp_path / "cp", server="Example").rollback()


def test_a_checkpoint_of_the_first_nginx_format_is_still_rolled_back(tmp_path: Path) -> None:
    kept, created = tmp_path / "a.conf", tmp_path / "new.conf"
    kept.write_bytes(b"changed")
    created.write_bytes(b"created")
    folder = tmp_path / "cp" / "000001"
    (folder / "blobs").mkdir(parents=True)
    (folder / "blobs" / "0").write_bytes(b"original")
    manifest = {"format": 1, "title": "install", "temporary": False, "pending": False, "pid": 1, "created_at": 0.0,
                "saved": [{"path": str(kept), "blob": "0", "mode": 0o640, "uid": os.getuid(), "gid": os.getgid()}],
                "created": [str(created)]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert [c.title for c in Checkpoints(tmp_path / "cp", server="nginx").rollback()] == ["install"]
    assert kept.read_bytes() == b"original" and kept.stat().st_mode & 0o777 == 0o640
    assert not created.exists()


def test_symlinks_are_recorded_and_restored_as_links(tmp_path: Path) -> None:
    link = tmp_path / "enabled.conf"
    link.symlink_to("available.conf")
    checkpoints = Checkpoints(tmp_path / "cp", server="Example")
    checkpoints.commit("unlink", {link: None})
    assert current(link) is None
    checkpoints.rollback()
    assert current(link) == Link("available.conf")


def test_wait_until_gives_the_callers_hint() -> None:
    with pytest.raises(MisconfigurationError, match="waiting for the thing: not yet") as raised:
        wait_until(lambda: "not yet", 0.01, "the thing", hint="see the log")
    assert raised.value.hint == "see the log"


def test_process_checks() -> None:
    child = subprocess.Popen(["true"])
    try:
        assert child.pid in children(os.getpid())
        deadline = 100
        while pid_alive(child.pid) and deadline:  # exits, then is a zombie until reaped
            deadline -= 1
            subprocess.run(["sleep", "0.01"], check=True)
        assert process_exists(child.pid) and not pid_alive(child.pid)
    finally:
        child.wait()
    assert not process_exists(child.pid)
    assert process_exists(os.getpid()) and pid_alive(os.getpid())


def test_dvsni_solution_reports_a_challenge_without_its_fields() -> None:
    with pytest.raises(ChallengeSetupError, match=r"dvsni challenge for example\.com lacks r or nonce"):
        dvsni_solution(make_task("example.com", "dvsni"))
