"""The ``webroot`` authenticator: http-01 through files in the document root of a running web server.

For each domain it writes the key authorization to ``<webroot>/.well-known/acme-challenge/<token>``
(mode 0644, so the web server can read it) and on cleanup removes exactly what it created: its own
files, and only those directories that did not exist before (never a pre-existing ``.well-known``).

Options follow certbot: ``--webroot-path``/``-w`` (repeatable) and ``--webroot-map`` (a JSON object
domain -> webroot). With certbot's ``-w`` semantics each ``-w`` applies to the ``-d`` names after
it; the CLI turns that into ``map``. A domain missing from ``map`` uses the last ``path``.

Registered through the ``letsencrypt.plugins`` entry point like any third-party plugin.
Imports: stdlib, ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from letsencrypt.plugin_api import (
    ChallengeSetupError,
    ChallengeTask,
    ChallengeType,
    Identifier,
    MisconfigurationError,
    NotSupported,
    Option,
    PluginContext,
)

if TYPE_CHECKING:
    from letsencrypt import plugin_api

logger = logging.getLogger(__name__)

CHALLENGE_DIR = Path(".well-known", "acme-challenge")
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_HINT = "give -w WEBROOT before the -d names it serves, or --webroot-map '{\"example.com\": \"/var/www/html\"}'"


class WebrootAuthenticator:
    """Places http-01 files into existing web roots."""

    name = "webroot"
    description = "Place files in a server's webroot folder for http-01 validation"
    options: Sequence[Option] = (
        Option("path", "public_html / webroot path; each -w applies to the -d names after it", type="path",
               multiple=True),
        Option("map", "JSON object mapping domain names to webroot paths", type="str"),
    )  # fmt: skip

    def __init__(self, context: PluginContext) -> None:
        self._context = context
        self._paths = tuple(Path(path) for path in context.options.get("path") or ())
        self._map = _parse_map(context.options.get("map"))
        self._files: dict[str, Path] = {}  # challenge URL -> file written
        self._created_dirs: list[Path] = []  # directories this plugin made, parents first

    def prepare(self) -> None:
        for root in {*self._paths, *self._map.values()}:
            if not root.is_dir():
                raise MisconfigurationError(
                    f"webroot {root} does not exist or is not a directory",
                    hint="give the document root your web server serves for these names",
                )

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        if identifier.value.startswith("*."):
            return []  # wildcards need dns-01
        return [ChallengeType.HTTP_01]

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        try:
            for task in tasks:
                self._write(task)
        except BaseException:
            self.cleanup(tasks)
            raise
        return [{} for _ in tasks]

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        for task in tasks:
            path = self._files.pop(task.challenge.url, None)
            if path is None:
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                self._context.reporter.warn(f"could not remove challenge file {path}: {err.strerror}")
        for directory in reversed(self._created_dirs):
            try:
                directory.rmdir()  # fails while another domain's file is still in it: kept for later
            except OSError:
                continue
            self._created_dirs.remove(directory)

    def webroot_for(self, domain: str) -> Path:
        """The webroot serving ``domain``: its ``map`` entry, else the last ``path``."""
        root = self._map.get(domain.lower())
        if root is None and self._paths:
            root = self._paths[-1]
        if root is None:
            raise MisconfigurationError(f"no webroot given for {domain}", hint=_HINT)
        return root

    def _write(self, task: ChallengeTask) -> None:
        if task.type is not ChallengeType.HTTP_01:
            raise NotSupported(f"the webroot authenticator answers only http-01, not {task.challenge.type_name}")
        root = self.webroot_for(task.domain)
        if not root.is_dir():
            raise MisconfigurationError(f"webroot {root} for {task.domain} is not a directory", hint=_HINT)
        directory = root / CHALLENGE_DIR
        self._make_dirs(root, directory)
        path = directory / task.token
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, _FILE_MODE)
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), _FILE_MODE)  # whatever the umask
                out.write(task.http01_body)
        except OSError as err:
            raise ChallengeSetupError(
                f"cannot write the challenge file {path} for {task.domain}: {err.strerror or err}",
                hint="run as a user that may write to the webroot",
            ) from err
        self._files[task.challenge.url] = path
        logger.info("webroot: wrote %s for %s", path, task.domain)

    def _make_dirs(self, root: Path, directory: Path) -> None:
        """Create the missing directories from ``root`` down to ``directory``, remembering each."""
        current = root
        for part in directory.relative_to(root).parts:
            current = current / part
            try:
                current.mkdir(mode=_DIR_MODE)
            except FileExistsError:
                continue
            except OSError as err:
                raise ChallengeSetupError(
                    f"cannot create {current}: {err.strerror or err}",
                    hint="run as a user that may write to the webroot",
                ) from err
            current.chmod(_DIR_MODE)  # the web server must be able to read it, whatever the umask
            self._created_dirs.append(current)


def _parse_map(value: object) -> dict[str, Path]:
    """``map`` as a mapping or as JSON text (how renewal configurations keep it); keys lowercased."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise MisconfigurationError(f"--webroot-map is not valid JSON: {err}", hint=_HINT) from err
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise MisconfigurationError("--webroot-map must be a JSON object of domain: path", hint=_HINT)
    return {key.strip().rstrip(".").lower(): Path(str(path)) for key, path in value.items()}


if TYPE_CHECKING:
    _: type[plugin_api.Authenticator] = WebrootAuthenticator
