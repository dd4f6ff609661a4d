"""Typed nodes of one configuration file, built from Augeas's tree of it.

Role: part of the tree layer (see ``tree``): :class:`Directive`, :class:`Section` and
:class:`FileTree`, built in one pass from what Augeas's ``print`` writes for a file (every node as
``PATH = "VALUE"``, in document order), and the lines of a node, found from Augeas's spans when
asked. The shape is our lens's (``lenses/httpd.aug``): a directive is a node labelled with its
name whose ``arg`` children are its arguments; a section has the value ``>``, then its ``arg``
children, then its content; ``#comment`` and ``<Perl>`` nodes are left out.

Allowed imports: the standard library; ``_augeas``, ``errors`` and ``words`` of this package.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from ._augeas import AugeasHandle
from .errors import StaleNodeError
from .words import split_words

__all__ = ["SECTION_VALUE", "Directive", "FileTree", "LineSource", "Node", "Section", "augeas_path", "build_file_tree",
           "file_of", "parse_print"]

SECTION_VALUE = ">"
"""The value our lens gives every section node (directives have none)."""

_ESCAPED = frozenset("][|/=()!,\\")
_LABEL = re.compile(r"\[\d+\]$")
_C_ESCAPES = {ord(name): code for name, code in zip("abtnvfr", b"\a\b\t\n\v\f\r", strict=True)}


def _unquote(quoted: bytes) -> str:
    """A value as Augeas's ``print`` writes it (C escapes, octal for other bytes), decoded."""
    body, out, i = quoted[1:-1], bytearray(), 0
    if b"\\" not in body:
        return body.decode("utf-8", "surrogateescape")
    while i < len(body):
        byte = body[i]
        if byte != 0x5C or i + 1 >= len(body):
            out.append(byte)
            i += 1
        elif body[i + 1] in _C_ESCAPES:
            out.append(_C_ESCAPES[body[i + 1]])
            i += 2
        elif 0x30 <= body[i + 1] <= 0x37:
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(body[i + 1])
            i += 2
    return out.decode("utf-8", "surrogateescape")


def parse_print(data: bytes) -> list[tuple[str, str | None]]:
    """``(path, value)`` of each line of Augeas's ``print`` output (``PATH = "VALUE"`` or ``PATH``)."""
    nodes: list[tuple[str, str | None]] = []
    for line in data.split(b"\n"):
        if line:
            path, separator, value = line.partition(b" = ")
            nodes.append((path.decode("utf-8", "surrogateescape"), _unquote(value) if separator else None))
    return nodes


def augeas_path(file: str) -> str:
    """The Augeas path of a file's tree: ``/files`` + the file path, escaped as Augeas escapes names."""
    parts = [
        "".join("\\" + char if char in _ESCAPED or char.isspace() else char for char in part)
        for part in file.split("/")
        if part
    ]
    return "/files/" + "/".join(parts)


def file_of(path: str) -> str:
    """Inverse of :func:`augeas_path` for the ``/files/...`` paths Augeas reports."""
    out, escaped = [], False
    for char in path[len("/files"):]:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


