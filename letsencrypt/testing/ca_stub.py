"""Run a throwaway ``ca_stub`` on loopback for tests: ``run_ca_stub(workdir) -> CAStub``.

The CA runs as its own process (``python -m ca_stub serve``), exactly as a user starts it, so a
test talks to it only over the network: the ACME API on HTTPS with a trust anchor made for the
run (``ca_bundle``), the Pebble-compatible management API on plain HTTP. Every name resolves to
127.0.0.1 (``--resolve-all``), and the CA validates on ``http_port``/``tls_port``, free ports a
test binds its challenge responders (or the authenticator under test) on.

The client never imports ca_stub (DESIGN.md §1); this module only starts it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

__all__ = ["CAStub", "StartupError", "free_port", "run_ca_stub"]

LOOPBACK = "127.0.0.1"
STARTUP_DEADLINE = 60.0  # the first start runs the key ceremony (RSA 4096 root: ~1 s, rarely 4 s)


class StartupError(RuntimeError):
    """ca_stub did not come up; the message carries the end of its log."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True)
class CAStub:
    """A running ca_stub process."""

    directory_url: str
    ca_bundle: str  # trust anchor of the API's TLS certificate (pass as verify= / REQUESTS_CA_BUNDLE)
    management_url: str
    http_port: int  # where the CA connects for http-01
    tls_port: int  # where the CA connects for tls-alpn-01, simpleHttps and dvsni
    data_dir: Path
    log_path: Path
    pid: int

    def roots_pem(self, index: int = 0) -> str:
        """Root certificate ``index`` (0: the default hierarchy, 1: the alternate one)."""
        return self._get(f"/roots/{index}").text

    def intermediates_pem(self, index: int = 0) -> str:
        return self._get(f"/intermediates/{index}").text

    def certificate_status(self, serial: str) -> dict[str, Any]:
        """Pebble's ``/cert-status-by-serial`` answer: ``Status`` is "Valid" or "Revoked"."""
        status: dict[str, Any] = self._get(f"/cert-status-by-serial/{serial}").json()
        return status

    def _get(self, path: str) -> requests.Response:
        response = requests.get(self.management_url + path, timeout=10)
        response.raise_for_status()
        return response

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)


def _wait_ready(process: subprocess.Popen[bytes], url: str, bundle: Path, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartupError(f"ca_stub exited with {process.returncode}:\n{_tail(log)}")
        if bundle.exists():
            try:
                if requests.get(url, verify=str(bundle), timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
        time.sleep(0.05)
    raise StartupError(f"ca_stub did not answer {url} within {STARTUP_DEADLINE:g} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def run_ca_stub(
    workdir: Path,
    *,
    data_dir: Path | None = None,
    http_port: int | None = None,
    tls_port: int | None = None,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> Iterator[CAStub]:
    """Start ``ca-stub serve`` with its files under ``workdir``; stop it (by pid) on exit.

    ``data_dir`` defaults to ``workdir/ca``; pass the same one again to restart on the same state.
    ``extra_args`` go to ``serve`` as they are (e.g. ``["--bad-nonce-rate", "5"]``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or workdir / "ca"
    api_port, management_port = free_port(), free_port()
    http_port = http_port or free_port()
    tls_port = tls_port or free_port()
    argv = [
        python, "-m", "ca_stub", "serve",
        "--data-dir", str(data_dir),
        "--listen", f"{LOOPBACK}:{api_port}",
        "--management", f"{LOOPBACK}:{management_port}",
        "--http-port", str(http_port),
        "--tls-port", str(tls_port),
        "--resolve-all", LOOPBACK,
        *extra_args,
    ]
    log_path = workdir / f"ca_stub-{api_port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        directory_url = f"https://{LOOPBACK}:{api_port}/directory"
        bundle = data_dir / "api-root.pem"
        _wait_ready(process, directory_url, bundle, log_path)
        yield CAStub(
            directory_url=directory_url,
            ca_bundle=str(bundle),
            management_url=f"http://{LOOPBACK}:{management_port}",
            http_port=http_port,
            tls_port=tls_port,
            data_dir=data_dir,
            log_path=log_path,
            pid=process.pid,
        )
    finally:
        _stop(process)
