"""A whole configuration: the main file and every file it includes, resolved as nginx resolves them.

Role: ``load(main)`` parses ``main`` (e.g. ``/etc/nginx/nginx.conf``) and, recursively, each file
an ``include`` names, and gives a :class:`Config` that walks them all as one tree: an included
file's statements appear where the ``include`` stands, inside its enclosing blocks.

nginx's rules (``ngx_conf_include`` and ``ngx_conf_full_name`` in nginx 1.22):

- a relative path is relative to the *configuration prefix*: the directory of the main file,
  never the directory of the file that holds the ``include``;
- a path with ``*``, ``?`` or ``[`` is a glob: its matches are read in sorted (byte) order, and
  no match is no error; a path without them must exist;
- the path is the argument's value: quotes and escapes are resolved first.

Beyond nginx: an include cycle (which nginx would follow until it runs out of file descriptors)
is an :class:`~plugins.nginx.errors.NginxIncludeCycleError`. Any file that cannot be read or
parsed stops the load with its path, line and column: nothing is skipped.

Includes are resolved when loading; an ``include`` added to the tree later is not followed
until the configuration is loaded again.

Allowed imports: the standard library and this package.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Iterator

from .errors import NginxIncludeCycleError, NginxParseError
from .parser import parse_file
from .tree import Block, ConfigFile, Container, Directive, Statement

__all__ = ["Config", "Located", "load"]

_GLOB_CHARS = frozenset("*?[")


@dataclasses.dataclass(frozen=True, slots=True)
class Located:
    """A statement found by :meth:`Config.walk`, with where it is.

    ``container`` holds it among its children (call its ``insert_after``/``remove`` to edit);
    ``parents`` are the enclosing blocks, outermost first, across include boundaries (a server
    block in ``sites-enabled/x`` has the ``http`` block of ``nginx.conf`` as its parent);
    ``file`` is the file whose text it is in.
    """

    statement: Statement
    file: ConfigFile
    container: Container
    parents: tuple[Block, ...]


class Config:
    """The loaded configuration: files by name (main first, then in include order) and includes."""

    def __init__(self, main: str, conf_prefix: str, files: dict[str, ConfigFile],
                 includes: dict[Statement, tuple[str, ...]]) -> None:
        self.main = main
        self.conf_prefix = conf_prefix  # ends with "/"
        self.files = files
        self._includes = includes

    @property
    def root(self) -> ConfigFile:
        return self.files[self.main]

    def full_name(self, value: str) -> str:
        """The path nginx opens for an ``include`` (or other conf-relative) argument ``value``."""
        return value if value.startswith("/") else self.conf_prefix + value

    def included(self, include: Statement) -> list[ConfigFile]:
        """The files an ``include`` statement brought in, in nginx's order (empty for a glob with no match)."""
        return [self.files[name] for name in self._includes.get(include, ())]

    def walk(self) -> Iterator[Located]:
        """Every statement, depth first in the order nginx reads them, following includes."""
        return self._walk(None)

    def find(self, name: str) -> list[Located]:
        """Every statement called ``name``, across includes, in nginx's reading order."""
        return list(self._walk(name))

    def _walk(self, name: str | None) -> Iterator[Located]:
        # An explicit stack rather than recursion: nesting and include depth are unbounded.
        includes, files, root = self._includes, self.files, self.root
        stack: list[tuple[Iterator[Statement], ConfigFile, Container, tuple[Block, ...]]] = [
            (iter(root.children), root, root, ())
        ]
        while stack:
            children, file, container, parents = stack[-1]
            for statement in children:
                if name is None or statement.name == name:
                    yield Located(statement, file, container, parents)
                if isinstance(statement, Block):
                    stack.append((iter(statement.children), file, statement, (*parents, statement)))
                    break
                targets = includes.get(statement)
                if targets:
                    for target in reversed(targets):  # the first file on top of the stack
                        included = files[target]
                        stack.append((iter(included.children), included, included, parents))
                    break
            else:
                stack.pop()

    def modified_files(self) -> list[ConfigFile]:
        """The files whose text an edit has changed."""
        return [file for file in self.files.values() if file.modified]

    def __repr__(self) -> str:
        return f"Config({self.main!r}, {len(self.files)} files)"


class _Loader:
    """Depth-first over the include graph, with an explicit stack (include chains may be deep)."""

    def __init__(self, conf_prefix: str) -> None:
        self.conf_prefix = conf_prefix
        self.files: dict[str, ConfigFile] = {}
        self.includes: dict[Statement, tuple[str, ...]] = {}
        self.open: dict[str, str] = {}  # real path -> name, for the files being loaded (the include chain)
        self.done: set[str] = set()  # names of the files read with all their includes
        self.stack: list[tuple[str, str, Iterator[tuple[ConfigFile, Statement, str]]]] = []

    def run(self, main: str) -> None:
        self.enter(main, None)
        while self.stack:
            name, real, pending = self.stack[-1]
            for file, include, target in pending:
                if self.enter(target, (file, include)):
                    break
            else:
                self.stack.pop()
                del self.open[real]
                self.done.add(name)

    def enter(self, name: str, site: tuple[ConfigFile, Statement] | None) -> bool:
        """Start loading ``name``; False if it was read in full already (a snippet every server includes)."""
        if name in self.done:
            return False
        real = os.path.realpath(name)
        if real in self.open:
            file, include = _required(site)
            chain = " -> ".join([*self.open.values(), name])
            raise NginxIncludeCycleError(file.path, *_argument_position(file, include), f"include cycle: {chain}")
        if site is not None and not os.path.exists(name):
            file, include = site
            raise NginxParseError(file.path, *_argument_position(file, include),
                                  f'"include {include.raw_args[0]}": {name} does not exist')
        self.open[real] = name
        parsed = self.files[name] = parse_file(name)
        pending: list[tuple[ConfigFile, Statement, str]] = []
        for statement, _ in parsed.walk():
            if statement.name == "include" and isinstance(statement, Directive):
                targets = self.includes[statement] = self.resolve(parsed, statement)
                pending += ((parsed, statement, target) for target in targets)
        self.stack.append((name, real, iter(pending)))
        return True

    def resolve(self, file: ConfigFile, include: Statement) -> tuple[str, ...]:
        args = include.args
        if len(args) != 1:
            raise NginxParseError(file.path, *file.position(include.offset),
                                  'invalid number of arguments in "include" directive')
        full = args[0] if args[0].startswith("/") else self.conf_prefix + args[0]
        if _GLOB_CHARS.isdisjoint(full):
            return (full,)
        return tuple(sorted(glob.glob(full), key=os.fsencode))


def _argument_position(file: ConfigFile, include: Statement) -> tuple[int, int]:
    """Line and column of the path an ``include`` names."""
    return file.position(include.offset + len(include.words[0]) + len(include.gaps[1]))


def _required(site: tuple[ConfigFile, Statement] | None) -> tuple[ConfigFile, Statement]:
    if site is None:  # pragma: no cover - the main file is never already open
        raise AssertionError("the main file cannot be part of an include cycle before it is loaded")
    return site


def load(main: str | os.PathLike[str]) -> Config:
    """Load ``main`` and every file it includes; relative includes are relative to its directory."""
    name = os.path.abspath(os.fspath(main))
    conf_prefix = os.path.dirname(name).rstrip("/") + "/"
    loader = _Loader(conf_prefix)
    loader.run(name)
    return Config(name, conf_prefix, loader.files, loader.includes)
