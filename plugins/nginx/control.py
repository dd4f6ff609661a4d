"""Driving the nginx binary: configuration test, reload, and checking that a reload took effect.

Role: the only module that runs ``nginx`` or signals it. :class:`Nginx` knows the binary
(``--nginx-ctl``) and the server root (``--nginx-server-root``); when the server root is the
directory of nginx's compiled-in configuration file the commands use nginx's own defaults, otherwise
they pass ``-p <server root>/ -c <server root>/nginx.conf`` so that a test root is driven exactly as
the nginx started with those flags.

A reload is not a sleep: :meth:`Nginx.reload` signals the master (``nginx -s reload``, which reads the
configuration's pid file), then watches the master's children until a worker of the new generation
exists (the master starts new workers only once it has loaded the new configuration) and every
worker of the old one has stopped accepting connections (it retitles itself "is shutting down"),
failing fast when the error log shows the master refusing the configuration. Checks of what is served are in ``probes``.

Allowed imports: the standard library, ``letsencrypt.plugin_api`` and this package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from letsencrypt.plugin_api import MisconfigurationError, PluginError
from letsencrypt.plugin_api.probes import children, process_exists

from .probes import wait_until

__all__ = ["BuildInfo", "Nginx", "NginxNotRunning", "build_info"]

logger = logging.getLogger(__name__)

RELOAD_DEADLINE = 10.0
"""Seconds to wait for the master to start workers with a new configuration."""
COMMAND_TIMEOUT = 60.0
_FAILED_OPEN = re.compile(r'open\(\) "([^"]+)" failed \((\d+): ')
_ERROR_LINE = re.compile(rb"\[(emerg|alert|crit)\] (\d+)#\d+: (.*)")


class NginxNotRunning(PluginError):
    """The configuration names a pid file but no nginx master runs with that pid."""


@dataclasses.dataclass(frozen=True, slots=True)
class BuildInfo:
    """What ``nginx -V`` says about the compiled-in paths."""

    version: str
    prefix: Path
    conf_path: Path
    pid_path: Path
    error_log_path: str


@functools.cache
def build_info(ctl: str) -> BuildInfo:
    """Run ``<ctl> -V`` once per binary; raise :class:`MisconfigurationError` if it cannot run."""
    try:
        result = subprocess.run([ctl, "-V"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MisconfigurationError(f"cannot run the nginx binary {ctl!r}: {err}",
                                    hint="install nginx or give its path with --nginx-ctl") from err
    text = result.stderr + result.stdout
    if result.returncode != 0 or "nginx version" not in text:
        raise MisconfigurationError(f"{ctl} -V failed: {text.strip()[-300:]}",
                                    hint="give the nginx binary with --nginx-ctl")
    found = dict(re.findall(r"--([a-z-]+)=(\S+)", text))
    version = re.search(r"nginx/(\S+)", text)
    prefix = Path(found.get("prefix", "/usr/local/nginx"))

    def full(value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else prefix / path

    return BuildInfo(
        version=version.group(1) if version else "unknown", prefix=prefix,
        conf_path=full(found.get("conf-path", "conf/nginx.conf")),
        pid_path=full(found.get("pid-path", "logs/nginx.pid")),
        error_log_path=found.get("error-log-path", "logs/error.log"),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Nginx:
    """One nginx installation: the binary and the server root whose ``nginx.conf`` it runs."""

    ctl: str
    server_root: Path

    @property
    def info(self) -> BuildInfo:
        return build_info(self.ctl)

    @property
    def uses_defaults(self) -> bool:
        """True when the server root is where nginx looks anyway (its compiled-in configuration folder)."""
        return self.server_root.resolve() == self.info.conf_path.parent.resolve()

    @property
    def main_config(self) -> Path:
        return self.info.conf_path if self.uses_defaults else self.server_root / "nginx.conf"

    @property
    def prefix(self) -> Path:
        """Where nginx resolves relative paths other than ``include`` (``-p``)."""
        return self.info.prefix if self.uses_defaults else self.server_root

    def base_args(self, config: Path | None = None) -> list[str]:
        args = [self.ctl]
        if not self.uses_defaults:
            args += ["-p", f"{self.server_root}/"]
        if config is not None or not self.uses_defaults:
            args += ["-c", str(config or self.main_config)]
        return args

    def resolve(self, value: str) -> Path:
        """A path argument as nginx resolves it against the prefix (pid, error_log)."""
        path = Path(value)
        return path if path.is_absolute() else self.prefix / path

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(list(args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise MisconfigurationError(f"cannot run {' '.join(args)}: {err}",
                                        hint="check --nginx-ctl") from err

    # --- configuration test --------------------------------------------------------------------

    def config_test(self, *, pid_path: Path, pid_free_copy: Callable[[], bytes] | None = None) -> None:
        """``nginx -t``; raise :class:`MisconfigurationError` with nginx's own words if it fails.

        ``nginx -t`` creates the pid file to test it; a test root whose ``pid`` names a place we
        cannot write (``/run`` for a non-root user, a missing folder) would fail on that alone. Then
        the test is run again with the pid moved to a scratch file: with ``-g 'pid ...;'`` when the
        configuration has no ``pid`` directive (``pid_free_copy`` is None), else on
        ``pid_free_copy()``, the main file without its ``pid``, written beside it (so relative
        includes resolve alike) and removed afterwards.
        """
        result = self._run([*self.base_args(), "-t", "-q"])
        if result.returncode == 0:
            return
        failed = _FAILED_OPEN.search(result.stderr)
        if failed and Path(failed.group(1)) == pid_path:
            logger.info("nginx -t cannot write the pid file %s; testing with a scratch pid file", pid_path)
            result = self._test_with_scratch_pid(pid_free_copy)
            if result.returncode == 0:
                return
        raise MisconfigurationError(
            f"nginx rejects the configuration {self.main_config}: {_nginx_words(result)}",
            hint="fix the file named above; `nginx -t` shows the same error",
        )

    def _test_with_scratch_pid(self, pid_free_copy: Callable[[], bytes] | None) -> subprocess.CompletedProcess[str]:
        scratch = self.main_config.with_name(f".letsencrypt-test-{os.getpid()}")
        pid_arg = ["-g", f"pid {scratch}.pid;"]
        if pid_free_copy is None:
            return self._run([*self.base_args(), "-t", "-q", *pid_arg])
        config = scratch.with_suffix(".conf")
        try:
            config.write_bytes(pid_free_copy())
            return self._run([*self.base_args(config), "-t", "-q", *pid_arg])
        finally:
            for leftover in (config, Path(f"{scratch}.pid")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    # --- reload --------------------------------------------------------------------------------

    def master_pid(self, pid_path: Path) -> int:
        """The running master's pid from ``pid_path``; :class:`NginxNotRunning` if there is none."""
        hint = f"start nginx ({' '.join(self.base_args())}), then run the command again"
        try:
            text = pid_path.read_text().strip()
        except FileNotFoundError as err:
            raise NginxNotRunning(f"nginx is not running: its pid file {pid_path} does not exist", hint=hint) from err
        except OSError as err:
            raise NginxNotRunning(f"cannot read nginx's pid file {pid_path}: {err}", hint=hint) from err
        if not text.isdigit():
            raise NginxNotRunning(f"nginx's pid file {pid_path} holds {text[:40]!r}, not a process id", hint=hint)
        pid = int(text)
        if not _is_nginx_master(pid):
            raise NginxNotRunning(f"nginx is not running: no nginx master has the pid {pid} in {pid_path}", hint=hint)
        return pid

    def reload(self, *, pid_path: Path, error_log: Path | None, deadline: float = RELOAD_DEADLINE,
               settle: bool = True) -> float:
        """Reload the running master and return once its new workers run the new configuration.

        With ``settle`` (the default) it also waits until no old worker accepts connections any more
        (about 100 ms: nginx's own hand-over), so that every later connection sees the new
        configuration; without it, it returns as soon as the master has taken the configuration.

        Returns the seconds taken. Raises :class:`NginxNotRunning` when no master runs, and
        :class:`MisconfigurationError` when nginx refuses the signal or the master does not take the
        new configuration (its error log line is quoted when readable) within ``deadline``.
        """
        started = time.monotonic()
        master = self.master_pid(pid_path)
        before = children(master)
        log_offset = _size(error_log)
        result = self._run([*self.base_args(), "-s", "reload"])
        if result.returncode != 0:
            raise MisconfigurationError(f"nginx -s reload failed: {_nginx_words(result)}",
                                        hint="fix the error named above; nginx keeps serving the old configuration")

        def applied() -> str | None:
            refused = _master_errors(error_log, log_offset, master)
            if refused:
                raise MisconfigurationError(
                    f"nginx did not take the new configuration: {refused}",
                    hint="nginx keeps serving the old configuration; fix the cause named above")
            now = children(master)
            if not now - before:
                if not _is_nginx_master(master):
                    raise NginxNotRunning(f"the nginx master (pid {master}) exited during the reload",
                                          hint="see nginx's error log")
                return f"the master (pid {master}) has started no new worker yet"
            accepting = sorted(pid for pid in before & now if _accepts(pid)) if settle else []
            if accepting:
                return f"old workers {accepting} still accept connections"
            return None

        wait_until(applied, deadline, "nginx to reload")
        took = time.monotonic() - started
        logger.info("nginx reloaded in %.3f s", took)
        return took


