"""The concrete syntax tree: byte-exact round trips of tests/fixtures/nginx, the typed view of each
hostile case, and edits that change only the lines they must."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.nginx import Block, ConfigFile, Directive, NginxParseError, RawBlock, Statement, parse, parse_file

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "nginx"
FIXTURE_FILES = sorted(path for path in FIXTURES.iterdir() if path.suffix == ".conf")


def only(tree: ConfigFile | Block, name: str) -> Statement:
    found = tree.find(name)
    assert len(found) == 1, found
    return found[0]


def line_changes(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed lines, added lines) between two texts, by line (line endings included)."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def test_fixtures_exist() -> None:
    assert len(FIXTURE_FILES) >= 12


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.name)
def test_fixture_round_trips_byte_for_byte(path: Path) -> None:
    tree = parse_file(path)
    assert tree.encode() == path.read_bytes()
    assert not tree.modified


def test_quoting_values() -> None:
    tree = parse_file(FIXTURES / "quoting.conf")
    formats = {s.args[0]: s.args[1] for s in tree.find("log_format")}
    assert formats["quoted"] == "$remote_addr \"$request\" 'single' \\ done"
    assert formats["doubled"] == "a \"b\" c 'd' \\ e\tf\n"
    map_block = only(tree, "map")
    assert isinstance(map_block, Block)
    assert [(c.name, c.args) for c in map_block.children] == [
        ("default", ['a"b']), ("~^/x\\;y", ["semi;colon"]), ("it's", ["two"]),
        ("\\x20", ["escaped-first-char"]), ("a\"b'c", ["quotes-inside-a-bare-word"]),
    ]
    assert only(tree, "return").args == ["200", "multi\nline string with { and } and ; and # inside"]


def test_specials_inside_quotes_and_comments() -> None:
    tree = parse_file(FIXTURES / "specials.conf")
    assert only(tree, "listen").args == ["127.0.0.1:8082", "default_server"]
    assert only(tree, "server_name").args == ["a#b.example", "c;d", "e{f}"]
    assert [s.args[1] for s in tree.find("add_header")] == [";", "{", "#not-a-comment"]
    assert [s.args for s in tree.find("location")] == [["/}odd"], ["=", "/x"]]
    server = only(tree, "server")
    assert isinstance(server, Block)
    assert server.children[0].leading_comments == ["comment after a brace { ;"]


def test_regex_locations() -> None:
    tree = parse_file(FIXTURES / "regex_locations.conf")
    assert [s.args for s in tree.find("location")] == [
        ["~", "^/a{2,3}$"], ["~*", "^/(?<name>[a-z]{1,8})\\.(jpe?g|png)$"], ["~", "^/plain/(\\d+)/$"],
        ["^~", "/static/"], ["@named"],
    ]
    assert only(tree, "if").args == ["($request_uri", "~*", "^/q/(.*){1,2}$", ")"]
    assert only(tree, "rewrite").raw_args[0] == '"^/old/(.{3})$"'


def test_blocks_of_every_kind() -> None:
    tree = parse_file(FIXTURES / "blocks.conf")
    kinds = {s.name: type(s) for s, _ in tree.walk()}
    for name in ("types", "upstream", "map", "geo", "split_clients", "charset_map", "if", "location", "server"):
        assert kinds[name] is Block, name
    assert only(tree, "split_clients").args == ["${remote_addr}AAA", "$variant"]
    assert tree.find("if")[0].args == ["($http_x_forwarded_proto", "=", "http", ")"]
    upstream = only(tree, "upstream")
    assert isinstance(upstream, Block)
    assert [s.args for s in upstream.find("server")] == [
        ["127.0.0.1:9000", "weight=5"], ["unix:/tmp/backend.sock", "backup"],
    ]
    server_blocks = [s for s in tree.find("server") if isinstance(s, Block)]
    assert len(server_blocks) == 1
    assert [s.name for s, parents in tree.walk() if [p.name for p in parents] == ["http", "server", "location"]] == [
        "proxy_pass", "proxy_set_header", "proxy_set_header"
    ]


def test_variables_and_multiline_log_format() -> None:
    tree = parse_file(FIXTURES / "variables.conf")
    assert [s.args for s in tree.find("set")] == [
        ["$prefix", "p"], ["${prefix}x", "ok"], ["$both", "${prefix}${prefix}"],
    ]
    log = parse_file(FIXTURES / "log_format.conf").find("log_format")
    assert log[0].args[1:] == [
        "$remote_addr - $remote_user [$time_local] ", '"$request" $status $body_bytes_sent ',
        '"$http_referer" "$http_user_agent"', " $request_time",
    ]
    assert "# a comment in the middle of a directive" in log[0].gaps[-1]
    assert log[1].args == ["json", "escape=json", "{", '"time":"$time_iso8601",', '"uri":"$request_uri"', "}"]


def test_files_without_statements_or_final_newline() -> None:
    assert parse_file(FIXTURES / "empty.conf").children == []
    comment_only = parse_file(FIXTURES / "comment_only.conf")
    assert comment_only.children == [] and comment_only.closing == "# only a comment, no final newline"
    tree = parse_file(FIXTURES / "no_final_newline.conf")
    assert tree.closing == "" and tree.dump().endswith("}")


def test_crlf_line_endings() -> None:
    tree = parse_file(FIXTURES / "crlf.conf")
    name = only(tree, "server_name")
    assert name.args == ["crlf.example"]
    assert name.comment == "trailing comment" and name.trailing == " # trailing comment"
    assert only(tree, "return").args == ["200", "a\r\nb"]


def test_lua_blocks_are_opaque() -> None:
    tree = parse_file(FIXTURES / "lua_blocks.conf")
    raw = [s for s, _ in tree.walk() if isinstance(s, RawBlock)]
    assert [s.name for s in raw] == [
        "init_by_lua_block", "set_by_lua_block", "content_by_lua_block", "access_by_lua_block",
    ]
    assert raw[0].body.strip().endswith("]==]")
    assert raw[1].args == ["$sum"]
    assert "ngx.say('it\\'s {')" in raw[2].body
    assert raw[3].body == ""
    assert [s.args for s in tree.find("location")] == [["/"], ["/empty"]]


def test_non_utf8_bytes_come_back_unchanged() -> None:
    tree = parse_file(FIXTURES / "latin1.conf")
    assert tree.encode() == (FIXTURES / "latin1.conf").read_bytes()


# --- edits ----------------------------------------------------------------------------------

SERVER = """\
http {
    # the site
    server {
        listen 80;   # plain HTTP
        listen [::]:80;
        server_name example.com www.example.com;

        location / {
            root /var/www;
        }
    }
}
"""
LISTEN_80 = "        listen 80;   # plain HTTP\n"


def server_of(tree: ConfigFile) -> Block:
    found = [s for s in tree.find("server") if isinstance(s, Block)]
    assert len(found) == 1
    return found[0]


def test_insert_after_adds_one_line_with_the_siblings_indentation() -> None:
    tree = parse(SERVER)
    server = server_of(tree)
    server.insert_after(server.find("listen")[1], Directive.new("listen", "443", "ssl", comment="managed"))
    assert line_changes(SERVER, tree.dump()) == ([], ["        listen 443 ssl; # managed\n"])
    assert tree.find("listen")[2].comment == "managed"


def test_append_and_prepend_in_a_block() -> None:
    tree = parse(SERVER)
    server = server_of(tree)
    server.append(Directive.new("ssl_certificate", "/etc/letsencrypt/live/example.com/fullchain.pem"))
    server.insert(0, Directive.new("return", "301", "https://$host$request_uri"))
    removed, added = line_changes(SERVER, tree.dump())
    assert removed == []
    assert added == ["        return 301 https://$host$request_uri;\n",
                     "        ssl_certificate /etc/letsencrypt/live/example.com/fullchain.pem;\n"]
    assert tree.dump().endswith("pem;\n    }\n}\n")


def test_insert_a_block_made_in_code() -> None:
    tree = parse(SERVER)
    server = server_of(tree)
    location = Block.new("location", ["=", "/.well-known/acme-challenge/token"],
                         [Directive.new("default_type", "text/plain"), Directive.new("return", "200", "token.key")])
    server.insert_after(only(tree, "server_name"), location)
    removed, added = line_changes(SERVER, tree.dump())
    assert removed == []
    assert added == [
        "        location = /.well-known/acme-challenge/token {\n",
        "            default_type text/plain;\n",
        "            return 200 token.key;\n",
        "        }\n",
    ]
    assert [s.args for s in parse(tree.dump()).find("return")] == [["200", "token.key"]]


def test_remove_takes_the_line_and_its_comment_only() -> None:
    tree = parse(SERVER)
    server = server_of(tree)
    server.remove(server.find("listen")[0])
    assert line_changes(SERVER, tree.dump()) == ([LISTEN_80], [])
    location = only(tree, "location")
    assert isinstance(location, Block)
    location.remove(only(tree, "root"))
    assert line_changes(SERVER, tree.dump())[0] == [LISTEN_80, "            root /var/www;\n"]
    assert "location / {\n        }" in tree.dump()


def test_remove_then_insert_restores_the_text() -> None:
    tree = parse(SERVER)
    server = server_of(tree)
    second = server.find("listen")[1]
    server.remove(second)
    server.insert_after(server.find("listen")[0], Directive.new("listen", "[::]:80"))
    assert tree.dump() == SERVER


def test_set_arg_changes_one_line() -> None:
    tree = parse(SERVER)
    listen = tree.find("listen")[0]
    listen.set_arg(0, "8080")
    assert line_changes(SERVER, tree.dump()) == ([LISTEN_80], ["        listen 8080;   # plain HTTP\n"])
    names = only(tree, "server_name")
    names.set_args(["a.example", "b c"])
    assert names.raw_args == ("a.example", '"b c"') and names.args == ["a.example", "b c"]
    with pytest.raises(IndexError):
        listen.set_arg(3, "x")


def test_replace_keeps_position_and_indentation() -> None:
    tree = parse(SERVER)
    server = server_of(tree)
    server.replace(server.find("listen")[0], Directive.new("listen", "443", "ssl"))
    assert line_changes(SERVER, tree.dump()) == ([LISTEN_80], ["        listen 443 ssl;   # plain HTTP\n"])


def test_edits_keep_crlf_line_endings() -> None:
    text = (FIXTURES / "crlf.conf").read_bytes().decode()
    tree = parse(text)
    server = server_of(tree)
    server.insert_after(only(tree, "listen"), Directive.new("listen", "127.0.0.1:8443", "ssl"))
    assert line_changes(text, tree.dump()) == ([], ["        listen 127.0.0.1:8443 ssl;\r\n"])
    server.remove(only(tree, "server_name"))
    assert "\n" not in tree.dump().replace("\r\n", "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "a 1;"),
        ("x;", "x;\na 1;"),
        ("x;\n", "x;\na 1;\n"),
        ("# c\n", "# c\na 1;\n"),
    ],
)
def test_append_to_a_file(text: str, expected: str) -> None:
    tree = parse(text)
    tree.append(Directive.new("a", "1"))
    assert tree.dump() == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s { x; }", "s { x; a 1; }"),
        ("s {}", "s { a 1;}"),  # the closing trivia stays as it was, so remove() restores "s {}"
        ("s {\n}", "s {\n    a 1;\n}"),
        ("\ts {\n\t\tx;\n\t}", "\ts {\n\t\tx;\n\t\ta 1;\n\t}"),
    ],
)
def test_append_to_a_block_follows_its_style(text: str, expected: str) -> None:
    tree = parse(text)
    block = only(tree, "s")
    assert isinstance(block, Block)
    block.append(Directive.new("a", "1"))
    assert tree.dump() == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a; x; b;", "a; b;"),
        ("a; x; # c\nb;", "a; # c\nb;"),
        ("x;\nb;", "b;"),
        ("a;\nx;", "a;"),
        ("a;\n  x; b;\n", "a;\n  b;\n"),
        ("s {\n    x;\n}\n", "s {\n}\n"),
    ],
)
def test_remove_in_unusual_layouts(text: str, expected: str) -> None:
    tree = parse(text)
    found = tree.find("x")[0]
    container: ConfigFile | Block = tree
    for statement, parents in tree.walk():
        if statement is found and parents:
            container = parents[-1]
    container.remove(found)
    assert tree.dump() == expected


def test_statement_views() -> None:
    tree = parse('  # about\n  listen  80  "ssl" ;  # note\n')
    listen = only(tree, "listen")
    assert listen.args == ["80", "ssl"] and listen.raw_args == ("80", '"ssl"')
    assert listen.leading_comments == ["about"] and listen.comment == "note"
    assert listen.offset == tree.source.index("listen") and tree.position(listen.offset) == (2, 3)
    assert repr(listen) == "Directive('listen 80 \"ssl\"')"
    with pytest.raises(ValueError, match="not a child"):
        tree.index(Directive.new("listen"))


def test_deep_nesting_parses_walks_and_dumps() -> None:
    depth = 3000  # beyond Python's recursion limit: nothing may recurse per level
    text = "a {\n" * depth + "x;\n" + "}\n" * depth
    tree = parse(text)
    assert tree.dump() == text
    [parents] = [p for s, p in tree.walk() if s.name == "x"]
    assert len(parents) == depth


def test_a_comment_never_swallows_the_rest_of_a_shared_line() -> None:
    tree = parse("s { x; }\n")
    block = only(tree, "s")
    assert isinstance(block, Block)
    block.append(Directive.new("a", "1", comment="managed"))
    assert tree.dump() == "s { x;\n    a 1; # managed\n}\n"
    assert [s.name for s, _ in parse(tree.dump()).walk()] == ["s", "x", "a"]
    tree = parse("a; b;")
    tree.replace(only(tree, "a"), Directive.new("c", comment="was a"))
    assert tree.dump() == "c; # was a\nb;"


_PIECES = ["a", "b c", " ", "\n", "\r\n", "\r", "\t", ";", " {", "}", "# c\n", "'q'", "s {}", "x;\n", "\n\n  "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join), st.booleans())
def test_insert_anywhere_then_remove_restores_the_text(text: str, comment: bool) -> None:
    try:
        tree = parse(text)
    except NginxParseError:
        return
    names = [s.name for s, _ in tree.walk()]
    containers: list[ConfigFile | Block] = [tree, *(s for s, _ in tree.walk() if isinstance(s, Block))]
    for container in containers:
        for index in range(len(container.children) + 1):
            added = Directive.new("zz", "1", comment="note" if comment else None)
            container.insert(index, added)
            reparsed = [s for s, _ in parse(tree.dump()).walk()]
            assert [s.name for s in reparsed if s.name != "zz"] == names
            assert [s.comment for s in reparsed if s.name == "zz"] == ["note" if comment else None]
            container.remove(added)
            if not comment:  # a comment may have moved a neighbour to a line of its own
                assert tree.dump() == text
