"""The nginx tokenizer: words, quoting, Lua bodies, error locations, and the fast parser against
the character-level port of nginx's own tokenizer on generated text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.nginx import Block, NginxParseError, RawBlock, _reference, parse, quote, unquote
from plugins.nginx.grammar import lua_block_end
from plugins.nginx.tree import Container


def words_of(text: str) -> list[list[str]]:
    return [[statement.name, *statement.args] for statement, _ in parse(text).walk()]


def fast_events(container: Container) -> Iterator[tuple[str, list[str], int | None]]:
    for child in container.children:
        words = [unquote(word) for word in child.words]
        if isinstance(child, Block):
            yield "{", words, child.offset
            yield from fast_events(child)
            yield "}", [], None
        elif isinstance(child, RawBlock):
            yield "lua", words, child.offset
        else:
            yield ";", words, child.offset


def reference_events(text: str) -> list[tuple[str, list[str], int | None]]:
    return [(kind, words, None if kind == "}" else offset) for kind, words, offset in _reference.events(text)]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("plain", "plain"),
        ('"a b"', "a b"),
        ("'a b'", "a b"),
        (r'"a\"b"', 'a"b'),
        (r"'it\'s'", "it's"),
        (r'"back\\slash"', "back\\slash"),
        (r'"tab\there"', "tab\there"),
        (r'"nl\nand\rcr"', "nl\nand\rcr"),
        (r"\d+", r"\d+"),  # other escapes stay as written, as in nginx
        (r"a\;b", r"a\;b"),
        (r'"\\n"', "\\n"),
    ],
)
def test_unquote_resolves_what_nginx_resolves(raw: str, value: str) -> None:
    assert unquote(raw) == value
    assert _reference._unescape(raw[1:-1] if raw[0] in "\"'" else raw) == value


@pytest.mark.parametrize("value", ["plain", "a b", 'q"uote', "semi;colon", "{", "", "back\\slash", "tab\t", "#x", "a}"])
def test_quote_round_trips(value: str) -> None:
    raw = quote(value)
    assert words_of(f"x {raw};") == [["x", value]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a#b c;", [["a#b", "c"]]),  # '#' inside a word is not a comment
        ("a ${x}y;", [["a", "${x}y"]]),  # "${" does not end a word
        ("a x}y;", [["a", "x}y"]]),  # '}' inside a word is a character
        ('if ($a = "b") { }', [["if", "($a", "=", "b", ")"]]),  # a quote may be followed by ")"
        ("a \\ b;", [["a", "\\ b"]]),  # a backslash keeps the space in the word (and stays)
        ("a 'x;y' \"{\";", [["a", "x;y", "{"]]),
        ("a  # comment ;\n b;", [["a", "b"]]),  # comments may sit between words
        ("location ~ ^/a{2,3}$ {}", None),  # unquoted '{' ends the word, as in nginx: an error here
    ],
)
def test_words_split_as_nginx_splits_them(text: str, expected: list[list[str]] | None) -> None:
    if expected is None:
        with pytest.raises(NginxParseError):
            parse(text)
        return
    assert words_of(text) == expected


def test_unquoted_regex_with_braces_is_read_as_nginx_reads_it() -> None:
    # nginx reads `location ~ ^/a{2,3}$ {` as `location ~ ^/a {` followed by a statement
    # starting with "2,3}$": the same words here (and nginx then rejects "2,3}$" as unknown).
    tree = parse("location ~ ^/a{2,3}$ { }\n}")  # the stray "}" closes the first block
    assert [(kind, words) for kind, words, _ in fast_events(tree)] == [
        ("{", ["location", "~", "^/a"]), ("{", ["2,3}$"]), ("}", []), ("}", []),
    ]


@pytest.mark.parametrize(
    ("body", "end"),
    [
        ("}", 0),
        ("local t = { a = 1 } }", 20),
        ("s = '}' }", 8),
        ('s = "\\"}" }', 10),
        ("-- } comment\n}", 13),
        ("--[[ } ]] }", 10),
        ("--[==[ ]] } ]==] }", 17),
        ("x = [[ } ]] }", 12),
        ("x = [=[ ]] } ]=] }", 17),
        ("a[b[1]] = c }", 12),
        ("x = 1 - -2 }", 11),
        ("{ unclosed", None),
        ("s = '", None),
    ],
)
def test_lua_block_end(body: str, end: int | None) -> None:
    assert lua_block_end(body, 0) == end


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("http {\n    server {\n        listen 80;\n    }\n", 1, 6, 'expecting "}"'),  # unclosed: the '{'
        ("http {\n}\n}\n", 3, 1, 'unexpected "}"'),  # one '}' too many
        ('events {}\nhttp {\n    return 200 "abc;\n}\n', 3, 16, "unterminated quote"),
        ("events {}\nuser www-data", 2, 1, 'unexpected end of file, expecting ";" or "}"'),  # no ';'
        ("a b}", 1, 1, 'unexpected end of file, expecting ";" or "}"'),  # '}' inside a word
        ("a { b } c;", 1, 7, 'unexpected "}"'),  # '}' while a directive is open
        ('a "b"c;', 1, 6, 'unexpected "c"'),  # a quoted word must be followed by a space
        ("a;\n  ;", 2, 3, 'unexpected ";"'),
        ("{", 1, 1, 'unexpected "{"'),
        ("a\r\n\tb 'c\r\n", 2, 4, "unterminated quote"),
        ("content_by_lua_block {\n  x = '}' ", 1, 22, "Lua code"),
    ],
)
def test_errors_name_path_line_and_column(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(NginxParseError) as caught:
        parse(text, "/etc/nginx/x.conf")
    error = caught.value
    assert (error.path, error.line, error.column) == ("/etc/nginx/x.conf", line, column), error
    assert message in error.reason
    assert str(error).startswith(f"/etc/nginx/x.conf:{line}:{column}: ")


_FRAGMENTS = [
    "a", "bc", " ", "  ", "\t", "\n", "\r\n", ";", "{", "}", '"', "'", "\\", "#", "$", "${x}", ")", "(",
    "if ($a = \"b\") ", "# c\n", "x_by_lua_block ", "--", "[[", "]]", "[=[", "]=]", "\"}\"", "'{'",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=40).map("".join))
def test_fast_parser_agrees_with_nginx_tokenizer(text: str) -> None:
    try:
        expected = reference_events(text)
    except _reference.SyntaxProblem:
        with pytest.raises(NginxParseError):
            parse(text)
        return
    tree = parse(text)
    assert tree.dump() == text
    assert list(fast_events(tree)) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_any_text_round_trips_or_is_rejected(text: str) -> None:
    try:
        tree = parse(text)
    except NginxParseError:
        with pytest.raises(_reference.SyntaxProblem):
            list(_reference.events(text))
        return
    assert tree.dump() == text