def _nginx_words(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    meaningful = [line for line in lines if "[emerg]" in line or "[alert]" in line or "[crit]" in line]
    return " / ".join(meaningful or lines[-3:]) or f"exit status {result.returncode}"


def _is_nginx_master(pid: int) -> bool:
    if not process_exists(pid):
        return False
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file as nginx -s does
    first = title.split(b"\0", 1)[0]
    return first.startswith(b"nginx: master") or Path(first.decode(errors="replace")).name.startswith("nginx")


def _accepts(pid: int) -> bool:
    """Whether ``pid`` is a worker still accepting connections with the old configuration.

    On a reload the master starts new workers, waits 100 ms, then tells the old ones to quit; each
    old worker then retitles itself "worker process is shutting down" and closes its listening
    sockets in the same step. Until then both generations accept, so a check that reaches a new
    worker proves nothing about the next connection.
    """
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False  # gone
    return b"worker process" in title and b"shutting down" not in title


def _size(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _master_errors(error_log: Path | None, offset: int, master: int) -> str | None:
    """The first emerg/alert/crit line the master wrote to ``error_log`` after ``offset``."""
    if error_log is None:
        return None
    try:
        with error_log.open("rb") as handle:
            handle.seek(offset)
            tail = handle.read(1 << 20)
    except OSError:
        return None
    for match in _ERROR_LINE.finditer(tail):
        if int(match.group(2)) == master:
            return f"[{match.group(1).decode()}] {match.group(3).decode(errors='replace').strip()}"
    return None
