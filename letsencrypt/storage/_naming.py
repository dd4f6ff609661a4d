"""Lineage names: certbot's default from the first domain, its ``-0001`` siblings, what a name may be.

Imports: the standard library, ``letsencrypt.errors`` and ``letsencrypt.paths``.
"""

from __future__ import annotations

from collections.abc import Sequence

from letsencrypt.errors import ConfigError, StorageError
from letsencrypt.paths import Paths

__all__ = ["RESERVED_NAMES", "check_name", "lineage_name_for", "taken", "unique_name"]

RESERVED_NAMES = frozenset({"README"})


def check_name(name: str) -> str:
    """``name`` if it can name a lineage (a file name not starting with a dot); ``ConfigError`` if not."""
    unusable = not name or name.startswith(".") or any(c in name for c in "/\\\0\n") or len(name) > 200
    if unusable or name in RESERVED_NAMES:
        raise ConfigError(
            f"{name!r} cannot name a certificate",
            hint="a --cert-name is a file name: no '/', not starting with '.', such as example.com",
        )
    return name


def lineage_name_for(domains: Sequence[str]) -> str:
    """certbot's default name: the first domain, without the ``*.`` of a wildcard."""
    if not domains:
        raise ConfigError("a certificate needs at least one domain", hint="give one with -d")
    first = domains[0]
    return check_name(first[2:] if first.startswith("*.") else first)


def taken(paths: Paths, name: str) -> bool:
    live = paths.live(name)
    return paths.renewal_conf(name).exists() or live.exists() or live.is_symlink() or paths.archive(name).exists()


def unique_name(paths: Paths, base: str) -> str:
    """``base`` if no lineage uses it, else certbot's next sibling name ``base-0001``, ``base-0002``, ...

    The caller decides when a sibling is wanted; expanding a lineage's names reuses its name.
    """
    check_name(base)
    if not taken(paths, base):
        return base
    for count in range(1, 10000):
        candidate = f"{base}-{count:04d}"
        if not taken(paths, candidate):
            return candidate
    raise StorageError(f"no free certificate name left for {base!r}", hint="delete unused certificates")
