"""Text to tree: a linear, hand-written tree builder over the pyparsing token grammar.

Role: ``parse(text)`` turns one file's text into a :class:`~plugins.nginx.tree.ConfigFile`
whose ``dump()`` is the same text, byte for byte. One compiled pattern (``grammar.STATEMENT``)
matches a whole statement at a time (its leading trivia, words and terminator); this loop only
keeps the stack of open blocks, so time and memory grow linearly with the text. Text the pattern
cannot match is handed to the character-level port of nginx's tokenizer (``_reference``), which
says where and why nginx would reject it: :class:`~plugins.nginx.errors.NginxParseError` with
path, line and column.

Allowed imports: the standard library and this package.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from typing import NoReturn

from . import _reference
from .errors import NginxParseError
from .grammar import STATEMENT, WORD_PAIR, is_lua_block, lua_block_end, unquote
from .tree import Block, ConfigFile, Directive, RawBlock, Statement

__all__ = ["parse", "parse_file"]

_match_statement = STATEMENT.re.match
_split_words = WORD_PAIR.re.findall
_intern = sys.intern
# Words separated by single spaces, with nothing to unquote or unescape: most statements. Split
# with str.split, three times faster than WORD_PAIR; their gaps tuples are shared.
_plain_words = re.compile(r"[^ \t\r\n\"'#\\]+(?: [^ \t\r\n\"'#\\]+)*").fullmatch
_PLAIN_GAPS = [("",) + (" ",) * count for count in range(64)]


def _position(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _fail(text: str, offset: int, path: str | None) -> NoReturn:
    """Raise the error nginx would report for ``text`` (the fast pattern stopped at ``offset``)."""
    try:
        for _ in _reference.events(text):
            pass
    except _reference.SyntaxProblem as problem:
        raise NginxParseError(path, *_position(text, max(problem.offset, 0)), problem.message) from None
    raise NginxParseError(path, *_position(text, offset), "the parser cannot read this statement (a parser bug)")


def _split_trailing(lead: str, at_end: bool) -> int:
    """How much of ``lead`` ends the previous statement's line (its ``trailing``)."""
    cut = lead.find("\n")
    if cut < 0:
        return len(lead) if at_end or "#" in lead else 0
    if cut > 0 and lead[cut - 1] == "\r":
        cut -= 1
    return cut


def parse(text: str, path: str | None = None) -> ConfigFile:
    """Parse one file's text; ``path`` only names the file in errors and in the result.

    The cyclic garbage collector is paused meanwhile: the tree has no reference cycles, and
    collections triggered by its many new objects would cost a third of the time.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, path)
    finally:
        if paused:
            gc.enable()


def _parse(text: str, path: str | None) -> ConfigFile:
    # One flat loop of about 60 lines: it runs once per statement, and splitting it into helper
    # calls costs a tenth of the parsing time.
    top: list[Statement] = []
    children = top
    stack: list[tuple[Block, list[Statement]]] = []  # open blocks and the list each returns to
    previous: Statement | None = None  # the last statement of the current container, for its trailing
    pos = 0
    while True:
        match = _match_statement(text, pos)
        if match is None:
            _fail(text, pos, path)
        lead, close, words, gap, terminator = match.groups()
        if previous is not None and lead and lead[0] != "\n":
            cut = _split_trailing(lead, close is None and words is None)
            if cut:
                previous.trailing, lead = lead[:cut], lead[cut:]
        lead = _intern(lead)
        if words is None:
            if close is None:  # end of text
                if stack:
                    _fail(text, pos, path)
                return ConfigFile(path, top, lead, text)
            if not stack:
                _fail(text, match.start(2), path)
            block, children = stack.pop()
            block.closing = lead
            previous = block
            pos = match.end()
            continue
        raw: tuple[str, ...]
        gaps: tuple[str, ...]
        if _plain_words(words) and words.count(" ") < 64:
            raw = tuple(map(_intern, words.split(" ")))
            gaps = _PLAIN_GAPS[len(raw) - 1]
            name = _intern(raw[0])
        else:
            pairs = _split_words(words)
            gaps, raw = zip(*pairs, strict=True)
            name = raw[0]
            if name[0] in "\"'" or "\\" in name:
                name = unquote(name)
            name = _intern(name)
        offset = match.start(3)
        node: Statement
        if terminator == ";":
            node = Directive(raw, gaps, gap, leading=lead, offset=offset, name=name)
            pos = match.end()
        elif is_lua_block(name):
            body_start = match.end()
            body_end = lua_block_end(text, body_start)
            if body_end is None:
                _fail(text, body_start, path)
            node = RawBlock(raw, gaps, gap, body=text[body_start:body_end], leading=lead, offset=offset, name=name)
            pos = body_end + 1
        else:
            block = Block(raw, gaps, gap, leading=lead, offset=offset, name=name)
            children.append(block)
            stack.append((block, children))
            children = block.children
            previous = None
            pos = match.end()
            continue
        children.append(node)
        previous = node


def parse_file(path: str | os.PathLike[str], name: str | None = None) -> ConfigFile:
    """Read and parse a file; ``name`` (default: ``path``) is how errors and the tree name it.

    Bytes that are not UTF-8 are kept as they are (``surrogateescape``): ``ConfigFile.encode()``
    gives them back unchanged.
    """
    label = name if name is not None else os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise NginxParseError(label, 1, 1, f"cannot read the file: {err.strerror or err}") from err
    return parse(data.decode("utf-8", "surrogateescape"), label)
