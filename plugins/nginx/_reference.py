"""A character-by-character port of nginx's tokenizer: the parser's error reporter and test oracle.

Role: ``ngx_conf_read_token`` (nginx 1.22, ``src/core/ngx_conf_file.c``) transcribed state for
state, plus the block nesting that ``ngx_conf_parse`` checks. It is slow (one Python step per
character) and is used only when the fast parser (``parser.py``) meets text it cannot match, to
say where and why, in nginx's own words; the tests also compare both on generated text.

Allowed imports: the standard library and this package.
"""

from __future__ import annotations

from collections.abc import Iterator

from .grammar import is_lua_block, lua_block_end

__all__ = ["Event", "SyntaxProblem", "events"]

_SPACE = " \t\r\n"
_ESCAPES = {"t": "\t", "r": "\r", "n": "\n"}

Event = tuple[str, list[str], int]
"""(kind, word values, offset): kind is ``;``, ``{``, ``lua`` or ``}``."""


class SyntaxProblem(Exception):
    """Text nginx would reject: ``offset`` in the text and nginx's message."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def _unescape(word: str) -> str:
    out: list[str] = []
    i, end = 0, len(word)
    while i < end:
        char = word[i]
        if char == "\\" and i + 1 < end:
            following = word[i + 1]
            if following in "\"'\\":
                i += 1
            elif following in _ESCAPES:
                out.append(_ESCAPES[following])
                i += 2
                continue
        out.append(word[i])
        i += 1
    return "".join(out)


def _read(text: str, pos: int) -> tuple[str, list[str], int, int]:
    """One ``ngx_conf_read_token`` call: (kind, words, offset of the statement, position after it).

    Kept as one function of about 80 lines, like the C original, so that the two can be compared
    branch for branch.
    """
    words: list[str] = []
    last_space = True
    need_space = sharp = variable = quoted = s_quoted = d_quoted = False
    start = first = quote_at = -1
    end = len(text)
    while True:
        if pos >= end:
            if words or not last_space:
                if s_quoted or d_quoted:
                    raise SyntaxProblem(quote_at, 'unexpected end of file, expecting ";" or "}" (unterminated quote)')
                raise SyntaxProblem(first, 'unexpected end of file, expecting ";" or "}"')
            return "eof", words, pos, pos
        char = text[pos]
        pos += 1
        if char == "\n" and sharp:
            sharp = False
        if sharp:
            continue
        if quoted:
            quoted = False
            continue
        if need_space:
            if char in _SPACE:
                last_space, need_space = True, False
                continue
            if char in ";{":
                return char, words, first, pos
            if char != ")":
                raise SyntaxProblem(pos - 1, f'unexpected "{char}"')
            last_space, need_space = True, False
        if last_space:
            start = pos - 1
            if char in _SPACE:
                continue
            if char in ";{":
                if not words:
                    raise SyntaxProblem(pos - 1, f'unexpected "{char}"')
                return char, words, first, pos
            if char == "}":
                if words:
                    raise SyntaxProblem(pos - 1, 'unexpected "}"')
                return "}", words, pos - 1, pos
            if char == "#":
                sharp = True
                continue
            if first < 0:
                first = start
            last_space = False
            if char == "\\":
                quoted = True
            elif char in "\"'":
                start += 1
                quote_at = pos - 1
                d_quoted, s_quoted = char == '"', char == "'"
            elif char == "$":
                variable = True
            continue
        if char == "{" and variable:
            continue
        variable = False
        if char == "\\":
            quoted = True
            continue
        if char == "$":
            variable = True
            continue
        found = False
        if d_quoted:
            if char == '"':
                d_quoted, need_space, found = False, True, True
        elif s_quoted:
            if char == "'":
                s_quoted, need_space, found = False, True, True
        elif char in _SPACE or char in ";{":
            last_space, found = True, True
        if found:
            words.append(_unescape(text[start : pos - 1]))
            if char in ";{":
                return char, words, first, pos


def events(text: str) -> Iterator[Event]:
    """The statements of ``text`` as nginx reads them; raises :class:`SyntaxProblem` where nginx would."""
    opened: list[int] = []
    pos = 0
    while True:
        kind, words, offset, pos = _read(text, pos)
        if kind == "eof":
            if opened:
                raise SyntaxProblem(opened[-1], 'unexpected end of file, expecting "}" (this block is not closed)')
            return
        if kind == "}":
            if not opened:
                raise SyntaxProblem(offset, 'unexpected "}"')
            opened.pop()
            yield "}", words, offset
        elif kind == "{" and is_lua_block(words[0]):
            close = lua_block_end(text, pos)
            if close is None:
                raise SyntaxProblem(pos - 1, f'unexpected end of file in the Lua code of "{words[0]}"')
            yield "lua", words, offset
            pos = close + 1
        else:
            if kind == "{":
                opened.append(pos - 1)
            yield kind, words, offset
