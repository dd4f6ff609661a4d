"""The corrected Httpd lens (plugins/apache/lenses/httpd.aug): each construct it adds, pinned.

Every syntax case (tests/integration/apache_corpus.py; apache2 -t accepts each, see
test_apache_discovery.py) must load and write back byte for byte, also after an edit elsewhere
in the file; the cases marked ``stock_rejects`` must fail with Augeas's own lens, which is why we
carry ours. The lens must pass Augeas's type check (no ambiguity), and the trees it builds keep
the stock lens's shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration.apache_corpus import KNOWN_GAPS, REJECTED, SYNTAX_CASES

from plugins.apache import LENS_DIR, ConfigTree, Directive, Section, UnreadableFileError
from plugins.apache._augeas import NO_LOAD, NO_MODL_AUTOLOAD, TYPE_CHECK, AugeasHandle

STOCK_LENSES = Path("/usr/share/augeas/lenses/dist")


def write(tmp_path: Path, data: bytes, name: str = "case.conf") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_the_lens_passes_augeas_type_check() -> None:
    aug = AugeasHandle(str(LENS_DIR), NO_MODL_AUTOLOAD | NO_LOAD | TYPE_CHECK)
    try:
        aug.set("/augeas/load/Httpd/lens", "Httpd.lns")
        aug.set("/augeas/load/Httpd/incl", "/nonexistent/file.conf")
        aug.load()
        assert aug.get("/augeas/load/Httpd/error") is None
    finally:
        aug.close()


@pytest.mark.parametrize("name", sorted(SYNTAX_CASES))
def test_each_syntax_case_loads_and_writes_back_unchanged(name: str, tmp_path: Path) -> None:
    data = SYNTAX_CASES[name].text
    file = write(tmp_path, data)
    with ConfigTree() as tree:
        loaded = tree.load([file])[0]
        tree.add_file(str(tmp_path / "other.conf"))  # an edit elsewhere makes Augeas save
        tree.add_directive(tree.file(str(tmp_path / "other.conf")), "ServerAdmin", ["b@example.com"])
        assert tree.save() == [str(tmp_path / "other.conf")]
        assert Path(file).read_bytes() == data
        if loaded.children:  # an edit in the file itself changes only its own line
            tree.add_comment(tree.file(file), "added", after=tree.file(file).children[-1])
            tree.save()
            edited = Path(file).read_bytes().replace(b"# added\n", b"")
            if name == "mixed_case_close":  # Augeas writes the closing tag in the opening tag's case
                edited = edited.replace(b"</ifmodule>", b"</IfModule>")
            assert edited in (data, data + b"\n")


@pytest.mark.skipif(not (STOCK_LENSES / "httpd.aug").exists(), reason="needs augeas-lenses (the stock Httpd lens)")
@pytest.mark.parametrize("name", sorted(name for name, case in SYNTAX_CASES.items() if case.stock_rejects))
def test_the_stock_lens_rejects_what_ours_adds(name: str, tmp_path: Path) -> None:
    file = write(tmp_path, SYNTAX_CASES[name].text)
    with ConfigTree(lens_dir=STOCK_LENSES) as stock, pytest.raises(UnreadableFileError):
        stock.load([file])
    with ConfigTree() as ours:
        ours.load([file])


@pytest.mark.parametrize("name", sorted(KNOWN_GAPS))
def test_known_gaps_stop_with_file_and_line(name: str, tmp_path: Path) -> None:
    file = write(tmp_path, KNOWN_GAPS[name])
    with ConfigTree() as tree, pytest.raises(UnreadableFileError) as caught:
        tree.load([file])
    assert caught.value.file == file
    assert caught.value.line >= 1
    assert f"{file}:{caught.value.line}" in str(caught.value)


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_what_apache_rejects_the_lens_rejects(name: str, tmp_path: Path) -> None:
    with ConfigTree() as tree, pytest.raises(UnreadableFileError):
        tree.load([write(tmp_path, REJECTED[name])])


def read(tmp_path: Path, data: bytes) -> list[Directive | Section]:
    with ConfigTree() as tree:
        return tree.load([write(tmp_path, data)])[0].children


def test_ifversion_operators_are_arguments(tmp_path: Path) -> None:
    greater, not_greater_equal, plain = read(tmp_path, b"<IfVersion > 2.3>\n</IfVersion>\n<IfVersion !>= 3>\n"
                                             b"</IfVersion>\n<Directory \"/a\" >\n</Directory>\n")
    assert greater.args == (">", "2.3")
    assert not_greater_equal.args == ("!>=", "3")
    assert plain.args == ('"/a"',)  # the '>' after a blank still closes the line


def test_section_arguments_with_quotes_and_unclosed_quotes(tmp_path: Path) -> None:
    module, location = read(tmp_path, SYNTAX_CASES["ifmodule_quotes_inside"].text
                            + SYNTAX_CASES["section_unclosed_quote"].text)
    assert module.args == ('mod_rewrite.c=""',)
    assert location.args == ("~", '"/(.+)/adm')
    assert location.words == ["~", "/(.+)/adm"]


def test_brace_arguments_json_and_word_lists(tmp_path: Path) -> None:
    json_value, empty, tight, spaced = read(
        tmp_path, b'Header set NEL {"report_to":"default","max_age":1}\nHeader set X {}\n'
        b'SSLRequire %{SSL_CIPHER} in {"a","b"}\nSSLRequire %{SSL_CIPHER} in {"a", "b"}\n')
    assert json_value.args[-1] == '{"report_to":"default","max_age":1}'
    assert empty.args[-1] == "{}"
    assert tight.args[-1] == '{"a","b"}'  # one word, as Apache's tokenizer reads it
    assert spaced.args[-1] == '{"a","b"}'  # a stock-shaped wordlist node, read back as one word


def test_continuation_lines_join_as_apache_joins_them(tmp_path: Path) -> None:
    admin, signature = read(tmp_path, SYNTAX_CASES["continuation_as_indentation"].text)
    assert (admin.name, signature.name) == ("ServerAdmin", "ServerSignature")
    header, = read(tmp_path, SYNTAX_CASES["continued_directive"].text)
    assert header.words == ["set", "X-Long", "one two", "early"]
    assert read(tmp_path, SYNTAX_CASES["continued_comment"].text) == []  # the next line is part of the comment


def test_new_directives_in_a_section_are_indented(tmp_path: Path) -> None:
    file = write(tmp_path, b"<VirtualHost *:80>\n\tServerName a.example.com\n</VirtualHost>\n")
    with ConfigTree() as tree:
        vhost = tree.load([file])[0].children[0]
        assert isinstance(vhost, Section)
        tree.add_directive(vhost, "SSLEngine", ["on"])
        tree.add_comment(tree.file(file), "top")
        tree.save()
    assert Path(file).read_text() == ("<VirtualHost *:80>\n\tServerName a.example.com\n    SSLEngine on\n"
                                      "</VirtualHost>\n# top\n")
