"""Driving Apache: configuration test, graceful reload that is waited for by checking, Debian module links.

Role: the only module that runs ``apache2``/``apache2ctl`` or reads its pid file. :class:`Apache`
knows the control program (``--apache-ctl``) and the server root (``--apache-server-root``). For
Debian's own root (``/etc/apache2``) it runs ``apache2ctl configtest`` and ``apache2ctl graceful``, as
an administrator would; for any other root it runs the server binary itself,
``apache2 -d ROOT -f apache2.conf -t`` / ``-k graceful``, with Debian's variables
(``APACHE_RUN_DIR``, ``APACHE_PID_FILE``, ``APACHE_RUN_USER``, ``APACHE_RUN_GROUP``,
``APACHE_LOCK_DIR``, ``APACHE_LOG_DIR``) taken from ``ROOT/envvars`` when there is one (as
``apache2ctl`` does for a second instance) and otherwise pointing into the root.

A reload is not a sleep (certbot sleeps a fixed time): :meth:`Apache.graceful` signals the parent,
then watches its children until one of the new generation exists (the parent starts new children
only once it has read the new configuration) and the caller's own check passes, for example that
the vhost now presents the new certificate (:func:`served_leaf`) or the challenge file
(:func:`http_get`). Every wait has a deadline (:func:`wait_until`). These probes and the process
checks are :mod:`letsencrypt.plugin_api.probes`, re-exported here.

:func:`module_links` enables modules the Debian way, as ``a2enmod`` does: symlinks from
``mods-enabled`` to ``mods-available/X.load`` (and ``X.conf``), dependencies (``# Depends:``) first.

Allowed imports: the standard library and ``letsencrypt.plugin_api``; ``transactions`` of this package.
"""

from __future__ import annotations

import dataclasses
import functools
import grp
import logging
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from letsencrypt.plugin_api import MisconfigurationError, PluginError, probes
from letsencrypt.plugin_api.probes import HttpAnswer, children, http_get, pid_alive, served_leaf

from .transactions import Link

__all__ = [
    "DEBIAN_ROOT",
    "Apache",
    "ApacheNotRunning",
    "HttpAnswer",
    "http_get",
    "module_links",
    "served_leaf",
    "wait_until",
]

logger = logging.getLogger(__name__)

DEBIAN_ROOT = Path("/etc/apache2")
RELOAD_DEADLINE = 10.0
"""Seconds to wait for the parent to start children with a new configuration."""
COMMAND_TIMEOUT = 60.0
_ENV_NAMES = ("APACHE_RUN_DIR", "APACHE_PID_FILE", "APACHE_RUN_USER", "APACHE_RUN_GROUP", "APACHE_LOCK_DIR",
              "APACHE_LOG_DIR")
_DEPENDS = re.compile(r"^#\s*Depends:\s*(.*)$", re.MULTILINE)


class ApacheNotRunning(PluginError):
    """No Apache parent process runs with the pid in the configured pid file."""


