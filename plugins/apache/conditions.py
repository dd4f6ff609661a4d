"""Apache's read-time conditions: ``<IfModule>``, ``<IfDefine>``, ``<IfVersion>``, ``<IfFile>``.

Role: decide, as httpd does while it reads the configuration, whether the body of a conditional
section is read at all. The loader keeps the state (modules loaded so far, names defined so far);
this module only evaluates. Also: what the installed server is (version, compiled-in modules),
read from ``apache2 -v`` / ``apache2 -l``.

- ``<IfModule [!]id>``: ``id`` is a module name (``ssl_module``) or its source file (``mod_ssl.c``);
  a module counts once ``LoadModule`` has loaded it or when it is compiled in.
- ``<IfDefine [!]NAME>``: ``-D NAME`` on the command line or a ``Define NAME`` read before.
- ``<IfVersion [[!]op] version>``: op is ``=``/``==`` (default), ``>``, ``>=``, ``<``, ``<=``, or
  ``~`` (regular expression); ``= /re/`` is a regular expression too (mod_version).
- ``<IfFile [!]path>``: the path (relative to ServerRoot) exists.
- ``<IfDirective>``/``<IfSection>``: their body is read (we cannot know every module's directives).

Allowed imports: the standard library and ``errors`` of this package.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Collection, Sequence
from pathlib import Path

from .errors import ApacheConfigError

__all__ = [
    "CONDITIONS",
    "DEBIAN_STATIC_MODULES",
    "ServerBuild",
    "condition_holds",
    "module_identifiers",
    "parse_version",
    "server_build",
]

CONDITIONS = frozenset({"ifmodule", "ifdefine", "ifversion", "iffile", "ifdirective", "ifsection"})
"""Section names (lower case) that are conditions, not containers: their body is read or skipped."""

DEBIAN_STATIC_MODULES = ("core.c", "mod_so.c", "mod_watchdog.c", "http_core.c", "mod_log_config.c", "mod_logio.c",
                         "mod_version.c", "mod_unixd.c")
"""``apache2 -l`` of Debian's apache2-bin: the modules compiled into the server."""

# Module names whose source file does not follow ``NAME_module`` -> ``mod_NAME.c``.
_SOURCE_OF = {
    "core_module": "core.c",
    "http_module": "http_core.c",
    "mpm_event_module": "event.c",
    "mpm_prefork_module": "prefork.c",
    "mpm_worker_module": "worker.c",
    "mpm_itk_module": "mpm_itk.c",
    "ldap_module": "util_ldap.c",
}
_NAME_OF = {source: name for name, source in _SOURCE_OF.items()}
_VERSION = re.compile(r"Apache/(\d+)\.(\d+)\.(\d+)")


def module_identifiers(name_or_source: str) -> tuple[str, str]:
    """``(name, source)`` of a module given either: ``ssl_module`` <-> ``mod_ssl.c``."""
    if name_or_source.endswith(".c"):
        source = name_or_source
        if source in _NAME_OF:
            return _NAME_OF[source], source
        base = source[len("mod_"):-2] if source.startswith("mod_") else source[:-2]
        return f"{base}_module", source
    name = name_or_source
    base = name[: -len("_module")] if name.endswith("_module") else name
    return name, _SOURCE_OF.get(name, f"mod_{base}.c")


@dataclasses.dataclass(frozen=True)
class ServerBuild:
    """What the server binary is: its version and the modules compiled into it (both forms of each)."""

    version: tuple[int, int, int]
    static_modules: frozenset[str]

    @classmethod
    def of(cls, version: tuple[int, int, int], sources: Sequence[str] = DEBIAN_STATIC_MODULES) -> ServerBuild:
        return cls(version, frozenset(ident for source in sources for ident in module_identifiers(source)))


def parse_version(text: str) -> tuple[int, int, int]:
    """The version in ``apache2 -v`` output (``Server version: Apache/2.4.62 (Debian)``)."""
    found = _VERSION.search(text)
    if found is None:
        raise ValueError(f"no Apache version in {text[:200]!r}")
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def server_build(binary: str = "apache2", *, timeout: float = 30.0) -> ServerBuild:
    """Ask the server binary (``apache2 -v`` and ``apache2 -l``) what it is."""
    outputs = []
    for flag in ("-v", "-l"):
        try:
            result = subprocess.run([binary, flag], capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ApacheConfigError(f"cannot run {binary} {flag}: {err}", file=binary,
                                    hint="install apache2 or name its binary") from err
        outputs.append(result.stdout + result.stderr)
    try:
        version = parse_version(outputs[0])
    except ValueError as err:
        raise ApacheConfigError(f"{binary} -v does not name a version: {outputs[0].strip()[:200]}",
                                file=binary) from err
    sources = [line.strip() for line in outputs[1].splitlines() if line.strip().endswith(".c")]
    return ServerBuild.of(version, sources or DEBIAN_STATIC_MODULES)


def _negated(word: str) -> tuple[bool, str]:
    return (True, word[1:]) if word.startswith("!") else (False, word)


def _version_holds(words: Sequence[str], version: tuple[int, int, int]) -> bool:
    if len(words) == 1:
        op, wanted = "=", words[0]
    elif len(words) == 2:
        op, wanted = words
    else:
        raise ValueError(f"<IfVersion> takes an operator and a version, not {' '.join(words)!r}")
    negate, op = _negated(op)
    if not op:
        op = "="
    if op == "~" or (op in ("=", "==") and len(wanted) > 1 and wanted.startswith("/") and wanted.endswith("/")):
        pattern = wanted.strip("/") if op != "~" else wanted
        try:
            matched = re.search(pattern, ".".join(map(str, version))) is not None
        except re.error as err:
            raise ValueError(f"<IfVersion> has a bad regular expression {pattern!r}: {err}") from err
        return matched != negate
    parts = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", wanted)
    if parts is None:
        raise ValueError(f"<IfVersion> has a bad version {wanted!r}")
    target = tuple(int(part or 0) for part in parts.groups())
    comparisons = {
        "=": version == target, "==": version == target, ">": version > target, ">=": version >= target,
        "<": version < target, "<=": version <= target,
    }
    if op not in comparisons:
        raise ValueError(f"<IfVersion> has an unknown operator {op!r}")
    return comparisons[op] != negate


def condition_holds(kind: str, words: Sequence[str], *, modules: Collection[str], defines: Collection[str],
                    version: tuple[int, int, int], server_root: Path) -> bool:
    """Whether Apache reads the body of ``<kind words...>`` (``kind`` in :data:`CONDITIONS`, lower case).

    Raises ``ValueError`` (saying why) for a condition Apache would refuse to read.
    """
    if kind in ("ifdirective", "ifsection"):
        return True
    if kind == "ifversion":
        return _version_holds(words, version)
    if len(words) != 1:
        raise ValueError(f"<{kind}> takes one argument, not {' '.join(words)!r}")
    negate, subject = _negated(words[0])
    if kind == "ifmodule":
        found = subject in modules
    elif kind == "ifdefine":
        found = subject in defines
    else:  # iffile
        found = os.path.exists(subject if os.path.isabs(subject) else os.path.join(server_root, subject))
    return found != negate
