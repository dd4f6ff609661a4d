"""The typed tree over Augeas: reading (shape, words, lines, odd file names, any bytes) and editing
(each edit changes only its own lines, nodes go stale, saves follow symlinks, errors name the file)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.apache import ConfigTree, Directive, Section, StaleNodeError, TreeError, UnreadableFileError
from plugins.apache.tree import augeas_path

SITE = b"""\
# A site
<VirtualHost *:80 [::1]:80>
    ServerName a.example.com
    ServerAlias "b.example.com" \\
        c.example.com

    <Directory /var/www/a>
        Require all granted
    </Directory>
    # the end
</VirtualHost>


Listen 8080
"""


@pytest.fixture
def tree() -> Iterator[ConfigTree]:
    with ConfigTree() as opened:
        yield opened


def write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def test_reading_gives_typed_nodes_with_words_and_lines(tree: ConfigTree, tmp_path: Path) -> None:
    file = write(tmp_path / "site.conf", SITE)
    loaded = tree.load([file])[0]
    vhost, listen = loaded.children
    assert isinstance(vhost, Section) and isinstance(listen, Directive)
    assert (vhost.name, vhost.args, vhost.line, vhost.end_line) == ("VirtualHost", ("*:80", "[::1]:80"), 2, 11)
    name, alias, directory = vhost.children
    assert (name.name, name.args, name.line) == ("ServerName", ("a.example.com",), 3)
    assert alias.args == ('"b.example.com"', "c.example.com") and alias.words == ["b.example.com", "c.example.com"]
    assert alias.line == 4
    assert isinstance(directory, Section) and (directory.line, directory.end_line) == (7, 9)
    assert (listen.line, listen.words) == (14, ["8080"])
    assert [node.name for node in loaded.walk()] == ["VirtualHost", "ServerName", "ServerAlias", "Directory",
                                                    "Require", "Listen"]
    assert loaded.nodes[vhost.path] is vhost and vhost.path == augeas_path(file) + "/VirtualHost"


def test_files_are_parsed_once(tree: ConfigTree, tmp_path: Path) -> None:
    file = write(tmp_path / "a.conf", b"Listen 80\n")
    first = tree.load([file])[0]
    assert tree.load([file, file])[0] is first
    assert tree.files == [file]


@pytest.mark.parametrize("name", ["with blank.conf", "we[i]rd (1)*'\".conf", "eq=and,comma!.conf", "back\\slash.conf"])
def test_odd_file_names(tree: ConfigTree, tmp_path: Path, name: str) -> None:
    file = write(tmp_path / "d i r" / name, b"ServerAdmin a@example.com\n")
    node = tree.load([file])[0].children[0]
    assert node.words == ["a@example.com"] and node.line == 1
    tree.set_args(node, ["b@example.com"])
    assert tree.save() == [file]
    assert Path(file).read_bytes() == b"ServerAdmin b@example.com\n"


def test_bytes_that_are_not_utf8_survive(tree: ConfigTree, tmp_path: Path) -> None:
    directory = os.fsencode(tmp_path)
    raw = directory + b"/caf\xe9.conf"
    with open(raw, "wb") as handle:
        handle.write(b"# \xe9t\xe9\nServerAdmin caf\xe9@example.com\n")
    file = os.fsdecode(raw)
    node = tree.load([file])[0].children[0]
    assert node.words == ["caf\udce9@example.com"]
    tree.set_args(node, [node.args[0].replace("caf", "th")])
    tree.save()
    with open(raw, "rb") as handle:
        assert handle.read() == b"# \xe9t\xe9\nServerAdmin th\xe9@example.com\n"


def test_parse_errors_name_the_file_line_and_column(tree: ConfigTree, tmp_path: Path) -> None:
    good = write(tmp_path / "good.conf", b"Listen 80\n")
    bad = write(tmp_path / "bad.conf", b"Listen 80\n<VirtualHost *:80>\n    ServerName a\n</VirtualHost >\n")
    with pytest.raises(UnreadableFileError) as caught:
        tree.load([good, bad])
    error = caught.value
    assert (error.file, error.line, error.column) == (bad, 4, 14)
    assert f"{bad}:4:14" in error.message and error.hint


def test_edits_change_only_their_lines(tree: ConfigTree, tmp_path: Path) -> None:
    file = write(tmp_path / "site.conf", SITE)
    vhost = tree.load([file])[0].children[0]
    assert isinstance(vhost, Section)
    name = vhost.children[0]
    added = tree.add_directive(vhost, "SSLEngine", ["on"], after=name)
    assert added.name == "SSLEngine" and added.line == 0  # not saved yet
    vhost = tree.file(file).children[0]
    assert isinstance(vhost, Section)
    tree.add_directive(vhost, "Header", ["set", "X", '"a b"'], before=vhost.children[0])
    vhost = tree.file(file).children[0]
    assert isinstance(vhost, Section)
    tree.set_args(vhost.children[3], ['"b.example.com"', "c.example.com", "d.example.com"])
    listen = tree.file(file).children[1]
    tree.remove(listen)
    assert tree.edited == [file]
    assert tree.save() == [file]
    assert tree.edited == []
    expected = SITE.replace(b"    ServerName a.example.com\n",
                            b'    Header set X "a b"\n    ServerName a.example.com\n    SSLEngine on\n')
    expected = expected.replace(b"c.example.com\n", b"c.example.com d.example.com\n")
    expected = expected.replace(b"Listen 8080\n", b"")
    assert Path(file).read_bytes() == expected
    reread = tree.file(file).children[0]
    assert isinstance(reread, Section) and reread.children[2].line == 5  # lines of the saved text


def test_new_sections_and_args_of_sections(tree: ConfigTree, tmp_path: Path) -> None:
    file = write(tmp_path / "a.conf", b"Listen 80\n")
    top = tree.load([file])[0]
    section = tree.add_section(top, "IfModule", ["mod_ssl.c"])
    made = tree.add_section(section, "VirtualHost", ["*:443"])
    tree.add_directive(made, "ServerName", ["a.example.com"])
    current = tree.file(file).nodes[made.path]
    changed = tree.set_args(current, ["*:443", "[::]:443"])
    assert isinstance(changed, Section) and changed.args == ("*:443", "[::]:443")
    tree.set_args(changed, ["*:8443"])
    tree.save()
    assert Path(file).read_text() == ("Listen 80\n<IfModule mod_ssl.c>\n<VirtualHost *:8443>\n"
                                      "    ServerName a.example.com\n</VirtualHost>\n</IfModule>\n")


def test_nodes_of_an_edited_file_go_stale(tree: ConfigTree, tmp_path: Path) -> None:
    file = write(tmp_path / "a.conf", b"Listen 80\nListen 81\n")
    first, second = tree.load([file])[0].children
    tree.remove(first)
    with pytest.raises(StaleNodeError):
        tree.remove(second)  # its path now names another node
    with pytest.raises(StaleNodeError):
        _ = second.line
    assert tree.file(file).children[0].words == ["81"]


def test_no_loading_while_edits_are_pending(tree: ConfigTree, tmp_path: Path) -> None:
    file = write(tmp_path / "a.conf", b"Listen 80\n")
    other = write(tmp_path / "b.conf", b"Listen 81\n")
    tree.remove(tree.load([file])[0].children[0])
    with pytest.raises(TreeError, match="pending"):
        tree.load([other])
    assert tree.discard() == [file]
    assert tree.file(file).children[0].words == ["80"]
    tree.load([other])


def test_saving_follows_symlinks_and_keeps_the_mode(tree: ConfigTree, tmp_path: Path) -> None:
    target = write(tmp_path / "sites-available" / "a.conf", b"Listen 80\n")
    os.chmod(target, 0o640)
    link = tmp_path / "sites-enabled" / "a.conf"
    link.parent.mkdir()
    link.symlink_to("../sites-available/a.conf")
    node = tree.load([str(link)])[0].children[0]
    tree.set_args(node, ["8080"])
    tree.save()
    assert link.is_symlink() and Path(target).read_text() == "Listen 8080\n"
    assert os.stat(target).st_mode & 0o777 == 0o640


def test_a_new_file(tree: ConfigTree, tmp_path: Path) -> None:
    file = str(tmp_path / "new.conf")
    created = tree.add_file(file)
    tree.add_directive(created, "Listen", ["443"])
    assert tree.save() == [file]
    assert Path(file).read_text() == "Listen 443\n"
    with pytest.raises(TreeError):
        tree.add_file(file)


def test_a_change_the_lens_cannot_write_fails_and_writes_nothing(tree: ConfigTree, tmp_path: Path) -> None:
    file = write(tmp_path / "a.conf", b"ServerAdmin a@example.com\n")
    tree.set_args(tree.load([file])[0].children[0], ["two words"])
    with pytest.raises(TreeError, match=r"a\.conf"):
        tree.save()
    assert Path(file).read_bytes() == b"ServerAdmin a@example.com\n"


def test_anchors_must_be_children_of_the_parent(tree: ConfigTree, tmp_path: Path) -> None:
    file = write(tmp_path / "a.conf", SITE)
    loaded = tree.load([file])[0]
    vhost = loaded.children[0]
    assert isinstance(vhost, Section)
    with pytest.raises(TreeError, match="not a child"):
        tree.add_directive(loaded, "Listen", ["81"], after=vhost.children[0])


def test_removing_or_inserting_keeps_the_formatting_of_other_directives(tree: ConfigTree, tmp_path: Path) -> None:
    # Augeas hands a node's original formatting to the next node with the same label: with the
    # stock lens (every directive labelled "directive") both edits below re-formatted B and C.
    file = write(tmp_path / "a.conf", b"A x\n        B   y\n\tC\t\\\n  z\n<X>\n  D 1\n</X>\n")
    tree.remove(tree.load([file])[0].children[0])
    section = tree.file(file).children[-1]
    assert isinstance(section, Section)
    tree.add_directive(section, "E", ["2"], before=section.children[0])
    tree.save()
    assert Path(file).read_bytes() == b"        B   y\n\tC\t\\\n  z\n<X>\n    E 2\n  D 1\n</X>\n"


def test_names_that_cannot_be_nodes(tree: ConfigTree, tmp_path: Path) -> None:
    top = tree.load([write(tmp_path / "a.conf", b"Listen 80\n")])[0]
    for name in ("arg", "Wordlist", "1abc", "a b", "<X"):
        with pytest.raises(TreeError, match="cannot be the name"):
            tree.add_directive(top, name, [])
