"""Line breaks in trivia: where they are, and how to add one. Part of the tree layer (``tree.py``).

A line break is "\n" or "\r\n"; the edits of ``tree.Container`` cut and join trivia at them.

Allowed imports: the standard library.
"""

from __future__ import annotations

__all__ = ["first_break", "last_break", "line_break"]


def first_break(text: str) -> int:
    """Offset of the first line break ("\\n" or "\\r\\n") in ``text``, or -1."""
    found = text.find("\n")
    if found > 0 and text[found - 1] == "\r":
        return found - 1
    return found


def last_break(text: str) -> int:
    """Offset of the last line break in ``text``, or -1."""
    found = text.rfind("\n")
    if found > 0 and text[found - 1] == "\r":
        return found - 1
    return found


def line_break(before: str, newline: str) -> str:
    """``before`` and a line break; "\\r\\n" after a stray "\\r", which would otherwise merge with "\\n"."""
    return before + ("\r\n" if before.endswith("\r") else newline)
