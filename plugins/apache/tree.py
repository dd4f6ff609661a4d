"""The configuration files as typed trees, read and edited through Augeas and the Httpd lens.

Role: the grammar/tree layer of the Apache plugin (STYLE.md section 10). Augeas parses a file with
the lens in ``lenses/httpd.aug`` (a corrected copy of Augeas's Httpd lens, see its header) and
writes it back changing only the nodes we touched, so comments and layout survive every edit.
This module turns Augeas's untyped tree into :class:`Directive` and :class:`Section` nodes once per
file, in bulk (one ``defvar`` per file, then constant-time reads of each node), and offers an
edit API over Augeas paths. It knows nothing of Apache's semantics (includes, conditionals,
virtual hosts): that is ``loader`` and ``model``.

Rules of use:

- Load every file before the first edit: Augeas re-reads changed trees on load, which would undo
  unsaved edits, so :meth:`ConfigTree.load` refuses while edits are pending.
- A node's ``path`` is valid until its file is edited. Each edit returns the node it made or
  changed, read afresh; using an older node of that file raises :class:`StaleNodeError`.
- Augeas writes an unchanged node with the formatting it read for the node of the same label
  at the same rank among its siblings. Our lens labels directives by name, so appending, and
  changing arguments, keep every other line as it was; removing a directive, or inserting one
  before another of the same name, re-formats the later ones of that name in that section
  (their words stay). The same holds for sections of the same name.
- Arguments are written as Apache reads them, quotes included: ``'"a b"'`` is one argument.
  :attr:`Directive.words` gives the unquoted words.
- Comments are not nodes of the typed tree (Augeas keeps them; :meth:`ConfigTree.add_comment`
  writes one). An SSLRequire word list (``{"a", "b"}``) reads as one argument ``{"a","b"}``.
- Augeas writes a section's closing tag with the case of its opening tag when it saves the file
  (``<ifmodule>``...``</IfModule>`` becomes ``</ifmodule>``); Apache ignores the case.

Allowed imports: the standard library; ``_augeas``, ``errors`` and ``words`` of this package.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ._augeas import ENABLE_SPAN, NO_LOAD, NO_MODL_AUTOLOAD, AugeasHandle
from .errors import StaleNodeError, TreeError, UnreadableFileError
from .words import split_words

__all__ = ["LENS_DIR", "ConfigTree", "Directive", "FileTree", "Node", "Section", "augeas_path"]

LENS_DIR = Path(__file__).parent / "lenses"
"""Where the corrected Httpd lens lives (shipped as package data)."""

_ESCAPED = frozenset("][|/=()!,\\")
_LABEL = re.compile(r"\[\d+\]$")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
_RESERVED = frozenset({"arg", "wordlist", "perl"})
_SECTION_VALUE = ">"  # our lens gives every section node this value (directives have none)
_C_ESCAPES = {ord(name): code for name, code in zip("abtnvfr", b"\a\b\t\n\v\f\r", strict=True)}


def _unquote(quoted: bytes) -> str:
    """A value as Augeas's ``print`` writes it (C escapes, octal for other bytes), decoded."""
    body, out, i = quoted[1:-1], bytearray(), 0
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
_GLOB = frozenset("*?[]{}\\")


def augeas_path(file: str) -> str:
    """The Augeas path of a file's tree: ``/files`` + the file path, escaped as Augeas escapes names."""
    parts = [
        "".join("\\" + char if char in _ESCAPED or char.isspace() else char for char in part)
        for part in file.split("/")
        if part
    ]
    return "/files/" + "/".join(parts)


def _file_of(path: str) -> str:
    """Inverse of :func:`augeas_path` for the ``/files/...`` paths Augeas reports."""
    out, escaped = [], False
    for char in path[len("/files"):]:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name.lower() in _RESERVED:
        raise TreeError(f"{name!r} cannot be the name of a directive or section")
    return name


def _glob_escape(file: str) -> str:
    return "".join("\\" + char if char in _GLOB else char for char in file)


class _Source:
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
    _source: _Source = dataclasses.field(repr=False)
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
    _source: _Source = dataclasses.field(repr=False)
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


