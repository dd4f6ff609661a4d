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


def _first_word(line: str) -> str:
    words = line.split()
    return words[0].lower() if words else ""


def reindent(original: str, edited: str) -> str:
    """``edited`` with each block of added lines indented like its neighbours in ``original``.

    A block takes the indentation of the next kept line, unless that line closes a section; then of
    the previous kept line, unless that one opens a section (then four spaces more than it). Lines
    of a block keep their indentation relative to its first line. Where lines were replaced, a new
    line naming a directive that one of the old lines named is a changed line and stays as written.
    """
    old_lines = original.splitlines(keepends=True)
    new_lines = edited.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    result: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        block = new_lines[j1:j2]
        if tag not in ("insert", "replace"):
            result.extend(block)
            continue
        changed = {_first_word(line) for line in old_lines[i1:i2]} if tag == "replace" else set()
        kept = [not line.strip() or _first_word(line) in changed for line in block]
        start = 0
        while start < len(block):
            if kept[start]:
                result.append(block[start])
                start += 1
                continue
            end = start
            while end < len(block) and not kept[end]:
                end += 1
            following = [line for line in block[end:] if line.strip()] or old_lines[i2:]
            result.extend(_place(block[start:end], result, following))
            start = end
    return "".join(result)


def _place(run: list[str], before_lines: list[str], after_lines: list[str]) -> list[str]:
    """The added lines ``run`` indented for their place between ``before_lines`` and ``after_lines``."""
    after = next((line for line in after_lines if line.strip()), "")
    before = next((line for line in reversed(before_lines) if line.strip()), "")
    if after and not _CLOSE.match(after):
        target = _indent(after)
    elif before and _OPEN.match(before) and not _CLOSE.match(before):
        target = _indent(before) + "    "
    else:
        target = _indent(before)
    base = _indent(run[0])
    placed = []
    for line in run:
        own = _indent(line)
        relative = own[len(base):] if own.startswith(base) else own
        placed.append(target + relative + line[len(own):])
    return placed
