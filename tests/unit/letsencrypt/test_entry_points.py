"""The fast entry-point reader gives what importlib.metadata gives, or asks it."""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile
from pathlib import Path

import pytest

from letsencrypt.plugins import _entry_points


def _standard(group: str) -> list[tuple[str, str, str | None]]:
    return [
        (ep.name, ep.value, ep.dist.name if ep.dist else None) for ep in importlib.metadata.entry_points(group=group)
    ]


def _ours(group: str) -> list[tuple[str, str, str | None]]:
    return [
        (ep.name, ep.value, ep.dist.name if hasattr(ep, "dist") and ep.dist else getattr(ep, "distribution", None))
        for ep in _entry_points.entry_points(group)
    ]


@pytest.mark.parametrize("group", ["letsencrypt.plugins", "console_scripts", "pytest11", "no.such.group"])
def test_same_as_importlib_metadata_on_this_environment(group: str) -> None:
    assert _ours(group) == _standard(group)


def _dist(root: Path, dirname: str, name: str, entry_points: str | None) -> None:
    info = root / dirname
    info.mkdir(parents=True)
    (info / ("PKG-INFO" if dirname.endswith(".egg-info") else "METADATA")).write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\nName: not-this-one\n"
    )
    if entry_points is not None:
        (info / "entry_points.txt").write_text(entry_points)


def test_same_as_importlib_metadata_on_a_made_up_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(
        first,
        "Alpha_Plugins-1.0.dist-info",
        "Alpha.Plugins",
        "# comment\n[letsencrypt.plugins]\nalpha = alpha.mod:Plugin\n beta=beta.mod:Outer.Inner [extra]\n"
        "[console_scripts]\nalpha = alpha:main\n",
    )
    _dist(first, "noentry-2.0.dist-info", "noentry", None)
    _dist(first, "gamma.egg-info", "gamma", "[letsencrypt.plugins]\ngamma = gamma:G\n")
    _dist(second, "alpha_plugins-0.9.dist-info", "alpha-plugins", "[letsencrypt.plugins]\nold = old:Old\n")  # shadowed
    _dist(second, "delta-3.dist-info", "delta", "[letsencrypt.plugins]\ndelta = delta:D\nalpha = delta:Alpha\n")
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), str(second)])
    for group in ("letsencrypt.plugins", "console_scripts"):
        assert _ours(group) == _standard(group)
    assert [ep.name for ep in _entry_points._read("letsencrypt.plugins")] == [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "alpha",
    ]
    assert _entry_points._read("letsencrypt.plugins")[0].distribution == "Alpha.Plugins"


def test_a_zip_on_the_path_is_left_to_importlib_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.0\n")
        zipped.writestr("zipped-1.0.dist-info/entry_points.txt", "[letsencrypt.plugins]\nzipped = zipped:Z\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    with pytest.raises(_entry_points._Unsupported):
        _entry_points._read("letsencrypt.plugins")
    assert _ours("letsencrypt.plugins") == [("zipped", "zipped:Z", "zipped")] == _standard("letsencrypt.plugins")


def test_load_imports_the_module_and_walks_attributes() -> None:
    entry_point = _entry_points.InstalledEntryPoint("x", "os.path:join [extra]", "g", "d")
    import os.path

    assert entry_point.load() is os.path.join
    assert _entry_points.InstalledEntryPoint("m", "json", "g", "d").load() is sys.modules["json"]
    with pytest.raises(ModuleNotFoundError):
        _entry_points.InstalledEntryPoint("bad", "no_such_module_xyz:thing", "g", "d").load()


@pytest.mark.parametrize(("name", "expected"), [("Foo.Bar_baz", "foo-bar-baz"), ("a--b", "a-b"), ("x", "x")])
def test_normalized_names(name: str, expected: str) -> None:
    assert _entry_points.normalized(name) == expected