@dataclasses.dataclass(frozen=True)
class Apache:
    """One Apache instance: its control program and its server root."""

    ctl: str
    server_root: Path

    @property
    def is_debian_default(self) -> bool:
        """True for Debian's own instance, driven through ``apache2ctl`` as is."""
        return self.server_root.resolve() == DEBIAN_ROOT and Path(self.ctl).name in ("apache2ctl", "apachectl")

    @property
    def main_config(self) -> Path:
        for name in ("apache2.conf", "httpd.conf"):
            if (self.server_root / name).is_file():
                return self.server_root / name
        return self.server_root / "apache2.conf"

    @property
    def binary(self) -> str:
        """The server binary: ``--apache-ctl`` itself when it is one, else ``apache2`` (``APACHE_HTTPD``)."""
        name = Path(self.ctl).name
        if "ctl" not in name:
            return self.ctl
        found = os.environ.get("APACHE_HTTPD") or shutil.which("apache2") or shutil.which("httpd")
        if found is None:
            sibling = Path(shutil.which(self.ctl) or self.ctl).with_name("apache2")
            found = str(sibling)
        return found

    @functools.cached_property
    def _env(self) -> dict[str, str]:
        """The environment the server runs with: ours, Debian's variables filled in (``envvars`` wins)."""
        env = dict(os.environ)
        defaults = {
            "APACHE_RUN_DIR": str(self.server_root / "run"),
            "APACHE_PID_FILE": str(self.server_root / "run" / "apache2.pid"),
            "APACHE_RUN_USER": "www-data" if os.geteuid() == 0 else _user_name(),
            "APACHE_RUN_GROUP": "www-data" if os.geteuid() == 0 else _group_name(),
            "APACHE_LOCK_DIR": str(self.server_root / "lock"),
            "APACHE_LOG_DIR": str(self.server_root / "logs"),
        }
        for name, value in defaults.items():
            env.setdefault(name, value)
        env.update(_source_envvars(self.server_root, env))
        return env

    def environment(self) -> dict[str, str]:
        """The environment the server runs with: ours, Debian's variables filled in (``envvars`` wins)."""
        return dict(self._env)

    @property
    def pid_file(self) -> Path:
        return Path(self.environment()["APACHE_PID_FILE"])

    def command(self, *args: str) -> list[str]:
        """``apache2 -d ROOT -f CONF ARGS`` (or ``apache2ctl ARGS`` for Debian's own instance)."""
        if self.is_debian_default:
            return [self.ctl, *args]
        return [self.binary, "-d", str(self.server_root), "-f", str(self.main_config), *args]

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        env = self.environment()
        for name in ("APACHE_RUN_DIR", "APACHE_LOCK_DIR", "APACHE_LOG_DIR"):
            Path(env[name]).mkdir(parents=True, exist_ok=True)
        try:
            return subprocess.run(list(args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
                                  env=env)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise MisconfigurationError(f"cannot run {' '.join(args)}: {err}",
                                        hint="install apache2 or give its control program with --apache-ctl") from err

    def config_test(self) -> None:
        """``apache2ctl configtest``; raise :class:`MisconfigurationError` with Apache's own words if it fails."""
        args = self.command("configtest") if self.is_debian_default else self.command("-t")
        result = self._run(args)
        if result.returncode != 0:
            raise MisconfigurationError(f"Apache rejects the configuration in {self.server_root}: {_words(result)}",
                                        hint=f"`{' '.join(args)}` shows the same error")

    def loaded_modules(self) -> set[str]:
        """Names of the modules the configuration loads (``ssl_module``, ...), from ``-M``."""
        result = self._run(self.command("-M"))
        if result.returncode != 0:
            raise MisconfigurationError(f"Apache cannot list its modules in {self.server_root}: {_words(result)}",
                                        hint=f"run `{' '.join(self.command('-M'))}` to see why")
        return set(re.findall(r"^\s*(\w+_module)\s+\(", result.stdout, re.MULTILINE))

    def parent_pid(self) -> int:
        """The running parent's pid from the pid file; :class:`ApacheNotRunning` if there is none."""
        pid_file = self.pid_file
        hint = f"start Apache ({' '.join(self.command('-k', 'start'))}), then run the command again"
        try:
            text = pid_file.read_text().strip()
        except OSError as err:
            raise ApacheNotRunning(f"Apache is not running: cannot read its pid file {pid_file} ({err.strerror})",
                                   hint=hint) from err
        if not text.isdigit() or not pid_alive(int(text)):
            raise ApacheNotRunning(f"Apache is not running: no process has the pid {text[:20]!r} in {pid_file}",
                                   hint=hint)
        return int(text)

    def graceful(self, check: Callable[[], str | None] | None = None, *, deadline: float = RELOAD_DEADLINE) -> float:
        """Reload gracefully and return (seconds taken) once the new configuration serves.

        That is: a child of the new generation runs, and ``check`` (if given) returns None; ``check``
        returns what it saw otherwise, for the error. Raises :class:`ApacheNotRunning` when no parent
        runs or it exits during the reload (a configuration it could not load), and
        :class:`MisconfigurationError` when the signal fails or ``deadline`` passes.
        """
        started = time.monotonic()
        parent = self.parent_pid()
        before = children(parent)
        args = self.command("graceful") if self.is_debian_default else self.command("-k", "graceful")
        result = self._run(args)
        if result.returncode != 0:
            raise MisconfigurationError(f"{' '.join(args)} failed: {_words(result)}",
                                        hint="fix the error named above; Apache keeps serving the old configuration")

        def reloaded() -> str | None:
            if not pid_alive(parent):
                raise ApacheNotRunning(f"the Apache parent (pid {parent}) exited during the reload",
                                       hint=f"see the error log in {self.environment()['APACHE_LOG_DIR']}")
            if not children(parent) - before:
                return f"the parent (pid {parent}) has started no child of the new generation yet"
            return check() if check is not None else None

        wait_until(reloaded, deadline, "Apache to reload")
        took = time.monotonic() - started
        logger.info("apache reloaded in %.3f s", took)
        return took


def _user_name() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _group_name() -> str:
    return grp.getgrgid(os.getegid()).gr_name


def _source_envvars(server_root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Debian's variables as ``ROOT/envvars`` sets them (sourced by ``sh``, as ``apache2ctl`` does)."""
    envvars = server_root / "envvars"
    if not envvars.is_file():
        return {}
    script = '. "$1" >/dev/null 2>&1; exec env -0'
    try:
        result = subprocess.run(["/bin/sh", "-c", script, "sh", str(envvars)], capture_output=True, timeout=10,
                                check=False, env={**env, "APACHE_CONFDIR": str(server_root)})
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MisconfigurationError(f"cannot read {envvars}: {err}", hint="check the file") from err
    found = {}
    for item in result.stdout.decode(errors="replace").split("\0"):
        name, _, value = item.partition("=")
        if name in _ENV_NAMES and value:
            found[name] = value
    return found


def _words(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    lines = [line for line in lines if "AH00558" not in line and not line.startswith("Action '")]
    return " / ".join(lines[-4:]) or f"exit status {result.returncode}"


# --- modules, the Debian way -------------------------------------------------------------------------


def module_links(server_root: Path, module: str, loaded: set[str]) -> dict[Path, Link]:
    """The ``mods-enabled`` symlinks that enable ``module`` (``"ssl"``) and what it depends on.

    Modules in ``loaded`` (``ssl_module``, from :meth:`Apache.loaded_modules`) and links already in
    place are skipped. Raises :class:`MisconfigurationError` when the root has no Debian module
    layout or no ``mods-available/<module>.load``.
    """
    available, enabled = server_root / "mods-available", server_root / "mods-enabled"
    links: dict[Path, Link] = {}

    def enable(name: str, chain: tuple[str, ...]) -> None:
        if f"{name}_module" in loaded or name in chain:
            return
        load = available / f"{name}.load"
        if not load.is_file():
            raise MisconfigurationError(
                f"cannot enable mod_{name}: {load} does not exist",
                hint=f"install the module, or load it yourself (LoadModule {name}_module ...) and run again")
        for dependency in _DEPENDS.findall(load.read_text(errors="replace")):
            for item in dependency.split():
                enable(item, (*chain, name))
        for suffix in (".load", ".conf"):
            source = available / f"{name}{suffix}"
            link = enabled / f"{name}{suffix}"
            if source.is_file() and not (link.is_symlink() or link.exists()):
                links[link] = Link(f"../mods-available/{name}{suffix}")

    if not available.is_dir():
        raise MisconfigurationError(f"{server_root} has no mods-available folder to enable mod_{module} from",
                                    hint=f"load mod_{module} in the Apache configuration yourself, then run again")
    enable(module, ())
    return links


# --- checks of what is served ----------------------------------------------------------------------


def wait_until(check: Callable[[], str | None], deadline: float, what: str) -> None:
    """:func:`letsencrypt.plugin_api.probes.wait_until`, its error pointing at Apache's error log."""
    probes.wait_until(check, deadline, what, hint="see Apache's error log")
