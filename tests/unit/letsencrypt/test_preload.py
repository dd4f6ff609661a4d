"""Start-up: what a run imports, ``_lazy`` (import on first use), ``_preload`` (import while waiting)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt import _preload
from letsencrypt.acme._lazy import lazy_module

# What certonly --standalone must not import before it needs them (each costs 1 to 45 ms per run).
HEAVY = (
    "cryptography.x509", "cryptography.hazmat.primitives.serialization", "josepy", "email.utils", "requests",
    "importlib.metadata", "logging.handlers", "subprocess", "tempfile", "argparse", "shutil", "signal",
)


def test_certonly_start_up_imports_none_of_the_heavy_modules() -> None:
    code = (
        "import sys\n"
        "import letsencrypt.cli, letsencrypt.cli._context as context\n"
        "context.scope_plugins_to(['certonly', '--standalone'])\n"
        "import letsencrypt.cli._obtain_cmds, letsencrypt.plugins.standalone\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert found.stdout.strip() == "[]", found.stderr


@pytest.fixture
def fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module nobody imported yet (a name unique to this test), which records the thread importing it."""
    name = f"preload_probe_{id(tmp_path)}"
    (tmp_path / f"{name}.py").write_text("import threading\nIMPORTED_ON = threading.current_thread().name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_preload_imports_on_its_own_thread_and_restores_the_switch_interval(fake_module: str) -> None:
    before = sys.getswitchinterval()
    thread = _preload.preload(fake_module)
    assert thread is not None and thread.name == _preload.THREAD_NAME and thread.daemon
    _preload.finish()
    assert sys.modules[fake_module].IMPORTED_ON == _preload.THREAD_NAME
    assert sys.getswitchinterval() == before


def test_preload_of_imported_modules_starts_nothing() -> None:
    assert _preload.preload("json", "os") is None


def test_a_failed_preload_is_only_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "preload_broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.DEBUG, logger="letsencrypt._preload"):
        _preload.preload("preload_broken")
        _preload.finish()
    assert "preloading preload_broken failed" in caplog.text
    with pytest.raises(RuntimeError, match="broken on purpose"):  # the main thread's import says why
        __import__("preload_broken")
    sys.modules.pop("preload_broken", None)


def test_the_main_thread_waits_for_a_module_the_preload_is_importing(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    monkeypatch.setattr(sys.modules[__name__], "_STARTED", started, raising=False)
    monkeypatch.setattr(sys.modules[__name__], "_RELEASE", release, raising=False)
    (tmp_path / "preload_slow.py").write_text(
        f"import sys\nprobe = sys.modules[{__name__!r}]\nprobe._STARTED.set()\nprobe._RELEASE.wait(10)\nVALUE = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        _preload.preload("preload_slow")
        assert started.wait(10)
        lazy = lazy_module("preload_slow")
        threading.Timer(0.05, release.set).start()
        assert lazy.VALUE == 42  # waited for the preload thread, did not import the module twice
    finally:
        release.set()
        _preload.finish()
        sys.modules.pop("preload_slow", None)


def test_lazy_module_imports_on_first_read_and_caches(fake_module: str) -> None:
    lazy = lazy_module(fake_module)
    assert fake_module not in sys.modules
    assert "imported on first use" in repr(lazy)
    assert threading.current_thread().name == lazy.IMPORTED_ON
    assert fake_module in sys.modules and "IMPORTED_ON" in vars(lazy)
    with pytest.raises(AttributeError):
        _ = lazy.missing
