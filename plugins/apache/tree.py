"""The configuration files as typed trees, read and edited through Augeas and the Httpd lens.

Role: the grammar/tree layer of the Apache plugin (STYLE.md section 10). Augeas parses a file with
the lens in ``lenses/httpd.aug`` (a corrected copy of Augeas's Httpd lens, see its header) and
writes it back changing only the nodes we touched, so comments and layout survive every edit.
:class:`ConfigTree` loads files into one Augeas handle, turns each file's tree into typed nodes
(``nodes``: :class:`Directive`, :class:`Section`) with one ``print`` per file, and offers an edit
API over Augeas paths. It knows nothing of Apache's semantics (includes, conditionals,
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

Allowed imports: the standard library; ``_augeas``, ``errors`` and ``nodes`` of this package.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ._augeas import ENABLE_SPAN, NO_LOAD, NO_MODL_AUTOLOAD, AugeasHandle
from .errors import StaleNodeError, TreeError, UnreadableFileError
from .nodes import (
    SECTION_VALUE,
    Directive,
    FileTree,
    LineSource,
    Node,
    Section,
    augeas_path,
    build_file_tree,
    file_of,
    parse_print,
)

__all__ = ["LENS_DIR", "ConfigTree", "Directive", "FileTree", "Node", "Section", "augeas_path"]

LENS_DIR = Path(__file__).parent / "lenses"
"""Where the corrected Httpd lens lives (shipped as package data)."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
_RESERVED = frozenset({"arg", "wordlist", "perl"})
_GLOB = frozenset("*?[]{}\\")


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name.lower() in _RESERVED:
        raise TreeError(f"{name!r} cannot be the name of a directive or section")
    return name


def _glob_escape(file: str) -> str:
    return "".join("\\" + char if char in _GLOB else char for char in file)


class ConfigTree:
    """The files loaded so far, as typed trees over one Augeas handle with the corrected Httpd lens."""

    def __init__(self, *, lens_dir: Path = LENS_DIR) -> None:
        self._aug = AugeasHandle(str(lens_dir), NO_MODL_AUTOLOAD | NO_LOAD | ENABLE_SPAN)
        self._aug.set("/augeas/load/Httpd/lens", "Httpd.lns")
        self._included = 0
        self._trees: dict[str, FileTree] = {}
        self._sources: dict[str, LineSource] = {}
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
        source = self._sources[file] = LineSource(self._aug, file)
        return build_file_tree(file, self._print(augeas_path(file)), generation, source)

    def _print(self, path: str) -> list[tuple[str, str | None]]:
        """``(path, quoted value or None)`` of every node below ``path`` (itself first), in document order."""
        with open(os.memfd_create("augeas-print"), "w+b", buffering=0) as out:
            self._aug.defvar("letsencrypt_print", path)  # a variable: srun's tokenizer would eat escapes
            self._aug.srun(out, "print $letsencrypt_print")
            data = os.pread(out.fileno(), os.lseek(out.fileno(), 0, os.SEEK_CUR), 0)
        return parse_print(data)

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
        self._aug.set(path, SECTION_VALUE)
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
                f"{file_of(path[len('/augeas'):].rpartition('/')[0])}: "
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
