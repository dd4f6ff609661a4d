"""The model layer: server blocks, their listen addresses and names, and nginx's choice of block.

Role: answers "which server block does nginx use for this name on this port?" with nginx's own
rules (https://nginx.org/en/docs/http/request_processing.html, .../server_names.html):

1. the local address and port pick the candidates: the blocks with a ``listen`` on exactly that
   address and port, else those on the wildcard address of that port (``*:80`` and ``[::]:80``
   are different sockets);
2. among them the ``Host`` name, lowercased and without a trailing dot, picks: an exact name, then
   the longest leading wildcard (``*.example.com``, ``.example.com``), then the longest trailing
   wildcard (``www.example.*``), then the first regular expression in configuration order
   (``~^www\\d+\\.example\\.net$``, case-insensitive, a search as PCRE does);
3. no match: the address's ``default_server``, else its first block.

We do not know which local address a client (or a CA's validator) will reach, so :func:`serving`
applies the rules to every address group of the port and returns what each would pick. The
blocks themselves are read from the parsed tree by the actions layer; this module holds no tree
and no I/O.

Allowed imports: the standard library.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "HTTP_DEFAULT_PORT",
    "Choice",
    "Listen",
    "ServerBlock",
    "best_for",
    "match_rank",
    "normal_host",
    "pcre_to_python",
    "serving",
    "top_matches",
]

logger = logging.getLogger(__name__)

HTTP_DEFAULT_PORT = 80
"""The port of a ``listen`` that gives only an address, and of a server block without ``listen``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Listen:
    """One ``listen`` directive: ``address`` is ``"*"``, ``"[::]"``, an IP (``"[::1]"``) or a host name."""

    address: str
    port: int
    ssl: bool = False
    default_server: bool = False
    args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, args: Sequence[str]) -> Listen | None:
        """Read ``listen``'s arguments (unquoted); None for a ``unix:`` socket or an unreadable address."""
        if not args or args[0].startswith("unix:"):
            return None
        address, port = _split_address(args[0])
        if port is None:
            return None
        flags = {arg.lower() for arg in args[1:]}
        return cls(address, port, "ssl" in flags, bool(flags & {"default_server", "default"}), tuple(args))

    @property
    def ipv6(self) -> bool:
        return self.address.startswith("[")

    @property
    def wildcard(self) -> bool:
        return self.address in ("*", "[::]")

    @property
    def socket(self) -> tuple[str, int]:
        """What nginx groups server blocks by: the address (normalized) and the port."""
        return self.address, self.port

    @property
    def connect_host(self) -> str:
        """Where a local client connects to reach this listener."""
        if self.address == "*":
            return "127.0.0.1"
        if self.address == "[::]":
            return "::1"
        return self.address.strip("[]")

    def with_port(self, port: int, *, ssl: bool) -> str:
        """The ``listen`` argument text for the same address on ``port`` (``443``, ``[::]:443``, ``10.0.0.1:443``)."""
        head = str(port) if self.address == "*" else f"{self.address}:{port}"
        return f"{head} ssl" if ssl else head


