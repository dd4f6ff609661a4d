"""The concrete syntax tree of an nginx configuration file: typed nodes that keep every byte.

Role: the tree layer of the nginx plugin (STYLE.md section 10). ``parser.parse`` builds it,
``dump()`` writes it back, and ``dump(parse(text)) == text`` for any text nginx accepts. The model
layer reads it (``find``, ``walk``, ``name``, ``args``) and edits it through the methods below,
which change only the lines they must.

Where the bytes live, for a statement ``listen  80 "ssl" ;  # note``::

    leading     trivia (whitespace, comment lines) before the name, starting after the previous
                statement's ``trailing`` (or after ``{`` / the start of the file)
    words       raw words as written: ("listen", "80", '"ssl"'); ``args`` gives their values
    gaps        trivia before each word; gaps[0] is always ""
    before_end  trivia between the last word and ``;`` / ``{``
    trailing    what follows the terminator on its line, when the line ends there: spaces and an
                optional comment ("  # note"), never the line break itself

A :class:`Block` adds ``children`` and ``closing`` (trivia before its ``}``); a :class:`RawBlock`
(``*_by_lua_block``) keeps its body as opaque text. A :class:`ConfigFile` is the top-level
container: its ``closing`` is the trivia at the end of the file.

Allowed imports: the standard library and this package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar

from ._trivia import first_break as _first_break
from ._trivia import last_break as _last_break
from ._trivia import line_break as _line_break
from .grammar import quote, unquote

__all__ = ["Block", "ConfigFile", "Container", "Directive", "RawBlock", "Statement"]

_COMMENT_TEXT = re.compile(r"#([^\n]*)")


class Statement:
    """A directive with its words and the trivia around them; see the module docstring."""

    __slots__ = ("before_end", "gaps", "leading", "name", "offset", "trailing", "words")
    terminator: ClassVar[str] = ";"

    def __init__(
        self,
        words: tuple[str, ...],
        gaps: tuple[str, ...] | None = None,
        before_end: str = "",
        *,
        leading: str = "",
        trailing: str = "",
        offset: int = -1,
        name: str | None = None,
    ) -> None:
        if not words:
            raise ValueError("a statement needs at least its name")
        self.words = words
        self.gaps = gaps if gaps is not None else ("", *(" " for _ in words[1:]))
        self.before_end = before_end
        self.leading = leading
        self.trailing = trailing
        self.offset = offset  # in the text it was parsed from; -1 for statements made in code
        self.name = name if name is not None else unquote(words[0])

    @classmethod
    def _build(cls, name: str, args: Iterable[str], comment: str | None) -> tuple[tuple[str, ...], str]:
        words = (quote(name), *(quote(arg) for arg in args))
        return words, "" if comment is None else f" # {comment}"

    @property
    def args(self) -> list[str]:
        """The argument values as nginx sees them (quotes removed, escapes resolved)."""
        return [unquote(word) for word in self.words[1:]]

    @property
    def raw_args(self) -> tuple[str, ...]:
        """The arguments exactly as written."""
        return self.words[1:]

    @property
    def comment(self) -> str | None:
        """The comment after the terminator on the same line, without ``#`` and outer spaces."""
        found = _COMMENT_TEXT.search(self.trailing)
        return None if found is None else found.group(1).strip()

    @property
    def leading_comments(self) -> list[str]:
        """Comments on the lines just before the statement, without ``#`` and outer spaces."""
        return [text.strip() for text in _COMMENT_TEXT.findall(self.leading)]

    def set_args(self, values: Sequence[str]) -> None:
        """Replace all arguments; the spacing before existing positions is kept."""
        words = (self.words[0], *(quote(value) for value in values))
        gaps = self.gaps[: len(words)] + tuple(" " for _ in range(len(words) - len(self.gaps)))
        self.words, self.gaps = words, gaps

    def set_arg(self, index: int, value: str) -> None:
        """Replace argument ``index`` (0 is the first argument, after the name)."""
        if not 0 <= index < len(self.words) - 1:
            raise IndexError(f"{self.name} has {len(self.words) - 1} arguments, not {index + 1}")
        words = list(self.words)
        words[index + 1] = quote(value)
        self.words = tuple(words)

    def _dump_head(self, out: list[str]) -> None:
        out.append(self.leading)
        for gap, word in zip(self.gaps, self.words, strict=True):
            out.append(gap)
            out.append(word)
        out.append(self.before_end)

    def _dump(self, out: list[str]) -> None:
        self._dump_head(out)
        out.append(";")
        out.append(self.trailing)

    def dump(self) -> str:
        """This statement's text, from its leading trivia to its trailing comment."""
        out: list[str] = []
        self._dump(out)
        return "".join(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({' '.join(self.words)!r})"


class Directive(Statement):
    """A simple directive, ended by ``;``."""

    __slots__ = ()

    @classmethod
    def new(cls, name: str, *args: str, comment: str | None = None) -> Directive:
        """A directive made in code: ``Directive.new("listen", "443", "ssl", comment="managed")``."""
        words, trailing = cls._build(name, args, comment)
        return cls(words, trailing=trailing)


class RawBlock(Statement):
    """A block whose body is not nginx syntax (``content_by_lua_block { ... }``): kept as text."""

    __slots__ = ("body",)
    terminator = "{"

    def __init__(self, words: tuple[str, ...], gaps: tuple[str, ...] | None = None, before_end: str = "",
                 *, body: str = "", leading: str = "", trailing: str = "", offset: int = -1,
                 name: str | None = None) -> None:
        super().__init__(words, gaps, before_end, leading=leading, trailing=trailing, offset=offset, name=name)
        self.body = body

    def _dump(self, out: list[str]) -> None:
        self._dump_head(out)
        out += ("{", self.body, "}", self.trailing)


class Container:
    """What holds statements: a :class:`Block` or a whole :class:`ConfigFile`.

    (No ``__slots__`` here: mypy would then reject the assignments to ``closing`` below.)
    """

    children: list[Statement]
    closing: str
    _is_file: ClassVar[bool] = False  # a whole file (ConfigFile) rather than a block

    def walk(self) -> Iterator[tuple[Statement, tuple[Block, ...]]]:
        """Every statement below, depth first in file order, with its enclosing blocks (outermost first)."""
        stack: list[tuple[Iterator[Statement], tuple[Block, ...]]] = [(iter(self.children), ())]
        while stack:
            children, parents = stack[-1]
            for statement in children:
                yield statement, parents
                if isinstance(statement, Block):
                    stack.append((iter(statement.children), (*parents, statement)))
                    break
            else:
                stack.pop()

    def find(self, name: str, *, recursive: bool = True) -> list[Statement]:
        """Statements called ``name``: in nested blocks too, or only direct children."""
        if not recursive:
            return [child for child in self.children if child.name == name]
        return [statement for statement, _ in self.walk() if statement.name == name]

    def index(self, statement: Statement) -> int:
        """Position of ``statement`` (by identity) among the children."""
        for position, child in enumerate(self.children):
            if child is statement:
                return position
        raise ValueError(f"{statement!r} is not a child of this container")

    def _own_indent(self) -> str:
        return ""

    def _newline(self) -> str:
        for child in self.children:
            if "\n" in child.leading:
                return "\r\n" if "\r\n" in child.leading else "\n"
        return "\r\n" if "\r\n" in self.closing else "\n"

    def _child_indent(self) -> str:
        for child in self.children:
            found = child.leading.rfind("\n")
            if found >= 0 and not child.leading[found + 1 :].strip(" \t"):
                return child.leading[found + 1 :]
        return self._default_child_indent()

    def _default_child_indent(self) -> str:
        own = self._own_indent()
        return own + ("\t" if "\t" in own else "    ")

    def insert(self, index: int, statement: Statement) -> None:
        """Insert ``statement`` at ``index`` on a line of its own, indented like its siblings."""
        children = self.children
        if not 0 <= index <= len(children):
            raise IndexError(f"cannot insert at {index} among {len(children)} statements")
        newline, indent = self._newline(), self._child_indent()
        at_end = index == len(children)
        post = self.closing if at_end else children[index].leading
        cut = _first_break(post)
        in_file = self._is_file
        if cut >= 0:
            statement.leading, post = _line_break(post[:cut], newline) + indent, post[cut:]
        elif in_file and at_end:  # the end of a file without a final line break
            statement.leading = _line_break(post, newline) + indent if post or children else ""
            post = ""
        elif in_file and index == 0 and not post:  # the very start of a file
            statement.leading, post = "", newline
        elif "#" in statement.trailing:  # its comment ends its line: give it a line of its own
            statement.leading = newline + indent
        else:  # the neighbours share a line: stay on it
            statement.leading = post or " "
        if at_end:
            self.closing = post
        else:
            children[index].leading = post
        _layout(statement, indent, newline, indent[len(self._own_indent()) :] or "    ")
        children.insert(index, statement)
        self._end_line_after(index)

    def _end_line_after(self, index: int) -> None:
        """If child ``index`` ends with a comment, start what follows it on a new line."""
        if "#" not in self.children[index].trailing:
            return
        last = index == len(self.children) - 1
        post = self.closing if last else self.children[index + 1].leading
        if _first_break(post) == 0 or (last and self._is_file and not post):
            return
        post = self._newline() + (self._own_indent() if last else self._child_indent()) + post.lstrip(" \t")
        if last:
            self.closing = post
        else:
            self.children[index + 1].leading = post

    def append(self, statement: Statement) -> None:
        """Insert ``statement`` after the last child."""
        self.insert(len(self.children), statement)

    def insert_after(self, anchor: Statement, statement: Statement) -> None:
        self.insert(self.index(anchor) + 1, statement)

    def insert_before(self, anchor: Statement, statement: Statement) -> None:
        self.insert(self.index(anchor), statement)

    def remove(self, statement: Statement) -> None:
        """Remove ``statement`` and its line (with its trailing comment); other lines stay as they are."""
        children = self.children
        index = self.index(statement)
        last = index == len(children) - 1
        post = self.closing if last else children[index + 1].leading
        pre = statement.leading
        cut, post_cut = _last_break(pre), _first_break(post)
        if cut >= 0 and post_cut >= 0:
            post = pre[:cut] + post[post_cut:]
        elif cut >= 0:
            post = pre[:cut] if last and self._is_file and not post else pre + post.lstrip(" \t")
        elif index == 0 and self._is_file and post_cut >= 0:
            post = post[post_cut:].removeprefix("\r").removeprefix("\n")
        else:
            post = statement.trailing + post
        if last:
            self.closing = post
        else:
            children[index + 1].leading = post
        del children[index]

    def replace(self, old: Statement, new: Statement) -> None:
        """Put ``new`` where ``old`` is, on the same line with the same indentation."""
        index = self.index(old)
        new.leading = old.leading
        if not new.trailing:
            new.trailing = old.trailing
        indent = self._child_indent()
        _layout(new, indent, self._newline(), indent[len(self._own_indent()) :] or "    ")
        self.children[index] = new
        self._end_line_after(index)


class Block(Statement, Container):
    """A directive with a block of statements: ``server { ... }``, ``location ~ "x" { ... }``."""

    __slots__ = ("children", "closing")
    terminator = "{"

    def __init__(self, words: tuple[str, ...], gaps: tuple[str, ...] | None = None, before_end: str = "",
                 *, children: list[Statement] | None = None, closing: str = "", leading: str = "",
                 trailing: str = "", offset: int = -1, name: str | None = None) -> None:
        super().__init__(words, gaps, before_end, leading=leading, trailing=trailing, offset=offset, name=name)
        self.children = children if children is not None else []
        self.closing = closing

    @classmethod
    def new(cls, name: str, args: Sequence[str] = (), children: Iterable[Statement] = (),
            *, comment: str | None = None) -> Block:
        """A block made in code; its children are laid out (indented) when it is inserted."""
        words, trailing = cls._build(name, args, comment)
        return cls(words, before_end=" ", children=list(children), trailing=trailing)

    def _own_indent(self) -> str:
        found = self.leading.rfind("\n")
        tail = self.leading[found + 1 :]
        return tail if not tail.strip(" \t") else ""

    def _dump(self, out: list[str]) -> None:
        _dump_all([self], out)


def _dump_all(statements: list[Statement], out: list[str]) -> None:
    """Append the text of ``statements`` to ``out``; iterative, as nesting depth is unbounded."""
    stack: list[tuple[Iterator[Statement], Block | None]] = [(iter(statements), None)]
    while stack:
        children, owner = stack[-1]
        for statement in children:
            if isinstance(statement, Block):
                statement._dump_head(out)
                out.append("{")
                stack.append((iter(statement.children), statement))
                break
            statement._dump(out)
        else:
            stack.pop()
            if owner is not None:
                out += (owner.closing, "}", owner.trailing)


def _layout(statement: Statement, indent: str, newline: str, unit: str) -> None:
    """Indent the children of a block made in code (those with no leading trivia yet)."""
    if not isinstance(statement, Block):
        return
    inner = indent + unit
    for child in statement.children:
        if not child.leading:
            child.leading = newline + inner
        _layout(child, inner, newline, unit)
    if not statement.closing:
        statement.closing = newline + indent


class ConfigFile(Container):
    """One parsed file: its statements, the trivia at its end, and the text it was parsed from."""

    __slots__ = ("children", "closing", "path", "source")
    _is_file = True

    def __init__(self, path: str | None, children: list[Statement], closing: str, source: str) -> None:
        self.path = path  # as nginx names it (see loader); None for text parsed without a file
        self.children = children
        self.closing = closing
        self.source = source

    def _default_child_indent(self) -> str:
        return ""

    def dump(self) -> str:
        """The file's text; equal to ``source`` until something is edited."""
        out: list[str] = []
        _dump_all(self.children, out)
        out.append(self.closing)
        return "".join(out)

    def encode(self) -> bytes:
        """The bytes to write back (undecodable input bytes come back as they were)."""
        return self.dump().encode("utf-8", "surrogateescape")

    @property
    def modified(self) -> bool:
        return self.dump() != self.source

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column), both from 1, of an offset in ``source``."""
        line = self.source.count("\n", 0, offset) + 1
        return line, offset - (self.source.rfind("\n", 0, offset) + 1) + 1

    def __repr__(self) -> str:
        return f"ConfigFile({self.path!r}, {len(self.children)} statements)"
