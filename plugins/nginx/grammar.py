"""The token grammar of nginx configuration files, as pyparsing ``Regex`` elements.

Role: the lexical layer of the plugin's parser. Every element mirrors ``ngx_conf_read_token`` in
nginx's ``src/core/ngx_conf_file.c`` (1.22), so that a text nginx accepts splits here into the
same words:

- whitespace is exactly space, tab, CR and LF; a ``#`` starts a comment (up to LF) only where a
  word could start, so ``a#b`` is one word;
- a word starting with ``"`` or ``'`` runs to the matching unescaped quote and must be followed by
  whitespace, ``;``, ``{`` or ``)`` (``if ($a = "b")``);
- any other word runs up to whitespace, ``;`` or ``{``; ``}`` and quotes inside it are ordinary
  characters, ``${`` does not end it (``${var}``), and a backslash escapes the next character;
- ``;`` ends a directive, ``{`` opens a block, ``}`` closes one (only where a word could start).

Regular expressions containing ``{`` or ``;`` must therefore be quoted, as nginx's documentation
says: ``location ~ "^/a{2,3}$" {``.

Bodies of ``*_by_lua_block`` directives are Lua, not nginx syntax: :func:`lua_block_end` finds the
closing brace while skipping Lua strings, long brackets and comments, as lua-nginx-module does.

Why the parser does not call ``scan_string``: pyparsing's scanning loop costs about 40 us per
match (4.2 s for 100,000 statements, measured on pyparsing 3.3), against 4 us for the compiled
pattern it wraps; the issue's budget is 3 s for 5,000 server blocks. So the elements below are
pyparsing ``Regex`` objects (one grammar, testable on its own with pyparsing) and the tree builder
drives their compiled patterns (``Regex.re``) directly, which keeps parsing linear.

Allowed imports: the standard library and pyparsing.
"""

from __future__ import annotations

import re

import pyparsing as pp

__all__ = [
    "COMMENT",
    "DOUBLE_QUOTED",
    "LUA_TOKEN",
    "SINGLE_QUOTED",
    "STATEMENT",
    "UNQUOTED",
    "WORD",
    "WORD_PAIR",
    "is_lua_block",
    "lua_block_end",
    "quote",
    "unquote",
]

_WS = r"[ \t\r\n]"
_COMMENT = r"\#[^\n]*"
_ESCAPE = r"\\[\s\S]"
_DOUBLE = r'"(?:[^"\\]|\\[\s\S])*"'
_SINGLE = r"'(?:[^'\\]|\\[\s\S])*'"
_UNQUOTED = rf"(?:{_ESCAPE}|\$\{{|[^ \t\r\n;{{}}\"'\#\\])(?:{_ESCAPE}|\$\{{|[^ \t\r\n;{{\\])*"
_WORD = rf"(?>{_DOUBLE}|{_SINGLE}|{_UNQUOTED})"
# Trivia before a statement: whitespace and comments in any order.
_LEAD = rf"(?>(?:{_WS}+|{_COMMENT})*)"
# Between two words: whitespace (then comments), or nothing between a quote and ")".
_SEP = rf"(?:(?>(?:{_WS}+(?:{_COMMENT})?)+)|(?<=[\"'])(?=\)))"
# Between the last word and ";" or "{": optional whitespace and comments.
_GAP = rf"(?>(?:{_WS}+(?:{_COMMENT})?)*)"


def _regex(pattern: str, name: str) -> pp.Regex:
    element = pp.Regex(pattern)
    element.set_name(name)
    element.leave_whitespace()  # whitespace is part of the concrete syntax tree
    return element


COMMENT = _regex(_COMMENT, "comment")
"""A comment: ``#`` up to (not including) the line feed."""

DOUBLE_QUOTED = _regex(_DOUBLE, "double-quoted string")
SINGLE_QUOTED = _regex(_SINGLE, "single-quoted string")
UNQUOTED = _regex(_UNQUOTED, "unquoted word")
WORD = _regex(_WORD, "word")
"""One word (directive name or argument) exactly as written, quotes and escapes included."""

STATEMENT = _regex(
    rf"({_LEAD})(?:(\}})|({_WORD}(?:{_SEP}{_WORD})*)({_GAP})([;{{])|\Z)",
    "statement",
)
"""Trivia, then one of: ``}``, words with their terminator (``;`` or ``{``), or the end of text.

Groups, in order: leading trivia, ``}``, the words (with the trivia between them), the trivia
before the terminator, the terminator. Exactly one of ``}``, words or end of text matches.
"""

WORD_PAIR = _regex(rf"((?:{_WS}+(?:{_COMMENT})?)*)({_WORD})", "trivia and word")
"""Splits the words group of :data:`STATEMENT`: each match is (trivia before, word)."""

LUA_TOKEN = _regex(
    r"""--\[(=*)\[[\s\S]*?\]\1\]"""  # long comment --[==[ ... ]==]
    r"""|--[^\n]*"""  # line comment
    r"""|\[(=*)\[[\s\S]*?\]\2\]"""  # long string [==[ ... ]==]
    r'''|"(?:[^"\\\n]|\\[\s\S])*"'''  # short strings
    r"""|'(?:[^'\\\n]|\\[\s\S])*'"""
    r"""|[{}]"""
    r"""|[^{}"'\[-]+|[\s\S]""",  # code, or one character that starts none of the above
    "Lua token",
)
"""One Lua token that matters for brace matching in a ``*_by_lua_block`` body."""

_LUA_TOKEN = LUA_TOKEN.re
_UNQUOTED_FULL = re.compile(_UNQUOTED)
_UNESCAPE = re.compile(r"\\([\"'\\tnr])")
_UNESCAPED = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def is_lua_block(name: str) -> bool:
    """True for directives whose block body is Lua code (lua-nginx-module's ``*_by_lua_block``)."""
    return name.endswith("_by_lua_block")


def lua_block_end(text: str, start: int) -> int | None:
    """Offset of the ``}`` closing a Lua block whose body starts at ``start``; None if unclosed."""
    match = _LUA_TOKEN.match
    depth = 0
    pos, end = start, len(text)
    while pos < end:
        token = match(text, pos)
        if token is None:  # pragma: no cover - the last alternative matches any character
            return None
        first = text[pos]
        if first == "{":
            depth += 1
        elif first == "}":
            if depth == 0:
                return pos
            depth -= 1
        pos = token.end()
    return None


def unquote(raw: str) -> str:
    """The value nginx sees for a word written as ``raw``: quotes removed, escapes resolved.

    As in ``ngx_conf_read_token``: ``\\"``, ``\\'``, ``\\\\``, ``\\t``, ``\\r`` and ``\\n`` are
    escapes, in quoted and unquoted words alike; any other backslash stays as written.
    """
    if raw[:1] in ('"', "'") and len(raw) >= 2 and raw[-1] == raw[0]:
        raw = raw[1:-1]
    if "\\" not in raw:
        return raw
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], raw)


def quote(value: str) -> str:
    """How to write ``value`` as one word: bare when that reads back as ``value``, else in quotes."""
    if value and _UNQUOTED_FULL.fullmatch(value) and "\\" not in value:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
