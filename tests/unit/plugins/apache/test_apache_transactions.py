"""Apache checkpoints: exact bytes and links back after rollback, crash recovery at every step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plugins.apache.transactions import Checkpoints, Link, TransactionError


class Crash(BaseException):
    """Stands for a kill -9: nothing after the step runs (BaseException, so no handler catches it)."""


def _layout(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "apache2"
    (root / "sites-available").mkdir(parents=True)
    (root / "sites-enabled").mkdir()
    (root / "mods-available").mkdir()
    (root / "mods-enabled").mkdir()
    site = root / "sites-available" / "site.conf"
    site.write_bytes(b"<VirtualHost *:80>\r\n  ServerName a.example\r\n</VirtualHost>")  # CRLF, no final newline
    os.chmod(site, 0o640)
    (root / "sites-enabled" / "site.conf").symlink_to("../sites-available/site.conf")
    ports = root / "ports.conf"
    ports.write_bytes(b"# ports\n\xff raw\nListen 80\n")
    (root / "mods-available" / "ssl.load").write_text("LoadModule ssl_module x.so\n")
    (root / "mods-enabled" / "old.load").symlink_to("../mods-available/old.load")
    return {"root": root, "site": site, "enabled": root / "sites-enabled" / "site.conf", "ports": ports,
            "old": root / "mods-enabled" / "old.load"}


def _state(root: Path) -> dict[str, object]:
    """Every path under ``root``: bytes and mode of files, targets of links, directories."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = ("link", os.readlink(path))
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return found


