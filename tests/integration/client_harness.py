"""Run the real ``letsencrypt`` command as a user types it, and check what it leaves on disk.

- ``ClientRunner(root, ca)``: ``run(*args)`` starts ``python -m letsencrypt ARGS`` as a subprocess with
  ``--config-dir/--work-dir/--logs-dir`` under ``root``, ``--server`` and ``--server-ca-bundle`` of
  ``ca``, and ``-n --agree-tos -m``; each of those can be left out (``server=False``, ``agree=False``,
  ``email=None``, ...), so tests can check what happens without them. Returns the
  ``CompletedProcess`` (text), never raises on a non-zero exit unless ``check=True``.
- ``check_lineage(...)``: the live files exist, are one version, the certificate matches the key,
  the key is 0600 and ``openssl verify`` accepts the full chain against the CA's root.
- ``ServedRoots``: an HTTP server on the CA's http-01 port that serves, per ``Host``, a directory
  (what a web server does for ``--webroot``).
- ``ClientRunner.renewal_config(name)``: a lineage's ``renewal/NAME.conf``, read by the client's parser.

Loopback only; the CA is anything with ``directory_url``, ``ca_bundle``, ``http_port``, ``tls_port``
and ``roots_pem()`` (``letsencrypt.testing.CAStub`` and ``integration.pebble_harness.Pebble``).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from letsencrypt.storage import renewal_config
from letsencrypt.storage.renewal_config import RenewalConfig
from letsencrypt.testing.client import (  # describe: imported from here by the tests
    AcmeTestServer,
    LetsencryptCli,
    describe,
)

REPO = Path(__file__).resolve().parents[2]
EMAIL = "admin@example.com"
KINDS = ("cert", "chain", "fullchain", "privkey")
RUN_TIMEOUT = 90.0


class CA(AcmeTestServer, Protocol):
    """What the runner needs of a running CA (ca_stub or Pebble): what ``LetsencryptCli`` needs, and
    its roots."""

    def roots_pem(self, index: int = 0) -> str: ...


class ClientFailed(AssertionError):
    """A ``check=True`` run exited non-zero; the message carries its output."""


class ClientRunner:
    """``letsencrypt`` subprocesses sharing one config/work/logs directory under ``root``."""

    def __init__(self, root: Path, ca: CA, *, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.ca = ca
        self.config_dir = root / "config"
        self.work_dir = root / "work"
        self.logs_dir = root / "logs"
        self.env = dict(env or {})

    def argv(self, args: Sequence[str], *, server: bool = True, bundle: bool = True, agree: bool = True,
             email: str | None = EMAIL, non_interactive: bool = True, dirs: bool = True) -> list[str]:
        argv = [sys.executable, "-m", "letsencrypt", *args]
        if dirs:
            argv += ["--config-dir", str(self.config_dir), "--work-dir", str(self.work_dir),
                     "--logs-dir", str(self.logs_dir)]
        if server:
            argv += ["--server", self.ca.directory_url]
        if bundle:
            argv += ["--server-ca-bundle", self.ca.ca_bundle]
        if non_interactive:
            argv.append("-n")
        if agree:
            argv.append("--agree-tos")
        if email is not None:
            argv += ["-m", email]
        return argv

    def environment(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """``LetsencryptCli.environment`` (the parent's environment without CA-bundle and
        ``LETSENCRYPT_*`` variables, plus ``self.env`` and ``extra``, where None removes a variable),
        with this tree first on ``PYTHONPATH``."""
        env = LetsencryptCli(self.ca, self.root, env=self.env).environment(extra)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def run(self, *args: str, env: Mapping[str, str | None] | None = None, check: bool = False,
            timeout: float = RUN_TIMEOUT, server: bool = True, bundle: bool = True, agree: bool = True,
            email: str | None = EMAIL, non_interactive: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``letsencrypt ARGS`` (stdin closed, so never a terminal) and wait for it."""
        argv = self.argv(args, server=server, bundle=bundle, agree=agree, email=email,
                         non_interactive=non_interactive)
        result = subprocess.run(argv, env=self.environment(env), capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, cwd=self.root if self.root.is_dir() else None,
                                check=False)
        if check and result.returncode != 0:
            raise ClientFailed(describe(result))
        return result

    def popen(self, *args: str, env: Mapping[str, str | None] | None = None) -> subprocess.Popen[str]:
        """Start ``letsencrypt ARGS`` without waiting (stdout and stderr piped)."""
        return subprocess.Popen(self.argv(args), env=self.environment(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # --- lineage files ---------------------------------------------------------------------------

    def live(self, name: str) -> Path:
        return self.config_dir / "live" / name

    def archive(self, name: str) -> Path:
        return self.config_dir / "archive" / name

    def renewal_conf_path(self, name: str) -> Path:
        return self.config_dir / "renewal" / f"{name}.conf"

    def renewal_config(self, name: str) -> RenewalConfig:
        """The lineage's renewal configuration, read by the client's own parser."""
        return renewal_config.load(self.renewal_conf_path(name))

    def archive_files(self, name: str) -> set[str]:
        return {path.name for path in self.archive(name).iterdir() if not path.name.startswith(".")}

    def check_lineage(self, name: str, names: Sequence[str] | None = None) -> x509.Certificate:
        return check_lineage(self.live(name), self.ca.roots_pem(), self.root / "openssl", names)


def lineage_version(live: Path) -> int:
    """The one archive version all four live files point at (AssertionError if they disagree)."""
    versions = set()
    for kind in KINDS:
        target = Path(os.path.realpath(live / f"{kind}.pem")).name
        assert target.startswith(kind) and target.endswith(".pem"), f"{live}/{kind}.pem -> {target}"
        versions.add(int(target[len(kind):-len(".pem")]))
    assert len(versions) == 1, f"live files of {live} point at versions {sorted(versions)}"
    return versions.pop()


def _spki(key: object) -> bytes:
    der: bytes = key.public_bytes(  # type: ignore[attr-defined]  # any cryptography public key
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def check_lineage(live: Path, root_pem: str, scratch: Path, names: Sequence[str] | None = None) -> x509.Certificate:
    """Assert ``live`` is a usable lineage; returns its certificate.

    All four files exist and point at one archive version; ``privkey.pem`` is 0600 and matches the
    certificate; ``fullchain`` is ``cert`` + ``chain``; ``openssl verify`` accepts the certificate
    with the chain as untrusted intermediates and the CA's root as the only trust anchor; the
    certificate names ``names`` (when given).
    """
    for kind in KINDS:
        assert (live / f"{kind}.pem").is_file(), f"{live}/{kind}.pem is missing"
    lineage_version(live)
    key_path = live / "privkey.pem"
    mode = stat.S_IMODE(os.stat(os.path.realpath(key_path)).st_mode)
    assert mode == 0o600, f"{key_path} has mode {mode:o}"
    cert_pem = (live / "cert.pem").read_bytes()
    chain_pem = (live / "chain.pem").read_bytes()
    assert (live / "fullchain.pem").read_bytes() == cert_pem + chain_pem
    certificate = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert _spki(key.public_key()) == _spki(certificate.public_key()), f"{live}: certificate does not match key"
    scratch.mkdir(parents=True, exist_ok=True)
    root_file = scratch / "root.pem"
    root_file.write_text(root_pem)
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(root_file), "-untrusted", str(live / "chain.pem"),
         str(live / "cert.pem")], capture_output=True, text=True, check=False, timeout=30)
    assert verify.returncode == 0, f"openssl verify failed for {live}: {verify.stdout}{verify.stderr}"
    if names is not None:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(names)
    return certificate


# --- a web server for --webroot and manual http-01 ----------------------------------------------------


class _RootsHandler(http.server.BaseHTTPRequestHandler):
    server: _RootsServer

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        root = self.server.roots.get(host) or self.server.roots.get("*")
        self.server.requests.append((host, self.path))
        target = None if root is None else (root / self.path.lstrip("/").split("?")[0]).resolve()
        if target is None or root is None or not target.is_relative_to(root.resolve()) or not target.is_file():
            self.send_error(404)
            return
        body = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _RootsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, roots: Mapping[str, Path]) -> None:
        super().__init__(("127.0.0.1", port), _RootsHandler)
        self.roots = dict(roots)
        self.requests: list[tuple[str, str]] = []


@contextlib.contextmanager
def served_roots(port: int, roots: Mapping[str, Path]) -> Iterator[_RootsServer]:
    """Serve ``roots`` (Host name -> directory; ``"*"`` for any other name) on 127.0.0.1:``port``."""
    server = _RootsServer(port, roots)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
