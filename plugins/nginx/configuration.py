"""The loaded configuration as the actions layer sees it: server blocks for the model, and edits.

Role: the bridge between the tree (``loader.Config``: every file, includes followed) and the model
(``model.ServerBlock``). It finds the ``server`` blocks of the ``http`` context in nginx's reading
order, gives each block's own statements (those written in it and those its ``include``s bring
in), reads main-context values (``pid``, ``error_log``), places new statements where nginx reads
them at the right moment, and hands the changed files' bytes to the transactions.

Every statement this plugin adds carries the comment ``# managed by letsencrypt``, so that later
runs (and people) can tell them apart.

Allowed imports: the standard library, ``letsencrypt.plugin_api`` and this package.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from letsencrypt.plugin_api import MisconfigurationError

from .control import Nginx
from .loader import Config, Located, load
from .model import HTTP_DEFAULT_PORT, Listen, ServerBlock
from .tree import Block, ConfigFile, Container, Directive, Statement

__all__ = ["MANAGED", "Configuration", "Site", "connect_host", "listens_for", "managed"]

MANAGED = "managed by letsencrypt"
_REWRITE_PHASE = frozenset({"return", "rewrite", "if", "set", "break"})
_HEAD = frozenset({"listen", "server_name"})


@dataclasses.dataclass(frozen=True, slots=True)
class Site:
    """Where a ``server`` block is: the block, its file, and what holds it (for new siblings)."""

    block: Block
    file: ConfigFile
    container: Container


def _stamp(paths: Iterable[str]) -> dict[str, tuple[int, int, int] | None]:
    stamps: dict[str, tuple[int, int, int] | None] = {}
    for name in paths:
        try:
            status = os.stat(name)
            stamps[name] = (status.st_ino, status.st_size, status.st_mtime_ns)
        except OSError:
            stamps[name] = None
    return stamps


class Configuration:
    """One load of the configuration under ``nginx.main_config``; edits stay in memory until written."""

    def __init__(self, nginx: Nginx, config: Config) -> None:
        self.nginx = nginx
        self.config = config
        self._stamps = _stamp(config.files)
        self._blocks: list[ServerBlock] | None = None
        self._members: dict[int, list[Located]] = {}

    @classmethod
    def load(cls, nginx: Nginx) -> Configuration:
        """Parse the main file and every include; ``NginxParseError`` (path:line:column) stops here."""
        main = nginx.main_config
        if not main.is_file():
            raise MisconfigurationError(f"there is no nginx configuration at {main}",
                                        hint="give the folder that holds nginx.conf with --nginx-server-root")
        return cls(nginx, load(main))

    def changed_on_disk(self) -> bool:
        """Whether any loaded file was replaced or edited since it was read (then load again)."""
        return _stamp(self.config.files) != self._stamps

    @property
    def modified(self) -> bool:
        return bool(self.config.modified_files())

    def writes(self) -> dict[Path, bytes]:
        """The bytes of every file an edit changed, by path."""
        return {Path(file.path or ""): file.encode() for file in self.config.modified_files()}

    # --- reading -----------------------------------------------------------------------------------

    @property
    def blocks(self) -> list[ServerBlock]:
        """The ``server`` blocks of the ``http`` context, in the order nginx reads them."""
        if self._blocks is None:
            self._read_blocks()
        assert self._blocks is not None
        return self._blocks

    def invalidate(self) -> None:
        """Forget the blocks read so far (after an edit changed listens or names)."""
        self._blocks = None
        self._members = {}

    def _read_blocks(self) -> None:
        servers: list[tuple[Located, Block]] = []
        members: dict[int, list[Located]] = {}
        for found in self.config.walk():
            statement, parents = found.statement, found.parents
            if parents and id(parents[-1]) in members:
                members[id(parents[-1])].append(found)
            if (isinstance(statement, Block) and statement.name == "server" and parents
                    and parents[-1].name == "http"):
                servers.append((found, statement))
                members[id(statement)] = []
        blocks = []
        for index, (found, block) in enumerate(servers):
            own = members[id(block)]
            names = tuple(arg.lower() for m in own if m.statement.name == "server_name" for arg in m.statement.args)
            listens = tuple(listen for m in own if m.statement.name == "listen"
                            if (listen := Listen.parse(m.statement.args)) is not None)
            has_listen = any(m.statement.name == "listen" for m in own)
            ssl_on = any(m.statement.name == "ssl" and m.statement.args[:1] == ["on"] for m in own)
            line = found.file.position(block.offset)[0] if block.offset >= 0 else 0
            blocks.append(ServerBlock(
                index, Path(found.file.path or ""), line, names,
                listens if has_listen else (Listen("*", HTTP_DEFAULT_PORT),), ssl_on,
                Site(block, found.file, found.container),
            ))
        self._blocks, self._members = blocks, members

    @staticmethod
    def site(server: ServerBlock) -> Site:
        handle = server.handle
        if not isinstance(handle, Site):
            raise TypeError(f"{server.where()} was not read by this configuration")
        return handle

    def members(self, server: ServerBlock, *names: str) -> list[Located]:
        """The block's own statements (includes followed, nested blocks not entered), by name if given."""
        if self._blocks is None:
            self._read_blocks()
        own = self._members.get(id(self.site(server).block), [])
        return [m for m in own if not names or m.statement.name in names]

    def main_args(self, name: str) -> list[str] | None:
        """The arguments of the main-context directive ``name`` (the first one), or None."""
        for found in self.config.walk():
            if not found.parents and found.statement.name == name:
                return found.statement.args
        return None

    @property
    def pid_path(self) -> Path:
        """The pid file nginx uses: the ``pid`` directive, else the compiled-in default."""
        args = self.main_args("pid")
        return self.nginx.resolve(args[0]) if args else self.nginx.info.pid_path

    @property
    def error_log(self) -> Path | None:
        """The main error log file when it is a file (not stderr, syslog or memory)."""
        args = self.main_args("error_log")
        value = args[0] if args else self.nginx.info.error_log_path
        if value == "stderr" or value.startswith(("syslog:", "memory:")):
            return None
        return self.nginx.resolve(value)

    def pid_free_main(self) -> bytes | None:
        """The main file's bytes without its main-context ``pid`` directive; None if it has none."""
        root = self.config.root
        pids = [child for child in root.children if child.name == "pid"]
        if not pids:
            return None
        text = "".join(child.dump() for child in root.children if child not in pids) + root.closing
        return text.encode("utf-8", "surrogateescape")

    def full_path(self, value: str) -> Path:
        """A path argument of ``ssl_certificate``/``include`` as nginx opens it (relative: to the conf prefix)."""
        return Path(self.config.full_name(value))

    def http_site(self) -> Located:
        """The ``http`` block, for new server blocks."""
        for found in self.config.walk():
            if isinstance(found.statement, Block) and found.statement.name == "http" and not found.parents:
                return found
        raise MisconfigurationError(f"{self.config.main} has no http block", hint="nginx serves no web sites here")

    # --- editing ---------------------------------------------------------------------------------

    def add(self, server: ServerBlock, statements: Sequence[Statement], *, early: bool = False) -> None:
        """Add ``statements`` to the block, after its ``listen``/``server_name`` lines (and ours).

        With ``early``, they go before the block's first rewrite-phase directive (``return``,
        ``rewrite``, ``if``, ``set``) even if that comes first: nginx runs those in order, so a
        redirect or challenge answer placed after a ``return`` would never run.
        """
        block = self.site(server).block
        children = block.children
        head = [i for i, child in enumerate(children) if child.name in _HEAD]
        position = head[-1] + 1 if head else 0
        while (position < len(children) and children[position].comment == MANAGED
               and children[position].name not in _REWRITE_PHASE):
            position += 1  # after what we added before, in the order we add
        if early:
            rewrite = [i for i, child in enumerate(children) if child.name in _REWRITE_PHASE]
            if rewrite and rewrite[0] < position:
                position = rewrite[0]
        for offset, statement in enumerate(statements):
            block.insert(position + offset, statement)
        self.invalidate()

    def append_server(self, statements: Sequence[Statement], *, comment: str = MANAGED) -> Block:
        """A new ``server`` block holding ``statements``, at the end of the ``http`` block."""
        http = self.http_site().statement
        assert isinstance(http, Block)
        server = Block.new("server", (), statements, comment=comment)
        http.append(server)
        self.invalidate()
        return server

    def remove(self, found: Located) -> None:
        found.container.remove(found.statement)
        self.invalidate()

    def has_rewrite_phase(self, server: ServerBlock) -> bool:
        """Whether the block runs ``return``/``rewrite``/``if`` before choosing a location."""
        return any(m.statement.name in _REWRITE_PHASE for m in self.members(server))