def _split_address(text: str) -> tuple[str, int | None]:
    """``"127.0.0.1:80"`` -> ("127.0.0.1", 80); ``"8080"`` -> ("*", 8080); ``"[::]"`` -> ("[::]", 80)."""
    if text.isdigit():
        return "*", int(text)
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return text, None
        host, rest = text[: end + 1], text[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if port_text is None or (port_text and not port_text.isdigit()):
        return text, None
    port = int(port_text) if port_text else HTTP_DEFAULT_PORT
    return _normal_host(host), port


def _normal_host(host: str) -> str:
    if host in ("*", "0.0.0.0"):  # noqa: S104 - reading nginx's wildcard address, not binding it
        return "*"
    bare = host.strip("[]")
    try:
        parsed = ipaddress.ip_address(bare)
    except ValueError:
        return host.lower()
    if parsed.version == 6:
        return "[::]" if parsed.is_unspecified else f"[{parsed.compressed}]"
    return parsed.compressed


@dataclasses.dataclass(frozen=True, slots=True)
class ServerBlock:
    """A ``server`` block of the ``http`` context, in configuration order (``index``).

    ``names`` are ``server_name``'s arguments as written (lowercased, regexes kept with their
    ``~``); ``listens`` the readable ``listen`` directives (``*:80`` when the block has none);
    ``ssl_on`` the legacy ``ssl on;``. ``handle`` is the actions layer's reference to the tree node.
    """

    index: int
    path: Path
    line: int
    names: tuple[str, ...]
    listens: tuple[Listen, ...]
    ssl_on: bool = False
    handle: object = dataclasses.field(default=None, compare=False, repr=False)

    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def ports(self, *, ssl: bool | None = None) -> set[int]:
        """The ports this block listens on; ``ssl`` filters by TLS (None: all)."""
        return {listen.port for listen in self.listens if ssl is None or self.is_tls(listen) == ssl}

    def is_tls(self, listen: Listen) -> bool:
        return listen.ssl or self.ssl_on

    @property
    def plain_listens(self) -> tuple[Listen, ...]:
        return tuple(listen for listen in self.listens if not self.is_tls(listen))

    @property
    def tls_listens(self) -> tuple[Listen, ...]:
        return tuple(listen for listen in self.listens if self.is_tls(listen))

    def literal_names(self) -> set[str]:
        """Names a certificate could be requested for: exact names and ``.example.com`` forms."""
        found = set()
        for name in self.names:
            if name.startswith("~") or "*" in name or name in ("", "_", "localhost") or "$" in name:
                continue
            found.add(name.lstrip("."))
        return found


# --- names ---------------------------------------------------------------------------------------

_EXACT, _LEADING, _TRAILING, _REGEX = 0, 1, 2, 3


def normal_host(host: str) -> str:
    """What nginx compares: lowercase, without a trailing dot."""
    return host.lower().rstrip(".")


@functools.lru_cache(maxsize=4096)
def pcre_to_python(pattern: str) -> re.Pattern[str] | None:
    """Compile an nginx (PCRE) ``server_name`` regex for Python's ``re``, case-insensitively.

    PCRE's named groups ``(?<name>...)`` and ``(?'name'...)`` become ``(?P<name>...)``; atomic
    groups and possessive quantifiers exist in Python 3.11 as in PCRE. Returns None (and logs) for a
    pattern Python cannot compile, so the caller can say which name it could not judge.
    """
    converted = re.sub(r"\(\?<(?![=!])([A-Za-z_]\w*)>", r"(?P<\1>", pattern)
    converted = re.sub(r"\(\?'([A-Za-z_]\w*)'", r"(?P<\1>", converted)
    converted = re.sub(r"\(\?P>([A-Za-z_]\w*)\)", r"(?P=\1)", converted)
    try:
        return re.compile(converted, re.IGNORECASE)
    except re.error as err:
        logger.warning("cannot read the server_name regex %r with Python's re (%s); it is not considered",
                       pattern, err)
        return None


def match_rank(pattern: str, host: str) -> tuple[int, int] | None:
    """How ``pattern`` (one ``server_name`` argument) matches ``host``: a sort key, lower is better.

    (0, 0) exact; (1, -length) leading wildcard; (2, -length) trailing wildcard; (3, 0) regex;
    None when it does not match. ``host`` must already be :func:`normal_host`.
    """
    if pattern.startswith("~"):
        compiled = pcre_to_python(pattern[1:])
        return (_REGEX, 0) if compiled is not None and compiled.search(host) else None
    name = pattern.lower()
    if name == host:
        return (_EXACT, 0)
    if name.startswith("."):
        if host == name[1:]:
            return (_EXACT, 0)
        return (_LEADING, -len(name)) if host.endswith(name) else None
    if name.startswith("*."):
        suffix = name[1:]
        return (_LEADING, -len(suffix)) if host.endswith(suffix) and len(host) > len(suffix) else None
    if name.endswith(".*"):
        prefix = name[:-1]
        return (_TRAILING, -len(prefix)) if host.startswith(prefix) and len(host) > len(prefix) else None
    return None


def _best_rank(block: ServerBlock, host: str) -> tuple[int, int, int, int] | None:
    """The block's best match for ``host``: (kind, -length, block order, position) or None."""
    best: tuple[int, int, int, int] | None = None
    for position, pattern in enumerate(block.names):
        rank = match_rank(pattern, host)
        if rank is None:
            continue
        # regexes are tried in configuration order; names of one kind tie-break the same way
        key = (rank[0], rank[1], block.index, position)
        if best is None or key < best:
            best = key
    return best


# --- choosing ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Choice:
    """What nginx picks on one socket (address group) of a port: the block, and whether by name."""

    socket: tuple[str, int]
    block: ServerBlock
    by_name: bool
    listen: Listen


def _groups(blocks: Iterable[ServerBlock], port: int) -> dict[tuple[str, int], list[tuple[ServerBlock, Listen]]]:
    groups: dict[tuple[str, int], list[tuple[ServerBlock, Listen]]] = {}
    for block in blocks:
        seen: set[tuple[str, int]] = set()
        for listen in block.listens:
            if listen.port != port or listen.socket in seen:
                continue
            seen.add(listen.socket)
            groups.setdefault(listen.socket, []).append((block, listen))
    return groups


def serving(blocks: Sequence[ServerBlock], host: str, port: int) -> list[Choice]:
    """For each address group listening on ``port``, the block nginx uses for ``host`` there.

    A group is one ``listen`` address of that port (``127.0.0.1:80``, ``*:80``, ``[::]:80``). The
    result is in configuration order of the groups' first blocks; ``by_name`` is False where the
    group's default server answers only because no name matched.
    """
    wanted = normal_host(host)
    choices = []
    for socket, members in _groups(blocks, port).items():
        ranked = [(rank, block, listen) for block, listen in members
                  if (rank := _best_rank(block, wanted)) is not None]
        if ranked:
            _, block, listen = min(ranked, key=lambda item: item[0])
            choices.append(Choice(socket, block, True, listen))
            continue
        defaults = [(block, listen) for block, listen in members if listen.default_server]
        block, listen = (defaults or members)[0]
        choices.append(Choice(socket, block, False, listen))
    choices.sort(key=lambda choice: choice.block.index)
    return choices


def best_for(blocks: Sequence[ServerBlock], host: str) -> list[ServerBlock]:
    """Every block whose ``server_name`` matches ``host``, best match first (kind, length, order)."""
    wanted = normal_host(host)
    ranked = [(rank, block) for block in blocks if (rank := _best_rank(block, wanted)) is not None]
    return [block for _, block in sorted(ranked, key=lambda item: item[0])]


def top_matches(blocks: Sequence[ServerBlock], host: str) -> list[ServerBlock]:
    """The blocks sharing the best match for ``host`` (same kind and length), in configuration order.

    More than one means the same name in several blocks (on different sockets, or a conflict nginx
    warns about): a wildcard block is never among them when an exact one exists.
    """
    wanted = normal_host(host)
    ranked = [(rank, block) for block in blocks if (rank := _best_rank(block, wanted)) is not None]
    if not ranked:
        return []
    best = min(rank[:2] for rank, _ in ranked)
    return [block for rank, block in ranked if rank[:2] == best]
