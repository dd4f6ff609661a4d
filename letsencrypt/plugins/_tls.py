"""TLS helpers for the standalone authenticator: ClientHello peeking and in-memory server contexts.

Python's ``ssl`` module picks the server certificate (in the SNI callback) before the offered ALPN
protocols are known, yet tls-alpn-01 (RFC 8737 §3) must present the challenge certificate only
to a client that offers ``acme-tls/1``. So the responder peeks at the ClientHello with
``MSG_PEEK`` (the bytes stay queued for the real handshake), reads its SNI (RFC 6066 §3) and ALPN
(RFC 7301 §3.1) extensions with :func:`parse_client_hello`, and picks the context before the
handshake starts.

Imports: stdlib, cryptography and ``letsencrypt.acme``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.challenges import ChallengeCertificate
from letsencrypt.acme.records import record

if TYPE_CHECKING:
    from cryptography import x509
else:
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

_HANDSHAKE = 0x16
_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
_RECORD_HEADER = 5
_MAX_RECORD = _RECORD_HEADER + 16384  # TLSPlaintext.length <= 2^14 (RFC 8446 §5.1)


@record
class ClientHello:
    """What a ClientHello asks for: the SNI host name (lowercase) and the offered ALPN protocols."""

    server_name: str | None = None
    alpn: tuple[str, ...] = ()


class _Reader:
    """Bounds-checked reads over a byte string; a short read raises ``ValueError``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, count: int) -> bytes:
        if self._pos + count > len(self._data):
            raise ValueError("truncated")
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> _Reader:
        return _Reader(self.take(self.number(length_size)))

    def done(self) -> bool:
        return self._pos >= len(self._data)


def parse_client_hello(record: bytes) -> ClientHello:
    """SNI and ALPN of the ClientHello in the first TLS record; empty for anything else or truncated data."""
    try:
        return _parse(record)
    except ValueError:
        return ClientHello()


def _parse(record: bytes) -> ClientHello:
    outer = _Reader(record)
    if outer.number(1) != _HANDSHAKE:
        return ClientHello()
    outer.take(2)  # legacy_record_version
    fragment = outer.vector(2)
    if fragment.number(1) != _CLIENT_HELLO:
        return ClientHello()
    hello = fragment.vector(3)
    hello.take(2 + 32)  # legacy_version, random
    hello.vector(1)  # legacy_session_id
    hello.vector(2)  # cipher_suites
    hello.vector(1)  # legacy_compression_methods
    if hello.done():
        return ClientHello()
    extensions = hello.vector(2)
    server_name: str | None = None
    alpn: tuple[str, ...] = ()
    while not extensions.done():
        kind = extensions.number(2)
        body = extensions.vector(2)
        if kind == _EXT_SERVER_NAME:
            server_name = _server_name(body)
        elif kind == _EXT_ALPN:
            alpn = _protocols(body)
    return ClientHello(server_name, alpn)


def _server_name(body: _Reader) -> str | None:
    names = body.vector(2)
    while not names.done():
        name_type = names.number(1)
        name = names.take(names.number(2))
        if name_type == 0:  # host_name
            return name.decode("ascii", "replace").lower()
    return None


def _protocols(body: _Reader) -> tuple[str, ...]:
    offered = body.vector(2)
    protocols = []
    while not offered.done():
        protocols.append(offered.take(offered.number(1)).decode("ascii", "replace"))
    return tuple(protocols)


def peek_client_hello(conn: socket.socket, timeout: float = 5.0) -> ClientHello:
    """Wait (up to ``timeout`` seconds) for the first TLS record to arrive whole and parse it, unread."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        conn.settimeout(max(deadline - time.monotonic(), 0.01))
        data = conn.recv(_MAX_RECORD, socket.MSG_PEEK)
        if not data:
            break
        if len(data) >= _RECORD_HEADER and len(data) >= _RECORD_HEADER + int.from_bytes(data[3:5], "big"):
            break
        time.sleep(0.005)  # the rest of the record is still in flight
    return parse_client_hello(data)


# --- server contexts -------------------------------------------------------------------------


@contextlib.contextmanager
def _pem_files(served: ChallengeCertificate) -> Iterator[tuple[str, str]]:
    """The certificate and key as file names that ``load_cert_chain`` can read, gone afterwards.

    Linux gets anonymous memory files, so the key (the account key, for dvsni) never reaches a
    disk; elsewhere a private temporary directory (mode 0700, key file 0600) is used.
    """
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        cert_fd = os.memfd_create("challenge-cert")
        key_fd = os.memfd_create("challenge-key")
        try:
            os.write(cert_fd, served.certificate_pem())
            os.write(key_fd, served.private_key_pem())
            yield f"/proc/self/fd/{cert_fd}", f"/proc/self/fd/{key_fd}"
        finally:
            os.close(cert_fd)
            os.close(key_fd)
        return
    import tempfile  # here: only TLS challenges need it

    with tempfile.TemporaryDirectory(prefix="letsencrypt-tls-") as directory:
        cert_file, key_file = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        cert_file.write_bytes(served.certificate_pem())
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as key_out:
            key_out.write(served.private_key_pem())
        yield str(cert_file), str(key_file)


def server_context(served: ChallengeCertificate, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting ``served``, selecting one of ``alpn`` if offered."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with _pem_files(served) as (cert_file, key_file):
        context.load_cert_chain(cert_file, key_file)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def self_signed(names: Sequence[str]) -> ChallengeCertificate:
    """A plain self-signed EC P-256 certificate naming ``names`` (DNS names), valid for a week.

    Served where no challenge certificate applies: for ``simpleHttps`` (whose validator does not
    verify the certificate) and to clients that ask for nothing we serve.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, names[0][:64])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ChallengeCertificate(certificate, key)
