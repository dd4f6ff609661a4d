"""The TLS copy of a plain-HTTP virtual host: where it goes, its text, and what must not be copied.

Role: part of the installer. A site served over plain HTTP gets a TLS virtual host beside it, in a
file of its own (two vhosts in one file get two files, each correct), made from the original's
lines as they are written (comments and layout included) with the address moved to the https
port, the certificate directives and the shared TLS options added, and wrapped in
``<IfModule mod_ssl.c>`` as certbot does. What would loop once copied (a ``Redirect`` to https, a
``RewriteRule`` sending to https, with the ``RewriteCond`` lines that belong to it) is left out.

A vhost in ``sites-available`` (Debian's layout, ``sites-enabled`` included): the copy goes to
``sites-available/<name>-le-ssl.conf`` and is enabled by a ``sites-enabled`` symlink, as
``a2ensite`` does. Any other vhost (in ``apache2.conf``, in a folder of its own): the copy goes to
``<server root>/le-ssl/`` and an ``Include`` of it is added right after the original, so that it is
read where the original is, with the same ``Define``s and conditions around it.

Allowed imports: the standard library; ``loader``, ``model``, ``snippets`` and ``tree`` of this package.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path

from .loader import Entry
from .model import Address, ApacheConfig, VirtualHost
from .snippets import redirects_all_to_https
from .tree import Directive

__all__ = ["TlsCopy", "copy_text", "https_addresses", "looping_redirects", "plan_copy", "uses_sites_enabled"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True, slots=True)
class TlsCopy:
    """Where the TLS copy of ``source`` goes: ``file``; ``link`` in sites-enabled or None (then an Include)."""

    source_file: str
    source_line: int
    file: Path
    link: Path | None


def uses_sites_enabled(config: ApacheConfig, server_root: Path) -> bool:
    """True when Apache reads ``sites-enabled`` (Debian's layout) and there is a ``sites-available``."""
    enabled = server_root / "sites-enabled"
    if not (server_root / "sites-available").is_dir() or not enabled.is_dir():
        return False
    for entry in config.loaded.walk():
        if entry.key in ("include", "includeoptional") and entry.words:
            pattern = entry.words[0]
            full = Path(pattern) if Path(pattern).is_absolute() else server_root / pattern
            if str(full).startswith(str(enabled)):
                return True
    return False


def plan_copy(config: ApacheConfig, server_root: Path, vhost: VirtualHost, taken: Iterable[Path]) -> TlsCopy:
    """Choose the file of ``vhost``'s TLS copy: a name nobody uses yet (not on disk, not in ``taken``)."""
    used = set(taken)
    real = Path(vhost.file).resolve()
    siblings = [v for v in config.vhosts if Path(v.file).resolve() == real]
    available = (server_root / "sites-available").resolve()
    debian = real.parent == available and uses_sites_enabled(config, server_root)
    if debian:
        stem = real.stem if len(siblings) == 1 else f"{real.stem}-{siblings.index(vhost) + 1}"
    else:
        stem = _SAFE.sub("_", vhost.server_name or real.stem)
    folder = available if debian else server_root / "le-ssl"
    for number in range(1, 1000):
        name = f"{stem}-le-ssl.conf" if number == 1 else f"{stem}-le-ssl-{number}.conf"
        candidate = folder / name
        link = server_root / "sites-enabled" / name if debian else None
        if candidate in used or candidate.exists() or (link is not None and (link.exists() or link.is_symlink())):
            continue
        return TlsCopy(vhost.file, vhost.line, candidate, link)
    raise AssertionError("a thousand TLS copies of one site")


def https_addresses(vhost: VirtualHost, https_port: int) -> list[str]:
    """The vhost's addresses moved to the https port: ``*:80`` -> ``*:443``, ``[::1]:80`` -> ``[::1]:443``."""
    moved = [str(Address(address.host, https_port)) for address in vhost.addresses]
    return list(dict.fromkeys(moved)) or [f"*:{https_port}"]


def copy_text(source: bytes, vhost: VirtualHost, https_port: int, added: list[str]) -> bytes:
    """The new file: the vhost's lines between its tags minus :func:`looping_redirects`, then ``added``.

    A directive continued over several lines (trailing backslash) is left out whole.
    """
    lines = source.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    dropped: set[int] = set()
    for node in looping_redirects(vhost):
        index = node.line - 1
        dropped.add(index)
        while index < len(lines) and lines[index].rstrip("\r\n").endswith("\\"):
            index += 1
            dropped.add(index)
    body = [line for index, line in enumerate(lines[vhost.line:vhost.end_line - 1], vhost.line)
            if index not in dropped]
    if body and not body[-1].endswith("\n"):
        body[-1] += "\n"
    indent = next((line[: len(line) - len(line.lstrip(" \t"))] for line in body if line.strip()), "    ")
    opening = lines[vhost.line - 1]
    outer = opening[: len(opening) - len(opening.lstrip(" \t"))]
    text = [
        f"# The TLS twin of {vhost.file}:{vhost.line}, made by letsencrypt --apache.\n",
        "<IfModule mod_ssl.c>\n",
        f"{outer}<VirtualHost {' '.join(https_addresses(vhost, https_port))}>\n",
        *body,
        *(f"{indent}{line}\n" for line in added),
        f"{outer}</VirtualHost>\n",
        "</IfModule>\n",
    ]
    return "".join(text).encode("utf-8", "surrogateescape")


def looping_redirects(vhost: VirtualHost) -> list[Directive]:
    """Directives written in ``vhost``'s own file that send to https, with the RewriteCond lines before them."""
    found: list[Directive] = []

    def visit(children: list[Entry]) -> None:
        for index, child in enumerate(children):
            if child.children is not None:
                visit(child.children)
                continue
            node = child.node
            if node.file != vhost.file or not redirects_all_to_https(child.name, child.words, vhost.names):
                continue
            back = index - 1
            while child.key == "rewriterule" and back >= 0 and children[back].key == "rewritecond":
                condition = children[back].node
                if isinstance(condition, Directive) and condition.file == vhost.file:
                    found.append(condition)
                back -= 1
            if isinstance(node, Directive):
                found.append(node)

    visit(vhost.entry.children or [])
    return sorted(found, key=lambda node: node.line)