class ConfigTree:
    """The files loaded so far, as typed trees over one Augeas handle with the corrected Httpd lens."""

    def __init__(self, *, lens_dir: Path = LENS_DIR) -> None:
        self._aug = AugeasHandle(str(lens_dir), NO_MODL_AUTOLOAD | NO_LOAD | ENABLE_SPAN)
        self._aug.set("/augeas/load/Httpd/lens", "Httpd.lns")
        self._included = 0
        self._trees: dict[str, FileTree] = {}
        self._sources: dict[str, _Source] = {}
        self._generation = 0
        self._edited: set[str] = set()

    def close(self) -> None:
        self._aug.close()

    def __enter__(self) -> ConfigTree:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def files(self) -> list[str]:
        """Every file loaded, in the order it was first loaded."""
        return list(self._trees)

    @property
    def edited(self) -> list[str]:
        """Files with edits not saved yet."""
        return sorted(self._edited)

    # --- reading ----------------------------------------------------------------------------------

    def load(self, files: Iterable[str]) -> list[FileTree]:
        """The trees of ``files`` (absolute paths), parsing those not loaded yet in one Augeas load.

        Raises :class:`UnreadableFileError` for the first file the lens rejects or that cannot be
        read, with Augeas's line and column, and :class:`TreeError` while edits are pending.
        """
        wanted = list(files)
        new = [file for file in dict.fromkeys(wanted) if file not in self._trees]
        if new:
            if self._edited:
                raise TreeError(f"cannot load more files while edits are pending in {', '.join(self.edited)}",
                                hint="save() or discard() first")
            for file in new:
                self._included += 1
                self._aug.set(f"/augeas/load/Httpd/incl[{self._included}]", _glob_escape(file))
            self._aug.load()
            lens_error = self._aug.get("/augeas/load/Httpd/error")
            if lens_error:
                raise TreeError(f"the Httpd lens in {LENS_DIR} does not compile: {lens_error}")
            for file in new:
                self._check_loaded(file)
                self._trees[file] = self._read(file)
        return [self._trees[file] for file in wanted]

    def file(self, file: str) -> FileTree:
        """The current tree of a loaded file."""
        try:
            return self._trees[file]
        except KeyError:
            raise TreeError(f"{file} is not loaded") from None

    def _check_loaded(self, file: str) -> None:
        meta = "/augeas" + augeas_path(file)
        error = self._aug.get(meta + "/error")
        if error is not None:
            line = int(self._aug.get(meta + "/error/line") or 0)
            column = int(self._aug.get(meta + "/error/char") or 0)
            message = self._aug.get(meta + "/error/message") or error
            raise UnreadableFileError(file, line, column + 1 if line else 0, message)
        if not self._aug.match(meta + "/path"):
            raise UnreadableFileError(file, 0, 0, "Augeas did not load it (not a readable regular file?)")

    def _read(self, file: str) -> FileTree:
        """Build the typed tree of ``file`` from one ``print`` of its Augeas tree.

        ``print`` writes every node as ``PATH = "VALUE"`` in document order, computing each path
        from its parent's; asking Augeas for each node's path instead costs a scan of every
        ancestor's siblings per node (quadratic with a thousand files in one directory).
        """
        self._generation += 1
        generation = self._generation
        if file in self._sources:
            self._sources[file].current = False
        source = self._sources[file] = _Source(self._aug, file)
        tree = FileTree(file, augeas_path(file), [], {}, generation)
        containers: dict[str, list[Node]] = {}
        arg_lists: dict[str, list[str | list[str]]] = {}
        wordlists: dict[str, list[str]] = {}
        for index, (path, raw) in enumerate(self._print(tree.path)):
            if index == 0:
                tree.path = path
                containers[path] = tree.children
                continue
            parent, _, last = path.rpartition("/")
            label = _LABEL.sub("", last)
            value = None if raw is None else _unquote(raw)
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
            if value == _SECTION_VALUE:
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

    def _print(self, path: str) -> list[tuple[str, bytes | None]]:
        """``(path, quoted value or None)`` of every node below ``path`` (itself first), in document order."""
        with open(os.memfd_create("augeas-print"), "w+b", buffering=0) as out:
            self._aug.defvar("letsencrypt_print", path)  # a variable: srun's tokenizer would eat escapes
            self._aug.srun(out, "print $letsencrypt_print")
            data = os.pread(out.fileno(), os.lseek(out.fileno(), 0, os.SEEK_CUR), 0)
        nodes: list[tuple[str, bytes | None]] = []
        for line in data.split(b"\n"):
            if line:
                node_path, separator, value = line.partition(b" = ")
                nodes.append((node_path.decode("utf-8", "surrogateescape"), value if separator else None))
        return nodes

    # --- editing ----------------------------------------------------------------------------------

    def _current(self, node: Node | FileTree) -> None:
        tree = self.file(node.file)
        if node.generation != tree.generation:
            raise StaleNodeError(f"the node {node.path} was read before {node.file} changed; read the file again")

    def _refresh(self, file: str) -> FileTree:
        self._edited.add(file)
        tree = self._trees[file] = self._read(file)
        return tree

    def _new_node(self, parent: Section | FileTree, label: str, before: Node | None, after: Node | None) -> str:
        """Create an empty ``label`` node under ``parent`` (at its end, or next to a child); its path."""
        self._current(parent)
        anchor = before or after
        if anchor is None:
            self._aug.set(f"{parent.path}/{label}[last()+1]", None)
            return self._aug.match(parent.path + "/*")[-1]
        self._current(anchor)
        if anchor.path.rpartition("/")[0] != parent.path:
            raise TreeError(f"{anchor.path} is not a child of {parent.path}")
        children = self._aug.match(parent.path + "/*")
        position = children.index(anchor.path)
        self._aug.insert(anchor.path, label, before=before is not None)
        return self._aug.match(parent.path + "/*")[position if before is not None else position + 1]

    def _write_args(self, path: str, args: Sequence[str]) -> None:
        """Make the ``arg`` children of ``path`` be ``args``, changing values in place where possible."""
        self._aug.remove(path + "/wordlist")
        existing = len(self._aug.match(path + "/arg"))
        for index, arg in enumerate(args, 1):
            if index <= existing:
                self._aug.set(f"{path}/arg[{index}]", arg)
            elif index > 1:
                self._aug.insert(f"{path}/arg[{index - 1}]", "arg", before=False)
                self._aug.set(f"{path}/arg[{index}]", arg)
            elif self._aug.match(path + "/*"):
                self._aug.insert(path + "/*[1]", "arg", before=True)
                self._aug.set(path + "/arg[1]", arg)
            else:
                self._aug.set(path + "/arg", arg)
        for index in range(existing, len(args), -1):
            self._aug.remove(f"{path}/arg[{index}]")

    def add_directive(self, parent: Section | FileTree, name: str, args: Sequence[str] = (), *,
                      before: Node | None = None, after: Node | None = None) -> Directive:
        """Add ``name args`` at the end of ``parent`` (or just before/after one of its children).

        Appending keeps every other line as it is. Inserting before a directive of the same name
        hands formatting on (see the module docstring): prefer appending, or ``after`` the last one.
        """
        path = self._new_node(parent, _checked_name(name), before, after)
        self._write_args(path, args)
        node = self._refresh(parent.file).nodes[path]
        assert isinstance(node, Directive)
        return node

    def add_section(self, parent: Section | FileTree, name: str, args: Sequence[str] = (), *,
                    before: Node | None = None, after: Node | None = None) -> Section:
        """Add an empty ``<name args>`` section; fill it with :meth:`add_directive`."""
        path = self._new_node(parent, _checked_name(name), before, after)
        self._aug.set(path, _SECTION_VALUE)
        self._write_args(path, args)
        node = self._refresh(parent.file).nodes[path]
        assert isinstance(node, Section)
        return node

    def add_comment(self, parent: Section | FileTree, text: str, *,
                    before: Node | None = None, after: Node | None = None) -> None:
        """Add ``# text`` (one line) at the end of ``parent`` or next to one of its children."""
        if "\n" in text:
            raise TreeError("a comment added through the tree must be one line")
        path = self._new_node(parent, "#comment", before, after)
        self._aug.set(path, text)
        self._refresh(parent.file)

    def set_args(self, node: Node, args: Sequence[str]) -> Node:
        """Replace the arguments of a directive or section; the node read afresh."""
        self._current(node)
        self._write_args(node.path, args)
        return self._refresh(node.file).nodes[node.path]

    def remove(self, node: Node) -> None:
        """Remove a directive or a whole section (with what it contains)."""
        self._current(node)
        self._aug.remove(node.path)
        self._refresh(node.file)

    def add_file(self, file: str) -> FileTree:
        """An empty tree for a new file, written (with the Httpd lens) by the next :meth:`save`."""
        if file in self._trees:
            raise TreeError(f"{file} is already loaded")
        if Path(file).exists():
            raise TreeError(f"{file} exists: load() it instead")
        self._included += 1
        self._aug.set(f"/augeas/load/Httpd/incl[{self._included}]", _glob_escape(file))
        self._aug.set(augeas_path(file), None)
        self._trees[file] = FileTree(file, augeas_path(file), [], {}, 0)
        return self._refresh(file)

    def save(self) -> list[str]:
        """Write every edited file (atomically, following symlinks, keeping modes); the files written.

        Afterwards the written files are parsed again, so lines are those of the new text.
        Raises :class:`TreeError` naming the file when the lens cannot write a tree back (an
        argument with an unquoted blank, say); nothing of that file is written then.
        """
        self._aug.remove("/augeas/events/saved")
        ok = self._aug.save()
        failures = [path for path in self._aug.match("/augeas/files//error") if self._aug.get(path) != "parse_failed"]
        if not ok or failures:
            details = [
                f"{_file_of(path[len('/augeas'):].rpartition('/')[0])}: "
                f"{self._aug.get(path + '/message') or self._aug.get(path)}"
                for path in failures
            ]
            raise TreeError("Augeas could not write " + ("; ".join(details) or "the configuration"),
                            hint="an argument with a blank or a quote must be quoted")
        # the values under /augeas/events/saved are "/files" + the file name, not escaped
        saved = [(self._aug.get(path) or "")[len("/files"):] for path in self._aug.match("/augeas/events/saved")]
        self._aug.load()
        for file in self._edited:
            self._trees[file] = self._read(file)
        self._edited.clear()
        return saved

    def discard(self) -> list[str]:
        """Drop unsaved edits: the edited files are read from disk again. The files that had edits."""
        dropped = self.edited
        for file in dropped:
            if not Path(file).exists():  # made by add_file: forget it
                self._aug.remove(augeas_path(file))
                del self._trees[file]
        self._aug.load()
        for file in dropped:
            if file in self._trees:
                self._trees[file] = self._read(file)
        self._edited.clear()
        return dropped