class LineSource:
    """Where the nodes of one reading of a file come from, to find their lines when asked.

    Lines come from Augeas's spans (byte offsets into the text it parsed) and the file's bytes,
    both fetched on first use: most nodes are never asked for their line.
    """

    def __init__(self, aug: AugeasHandle, file: str) -> None:
        self.aug = aug
        self.file = file
        self.current = True
        self._data: bytes | None = None
        self._newlines: list[int] = []

    def _line(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1

    def lines(self, path: str) -> tuple[int, int]:
        """First and last line of the node at ``path`` (not counting blanks around it); 0 if unknown."""
        if not self.current:
            raise StaleNodeError(f"the node {path} was read before {self.file} changed; read the file again")
        span = self.aug.span(path)
        if span is None:
            return 0, 0
        if self._data is None:
            try:
                self._data = Path(self.file).read_bytes()
            except OSError:
                self._data = b""
            self._newlines = [match.start() for match in re.finditer(b"\n", self._data)]
        data, (start, end) = self._data, span
        while start < end and (data[start] in b" \t\r\n" or data[start:start + 2] in (b"\\\n", b"\\\r")):
            start += 1  # the blanks and line continuations of the indentation
        end -= 1
        while end > start and data[end] in b" \t\r\n":
            end -= 1
        return self._line(start), self._line(end)


@dataclasses.dataclass(eq=False, slots=True)
class Directive:
    """``Name arg...`` as written; ``line`` is 1-based (0 for a node not saved yet)."""

    name: str
    args: tuple[str, ...]
    path: str
    file: str
    generation: int
    _source: LineSource = dataclasses.field(repr=False)
    _line: int = dataclasses.field(default=-1, repr=False)

    @property
    def line(self) -> int:
        if self._line < 0:
            self._line = self._source.lines(self.path)[0]
        return self._line

    @property
    def words(self) -> list[str]:
        """The arguments as Apache's tokenizer gives them: quotes removed, escapes resolved."""
        return [word for arg in self.args for word in split_words(arg)]


@dataclasses.dataclass(eq=False, slots=True)
class Section:
    """``<Name args...>`` ... ``</Name>``; ``line``/``end_line`` are its first and last lines."""

    name: str
    args: tuple[str, ...]
    children: list[Node]
    path: str
    file: str
    generation: int
    _source: LineSource = dataclasses.field(repr=False)
    _lines: tuple[int, int] | None = dataclasses.field(default=None, repr=False)

    @property
    def line(self) -> int:
        if self._lines is None:
            self._lines = self._source.lines(self.path)
        return self._lines[0]

    @property
    def end_line(self) -> int:
        if self._lines is None:
            self._lines = self._source.lines(self.path)
        return self._lines[1]

    @property
    def words(self) -> list[str]:
        return [word for arg in self.args for word in split_words(arg)]

    def walk(self) -> Iterator[Node]:
        """Every node below this section, depth first, in file order."""
        for child in self.children:
            yield child
            if isinstance(child, Section):
                yield from child.walk()


Node = Directive | Section


@dataclasses.dataclass(eq=False, slots=True)
class FileTree:
    """One file's nodes (``children``), with every node reachable by its Augeas path (``nodes``)."""

    file: str
    path: str
    children: list[Node]
    nodes: dict[str, Node]
    generation: int

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            yield child
            if isinstance(child, Section):
                yield from child.walk()


def build_file_tree(file: str, printed: list[tuple[str, str | None]], generation: int,
                    source: LineSource) -> FileTree:
    """The typed tree of ``file`` from the ``print`` of its Augeas tree (the file's node first)."""
    tree = FileTree(file, augeas_path(file), [], {}, generation)
    containers: dict[str, list[Node]] = {}
    arg_lists: dict[str, list[str | list[str]]] = {}
    wordlists: dict[str, list[str]] = {}
    for index, (path, value) in enumerate(printed):
        if index == 0:
            tree.path = path
            containers[path] = tree.children
            continue
        parent, _, last = path.rpartition("/")
        label = _LABEL.sub("", last)
        if label == "arg":
            target = wordlists.get(parent)
            if target is not None:
                target.append(value or "")
            elif parent in arg_lists:
                arg_lists[parent].append(value or "")
            continue
        if label == "wordlist":
            if parent in arg_lists:
                wordlists[path] = []
                arg_lists[parent].append(wordlists[path])
            continue
        siblings = containers.get(parent)
        if siblings is None or label in ("#comment", "Perl"):
            continue  # a comment, or inside a <Perl> block: opaque text
        node: Node
        if value == SECTION_VALUE:
            node = Section(label, (), [], path, file, generation, source)
            containers[path] = node.children
        else:
            node = Directive(label, (), path, file, generation, source)
        arg_lists[path] = []
        siblings.append(node)
        tree.nodes[path] = node
    for path, args in arg_lists.items():
        tree.nodes[path].args = tuple(
            arg if isinstance(arg, str) else "{" + ",".join(arg) + "}" for arg in args
        )
    return tree
