"""What Apache reads: the main file, the files it includes, and the sections its conditions keep.

Role: Apache's own reading rules, on top of the trees of ``tree`` (Augeas only parses). Starting from
the main file (``apache2.conf`` in the server root), :func:`load_config` reads directives in order, as
httpd does at start-up:

- ``Include``/``IncludeOptional``: the path is relative to ``ServerRoot``; a directory means every
  file below it (dot files too), sorted by byte value, recursively; a wildcard (``*``, ``?``,
  ``[...]``) may stand in any path segment and does not match a leading dot; ``Include`` fails on
  a missing file or a wildcard without match, ``IncludeOptional`` does not. The included files'
  directives take the place of the ``Include`` (inside a ``<VirtualHost>`` too).
- ``Define NAME [value]``/``UnDefine``, ``-D NAME`` flags, ``${NAME}`` (a ``Define``'s value, else
  the environment's; left as is when undefined), ``ServerRoot``, ``LoadModule``.
- ``<IfModule>``, ``<IfDefine>``, ``<IfVersion>``, ``<IfFile>`` (see ``conditions``): a false
  condition's body is not read at all, so an ``Include`` in it is not followed either.
- ``<Macro>`` bodies are not read (Apache reads them only where ``Use`` expands them, which we do
  not do: virtual hosts made by macros are not found).

The result is a tree of :class:`Entry` (conditions resolved, includes spliced in, words expanded)
that points back at the :class:`~plugins.apache.tree.Directive`/``Section`` each came from, and
the list of files in the order Apache reads them (what ``apache2 -t -D DUMP_INCLUDES`` prints).
Files are parsed in batches, one Augeas load per ``Include``.

Allowed imports: the standard library; ``conditions``, ``errors``, ``tree`` and ``words`` of this package.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from .conditions import CONDITIONS, ServerBuild, condition_holds, module_identifiers, server_build
from .errors import ApacheConfigError, IncludeError
from .tree import ConfigTree, Directive, Section
from .words import expand_words

__all__ = ["MAX_INCLUDE_DEPTH", "Entry", "Included", "LoadOptions", "LoadedConfig", "load_config", "resolve_include"]

MAX_INCLUDE_DEPTH = 128
"""httpd's AP_MAX_INCLUDE_DEPTH (nested Include) and AP_MAX_FNMATCH_DIR_DEPTH (directory nesting)."""


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """How to read a configuration: where it is, ``-D`` flags, the environment, the server build.

    ``build`` None means: ask ``apache2`` (``-v``, ``-l``) when the first ``<IfVersion>`` or
    ``<IfModule>`` needs it.
    """

    server_root: Path
    config_file: str = "apache2.conf"
    defines: Collection[str] = ()
    environment: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(os.environ))
    build: ServerBuild | None = None


@dataclasses.dataclass(eq=False, slots=True)
class Entry:
    """A directive or section Apache reads; ``words`` are its arguments as Apache sees them.

    ``children`` is None for a directive; for a section it is what Apache reads inside it (the
    content of true conditions and of included files in place). ``node`` is where it is written.
    """

    node: Directive | Section
    name: str
    words: tuple[str, ...]
    children: list[Entry] | None

    @property
    def key(self) -> str:
        """The name in lower case (Apache's names are case-insensitive)."""
        return self.name.lower()

    def find(self, name: str) -> list[Entry]:
        """Direct children named ``name`` (any case)."""
        key = name.lower()
        return [child for child in self.children or () if child.key == key]

    def walk(self) -> Iterator[Entry]:
        for child in self.children or ():
            yield child
            yield from child.walk()


@dataclasses.dataclass(frozen=True, slots=True)
class Included:
    """A file Apache reads: ``via`` is the Include directive (None for the main file), ``depth`` its nesting."""

    file: str
    via: Directive | None
    depth: int


@dataclasses.dataclass(eq=False)
class LoadedConfig:
    """Everything :func:`load_config` read; ``entries`` is the server-config level."""

    server_root: str
    main_file: str
    entries: list[Entry]
    includes: list[Included]
    defines: dict[str, str | None]
    modules: frozenset[str]
    tree: ConfigTree
    undefined: list[tuple[str, Directive | Section]]

    def walk(self) -> Iterator[Entry]:
        for entry in self.entries:
            yield entry
            yield from entry.walk()

    @property
    def files(self) -> list[str]:
        """Distinct files read, in the order first read."""
        return list(dict.fromkeys(included.file for included in self.includes))


