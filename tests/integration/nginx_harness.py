"""A real nginx in a temporary server root, for the nginx plugin's integration tests.

``NginxServer(root, http_port, tls_port, sites)`` writes ``root/nginx.conf`` (pid file, error log,
``include conf.d/*.conf`` inside ``http``) and the site files, starts ``nginx -p ROOT/ -c
ROOT/nginx.conf -g 'daemon off;'`` as a :class:`~integration._procs.ManagedProcess` (stopped by
pid), and offers what the tests look at: the files' exact bytes (:meth:`snapshot`), a plain GET with
a ``Host`` header, and the certificate chain served for an SNI name.

Site texts may use ``{http}`` and ``{tls}`` for the ports. Everything listens on loopback only.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from integration._procs import LOOPBACK, ManagedProcess, StartupError
from plugins.nginx.probes import HttpAnswer, ServedChain, http_get, served_chain

NGINX = "nginx"
RUNTIME_FILES = frozenset({"nginx.pid", "error.log", "nginx.out"})

MAIN = """\
pid {root}/nginx.pid;
error_log {root}/error.log notice;
events {{
    worker_connections 128;
}}
http {{
    access_log off;
    default_type text/plain;
    include conf.d/*.conf;
}}
"""


class NginxServer:
    """nginx serving ``sites`` (relative path -> text) from a server root of its own."""

    def __init__(self, root: Path, http_port: int, tls_port: int, sites: Mapping[str, str],
                 *, main: str = MAIN) -> None:
        self.root = root
        self.http_port = http_port
        self.tls_port = tls_port
        root.mkdir(parents=True, exist_ok=True)
        (root / "conf.d").mkdir(exist_ok=True)
        (root / "nginx.conf").write_text(main.format(root=root, http=http_port, tls=tls_port))
        for name, text in sites.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("{http}", str(http_port)).replace("{tls}", str(tls_port)))
        self.process: ManagedProcess | None = None

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    def start(self) -> NginxServer:
        argv = [NGINX, "-p", f"{self.root}/", "-c", str(self.conf), "-g", "daemon off;"]
        self.process = ManagedProcess(argv, self.root / "nginx.out")
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise StartupError(f"nginx did not start: {self.process.describe()}")
            pid_file = self.root / "nginx.pid"
            if pid_file.exists() and pid_file.read_text().strip() == str(self.process.pid) and self._accepts():
                return self
            if time.monotonic() > deadline:
                raise StartupError(f"nginx did not listen on {self.http_port}: {self.process.describe()}")
            time.sleep(0.02)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.http_port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def snapshot(self) -> dict[str, bytes]:
        """Every configuration file under the root (not the pid file or logs), by relative path."""
        return {str(path.relative_to(self.root)): path.read_bytes() for path in sorted(self.root.rglob("*"))
                if path.is_file() and path.name not in RUNTIME_FILES}

    def get(self, name: str, path: str = "/", *, tls: bool = False, host: str = LOOPBACK) -> HttpAnswer:
        return http_get(host, self.tls_port if tls else self.http_port, name, path, tls=tls)

    def chain(self, name: str, *, host: str = LOOPBACK) -> ServedChain:
        return served_chain(host, self.tls_port, name)

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""
