"""A small reader and writer for the ConfigObj INI subset certbot's renewal files use.

certbot writes ``renewal/NAME.conf`` with ConfigObj: ``key = value`` lines, ``# comments``,
``[section]`` and nested ``[[subsection]]`` headers, and list values written with commas
(``a, b`` or ``a,`` for a one-item list, ``,`` for an empty one). Values are quoted with ``"`` or
``'`` (or tripled) when they contain a comma, ``#``, a quote or surrounding whitespace; no escapes
are processed inside quotes. This module reads that subset (no multi-line values, no
``%(interpolation)s``) and writes values so that both it and ConfigObj read them back unchanged.

Imports: the standard library only. Errors are ``ValueError`` naming the line; callers wrap them.
"""

from __future__ import annotations

__all__ = ["Document", "Section", "Value", "format_entry", "format_value", "parse", "parse_value"]

Value = str | tuple[str, ...]
Section = dict[str, "Value | Section"]


class Document:
    """A parsed file: top-level values and sections (each may hold one level of subsections)."""

    def __init__(self) -> None:
        self.top: dict[str, Value] = {}
        self.sections: dict[str, Section] = {}


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _parse_triple(text: str) -> str:
    quote = text[:3]
    end = text.find(quote, 3)
    if end == -1:
        raise ValueError("multi-line (triple-quoted) values are not supported")
    rest = text[end + 3 :].strip()
    if rest and not rest.startswith("#"):
        raise ValueError(f"unexpected text after the closing {quote}: {rest!r}")
    return text[3:end]


def _parse_item(text: str, pos: int) -> tuple[str, bool, int]:
    """One list item or scalar from ``pos``: (value, was quoted, position after it)."""
    if pos < len(text) and text[pos] in "\"'":
        end = text.find(text[pos], pos + 1)
        if end == -1:
            raise ValueError(f"no closing {text[pos]} in {text!r}")
        return text[pos + 1 : end], True, end + 1
    end = pos
    while end < len(text) and text[end] not in ",#":
        end += 1
    return text[pos:end].strip(), False, end


def parse_value(text: str) -> Value:
    """A value as ConfigObj reads it: a string, or a tuple when the text has an unquoted comma."""
    text = text.strip()
    if text.startswith(('"""', "'''")):
        return _parse_triple(text)
    if text == "," or (text.startswith(",") and text[1:].lstrip().startswith("#")):
        return ()
    items: list[str] = []
    pos = 0
    while True:
        item, quoted, pos = _parse_item(text, _skip_spaces(text, pos))
        pos = _skip_spaces(text, pos)
        if pos < len(text) and text[pos] == ",":
            items.append(item)
            pos += 1
            continue
        if pos < len(text) and text[pos] != "#":
            raise ValueError(f"unexpected text after a quoted value: {text[pos:]!r}")
        if not items:
            return item
        if item or quoted:
            items.append(item)
        return tuple(items)


def _header(line: str) -> tuple[int, str]:
    depth = len(line) - len(line.lstrip("["))
    close = line.find("]" * depth, depth)
    rest = line[close + depth :].strip() if close != -1 else "x"
    if close == -1 or (rest and not rest.startswith("#")):
        raise ValueError(f"bad section header {line!r}")
    return depth, line[depth:close].strip().strip("\"'")


def parse(text: str) -> Document:
    """Read ``text``; ``ValueError("line N: ...")`` for what this subset does not understand."""
    document = Document()
    section: Section | None = None
    target: Section | dict[str, Value] = document.top
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("["):
                depth, name = _header(line)
                if depth == 1:
                    section = document.sections.setdefault(name, {})
                    target = section
                elif depth == 2 and section is not None:
                    sub: Section = {}
                    section[name] = sub
                    target = sub
                else:
                    raise ValueError(f"section {name!r} is nested deeper than this reader supports")
                continue
            key, equals, value = line.partition("=")
            if not equals or not key.strip():
                raise ValueError(f"expected 'key = value', got {line!r}")
            target[key.strip().strip("\"'")] = parse_value(value)
        except ValueError as err:
            raise ValueError(f"line {number}: {err}") from err
    return document


def _quote(value: str) -> str:
    if value.splitlines() not in ([], [value]):  # \n, \r and the other breaks str.splitlines knows
        raise ValueError(f"a renewal configuration value cannot span lines: {value!r}")
    plain = value and value == value.strip() and value[0] not in "'\"" and value[-1] not in "'\"" and not any(
        c in value for c in ",#"
    )
    if plain:
        return value
    for quote in ('"', "'", '"""', "'''"):
        if quote not in value and not (len(quote) == 3 and value.endswith(quote[0])):
            return f"{quote}{value}{quote}"
    raise ValueError(f"a value cannot contain both kinds of triple quotes: {value!r}")


def format_value(value: Value) -> str:
    """The text of ``value``: a one-item list ends with a comma, an empty list is a lone comma."""
    if isinstance(value, str):
        return _quote(value)
    if any('"' in item and "'" in item for item in value):
        raise ValueError(f"a list item cannot hold both quote characters: {value!r}")
    if not value:
        return ","
    if len(value) == 1:
        return _quote(value[0]) + ","
    return ", ".join(_quote(item) for item in value)


def format_entry(key: str, value: Value) -> str:
    """One ``key = value`` line (without the newline)."""
    if not key or any(c in key for c in "=[]#\n") or key != key.strip():
        raise ValueError(f"not a usable configuration key: {key!r}")
    return f"{key} = {format_value(value)}"
