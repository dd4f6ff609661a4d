"""Real third-party ACME clients (certbot, lego) and the checks around them, for the interop suite.

- ``Certbot``: certbot from PyPI in its own virtualenv (``.venv-certbot``, made by
  ``scripts/setup.sh``), with its config, work and logs directories in a temporary directory and
  ``REQUESTS_CA_BUNDLE`` naming the CA's API trust anchor (never ``--no-verify-ssl``).
- ``Lego``: Debian's ``lego`` with ``LEGO_CA_CERTIFICATES`` naming the same trust anchor.
- ``webroot_server()``: a small HTTP server that serves a directory, as a web server would serve
  certbot's webroot, and records what was fetched.
- ``openssl_verify()``, ``openssl_ocsp()``, ``ocsp_post()``: chain and revocation checks with the
  ``openssl`` CLI and, for OCSP over verified HTTPS, requests + cryptography.
- ``issued_names()``, ``authorization_rows()``: read the CA's SQLite database read-only, to show
  what it really issued.

Everything here talks to loopback only; programs run with a timeout and are never left running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.server
import json
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from letsencrypt.acme import crypto
from letsencrypt.testing.ca_stub import CAStub

from ._procs import require_binary, skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[2]
CERTBOT = REPO_ROOT / ".venv-certbot" / "bin" / "certbot"
COMMAND_TIMEOUT = 120.0  # one certbot or lego command; each normally takes 1-6 s


def require_certbot() -> Path:
    """The certbot of ``.venv-certbot``; skip when missing (fail under CI, which installs it)."""
    if not (CERTBOT.is_file() and os.access(CERTBOT, os.X_OK)):
        skip_or_fail(f"needs certbot in {CERTBOT.parent.parent} (run scripts/setup.sh): it is missing")
    return CERTBOT


def require_lego() -> str:
    return require_binary("lego", "lego")


def _run(argv: Sequence[str], env: Mapping[str, str], *, check: bool) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv), env=dict(env), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT, check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def _client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    env.update(extra)
    return env


@dataclasses.dataclass(frozen=True)
class Certbot:
    """certbot against one CA, with every directory of its own under ``home``."""

    executable: Path
    ca: CAStub
    home: Path
    email: str = "certbot@example.com"

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    def live(self, name: str) -> Path:
        return self.config_dir / "live" / name

    def renewal_conf(self, name: str) -> Path:
        return self.config_dir / "renewal" / f"{name}.conf"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``certbot ARGS`` with the common flags: directories in ``home``, non-interactive, our server."""
        argv = [
            str(self.executable), *args,
            "--config-dir", str(self.config_dir),
            "--work-dir", str(self.home / "work"),
            "--logs-dir", str(self.home / "logs"),
            "--non-interactive",
            "--server", self.ca.directory_url,
        ]
        env = _client_env(REQUESTS_CA_BUNDLE=self.ca.ca_bundle, XDG_CONFIG_HOME=str(self.home / "xdg"))
        return _run(argv, env, check=check)

    def register(self) -> subprocess.CompletedProcess[str]:
        return self.run("register", "--agree-tos", "-m", self.email)

    def certonly(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("certonly", "--agree-tos", "-m", self.email, *args, check=check)


@dataclasses.dataclass(frozen=True)
class Lego:
    """lego against one CA, keeping its accounts and certificates under ``path``."""

    executable: str
    ca: CAStub
    path: Path
    email: str = "x@example.com"

    def crt(self, name: str) -> Path:
        """The certificate bundle lego writes for ``name``: leaf, then the issuer chain."""
        return self.path / "certificates" / f"{name}.crt"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``lego --server DIR --email ... --accept-tos --path PATH ARGS``; global flags first."""
        argv = [
            self.executable, "--server", self.ca.directory_url, "--email", self.email,
            "--accept-tos", "--path", str(self.path), *args,
        ]
        return _run(argv, _client_env(LEGO_CA_CERTIFICATES=self.ca.ca_bundle), check=check)


@contextlib.contextmanager
def webroot_server(port: int, root: Path) -> Iterator[list[str]]:
    """Serve ``root`` on 127.0.0.1:port until the block ends; yield the paths answered with 200."""
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if str(code) == "200":
                served.append(self.path)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- certificates and chains -------------------------------------------------------------------


def load_chain(path: Path) -> list[x509.Certificate]:
    return crypto.split_pem_chain(path.read_text())


def serial_of(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def common_name(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def dns_names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


def ocsp_url(cert: x509.Certificate) -> str:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return next(str(d.access_location.value) for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP)


def _pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def openssl_verify(chain: Sequence[x509.Certificate], root_pem: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """``openssl verify -purpose sslserver`` of ``chain[0]`` with ``chain[1:]`` untrusted, ``root_pem`` trusted."""
    tmp.mkdir(parents=True, exist_ok=True)
    root, untrusted, leaf = tmp / "root.pem", tmp / "untrusted.pem", tmp / "leaf.pem"
    root.write_text(root_pem)
    untrusted.write_bytes(_pem(chain[1:]))
    leaf.write_bytes(_pem(chain[:1]))
    argv = ["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(root)]
    if len(chain) > 1:
        argv += ["-untrusted", str(untrusted)]
    return subprocess.run([*argv, str(leaf)], capture_output=True, text=True, timeout=30, check=False)


def assert_verifies(chain: Sequence[x509.Certificate], root_pem: str, tmp: Path) -> None:
    result = openssl_verify(chain, root_pem, tmp)
    assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr


def assert_does_not_verify(chain: Sequence[x509.Certificate], root_pem: str, tmp: Path) -> None:
    result = openssl_verify(chain, root_pem, tmp)
    assert result.returncode != 0, f"expected a verification failure:\n{result.stdout}{result.stderr}"


# --- revocation --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpensslOcsp:
    status: str  # "good", "revoked" or "unknown"
    reason: str | None  # e.g. "keyCompromise"
    output: str


def openssl_ocsp(cert: x509.Certificate, issuer: x509.Certificate, root_pem: str, tmp: Path) -> OpensslOcsp:
    """``openssl ocsp`` against the URL in the certificate (ca_stub's HTTPS OCSP responder).

    The response's signature is verified against ``root_pem`` (``-CAfile``). OpenSSL 3.0's
    ``ocsp`` command connects over TLS without checking the responder's server certificate, so
    ``ocsp_post`` repeats the query with that check.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "ocsp-cert.pem").write_bytes(_pem([cert]))
    (tmp / "ocsp-issuer.pem").write_bytes(_pem([issuer]))
    (tmp / "ocsp-root.pem").write_text(root_pem)
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(tmp / "ocsp-issuer.pem"), "-cert", str(tmp / "ocsp-cert.pem"),
         "-url", ocsp_url(cert), "-CAfile", str(tmp / "ocsp-root.pem"), "-timeout", "20"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Response verify OK" in output, output
    status_line = next(line for line in result.stdout.splitlines() if line.startswith(str(tmp / "ocsp-cert.pem")))
    reason = next((line.split(":", 1)[1].strip() for line in result.stdout.splitlines()
                   if line.strip().startswith("Reason:")), None)
    return OpensslOcsp(status_line.rsplit(":", 1)[1].strip(), reason, output)


def ocsp_post(cert: x509.Certificate, issuer: x509.Certificate, *, verify: str) -> ocsp.OCSPResponse:
    """POST a DER OCSP request (RFC 6960 A.1) to the certificate's responder over verified HTTPS.

    Checks the response is signed by ``issuer`` (ca_stub signs directly, no delegated responder).
    """
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303 - RFC 5019: CertID uses SHA-1
    response = requests.post(
        ocsp_url(cert), data=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"}, verify=verify, timeout=10,
    )
    assert response.status_code == 200, response.text[:300]
    assert response.headers.get("Content-Type") == "application/ocsp-response"
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    key, algorithm = issuer.public_key(), parsed.signature_hash_algorithm
    assert algorithm is not None
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(algorithm))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(parsed.signature, parsed.tbs_response_bytes, padding.PKCS1v15(), algorithm)
    return parsed


