"""How Apache turns a configuration line into words: variable expansion, then its tokenizer.

Role: pure functions that mirror httpd's ``ap_resolve_env`` (``${NAME}`` from ``Define`` or the
environment, left as is when undefined) and ``ap_getword_conf`` (blanks separate words; a word
that starts with a quote runs to the matching quote, inside which ``\\"`` and ``\\\\`` are escapes;
outside quotes ``\\\\`` is one backslash). Apache expands variables in the whole line before it
splits it, so a variable whose value holds blanks yields several words; :func:`expand_words` does
the same per argument.

Allowed imports: the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

__all__ = ["expand", "expand_words", "split_words"]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_BLANKS = " \t\r\n\f\v"


def expand(text: str, lookup: Callable[[str], str | None], undefined: list[str] | None = None) -> str:
    """``text`` with each ``${NAME}`` replaced by ``lookup(NAME)``; unknown names stay (and go to ``undefined``)."""
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        if value is None:
            if undefined is not None:
                undefined.append(match.group(1))
            return match.group(0)
        return value

    return _VARIABLE.sub(replace, text)


def _unescape(text: str, quote: str | None) -> str:
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and (text[i + 1] == "\\" or (quote and text[i + 1] == quote)):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


_PLAIN = re.compile(r"[^\s\"'\\]+")


def split_words(text: str) -> list[str]:
    """The words ``ap_getword_conf`` reads from ``text``, one after another."""
    if _PLAIN.fullmatch(text):
        return [text]
    words: list[str] = []
    i, end = 0, len(text)
    while True:
        while i < end and text[i] in _BLANKS:
            i += 1
        if i >= end:
            return words
        quote = text[i]
        if quote in "\"'":
            j = i + 1
            while j < end and text[j] != quote:
                j += 2 if text[j] == "\\" and j + 1 < end and text[j + 1] in (quote, "\\") else 1
            words.append(_unescape(text[i + 1:j], quote))
            i = j + 1
        else:
            j = i
            while j < end and text[j] not in _BLANKS:
                j += 1
            words.append(_unescape(text[i:j], None))
            i = j


def expand_words(args: Iterable[str], lookup: Callable[[str], str | None],
                 undefined: list[str] | None = None) -> tuple[str, ...]:
    """The words of raw arguments (as the lens keeps them) after variable expansion, as Apache reads them."""
    return tuple(word for arg in args for word in split_words(expand(arg, lookup, undefined)))