def _has_wildcard(text: str) -> bool:
    """apr_fnmatch_test: ``*`` or ``?``, or ``[`` with a ``]`` after it; ``\\`` escapes."""
    i = 0
    while i < len(text):
        char = text[i]
        if char in "*?":
            return True
        if char == "\\":
            i += 1
        elif char == "[" and "]" in text[i + 1:]:
            return True
        i += 1
    return False


def _class_end(pattern: str, start: int) -> int:
    """Index of the ``]`` closing the bracket expression at ``start`` (-1 if none); ``[]...]`` holds a ``]``."""
    j = start + 1
    j += pattern[j:j + 1] in ("!", "^")
    j += pattern[j:j + 1] == "]"
    return pattern.find("]", j)


def _segment_matcher(pattern: str) -> re.Pattern[str]:
    """A regular expression for one path segment of an apr_fnmatch pattern."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and _class_end(pattern, i) > 0:
            end = _class_end(pattern, i)
            body = pattern[i + 1:end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("(?s)" + "".join(out) + r"\Z")


def _segment_matches(pattern: str, name: str) -> bool:
    if name.startswith(".") and not (pattern.startswith(".") or pattern.startswith("\\.")):
        return False  # APR_FNM_PERIOD
    return _segment_matcher(pattern).match(name) is not None


def _listing(directory: str) -> list[str]:
    """Entries of ``directory`` in httpd's order (strcmp on the bytes of the names)."""
    return [os.fsdecode(name) for name in sorted(os.listdir(os.fsencode(directory)))]


def _all_files(path: str, optional: bool, depth: int, where: Directive) -> list[str]:
    """httpd's process_resource_config_nofnmatch: a file, or every file below a directory."""
    if os.path.isdir(path):
        if depth > MAX_INCLUDE_DEPTH:
            raise IncludeError(f"{where.file}:{where.line}: directories nested deeper than {MAX_INCLUDE_DEPTH} "
                               f"below {path} (a recursion?)", file=where.file, line=where.line)
        found: list[str] = []
        for name in _listing(path):
            found += _all_files(os.path.join(path, name), optional, depth + 1, where)
        return found
    if not os.path.exists(path):
        if optional:
            return []
        raise IncludeError(f"{where.file}:{where.line}: {where.name} {path}: no such file or directory",
                           file=where.file, line=where.line, hint="create it or remove the Include")
    return [path]


def resolve_include(pattern: str, server_root: str, *, optional: bool, where: Directive) -> list[str]:
    """The files ``Include pattern`` (``IncludeOptional`` if ``optional``) reads, in Apache's order."""
    path = os.path.normpath(pattern if os.path.isabs(pattern) else os.path.join(server_root, pattern))
    if pattern.endswith("/"):
        path += "/"
    if not _has_wildcard(path):
        return _all_files(path.rstrip("/") or "/", optional, 0, where)
    segments = [segment for segment in path.split("/") if segment]
    return _match_segments("/", segments, optional, where)


def _match_segments(base: str, segments: list[str], optional: bool, where: Directive) -> list[str]:
    """httpd's process_resource_config_fnmatch over the remaining path segments below ``base``."""
    first, rest = segments[0], segments[1:]
    if not _has_wildcard(first):
        path = os.path.join(base, first)
        return _match_segments(path, rest, optional, where) if rest else _all_files(path, optional, 0, where)
    try:
        names = _listing(base)
    except FileNotFoundError:
        if optional:
            return []
        raise IncludeError(f"{where.file}:{where.line}: could not open the directory {base}",
                           file=where.file, line=where.line) from None
    except OSError as err:
        raise IncludeError(f"{where.file}:{where.line}: could not open the directory {base}: {err.strerror}",
                           file=where.file, line=where.line) from err
    candidates = [
        os.path.join(base, name) for name in names
        if _segment_matches(first, name) and (not rest or os.path.isdir(os.path.join(base, name)))
    ]
    if not candidates and not optional:
        raise IncludeError(f"{where.file}:{where.line}: no matches for the wildcard {first!r} in {base}",
                           file=where.file, line=where.line, hint="use IncludeOptional, or fix the pattern")
    found: list[str] = []
    for candidate in candidates:
        found += _match_segments(candidate, rest, optional, where) if rest else _all_files(candidate, optional, 0,
                                                                                            where)
    return found


