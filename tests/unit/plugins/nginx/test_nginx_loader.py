"""Loading a whole configuration: includes with globs, relative to the configuration prefix,
nested, shared and cyclic; errors that name the file, line and column; the public names."""

from __future__ import annotations

from pathlib import Path

import pytest

import plugins.nginx
from plugins.nginx import Block, Directive, NginxIncludeCycleError, NginxParseError, load
from plugins.nginx.crosscheck import split_dump


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "nginx.conf"


def test_relative_includes_are_relative_to_the_main_files_directory(tmp_path: Path) -> None:
    main = write(tmp_path, {
        "nginx.conf": "http {\n    include sites/*.conf;\n}\n",
        "sites/a.conf": "server { include snippets/common; }\n",
        "snippets/common": "add_header X-Common 1;\n",
        "sites/snippets/common": "this file is not the one nginx reads\n",
    })
    config = load(main)
    assert list(config.files) == [str(main), f"{tmp_path}/sites/a.conf", f"{tmp_path}/snippets/common"]
    assert config.conf_prefix == f"{tmp_path}/"
    [header] = config.find("add_header")
    assert [p.name for p in header.parents] == ["http", "server"]
    assert header.file.path == f"{tmp_path}/snippets/common"
    assert header.container is header.file


def test_globs_quoted_or_not_sorted_by_bytes_without_hidden_files(tmp_path: Path) -> None:
    main = write(tmp_path, {
        "nginx.conf": (
            'include conf.d/*.conf;\ninclude "quoted dir/*";\ninclude nothing/*.conf;\ninclude \'x[12].conf\';\n'
        ),
        "conf.d/b.conf": "b;\n",
        "conf.d/a.conf": "a;\n",
        "conf.d/B.conf": "B;\n",
        "conf.d/_u.conf": "_u;\n",
        "conf.d/.hidden.conf": "hidden;\n",
        "conf.d/skip.txt": "txt;\n",
        "quoted dir/one": "one;\n",
        "x1.conf": "x1;\n",
        "x2.conf": "x2;\n",
        "x3.conf": "x3;\n",
    })
    config = load(main)
    assert [found.statement.name for found in config.walk() if found.statement.name != "include"] == [
        "B", "_u", "a", "b", "one", "x1", "x2",
    ]
    includes = config.find("include")
    assert [len(config.included(found.statement)) for found in includes] == [4, 1, 0, 2]


def test_absolute_and_nested_includes_and_a_file_included_twice(tmp_path: Path) -> None:
    main = write(tmp_path, {
        "nginx.conf": f"http {{\n    server {{ include {tmp_path}/params; }}\n    server {{ include params; }}\n}}\n",
        "params": "include inner;\n",
        "inner": "fastcgi_param A b;\n",
    })
    config = load(main)
    params = [found for found in config.find("fastcgi_param")]
    assert len(params) == 2 and params[0].statement is params[1].statement
    assert params[0].parents[1] is not params[1].parents[1]  # two server blocks
    assert len(config.files) == 3


@pytest.mark.parametrize(
    ("files", "where"),
    [
        ({"nginx.conf": "include a;\n", "a": "x;\ninclude b;\n", "b": "include a;\n"}, ("b", 1, 9)),
        ({"nginx.conf": "events {}\n  include nginx.conf;\n"}, ("nginx.conf", 2, 11)),
        ({"nginx.conf": "include *.inc;\n", "a.inc": "include a.inc;\n"}, ("a.inc", 1, 9)),
    ],
)
def test_include_cycles_are_errors(tmp_path: Path, files: dict[str, str], where: tuple[str, int, int]) -> None:
    main = write(tmp_path, files)
    with pytest.raises(NginxIncludeCycleError) as caught:
        load(main)
    error = caught.value
    assert (error.path, error.line, error.column) == (f"{tmp_path}/{where[0]}", where[1], where[2])
    assert "include cycle" in error.reason


def test_a_missing_include_names_the_include(tmp_path: Path) -> None:
    main = write(tmp_path, {"nginx.conf": "http {\n    include missing.conf;\n}\n"})
    with pytest.raises(NginxParseError) as caught:
        load(main)
    assert (caught.value.path, caught.value.line, caught.value.column) == (str(main), 2, 13)
    assert f"{tmp_path}/missing.conf does not exist" in caught.value.reason


def test_an_unparseable_include_stops_the_load_with_its_location(tmp_path: Path) -> None:
    main = write(tmp_path, {
        "nginx.conf": "http {\n    include sites/*;\n}\n",
        "sites/good": "server { listen 80; }\n",
        "sites/zbad": "server {\n    listen 80\n    server_name x;\n",
    })
    with pytest.raises(NginxParseError) as caught:
        load(main)
    assert str(caught.value).startswith(f"{tmp_path}/sites/zbad:1:8: unexpected end of file")


def test_include_needs_one_argument(tmp_path: Path) -> None:
    main = write(tmp_path, {"nginx.conf": "include a b;\n"})
    with pytest.raises(NginxParseError, match='invalid number of arguments in "include"'):
        load(main)


def test_a_missing_main_file(tmp_path: Path) -> None:
    with pytest.raises(NginxParseError, match="cannot read the file"):
        load(tmp_path / "nginx.conf")


def test_modified_files_after_an_edit(tmp_path: Path) -> None:
    main = write(tmp_path, {"nginx.conf": "http {\n    include site;\n}\n", "site": "server {\n    listen 80;\n}\n"})
    config = load(main)
    assert config.modified_files() == []
    [server] = config.find("server")
    assert isinstance(server.statement, Block)
    server.statement.append(Directive.new("listen", "443", "ssl"))
    assert [file.path for file in config.modified_files()] == [f"{tmp_path}/site"]
    assert config.files[f"{tmp_path}/site"].encode() == b"server {\n    listen 80;\n    listen 443 ssl;\n}\n"


def test_split_dump_reads_nginx_t_output() -> None:
    output = (
        "# configuration file /a/nginx.conf:\ninclude b;\n\n"
        "# configuration file /a/b:\n# configuration file /fake:\nx;\n\n"  # a file quoting a header
        "# configuration file /a/c:\nno final newline\n"
    )
    assert split_dump(output, {"/a/nginx.conf": "include b;\n", "/a/b": "# configuration file /fake:\nx;\n"}) == {
        "/a/nginx.conf": "include b;\n", "/a/b": "# configuration file /fake:\nx;\n", "/a/c": "no final newline",
    }


def test_public_names_are_pinned() -> None:
    assert sorted(plugins.nginx.__all__) == [
        "Block", "Config", "ConfigFile", "Container", "Directive", "Located", "NginxCrossCheckError",
        "NginxIncludeCycleError", "NginxParseError", "RawBlock", "Statement", "cross_check", "load",
        "nginx_dump", "parse", "parse_file", "quote", "unquote",
    ]
    for name in plugins.nginx.__all__:
        assert getattr(plugins.nginx, name) is not None


def test_deep_include_chains_and_nesting(tmp_path: Path) -> None:
    depth = 1500
    files = {"nginx.conf": "include f0;\n"}
    files.update({f"f{i}": f"b {{ include f{i + 1}; }}\n" for i in range(depth)})
    files[f"f{depth}"] = "x;\n"
    config = load(write(tmp_path, files))
    [found] = config.find("x")
    assert len(found.parents) == depth
    assert [located.statement.name for located in config.walk()].count("include") == depth + 1