def test_commit_then_rollback_restores_files_links_and_removes_what_it_made(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    root = paths["root"]
    before = _state(root)
    new_site = root / "sites-available" / "site-le-ssl.conf"
    deep = root / "conf.d" / "letsencrypt" / "options.conf"
    checkpoints = Checkpoints(tmp_path / "work" / "apache-checkpoints")
    checkpoint = checkpoints.commit("install", {
        paths["ports"]: b"Listen 80\nListen 443\n",
        new_site: b"<VirtualHost *:443>\n</VirtualHost>\n",
        root / "sites-enabled" / "site-le-ssl.conf": Link("../sites-available/site-le-ssl.conf"),
        root / "mods-enabled" / "ssl.load": Link("../mods-available/ssl.load"),
        paths["old"]: None,
        deep: b"SSLProtocol all\n",
    })
    assert paths["ports"].read_bytes() == b"Listen 80\nListen 443\n"
    assert os.readlink(root / "mods-enabled" / "ssl.load") == "../mods-available/ssl.load"
    assert not paths["old"].is_symlink()
    assert deep.read_bytes() == b"SSLProtocol all\n"
    assert checkpoint.directories == (root / "conf.d", root / "conf.d" / "letsencrypt")
    assert [c.title for c in checkpoints.entries()] == ["install"]

    assert [c.title for c in checkpoints.rollback(1)] == ["install"]
    assert _state(root) == before
    assert checkpoints.entries() == []


def test_bytes_for_a_symlinked_site_go_to_the_file_and_the_link_stays(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    original = paths["site"].read_bytes()
    checkpoints = Checkpoints(tmp_path / "cp")
    checkpoint = checkpoints.commit("edit", {paths["enabled"]: b"edited"})
    assert checkpoint.files == (paths["site"],)
    assert paths["enabled"].is_symlink() and paths["site"].read_bytes() == b"edited"
    assert paths["site"].stat().st_mode & 0o777 == 0o640, "a rewrite keeps the file's mode"
    checkpoints.rollback()
    assert paths["site"].read_bytes() == original and paths["enabled"].is_symlink()


def test_unchanged_paths_are_not_touched_and_an_empty_commit_saves_nothing(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    inode = paths["ports"].stat().st_ino
    checkpoints = Checkpoints(tmp_path / "cp")
    checkpoint = checkpoints.commit("noop", {paths["ports"]: paths["ports"].read_bytes(),
                                             paths["old"]: Link("../mods-available/old.load")})
    assert checkpoint.files == ()
    assert paths["ports"].stat().st_ino == inode
    assert checkpoints.entries() == []


def test_rollback_of_several_goes_newest_first_and_refuses_more_than_saved(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    original = paths["ports"].read_bytes()
    checkpoints = Checkpoints(tmp_path / "cp")
    for text in (b"1", b"2", b"3"):
        checkpoints.commit(text.decode(), {paths["ports"]: text})
    checkpoints.rollback(1)
    assert paths["ports"].read_bytes() == b"2"
    with pytest.raises(TransactionError, match="only 2 saved"):
        checkpoints.rollback(3)
    assert paths["ports"].read_bytes() == b"2"
    checkpoints.rollback(2)
    assert paths["ports"].read_bytes() == original


def test_temporary_checkpoints_are_not_counted_by_rollback_and_revert_alone(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    original_site = paths["site"].read_bytes()
    checkpoints = Checkpoints(tmp_path / "cp")
    checkpoints.commit("install", {paths["ports"]: b"installed"})
    challenge = tmp_path / "work" / "challenge.conf"
    temporary = checkpoints.commit("challenge", {paths["site"]: b"with include", challenge: b"Alias ..."},
                                   temporary=True)
    assert [c.title for c in checkpoints.entries(temporary=False)] == ["install"]
    checkpoints.revert([temporary.id])
    assert paths["site"].read_bytes() == original_site
    assert not challenge.exists() and not challenge.parent.exists()
    assert paths["ports"].read_bytes() == b"installed"


def _pretend_dead(root: Path) -> None:
    for manifest in root.glob("*/manifest.json"):
        data = json.loads(manifest.read_text())
        data["pid"] = 2**22 + 12345  # above pid_max's default: no such process
        manifest.write_text(json.dumps(data))


@pytest.mark.parametrize("crash_at", ["snapshot", "write-ports", "write-link", "done"])
def test_recover_after_a_crash_at_each_step_restores_the_original(tmp_path: Path, crash_at: str) -> None:
    paths = _layout(tmp_path)
    root = paths["root"]
    before = _state(root)
    link = root / "sites-enabled" / "new.conf"
    label = {"snapshot": "snapshot", "write-ports": f"write {paths['ports']}", "write-link": f"write {link}",
             "done": "done"}[crash_at]

    def step(name: str) -> None:
        if name == label:
            raise Crash(name)

    store = tmp_path / "cp"
    with pytest.raises(Crash):
        Checkpoints(store, step=step).commit("install", {
            paths["ports"]: b"P", link: Link("../sites-available/new.conf"),
            root / "sites-available" / "new.conf": b"N"})
    _pretend_dead(store)
    assert Checkpoints(store).recover() == ["install"]
    assert _state(root) == before
    assert not (store / "in-progress").exists()
    assert Checkpoints(store).entries() == []


def test_confirmed_checkpoints_survive_recovery_and_those_of_live_processes_too(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    store = tmp_path / "cp"
    checkpoints = Checkpoints(store)
    confirmed = checkpoints.commit("confirmed", {paths["ports"]: b"A"})
    checkpoints.commit("pending", {paths["site"]: b"B"})
    checkpoints.commit("challenge", {tmp_path / "challenge.conf": b"C"}, temporary=True)
    checkpoints.confirm([confirmed.id])
    assert Checkpoints(store).recover() == []  # this process is alive
    _pretend_dead(store)
    assert Checkpoints(store).recover() == ["challenge", "pending"]
    assert paths["ports"].read_bytes() == b"A"
    assert not (tmp_path / "challenge.conf").exists()
    assert [c.title for c in Checkpoints(store).entries()] == ["confirmed"]


def test_an_interrupted_commit_blocks_the_next_until_recovered(tmp_path: Path) -> None:
    paths = _layout(tmp_path)

    def step(name: str) -> None:
        if name == "snapshot":
            raise Crash(name)

    store = tmp_path / "cp"
    with pytest.raises(Crash):
        Checkpoints(store, step=step).commit("one", {paths["ports"]: b"1"})
    with pytest.raises(TransactionError, match="interrupted"):
        Checkpoints(store).commit("two", {paths["ports"]: b"2"})
    assert Checkpoints(store).recover() == ["one"]  # this process's own interrupted commit
    Checkpoints(store).commit("two", {paths["ports"]: b"2"})
    assert paths["ports"].read_bytes() == b"2"


def test_an_unreadable_manifest_is_reported_with_its_folder(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    store = tmp_path / "cp"
    checkpoint = Checkpoints(store).commit("one", {paths["ports"]: b"1"})
    (store / checkpoint.id / "manifest.json").write_text("{not json")
    with pytest.raises(TransactionError, match=checkpoint.id):
        Checkpoints(store).rollback(1)


def test_rollback_restores_a_link_that_was_replaced_by_a_file_and_the_other_way(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    before = _state(paths["root"])
    checkpoints = Checkpoints(tmp_path / "cp")
    checkpoints.commit("swap", {paths["old"]: b"now a file", paths["ports"]: Link("elsewhere.conf")})
    assert paths["ports"].is_symlink() and paths["old"].read_bytes() == b"now a file"
    checkpoints.rollback()
    assert _state(paths["root"]) == before


def test_a_transaction_records_files_another_writer_changes_then_rolls_them_back(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    root = paths["root"]
    before = _state(root)
    checkpoints = Checkpoints(tmp_path / "cp")
    with checkpoints.transaction("install") as transaction:
        transaction.record([paths["enabled"], paths["ports"]])  # as Augeas is about to save them
        paths["site"].write_bytes(b"saved by augeas")
        transaction.write({root / "sites-enabled" / "x.conf": Link("../sites-available/x.conf")})
    assert transaction.checkpoint is not None
    assert set(transaction.checkpoint.files) == {paths["site"], paths["ports"], root / "sites-enabled" / "x.conf"}
    checkpoints.rollback()
    assert _state(root) == before


def test_an_error_inside_a_transaction_restores_everything_and_saves_nothing(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    before = _state(paths["root"])
    checkpoints = Checkpoints(tmp_path / "cp")
    with pytest.raises(RuntimeError, match="configtest"), checkpoints.transaction("install") as transaction:
        transaction.write({paths["ports"]: b"Listen 443\n", paths["root"] / "new" / "f.conf": b"x"})
        raise RuntimeError("configtest failed")
    assert _state(paths["root"]) == before
    assert checkpoints.entries() == [] and not (tmp_path / "cp" / "in-progress").exists()


def test_a_transaction_that_changes_nothing_leaves_no_checkpoint(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    checkpoints = Checkpoints(tmp_path / "cp")
    with checkpoints.transaction("noop") as transaction:
        transaction.record([paths["site"], paths["ports"]])
    assert transaction.checkpoint is not None and transaction.checkpoint.files == ()
    assert checkpoints.entries() == [] and not (tmp_path / "cp" / "in-progress").exists()


def test_a_crash_after_another_writer_changed_a_recorded_file_is_recovered(tmp_path: Path) -> None:
    paths = _layout(tmp_path)
    before = _state(paths["root"])
    store = tmp_path / "cp"
    with pytest.raises(Crash), Checkpoints(store).transaction("install") as transaction:
        transaction.record([paths["site"]])
        paths["site"].write_bytes(b"half done")
        raise Crash("kill -9")  # a BaseException: nothing after it runs, as after a real kill
    assert paths["site"].read_bytes() == b"half done"
    _pretend_dead_in_progress(store)
    assert Checkpoints(store).recover() == ["install"]
    assert _state(paths["root"]) == before


def _pretend_dead_in_progress(root: Path) -> None:
    manifest = root / "in-progress" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["pid"] = 2**22 + 12345
    manifest.write_text(json.dumps(data))
