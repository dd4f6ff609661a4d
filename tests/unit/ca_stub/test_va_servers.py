"""Real loopback servers for the VA tests (this module holds no tests itself).

- ``WebServer``: HTTP, or HTTPS with a throwaway self-signed certificate, on ``127.0.0.1``
  port 0, answering from a dict of path -> ``(status, headers, body)`` and recording each
  request's Host header.
- ``TlsServer``: completes TLS handshakes only, choosing certificate and ALPN by SNI, as a
  tls-alpn-01 or dvsni responder does.
- ``DnsServer``: a tiny UDP DNS server built on dnspython's message API, answering TXT and A
  from dicts and NXDOMAIN for any other name.

Each is a context manager that stops its thread and joins it on exit. ``request_for`` builds a
``ValidationRequest`` with a fresh account key.
"""

from __future__ import annotations

import datetime
import http.server
import secrets
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ca_stub.contracts import ValidationRequest
from letsencrypt.acme.challenges import ChallengeCertificate, key_authorization
from letsencrypt.acme.jws import AccountKey, b64encode
from letsencrypt.acme.messages import Identifier

Reply = tuple[int, Mapping[str, str], bytes]
LOOPBACK = "127.0.0.1"


def new_token() -> str:
    return b64encode(secrets.token_bytes(32))


def request_for(
    identifier: Identifier, challenge_type: str, *, account: AccountKey | None = None, token: str | None = None,
    challenge_id: int = 1, **extra: Any,
) -> ValidationRequest:
    account = account or AccountKey.generate("ec256")
    token = token or new_token()
    return ValidationRequest(
        challenge_id=challenge_id, authorization_id=challenge_id + 1000, identifier=identifier, type=challenge_type,
        token=token, key_authorization=key_authorization(token, account), account_jwk=account.jwk, **extra,
    )


def self_signed(name: str = "localhost") -> ChallengeCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ChallengeCertificate(certificate, key)


def server_context(certificate: ChallengeCertificate, directory: Path, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    directory.mkdir(parents=True, exist_ok=True)
    stem = secrets.token_hex(4)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(certificate.certificate_pem())
    key_path.write_bytes(certificate.private_key_pem())
    key_path.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


class _Background:
    """A thread running ``_serve`` until ``__exit__`` sets ``_stop`` and joins it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()

    def _close(self) -> None:
        pass


# --- HTTP(S) ----------------------------------------------------------------------------------


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = False
    request_queue_size = 128  # the default 5 drops concurrent connects (a 1 s SYN retry each)
    block_on_close = True
    routes: dict[str, Reply]
    hosts: list[str]
    hits: dict[str, int]
    lock: threading.Lock


class _HttpServer6(_HttpServer):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hosts.append(self.headers.get("Host", ""))
            self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        status, headers, body = self.server.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not here"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebServer(_Background):
    """An HTTP (or, with ``tls_directory``, HTTPS) server answering ``routes``."""

    def __init__(
        self, routes: Mapping[str, Reply] | None = None, tls_directory: Path | None = None, host: str = LOOPBACK
    ) -> None:
        super().__init__()
        self.httpd = (_HttpServer6 if ":" in host else _HttpServer)((host, 0), _Handler)
        self.httpd.routes = dict(routes or {})
        self.httpd.hosts = []
        self.httpd.hits = {}
        self.httpd.lock = threading.Lock()
        if tls_directory is not None:
            context = server_context(self_signed("example.com"), tls_directory)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]

    @property
    def routes(self) -> dict[str, Reply]:
        return self.httpd.routes

    @property
    def hosts(self) -> list[str]:
        return self.httpd.hosts

    def hits(self, path: str) -> int:
        return self.httpd.hits.get(path, 0)

    def _serve(self) -> None:
        self.httpd.serve_forever(poll_interval=0.05)

    def _close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- TLS handshakes only ----------------------------------------------------------------------


class TlsServer(_Background):
    """Completes handshakes, serving ``contexts[sni]`` (or ``default``), then closes the connection."""

    def __init__(self, contexts: Mapping[str, ssl.SSLContext], default: ssl.SSLContext) -> None:
        super().__init__()
        self.snis: list[str | None] = []
        self._contexts = dict(contexts)
        self._default = default
        default.sni_callback = self._pick
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]

    def _pick(self, connection: ssl.SSLObject | ssl.SSLSocket, sni: str | None, _: ssl.SSLContext) -> None:
        self.snis.append(sni)
        if sni in self._contexts:
            connection.context = self._contexts[sni]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    with self._default.wrap_socket(connection, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass

    def _close(self) -> None:
        self._thread.join(timeout=10)
        self._listener.close()


# --- DNS ----------------------------------------------------------------------------------------


class DnsServer(_Background):
    """UDP DNS on loopback: TXT from ``txt``, A from ``a``; NXDOMAIN for names in neither."""

    def __init__(self, txt: Mapping[str, Sequence[str]] | None = None, a: Mapping[str, Sequence[str]] | None = None):
        super().__init__()
        self.txt = dict(txt or {})
        self.a = dict(a or {})
        self.questions: list[tuple[str, str]] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((LOOPBACK, 0))
        self._socket.settimeout(0.05)
        self.address: tuple[str, int] = (LOOPBACK, self._socket.getsockname()[1])

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.questions.append((name, rdtype))
        if name not in self.txt and name not in self.a:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        if rdtype == "TXT" and self.txt.get(name):
            texts = [f'"{value}"' for value in self.txt[name]]
            response.answer.append(dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, "TXT", *texts))
        if rdtype == "A" and self.a.get(name):
            response.answer.append(dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, "A", *self.a[name]))
        return response

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            self._socket.sendto(self._answer(dns.message.from_wire(wire)).to_wire(), client)

    def _close(self) -> None:
        self._thread.join(timeout=10)
        self._socket.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.create_server((LOOPBACK, 0)) as probe:
        return int(probe.getsockname()[1])
