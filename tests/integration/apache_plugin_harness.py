"""A real apache2 with its own server root, for the Apache plugin's integration tests.

- ``world_readable_dir()``: a scratch directory outside pytest's 0700 temporary tree, so that the
  server's children (www-data, since the tests run as root) can read document roots and the
  challenge files the plugin writes under the client's work directory.
- ``make_server_root(base, http_port, https_port)``: a Debian-shaped root (``apache2.conf``,
  ``mods-available``/``mods-enabled`` and ``conf-*`` copied from the installed package, an ``envvars``
  pointing into the root, a ``ports.conf`` on loopback with the https ``Listen`` inside
  ``<IfModule ssl_module>`` as Debian ships it) and empty ``sites-available``/``sites-enabled``.
- ``ApacheServer``: starts ``apache2 -d ROOT -f apache2.conf -D FOREGROUND`` (the command the plugin
  itself uses for a test root), waits until it answers, stops it by pid.

Loopback only: every ``Listen`` names 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from integration._procs import LOOPBACK, ManagedProcess, StartupError
from plugins.apache.control import Apache, HttpAnswer, http_get, module_links, served_leaf

DEBIAN = Path("/etc/apache2")


@contextlib.contextmanager
def world_readable_dir(prefix: str = "le-apache-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_server_root(base: Path, http_port: int, https_port: int) -> Path:
    root = base / "apache2"
    root.mkdir()
    for name in ("apache2.conf", "magic"):
        shutil.copy2(DEBIAN / name, root / name)
    for folder in ("mods-available", "conf-available"):
        shutil.copytree(DEBIAN / folder, root / folder, symlinks=True)
    for folder in ("mods-enabled", "conf-enabled"):
        (root / folder).mkdir()
        for link in (DEBIAN / folder).iterdir():
            (root / folder / link.name).symlink_to(os.readlink(link))
    (root / "sites-available").mkdir()
    (root / "sites-enabled").mkdir()
    (root / "envvars").write_text(textwrap.dedent(f"""\
        # envvars of a test instance: everything inside {root}
        unset HOME
        export APACHE_RUN_USER=www-data
        export APACHE_RUN_GROUP=www-data
        export APACHE_PID_FILE={root}/run/apache2.pid
        export APACHE_RUN_DIR={root}/run
        export APACHE_LOCK_DIR={root}/lock
        export APACHE_LOG_DIR={root}/logs
        export LANG=C
        """))
    (root / "ports.conf").write_text(textwrap.dedent(f"""\
        # Loopback only (tests)
        Listen {LOOPBACK}:{http_port}

        <IfModule ssl_module>
        \tListen {LOOPBACK}:{https_port}
        </IfModule>
        """))
    (root / "conf-available" / "test-www.conf").write_text(textwrap.dedent(f"""\
        ServerName localhost
        <Directory {base}/www/>
        \tRequire all granted
        </Directory>
        """))
    (root / "conf-enabled" / "test-www.conf").symlink_to("../conf-available/test-www.conf")
    return root


def add_site(root: Path, name: str, text: str, *, enable: bool = True) -> Path:
    """Write ``sites-available/<name>`` and link it from ``sites-enabled`` (as a2ensite does)."""
    path = root / "sites-available" / name
    path.write_text(text)
    if enable:
        (root / "sites-enabled" / name).symlink_to(f"../sites-available/{name}")
    return path


def enable_module(root: Path, name: str) -> None:
    """Link ``mods-enabled`` to a module (and what it depends on), as ``a2enmod`` does."""
    for link, target in module_links(root, name, loaded=set()).items():
        link.symlink_to(target.target)


def docroot(base: Path, site: str, body: str | None = None) -> Path:
    path = base / "www" / site
    path.mkdir(parents=True, exist_ok=True)
    (path / "index.html").write_text(body if body is not None else f"site {site}\n")
    return path


def snapshot(root: Path) -> dict[str, object]:
    """Every path under ``root`` except run-time state: file bytes and modes, link targets, folders."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if key.split("/")[0] in ("run", "lock", "logs"):
            continue
        if path.is_symlink():
            found[key] = ("link", os.readlink(path))
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return found


class ApacheServer:
    """apache2 in the foreground on a test root, driven like the plugin drives it."""

    def __init__(self, root: Path, http_port: int, https_port: int) -> None:
        self.root = root
        self.http_port = http_port
        self.https_port = https_port
        self.apache = Apache("apache2ctl", root)
        self.process: ManagedProcess | None = None

    def start(self, deadline: float = 10.0) -> None:
        env = self.apache.environment()
        for name in ("APACHE_RUN_DIR", "APACHE_LOCK_DIR", "APACHE_LOG_DIR"):
            Path(env[name]).mkdir(parents=True, exist_ok=True)
        log = Path(env["APACHE_LOG_DIR"]) / "foreground.log"
        self.process = ManagedProcess(self.apache.command("-D", "FOREGROUND"), log, env=env)
        end = time.monotonic() + deadline
        while True:
            if self.process.poll() is not None:
                raise StartupError(f"apache2 exited: {self.process.describe()}\n{self.error_log()}")
            with contextlib.suppress(OSError):
                http_get(LOOPBACK, self.http_port, "localhost", "/", timeout=0.5)
                if self.apache.pid_file.is_file():
                    return
            if time.monotonic() > end:
                raise StartupError(f"apache2 never answered: {self.process.describe()}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def error_log(self) -> str:
        log = Path(self.apache.environment()["APACHE_LOG_DIR"]) / "error.log"
        return log.read_text(errors="replace") if log.is_file() else ""

    def get(self, host: str, path: str = "/", *, tls: bool = False, port: int | None = None) -> HttpAnswer:
        chosen = port if port is not None else (self.https_port if tls else self.http_port)
        return http_get(LOOPBACK, chosen, host, path, tls=tls)

    def leaf(self, host: str) -> bytes:
        return served_leaf(LOOPBACK, self.https_port, host)

    def __enter__(self) -> ApacheServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kill_by_pid_file(apache: Apache) -> None:
    """Stop a daemonised apache2 (one started with ``-k start``) by the pid in its pid file."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(apache.pid_file.read_text().strip()), signal.SIGTERM)
