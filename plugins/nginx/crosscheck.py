"""Cross-check with the real server: the files ``nginx -T`` reads are the files we loaded.

Role: ``nginx -T`` parses the configuration and prints every file it read, each after a line
``# configuration file PATH:``. :func:`cross_check` runs it on the configuration a
:class:`~plugins.nginx.loader.Config` was loaded from and raises
:class:`~plugins.nginx.errors.NginxCrossCheckError` unless both read the same set of files with
the same text. Run before editing, it proves the loader missed no include nginx follows (and
followed none nginx does not).

``nginx -T`` needs a configuration nginx accepts in full (known directives, readable
certificates, writable log paths); ``prefix`` (``-p``) and ``extra_args`` (e.g. ``-g`` directives)
let tests and callers run it on configurations outside ``/etc/nginx``.

Allowed imports: the standard library, ``letsencrypt.plugin_api`` and this package.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from letsencrypt.plugin_api import MisconfigurationError

from .errors import NginxCrossCheckError
from .loader import Config

__all__ = ["cross_check", "nginx_dump"]

_HEADER = "# configuration file "


def nginx_dump(
    main: str,
    *,
    nginx: str = "nginx",
    prefix: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> str:
    """The standard output of ``nginx -T -c main``; MisconfigurationError if nginx rejects the configuration."""
    argv = [nginx, "-T", "-c", main, *(["-p", prefix] if prefix else []), *extra_args]
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MisconfigurationError(f"cannot run {' '.join(argv)}: {err}", hint="check --nginx-ctl") from err
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip()
        raise MisconfigurationError(f"{' '.join(argv)} failed with status {result.returncode}: {detail}",
                                    hint="run nginx -t and fix what it reports")
    return result.stdout.decode("utf-8", "surrogateescape")


def split_dump(output: str, known: dict[str, str]) -> dict[str, str]:
    """The files in ``nginx -T`` output, name -> text.

    A file may itself contain a line that looks like a header; where a file's text is ``known``
    (the loader read it) and the output matches it, the whole text is taken at once.
    """
    files: dict[str, str] = {}
    pos = 0 if output.startswith(_HEADER) else _next_header(output, 0)
    while 0 <= pos < len(output):
        end_of_name = output.find(":\n", pos)
        if end_of_name < 0:
            break
        name = output[pos + len(_HEADER) : end_of_name]
        body = end_of_name + 2
        text = known.get(name)
        if text is not None and output.startswith(text + "\n", body):
            files[name] = text
            pos = body + len(text) + 1
            if not output.startswith(_HEADER, pos):
                pos = _next_header(output, pos)
            continue
        following = _next_header(output, body)
        files[name] = output[body : (following if following >= 0 else len(output)) - 1]
        pos = following
    return files


def _next_header(output: str, start: int) -> int:
    found = output.find("\n" + _HEADER, max(start - 1, 0))
    return found + 1 if found >= 0 else -1


def cross_check(
    config: Config,
    *,
    nginx: str = "nginx",
    prefix: str | None = None,
    extra_args: Sequence[str] = (),
) -> None:
    """Raise NginxCrossCheckError unless ``nginx -T`` read exactly the files (and texts) we loaded."""
    ours = {os.path.realpath(name): file.source for name, file in config.files.items()}
    known = {name: file.source for name, file in config.files.items()}
    dumped = split_dump(nginx_dump(config.main, nginx=nginx, prefix=prefix, extra_args=extra_args), known)
    theirs = {os.path.realpath(name): text for name, text in dumped.items()}
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    differing = sorted(name for name in set(ours) & set(theirs) if ours[name] != theirs[name])
    if missing or extra or differing:
        parts = [f"{label}: {', '.join(names)}" for label, names in
                 (("read by nginx only", missing), ("read by the plugin only", extra),
                  ("read with different text", differing)) if names]
        raise NginxCrossCheckError(f"nginx -T and the plugin disagree on {config.main}: " + "; ".join(parts),
                                   missing=missing, extra=extra, differing=differing)
