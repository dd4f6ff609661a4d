"""Layout of the lines we add: the indentation of their neighbours, not the lens's fixed default.

Role: Augeas writes every node it creates with the one indentation its lens declares, whatever the
file uses (tabs, two spaces, nesting). :func:`reindent` compares a file before and after an edit and
gives each block of added lines the indentation of the lines around it; every other line is kept
byte for byte.

Allowed imports: the standard library.
"""

from __future__ import annotations

import difflib
import re

__all__ = ["reindent"]

_OPEN = re.compile(r"^\s*<[^/!]")
_CLOSE = re.compile(r"^\s*</")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def reindent(original: str, edited: str) -> str:
    """``edited`` with each block of added lines indented like its neighbours in ``original``.

    A block takes the indentation of the next kept line, unless that line closes a section; then of
    the previous kept line, unless that one opens a section (then four spaces more than it). Lines
    of a block keep their indentation relative to its first line.
    """
    old_lines = original.splitlines(keepends=True)
    new_lines = edited.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    result: list[str] = []
    for tag, _i1, i2, j1, j2 in matcher.get_opcodes():
        block = new_lines[j1:j2]
        if tag != "insert" or not any(line.strip() for line in block):
            result.extend(block)
            continue
        after = next((line for line in old_lines[i2:] if line.strip()), "")
        before = next((line for line in reversed(result) if line.strip()), "")
        if after and not _CLOSE.match(after):
            target = _indent(after)
        elif before and _OPEN.match(before) and not _CLOSE.match(before):
            target = _indent(before) + "    "
        else:
            target = _indent(before)
        base = _indent(next(line for line in block if line.strip()))
        for line in block:
            own = _indent(line)
            relative = own[len(base):] if own.startswith(base) else own
            result.append(target + relative + line[len(own):] if line.strip() else line)
    return "".join(result)
