"""What the in-process CLI tests (test_cli_*.py) share: running the CLI against a temporary tree of
directories, and installing a plugin distribution on ``sys.path`` the way pip would."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from letsencrypt.cli import _build, main
from letsencrypt.cli._context import registry
from letsencrypt.plugin_api import ENTRY_POINT_GROUP

SERVER = "https://ca.test/directory"


def dirs(tmp_path: Path) -> list[str]:
    return ["--config-dir", str(tmp_path / "config"), "--work-dir", str(tmp_path / "work"),
            "--logs-dir", str(tmp_path / "logs"), "-n"]


def invoke(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(_build(), [*args, *dirs(tmp_path)], catch_exceptions=False)


def run_main(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real entry point: errors become ``Error: ...`` / ``Hint: ...`` and an exit status."""
    try:
        main([*args, *dirs(tmp_path)])
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@contextlib.contextmanager
def installed_plugin(site: Path, monkeypatch: pytest.MonkeyPatch, distribution: str, version: str,
                     entry_point: str, module: str, source: str) -> Iterator[None]:
    """``distribution`` (a ``*.dist-info`` with the entry point ``entry_point``, e.g.
    ``"name = module:Class"``, and ``module``.py holding ``source``) on ``sys.path`` in ``site``; the
    plugin registry is cleared on the way in and out, and the module forgotten on the way out."""
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point}\n")
    (site / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))
    registry.cache_clear()
    yield
    registry.cache_clear()
    sys.modules.pop(module, None)
