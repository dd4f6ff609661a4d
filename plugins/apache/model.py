"""Virtual hosts as Apache chooses them: addresses, names, and the vhost that serves a request.

Role: the model layer (STYLE.md section 10) over what ``loader`` read. :class:`ApacheConfig` lists
the ``<VirtualHost>`` sections Apache reads, in its order, and answers "which vhost serves this
name on this port" the way httpd 2.4 does (vhost.c):

1. The connection's local address picks a set of vhosts: those declared for that exact IP and
   port; only if there are none, those declared for ``*`` (or ``_default_``) on that port. An
   address without a port (``<VirtualHost *>``) matches every port.
2. In that set, the first vhost (configuration order) whose ServerName equals the request's host,
   or one of whose ServerAlias equals it or matches it as a wildcard (``*``, ``?``), case-insensitive.
3. Otherwise the first vhost of the set (the "default server" of ``apache2ctl -S``).

A vhost without ServerName answers to the main server's ServerName, as Apache gives it. Names
are indexed once (exact names in a dict, wildcard aliases in a list), so a lookup does not scan
every vhost.

Allowed imports: the standard library; ``loader`` and ``tree`` of this package.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Iterator

from .loader import Entry, LoadedConfig, LoadOptions, load_config
from .tree import ConfigTree, Section

__all__ = ["Address", "ApacheConfig", "VirtualHost", "normalize_name"]

# Addresses httpd treats as "any" in <VirtualHost> (compared, never bound: hence the noqa)
_WILDCARD_HOSTS = frozenset({"*", "_default_", "0.0.0.0", "::", "255.255.255.255"})  # noqa: S104


def normalize_name(name: str) -> str:
    """A host name as Apache compares it: lower case, without a scheme, port or trailing dot."""
    name = name.strip().lower()
    if "://" in name:
        name = name.split("://", 1)[1]
    name = name.split("/", 1)[0]
    if name.startswith("["):
        name = name[: name.find("]") + 1] if "]" in name else name
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name.rstrip(".")


@dataclasses.dataclass(frozen=True, slots=True)
class Address:
    """One ``<VirtualHost>`` address: ``host`` is ``*`` for any address, else a normalised IP (or a
    name, which Apache would resolve at start-up); ``port`` None matches every port."""

    host: str
    port: int | None

    @property
    def is_wildcard(self) -> bool:
        return self.host == "*"

    @classmethod
    def parse(cls, text: str, default_port: int | None = None) -> Address:
        """``*:80``, ``_default_:443``, ``192.0.2.1``, ``[2001:db8::1]:8443``, ``*:*``."""
        host, port_text = text, ""
        if text.startswith("["):
            close = text.find("]")
            host, port_text = text[1:close], text[close + 2:] if text[close + 1:close + 2] == ":" else ""
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        if port_text == "*":
            port: int | None = None
        elif port_text:
            port = int(port_text) if port_text.isdigit() else None
        else:
            port = default_port
        if host.lower() in _WILDCARD_HOSTS:
            return cls("*", port)
        try:
            host = ipaddress.ip_address(host).compressed
        except ValueError:
            host = host.lower()
        return cls(host, port)

    @classmethod
    def parse_listen(cls, text: str) -> Address:
        """``Listen [IP:]port``: ``80`` -> ``*:80``."""
        return cls("*", int(text)) if text.isdigit() else cls.parse(text)

    def serves_port(self, port: int) -> bool:
        return self.port is None or self.port == port

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{'*' if self.port is None else self.port}"


@dataclasses.dataclass(eq=False)
class VirtualHost:
    """A ``<VirtualHost>`` Apache reads: where it is written and what it answers to.

    ``server_name`` is the name it answers to (its own ServerName, else the main server's),
    ``aliases`` its ServerAlias words, both in lower case. ``entry`` gives what Apache reads inside
    (conditions resolved, includes in place); ``section`` is the tree node to edit.
    """

    entry: Entry
    addresses: tuple[Address, ...]
    server_name: str | None
    has_own_name: bool
    aliases: tuple[str, ...]
    tls: bool
    order: int

    @property
    def section(self) -> Section:
        node = self.entry.node
        assert isinstance(node, Section)
        return node

    @property
    def file(self) -> str:
        return self.section.file

    @property
    def path(self) -> str:
        """The Augeas path of the section (valid until its file is edited)."""
        return self.section.path

    @property
    def line(self) -> int:
        return self.section.line

    @property
    def end_line(self) -> int:
        return self.section.end_line

    @property
    def names(self) -> tuple[str, ...]:
        return ((self.server_name,) if self.server_name else ()) + self.aliases

    def matches(self, name: str) -> bool:
        """Whether ``name`` is its ServerName or one of its ServerAlias (wildcards allowed there)."""
        name = normalize_name(name)
        if name == self.server_name or name in self.aliases:
            return True
        return any(_is_wildcard(alias) and _wildcard_matches(alias, name) for alias in self.aliases)

    def directives(self, name: str) -> list[Entry]:
        """Directives named ``name`` that Apache reads directly in this vhost (not in nested sections)."""
        return self.entry.find(name)

    def serves_port(self, port: int) -> bool:
        return any(address.serves_port(port) for address in self.addresses)

    def __repr__(self) -> str:
        addresses = " ".join(map(str, self.addresses))
        return f"<VirtualHost {addresses} {self.server_name or '-'} at {self.file}:{self.line}>"


def _is_wildcard(name: str) -> bool:
    return "*" in name or "?" in name


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern),
                      re.DOTALL)


def _wildcard_matches(pattern: str, name: str) -> bool:
    """ap_strcasecmp_match (both sides already lower case): ``*`` any run, ``?`` one character."""
    return _wildcard(pattern).fullmatch(name) is not None


def _find(entries: list[Entry], name: str) -> list[Entry]:
    key = name.lower()
    return [entry for entry in entries if entry.key == key]


def _last_word(entries: list[Entry]) -> str | None:
    for entry in reversed(entries):
        if entry.words:
            return entry.words[0]
    return None


class ApacheConfig:
    """The virtual hosts of a configuration, with indexes for name lookups."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        top = loaded.entries
        main_name = _last_word(_find(top, "ServerName"))
        self.main_server_name = normalize_name(main_name) if main_name else None
        main_port = main_name.rsplit(":", 1)[1] if main_name and main_name.count(":") == 1 else ""
        default_port = int(main_port) if main_port.isdigit() else None
        main_tls = (_last_word(_find(top, "SSLEngine")) or "off").lower() == "on"
        self.listens: list[Address] = [Address.parse_listen(entry.words[0]) for entry in _find(top, "Listen")
                                       if entry.words]
        self._chains: dict[int, dict[Address, list[VirtualHost]]] = {}
        self.vhosts: list[VirtualHost] = []
        for entry in loaded.entries:
            if entry.key == "virtualhost":
                self.vhosts.append(self._vhost(entry, len(self.vhosts), default_port, main_tls))
        self._exact: dict[str, list[VirtualHost]] = {}
        self._wild: list[tuple[str, VirtualHost]] = []
        for vhost in self.vhosts:
            for name in dict.fromkeys(vhost.names):
                if _is_wildcard(name) and name != vhost.server_name:
                    self._wild.append((name, vhost))
                else:
                    self._exact.setdefault(name, []).append(vhost)

    def _vhost(self, entry: Entry, order: int, default_port: int | None, main_tls: bool) -> VirtualHost:
        own_name = _last_word(entry.find("ServerName"))
        aliases = tuple(normalize_name(word) for alias in entry.find("ServerAlias") for word in alias.words)
        engine = _last_word(entry.find("SSLEngine"))
        tls = engine.lower() == "on" if engine is not None else main_tls
        return VirtualHost(
            entry=entry,
            addresses=tuple(Address.parse(word, default_port) for word in entry.words),
            server_name=normalize_name(own_name) if own_name else self.main_server_name,
            has_own_name=own_name is not None,
            aliases=aliases,
            tls=tls,
            order=order,
        )

    @classmethod
    def read(cls, options: LoadOptions, tree: ConfigTree | None = None) -> ApacheConfig:
        """Load the configuration as Apache does (``loader.load_config``) and index its vhosts.

        Pass the ``tree`` of an earlier read after editing and saving: only the changed files
        are parsed again.
        """
        return cls(load_config(options, tree))

    @property
    def tree(self) -> ConfigTree:
        return self.loaded.tree

    def __iter__(self) -> Iterator[VirtualHost]:
        return iter(self.vhosts)

    def __len__(self) -> int:
        return len(self.vhosts)

    def vhosts_named(self, name: str, port: int | None = None) -> list[VirtualHost]:
        """Every vhost whose names match ``name`` (on ``port`` if given), in configuration order."""
        name = normalize_name(name)
        found = set(self._exact.get(name, ()))
        found.update(vhost for pattern, vhost in self._wild if _wildcard_matches(pattern, name))
        return sorted((vhost for vhost in found if port is None or vhost.serves_port(port)),
                      key=lambda vhost: vhost.order)

    def _candidates(self, port: int, ip: str | None) -> list[list[VirtualHost]]:
        """The sets of vhosts a connection to ``ip``:``port`` may pick from (one set if ``ip`` is given)."""
        chains = self._chains.get(port)
        if chains is None:
            chains = self._chains[port] = {}
            for vhost in self.vhosts:
                for address in vhost.addresses:
                    chain = chains.setdefault(address, []) if address.serves_port(port) else None
                    if chain is not None and (not chain or chain[-1] is not vhost):
                        chain.append(vhost)

        def best(addresses: list[Address]) -> list[list[VirtualHost]]:
            exact = [address for address in addresses if address.port == port]
            return [chains[address] for address in (exact or addresses)[:1]]

        wildcard = best([address for address in chains if address.is_wildcard])
        if ip is not None:
            host = Address.parse(f"[{ip}]" if ":" in ip else ip).host
            return best([address for address in chains if address.host == host]) or wildcard
        specific = sorted({address.host for address in chains if not address.is_wildcard})
        return wildcard or [chain for host in specific for chain in best([a for a in chains if a.host == host])]

    def vhost_for(self, name: str, port: int, ip: str | None = None) -> VirtualHost | None:
        """The vhost Apache serves a request for ``name`` with on ``port`` (see the module docstring).

        ``ip`` is the local address the connection reached. Without it: an address that no
        IP-based vhost claims if some vhost listens on ``*`` for the port, otherwise each IP-based
        set in turn. None when no vhost listens there (the main server answers).
        """
        sets = self._candidates(port, ip)
        named = set(self.vhosts_named(name))
        for chain in sets:
            for vhost in chain:
                if vhost in named:
                    return vhost
        return sets[0][0] if sets and sets[0] else None