def managed(name: str, *args: str) -> Directive:
    """A directive marked ``# managed by letsencrypt``."""
    return Directive.new(name, *args, comment=MANAGED)


def listens_for(conf: Configuration, port: int, address: str, *, tls: bool) -> list[str]:
    """``listen`` arguments for a temporary block on ``port``: every address already used there, else ``address``.

    A connection to an address some block listens on explicitly is served only by the blocks on that
    address, so the temporary block must be on each of them. nginx makes a whole address:port TLS
    when one block says ``ssl``: a TLS block on a plain-HTTP port is refused.
    """
    sockets: dict[tuple[str, int], Listen] = {}
    for block in conf.blocks:
        for listen in block.listens:
            if listen.port == port:
                sockets.setdefault(listen.socket, listen)
                if tls and not block.is_tls(listen):
                    raise MisconfigurationError(
                        f"port {port} serves plain HTTP ({block.where()}): a TLS challenge cannot be served there",
                        hint="give the TLS port with --https-port, or choose http-01 with --preferred-challenges",
                    )
    if not sockets:
        bare = Listen(_listen_address(address), port)
        return [bare.with_port(port, ssl=tls)]
    return [listen.with_port(port, ssl=tls) for listen in sockets.values()]


def _listen_address(address: str) -> str:
    if not address:
        return "*"
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def connect_host(listen_text: str) -> str:
    parsed = Listen.parse(listen_text.split())
    return parsed.connect_host if parsed is not None else "127.0.0.1"