class _Reader:
    """One pass over the configuration in Apache's order, with Apache's state as it reads."""

    def __init__(self, tree: ConfigTree, options: LoadOptions) -> None:
        self.tree = tree
        self.options = options
        self.server_root = os.path.normpath(str(options.server_root))
        self.defines: dict[str, str | None] = dict.fromkeys(options.defines)
        self.modules: set[str] = set()
        self._build = options.build
        self.includes: list[Included] = []
        self.chain: list[str] = []
        self.undefined: list[tuple[str, Directive | Section]] = []

    @property
    def build(self) -> ServerBuild:
        if self._build is None:
            self._build = server_build()
        return self._build

    def lookup(self, name: str) -> str | None:
        value = self.defines.get(name)
        return value if value is not None else self.options.environment.get(name)

    def read_file(self, file: str, via: Directive | None, out: list[Entry]) -> None:
        if file in self.chain or len(self.chain) >= MAX_INCLUDE_DEPTH:
            assert via is not None
            loop = " -> ".join([*self.chain[self.chain.index(file):], file]) if file in self.chain else "..."
            raise IncludeError(f"{via.file}:{via.line}: the configuration includes itself ({loop})",
                               file=via.file, line=via.line, hint="remove the Include that closes the loop")
        self.includes.append(Included(file, via, len(self.chain)))
        self.chain.append(file)
        self.read_nodes(self.tree.load([file])[0].children, out)
        self.chain.pop()

    def read_nodes(self, nodes: list[Directive | Section], out: list[Entry]) -> None:
        for node in nodes:
            undefined: list[str] = []
            words = expand_words(node.args, self.lookup, undefined)
            self.undefined += [(name, node) for name in undefined]
            key = node.name.lower()
            if isinstance(node, Section):
                if key in CONDITIONS:
                    if self.holds(key, words, node):
                        self.read_nodes(node.children, out)
                    continue
                entry = Entry(node, node.name, words, [])
                out.append(entry)
                if key != "macro":
                    assert entry.children is not None
                    self.read_nodes(node.children, entry.children)
                continue
            out.append(Entry(node, node.name, words, None))
            self.directive(key, words, node, out)

    def holds(self, key: str, words: tuple[str, ...], node: Section) -> bool:
        if key == "ifmodule":
            modules: Collection[str] = self.modules | self.build.static_modules
        else:
            modules = ()
        version = self.build.version if key == "ifversion" else (0, 0, 0)
        try:
            return condition_holds(key, words, modules=modules, defines=self.defines, version=version,
                                   server_root=Path(self.server_root))
        except ValueError as err:
            raise ApacheConfigError(f"{node.file}:{node.line}: {err}", file=node.file, line=node.line) from err

    def directive(self, key: str, words: tuple[str, ...], node: Directive, out: list[Entry]) -> None:
        if key in ("include", "includeoptional"):
            if len(words) != 1:
                raise ApacheConfigError(f"{node.file}:{node.line}: {node.name} takes one path", file=node.file,
                                        line=node.line)
            files = resolve_include(words[0], self.server_root, optional=key == "includeoptional", where=node)
            self.tree.load(files)
            for file in files:
                self.read_file(file, node, out)
        elif key == "define" and words:
            self.defines[words[0]] = words[1] if len(words) > 1 else None
        elif key == "undefine" and words:
            self.defines.pop(words[0], None)
        elif key == "loadmodule" and words:
            self.modules.update(module_identifiers(words[0]))
        elif key == "serverroot" and words:
            self.server_root = os.path.normpath(words[0])


def load_config(options: LoadOptions, tree: ConfigTree | None = None) -> LoadedConfig:
    """Read the configuration as Apache does (see the module docstring).

    Raises :class:`~plugins.apache.errors.UnreadableFileError` for a file the lens cannot parse and
    :class:`~plugins.apache.errors.IncludeError` for an include Apache would refuse: in both cases
    before anything is edited. ``tree`` lets a caller reuse an Augeas handle (files already loaded
    and unchanged are not parsed again).
    """
    tree = tree if tree is not None else ConfigTree()
    reader = _Reader(tree, options)
    main = options.config_file
    main_file = os.path.normpath(main if os.path.isabs(main) else os.path.join(reader.server_root, main))
    if not os.path.isfile(main_file):
        raise ApacheConfigError(f"there is no Apache configuration file {main_file}", file=main_file,
                                hint="give the server root with --apache-server-root")
    entries: list[Entry] = []
    reader.read_file(main_file, None, entries)
    return LoadedConfig(
        server_root=reader.server_root,
        main_file=main_file,
        entries=entries,
        includes=reader.includes,
        defines=reader.defines,
        modules=frozenset(reader.modules | (reader._build.static_modules if reader._build else set())),
        tree=tree,
        undefined=reader.undefined,
    )
