"""What the loader reads, as Apache reads it: includes (globs, directories, order, optional, loops),
variables and defines, conditions (IfModule, IfDefine, IfVersion, IfFile), ServerRoot; and the
words of Apache's tokenizer. test_apache_discovery.py checks the same against the real apache2."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.apache import (
    ApacheConfigError,
    Directive,
    IncludeError,
    LoadedConfig,
    LoadOptions,
    ServerBuild,
    UnreadableFileError,
    load_config,
    split_words,
)
from plugins.apache.conditions import module_identifiers, parse_version
from plugins.apache.loader import resolve_include
from plugins.apache.words import expand_words

BUILD = ServerBuild.of((2, 4, 62))


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def load(root: Path, **options: object) -> LoadedConfig:
    return load_config(LoadOptions(root, build=options.pop("build", BUILD), **options))  # type: ignore[arg-type]


def names(loaded: LoadedConfig) -> list[str]:
    """``Name words`` of every entry, depth first."""
    return [" ".join([entry.name, *entry.words]) for entry in loaded.walk()]


def relative(loaded: LoadedConfig, root: Path) -> list[str]:
    return [str(Path(included.file).relative_to(root)) for included in loaded.includes]


def test_includes_globs_directories_and_order(tmp_path: Path) -> None:
    root = make(tmp_path, {
        "apache2.conf": "Include conf.d\nIncludeOptional mods-enabled/*.load\nInclude sub/*/x.conf\n"
                        "IncludeOptional nothing/*.conf\nIncludeOptional missing.conf\n",
        "conf.d/b.conf": "B 1\n", "conf.d/A.conf": "A 1\n", "conf.d/.hidden": "Hidden 1\n",
        "conf.d/deeper/c.conf": "C 1\n",
        "mods-enabled/b.load": "LB 1\n", "mods-enabled/a.load": "LA 1\n", "mods-enabled/.x.load": "X 1\n",
        "mods-enabled/a.conf": "No 1\n",
        "sub/one/x.conf": "S1 1\n", "sub/two/x.conf": "S2 1\n",
        "sub/afile": "No 2\n",  # matches the '*' but is no directory
    })
    loaded = load(root)
    assert relative(loaded, root) == [
        "apache2.conf", "conf.d/.hidden", "conf.d/A.conf", "conf.d/b.conf", "conf.d/deeper/c.conf",
        "mods-enabled/a.load", "mods-enabled/b.load", "sub/one/x.conf", "sub/two/x.conf",
    ]
    assert [included.depth for included in loaded.includes] == [0] + [1] * 8
    assert loaded.includes[1].via is not None and loaded.includes[1].via.line == 1
    assert names(loaded)[:3] == ["Include conf.d", "Hidden 1", "A 1"]


def test_include_errors_name_the_directive(tmp_path: Path) -> None:
    make(tmp_path, {"apache2.conf": "Listen 80\nInclude missing.conf\n"})
    with pytest.raises(IncludeError, match=r"apache2.conf:2: Include .*missing.conf") as caught:
        load(tmp_path)
    assert caught.value.line == 2
    make(tmp_path, {"apache2.conf": "Include sites/*.conf\n", "sites/a.txt": ""})
    with pytest.raises(IncludeError, match="no matches for the wildcard"):
        load(tmp_path)
    make(tmp_path, {"apache2.conf": "Include nowhere/*.conf\n"})
    with pytest.raises(IncludeError, match="could not open the directory"):
        load(tmp_path)


def test_an_include_loop_is_an_error(tmp_path: Path) -> None:
    make(tmp_path, {"apache2.conf": "Include a.conf\n", "a.conf": "Include b.conf\n", "b.conf": "Include a.conf\n"})
    with pytest.raises(IncludeError, match=r"includes itself \(.*a.conf -> .*b.conf -> .*a.conf\)"):
        load(tmp_path)


def test_a_file_included_twice_is_read_twice(tmp_path: Path) -> None:
    make(tmp_path, {"apache2.conf": "Include a.conf\nInclude a.conf\n", "a.conf": "Listen 80\n"})
    loaded = load(tmp_path)
    assert names(loaded).count("Listen 80") == 2
    assert loaded.files == [str(tmp_path / "apache2.conf"), str(tmp_path / "a.conf")]


def test_included_content_takes_the_place_of_the_include(tmp_path: Path) -> None:
    make(tmp_path, {
        "apache2.conf": "<VirtualHost *:80>\n    Include snippets/site.conf\n    ServerAlias b\n</VirtualHost>\n",
        "snippets/site.conf": "ServerName a\n",
    })
    vhost = load(tmp_path).entries[0]
    assert [entry.name for entry in vhost.children or []] == ["Include", "ServerName", "ServerAlias"]
    assert vhost.find("servername")[0].node.file == str(tmp_path / "snippets/site.conf")


def test_variables_from_define_and_the_environment(tmp_path: Path) -> None:
    make(tmp_path, {
        "apache2.conf": "Define SITES sites\nDefine NAMES \"a.example b.example\"\nInclude ${SITES}/*.conf\n"
                        "ServerAlias ${NAMES} ${FROM_ENV} ${UNDEFINED}\nUnDefine SITES\nServerAdmin ${SITES}\n",
        "sites/a.conf": "Listen 80\n",
    })
    loaded = load(tmp_path, environment={"FROM_ENV": "env.example", "SITES": "env-sites"})
    assert "Listen 80" in names(loaded)
    assert "ServerAlias a.example b.example env.example ${UNDEFINED}" in names(loaded)
    assert "ServerAdmin env-sites" in names(loaded)  # after UnDefine, the environment's value
    assert [name for name, _ in loaded.undefined] == ["UNDEFINED"]
    assert loaded.defines == {"NAMES": "a.example b.example"}


def test_ifdefine_with_define_and_dash_d(tmp_path: Path) -> None:
    make(tmp_path, {"apache2.conf": "<IfDefine FLAG>\nA 1\n</IfDefine>\n<IfDefine !FLAG>\nB 1\n</IfDefine>\n"
                                    "Define LATER\n<IfDefine LATER>\nC 1\n</IfDefine>\n"})
    assert names(load(tmp_path)) == ["B 1", "Define LATER", "C 1"]
    assert names(load(tmp_path, defines=["FLAG"]))[0] == "A 1"


def test_ifmodule_follows_loadmodule_in_order(tmp_path: Path) -> None:
    make(tmp_path, {
        "apache2.conf": "<IfModule ssl_module>\nEarly 1\n</IfModule>\nIncludeOptional mods-enabled/*.load\n"
                        "<IfModule ssl_module>\nName 1\n</IfModule>\n<IfModule mod_ssl.c>\nSource 1\n</IfModule>\n"
                        "<IfModule !mod_rewrite.c>\nNoRewrite 1\n</IfModule>\n<IfModule version_module>\n"
                        "Static 1\n</IfModule>\n<IfModule mpm_event_module>\nInclude absent.conf\n</IfModule>\n",
        "mods-enabled/ssl.load": "LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n",
    })
    loaded = load(tmp_path)
    assert [name for name in names(loaded) if not name.startswith(("Include", "Load"))] == [
        "Name 1", "Source 1", "NoRewrite 1", "Static 1"]
    assert {"ssl_module", "mod_ssl.c", "core_module"} <= loaded.modules


def test_module_identifiers() -> None:
    assert module_identifiers("ssl_module") == ("ssl_module", "mod_ssl.c")
    assert module_identifiers("mod_rewrite.c") == ("rewrite_module", "mod_rewrite.c")
    assert module_identifiers("mpm_event_module") == ("mpm_event_module", "event.c")
    assert module_identifiers("http_core.c") == ("http_module", "http_core.c")
    assert module_identifiers("php_module") == ("php_module", "mod_php.c")


@pytest.mark.parametrize(("condition", "holds"), [
    ("2.4", False), ("2.4.62", True), ("= 2.4.62", True), ("== 2.4.62", True), ("> 2.3", True), (">= 2.4", True),
    ("< 2.4.62", False), ("<= 2.4.62", True), ("!>= 2.4", False), ("!= 2.4.62", False), ("~ ^2\\.4", True),
    ("= /^2\\.2/", False), ("!~ ^2\\.2", True), ("> 3", False),
])
def test_ifversion(tmp_path: Path, condition: str, holds: bool) -> None:
    make(tmp_path, {"apache2.conf": f"<IfVersion {condition}>\nInside 1\n</IfVersion>\n"})
    assert (names(load(tmp_path)) == ["Inside 1"]) is holds


def test_iffile_and_the_server_root_directive(tmp_path: Path) -> None:
    make(tmp_path, {
        "apache2.conf": "<IfFile present.txt>\nA 1\n</IfFile>\n<IfFile !/nonexistent>\nB 1\n</IfFile>\n"
                        f"ServerRoot {tmp_path}/other\nInclude x.conf\n",
        "present.txt": "", "other/x.conf": "FromOther 1\n",
    })
    loaded = load(tmp_path)
    assert names(loaded)[:2] == ["A 1", "B 1"] and "FromOther 1" in names(loaded)
    assert loaded.server_root == str(tmp_path / "other")


def test_bad_conditions_are_errors(tmp_path: Path) -> None:
    make(tmp_path, {"apache2.conf": "<IfVersion >= two>\n</IfVersion>\n"})
    with pytest.raises(ApacheConfigError, match="bad version"):
        load(tmp_path)


def test_conditions_that_are_false_are_not_read_at_all(tmp_path: Path) -> None:
    make(tmp_path, {"apache2.conf": "<IfModule missing_module>\nInclude missing/*.conf\n</IfModule>\n"
                                    "<Macro Site $name>\n<VirtualHost *:80>\nServerName $name\n</VirtualHost>\n"
                                    "</Macro>\n"})
    loaded = load(tmp_path)
    assert names(loaded) == ["Macro Site $name"]  # a macro's body is read only where it is used


def test_a_parse_error_in_an_included_file_stops_the_load(tmp_path: Path) -> None:
    make(tmp_path, {"apache2.conf": "Include sites/*.conf\n", "sites/a.conf": "Listen 80\n",
                    "sites/b.conf": "<VirtualHost *:80>\n"})
    with pytest.raises(UnreadableFileError) as caught:
        load(tmp_path)
    assert caught.value.file == str(tmp_path / "sites" / "b.conf")


def test_no_main_file(tmp_path: Path) -> None:
    with pytest.raises(ApacheConfigError, match="no Apache configuration file"):
        load(tmp_path)


def test_resolve_include_brackets_and_escapes(tmp_path: Path) -> None:
    make(tmp_path, {"a1.conf": "", "a2.conf": "", "b1.conf": "", "[x].conf": ""})
    anchor = load_anchor(tmp_path)
    found = resolve_include("[ab]1.conf", str(tmp_path), optional=False, where=anchor)
    assert [Path(file).name for file in found] == ["a1.conf", "b1.conf"]
    found = resolve_include("[!b]?.conf", str(tmp_path), optional=False, where=anchor)
    assert [Path(file).name for file in found] == ["a1.conf", "a2.conf"]
    found = resolve_include("\\[x]*.conf", str(tmp_path), optional=False, where=anchor)  # escapes: in patterns
    assert [Path(file).name for file in found] == ["[x].conf"]


def load_anchor(root: Path) -> Directive:  # a directive to blame in errors
    make(root, {"apache2.conf": "Listen 80\n"})
    node = load(root).entries[0].node
    assert isinstance(node, Directive)
    return node


@pytest.mark.parametrize(("text", "words"), [
    ("a b\tc", ["a", "b", "c"]),
    ('"a b" c', ["a b", "c"]),
    ('"a \\"b\\" \\\\ \\n"', ['a "b" \\ \\n']),
    ("'it''s'", ["it", "s"]),
    ('"a"b', ["a", "b"]),
    ("a\\\\b", ["a\\b"]),
    ('"unclosed quote', ["unclosed quote"]),
    ("", []),
])
def test_apache_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


def test_variables_expand_before_splitting() -> None:
    lookup = {"TWO": "a b", "Q": '"x y"'}.get
    assert expand_words(["${TWO}", '"${TWO}"', "${Q}"], lookup) == ("a", "b", "a b", "x y")


def test_parse_version() -> None:
    assert parse_version("Server version: Apache/2.4.62 (Debian)\nServer built: x\n") == (2, 4, 62)
    with pytest.raises(ValueError):
        parse_version("nginx/1.22")
