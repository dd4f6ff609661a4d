"""The configuration lock: one run per --config-dir, the holder's pid in the error, no stale locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt.errors import LetsencryptError, LockError, StorageError
from letsencrypt.paths import Paths
from letsencrypt.storage import ConfigLock

REPO = Path(__file__).resolve().parents[3]
HOLDER = """
import sys, time
from pathlib import Path
from letsencrypt.storage import ConfigLock
with ConfigLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """Another process holding the lock of a configuration directory."""
    lock_file = Paths.under(tmp_path).lock_file
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout is not None
    assert child.stdout.readline() == b"locked\n"
    try:
        yield lock_file, child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        child.stdout.close()


def test_a_lock_held_elsewhere_names_the_holder(holder: tuple[Path, subprocess.Popen[bytes]]) -> None:
    lock_file, child = holder
    with pytest.raises(LockError) as info:
        ConfigLock(lock_file).acquire()
    error = info.value
    assert f"process {child.pid}" in error.message and str(lock_file.parent) in error.message
    assert error.hint is not None and str(child.pid) in error.hint
    assert isinstance(error, StorageError) and error.exit_code == 1


def test_the_lock_of_a_killed_process_does_not_block(holder: tuple[Path, subprocess.Popen[bytes]]) -> None:
    lock_file, child = holder
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert lock_file.exists()
    with ConfigLock(lock_file) as lock:
        assert lock.held
        assert lock_file.read_text().strip() == str(os.getpid())
    assert not lock.held


def test_released_on_exit_even_after_an_error(tmp_path: Path) -> None:
    lock_file = tmp_path / "config" / ".letsencrypt.lock"
    with pytest.raises(RuntimeError, match="boom"), ConfigLock(lock_file):
        with pytest.raises(LockError):  # a second lock in the same process conflicts too
            ConfigLock(lock_file).acquire()
        raise RuntimeError("boom")
    with ConfigLock(lock_file) as lock, pytest.raises(RuntimeError, match="already locked"):
        lock.acquire()
    lock.release()  # releasing twice is harmless


def test_an_unwritable_place_is_a_lock_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LockError, match="cannot open the lock file"):
        ConfigLock(tmp_path / "file" / ".letsencrypt.lock").acquire()


def test_error_text_carries_the_hint() -> None:
    error = LockError("busy", hint="wait")
    assert str(error) == "busy\nHint: wait" and error.message == "busy"
    assert str(LetsencryptError("plain")) == "plain"
    assert LetsencryptError("x", exit_code=3).exit_code == 3