# --- what the CA stored ------------------------------------------------------------------------


def _read_only(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{(data_dir / 'ca.sqlite').as_uri()}?mode=ro", uri=True, timeout=10)


def issued_names(data_dir: Path) -> set[str]:
    """Every identifier value of every certificate in the CA's database (opened read-only)."""
    with contextlib.closing(_read_only(data_dir)) as conn:
        rows = conn.execute("SELECT identifiers FROM certificates").fetchall()
    return {identifier["value"] for (text,) in rows for identifier in json.loads(text)}


def authorization_rows(data_dir: Path, name: str) -> list[dict[str, Any]]:
    """The CA's authorizations for ``name``: status, and each challenge's type, status and error."""
    with contextlib.closing(_read_only(data_dir)) as conn:
        authorizations = conn.execute(
            "SELECT id, status FROM authorizations WHERE identifier_value = ? ORDER BY id", (name,)
        ).fetchall()
        rows = []
        for authz_id, status in authorizations:
            found = conn.execute(
                "SELECT type, status, error FROM challenges WHERE authorization_id = ? ORDER BY id", (authz_id,)
            ).fetchall()
            rows.append({
                "status": status,
                "challenges": [
                    {"type": kind, "status": c_status, "error": json.loads(error) if error else None}
                    for kind, c_status, error in found
                ],
            })
    return rows
