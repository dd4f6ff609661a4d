"""The webroot authenticator writes its challenge files and removes exactly what it created."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from plugin_fakes import RecordingReporter, make_context, make_task

from letsencrypt.acme.messages import Identifier
from letsencrypt.plugin_api import MisconfigurationError, NotSupported
from letsencrypt.plugins.webroot import WebrootAuthenticator


def _tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def _plugin(tmp_path: Path, **options: object) -> WebrootAuthenticator:
    plugin = WebrootAuthenticator(make_context(tmp_path, options))
    plugin.prepare()
    return plugin


def test_writes_the_key_authorization_readable_by_the_web_server(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    plugin = _plugin(tmp_path, path=(root,))
    task = make_task("example.com")

    assert plugin.perform([task]) == [{}]
    written = root / ".well-known" / "acme-challenge" / task.token
    assert written.read_bytes() == task.http01_body
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o755

    plugin.cleanup([task])
    assert _tree(root) == set()


def test_keeps_a_pre_existing_well_known_and_other_files(tmp_path: Path) -> None:
    root = tmp_path / "www"
    (root / ".well-known").mkdir(parents=True)
    (root / ".well-known" / "security.txt").write_text("Contact: mailto:security@example.com\n")
    before = _tree(root)
    plugin = _plugin(tmp_path, path=(root,))
    first, second = make_task("example.com"), make_task("www.example.com")

    plugin.perform([first, second])
    assert {f".well-known/acme-challenge/{t.token}" for t in (first, second)} <= _tree(root)
    plugin.cleanup([first])
    assert f".well-known/acme-challenge/{second.token}" in _tree(root)  # the directory is still in use
    plugin.cleanup([second])
    assert _tree(root) == before


def test_keeps_a_pre_existing_challenge_directory(tmp_path: Path) -> None:
    root = tmp_path / "www"
    (root / ".well-known" / "acme-challenge").mkdir(parents=True)
    plugin = _plugin(tmp_path, path=(root,))
    task = make_task("example.com")
    plugin.perform([task])
    plugin.cleanup([task])
    assert _tree(root) == {".well-known", ".well-known/acme-challenge"}


def test_map_chooses_the_webroot_per_domain_and_path_is_the_fallback(tmp_path: Path) -> None:
    main, blog, fallback = tmp_path / "main", tmp_path / "blog", tmp_path / "fallback"
    for root in (main, blog, fallback):
        root.mkdir()
    plugin = _plugin(tmp_path, path=(fallback,), map=f'{{"example.com": "{main}", "Blog.Example.com.": "{blog}"}}')
    tasks = [make_task("example.com"), make_task("blog.example.com"), make_task("other.example")]

    plugin.perform(tasks)
    for root, task in zip((main, blog, fallback), tasks, strict=True):
        assert (root / ".well-known" / "acme-challenge" / task.token).is_file()
    plugin.cleanup(tasks)
    assert all(_tree(root) == set() for root in (main, blog, fallback))


def test_a_domain_without_webroot_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    plugin = _plugin(tmp_path, map={"example.com": str(root)})
    done, missing = make_task("example.com"), make_task("other.example")
    with pytest.raises(MisconfigurationError, match=r"no webroot given for other\.example") as caught:
        plugin.perform([done, missing])
    assert caught.value.hint is not None and "-w" in caught.value.hint
    assert _tree(root) == set()  # what perform wrote before failing is gone again


def test_prepare_rejects_a_missing_webroot(tmp_path: Path) -> None:
    plugin = WebrootAuthenticator(make_context(tmp_path, {"path": (tmp_path / "absent",)}))
    with pytest.raises(MisconfigurationError, match="does not exist"):
        plugin.prepare()


def test_a_bad_map_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MisconfigurationError, match="not valid JSON"):
        WebrootAuthenticator(make_context(tmp_path, {"map": "{example.com"}))


def test_a_challenge_file_removed_by_someone_else_is_no_error(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    context = make_context(tmp_path, {"path": (root,)})
    plugin = WebrootAuthenticator(context)
    task = make_task("example.com")
    plugin.perform([task])
    (root / ".well-known" / "acme-challenge" / task.token).unlink()  # someone else removed it
    plugin.cleanup([task])
    assert _tree(root) == set()
    assert isinstance(context.reporter, RecordingReporter)
    assert context.reporter.warnings == []


def test_only_http01(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    plugin = _plugin(tmp_path, path=(root,))
    assert plugin.supported_challenges(Identifier.dns("example.com")) == ["http-01"]
    assert plugin.supported_challenges(Identifier.ip("192.0.2.1")) == ["http-01"]
    assert plugin.supported_challenges(Identifier("dns", "*.example.com")) == []
    with pytest.raises(NotSupported):
        plugin.perform([make_task("example.com", "dns-01")])
