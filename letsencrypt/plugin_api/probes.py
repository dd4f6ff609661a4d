"""Looking at what a web server does: polled checks, the served certificate chain, plain HTTP(S), processes.

Role: how a plugin knows a change took effect, instead of sleeping (certbot sleeps a fixed time
after a reload). A check is a function returning None when satisfied or a description of what it
saw; :func:`wait_until` polls it quickly under a short deadline.

:func:`served_chain` reads the certificates a TLS server sends: Python's ``ssl`` (3.11) gives only
the leaf, so the handshake runs over memory buffers with TLS 1.2, whose Certificate message
(RFC 5246 §7.4.2) travels in clear, and the records are read as they pass. A server that speaks
only TLS 1.3 (where that message is encrypted) is asked again normally and only its leaf is known.
No certificate is verified: these probes check which certificate is there, not whether to trust it.

:func:`process_exists`, :func:`pid_alive` and :func:`children` look at processes (a server's master
after a reload, the owner of a checkpoint); :func:`children` reads Linux ``/proc``.

Allowed imports: the standard library and ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from letsencrypt.acme.records import record
from letsencrypt.plugin_api import MisconfigurationError

__all__ = [
    "HttpAnswer",
    "ServedChain",
    "children",
    "http_get",
    "pem_certificates",
    "pid_alive",
    "process_exists",
    "served_chain",
    "served_leaf",
    "wait_until",
]

_HANDSHAKE = 22
_CERTIFICATE = 11


def wait_until(check: Callable[[], str | None], deadline: float, what: str, *,
               hint: str = "see the server's error log") -> None:
    """Call ``check`` until it returns None; it returns what it saw otherwise (for the error).

    Polls quickly at first (1 ms, doubling to 50 ms) and raises :class:`MisconfigurationError` naming
    ``what`` and the last observation (with ``hint``) after ``deadline`` seconds. Exceptions from
    ``check`` propagate.
    """
    end = time.monotonic() + deadline
    interval = 0.001
    while True:
        seen = check()
        if seen is None:
            return
        if time.monotonic() >= end:
            raise MisconfigurationError(f"timed out after {deadline:g} s waiting for {what}: {seen}",
                                        hint=hint)
        time.sleep(interval)
        interval = min(interval * 2, 0.05)


def _client_context(*, tls12: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we read the served certificate, we do not trust it
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def served_leaf(host: str, port: int, server_name: str, *, timeout: float = 2.0) -> bytes:
    """The DER certificate a TLS server at ``host``:``port`` presents for SNI ``server_name``.

    Not verified (this is the check that the right certificate is there); raises ``OSError``.
    """
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            _client_context().wrap_socket(raw, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError(f"{host}:{port} presented no certificate for {server_name}")
    return der


@record
class ServedChain:
    """DER certificates as sent, leaf first; ``complete`` is False when only the leaf could be seen."""

    certificates: tuple[bytes, ...]
    complete: bool


def served_chain(host: str, port: int, server_name: str, *, timeout: float = 2.0) -> ServedChain:
    """The chain a TLS server sends for SNI ``server_name`` (see the module docstring); ``OSError`` on failure."""
    try:
        return ServedChain(_tls12_certificates(host, port, server_name, timeout), True)
    except ssl.SSLError:
        return ServedChain((served_leaf(host, port, server_name, timeout=timeout),), False)


def _tls12_certificates(host: str, port: int, server_name: str, timeout: float) -> tuple[bytes, ...]:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = _client_context(tls12=True).wrap_bio(incoming, outgoing, server_hostname=server_name)
    received = bytearray()
    end = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    sock.sendall(outgoing.read())
                if time.monotonic() > end:
                    raise TimeoutError(f"TLS handshake with {host}:{port} timed out") from None
                data = sock.recv(65536)
                if not data:
                    raise ssl.SSLEOFError(f"{host}:{port} closed the connection during the handshake") from None
                received += data
                incoming.write(data)
        if outgoing.pending:
            sock.sendall(outgoing.read())
    found = _certificates_in(bytes(received))
    if not found:
        raise ssl.SSLError(f"no Certificate message from {host}:{port}")
    return found


def _certificates_in(stream: bytes) -> tuple[bytes, ...]:
    """The certificate_list of the first Certificate handshake message in cleartext TLS records."""
    handshake = bytearray()
    pos = 0
    while pos + 5 <= len(stream):
        kind, length = stream[pos], int.from_bytes(stream[pos + 3:pos + 5], "big")
        if kind == _HANDSHAKE:
            handshake += stream[pos + 5:pos + 5 + length]
        elif handshake:
            break  # ChangeCipherSpec: what follows is encrypted
        pos += 5 + length
    pos = 0
    while pos + 4 <= len(handshake):
        kind, length = handshake[pos], int.from_bytes(handshake[pos + 1:pos + 4], "big")
        body = bytes(handshake[pos + 4:pos + 4 + length])
        if kind == _CERTIFICATE:
            certificates, cursor = [], 3
            while cursor + 3 <= len(body):
                size = int.from_bytes(body[cursor:cursor + 3], "big")
                certificates.append(body[cursor + 3:cursor + 3 + size])
                cursor += 3 + size
            return tuple(certificates)
        pos += 4 + length
    return ()


def pem_certificates(pem: bytes | str) -> tuple[bytes, ...]:
    """The DER certificates in a PEM bundle (a fullchain), in order."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    found = []
    pos = text.find(begin)
    while pos >= 0:
        stop = text.find(end, pos)
        if stop < 0:
            break
        found.append(ssl.PEM_cert_to_DER_cert(text[pos:stop + len(end)]))
        pos = text.find(begin, stop)
    return tuple(found)


@record
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def http_get(host: str, port: int, host_header: str, path: str, *, tls: bool = False,
             timeout: float = 2.0) -> HttpAnswer:
    """GET ``path`` from ``host``:``port`` with ``Host: host_header`` (TLS unverified, SNI = host header)."""
    connection: http.client.HTTPConnection
    if tls:
        connection = _SniHTTPSConnection(host, port, host_header, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host_header, "Connection": "close"})
        response = connection.getresponse()
        body = response.read()
        return HttpAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


class _SniHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address, with SNI set to the virtual host's name rather than the address."""

    def __init__(self, host: str, port: int, server_name: str, *, timeout: float) -> None:
        self._client_context = _client_context()
        super().__init__(host, port, timeout=timeout, context=self._client_context)
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._client_context.wrap_socket(self.sock, server_hostname=self._server_name)


# --- processes ---------------------------------------------------------------------------------------


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts; a zombie too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (exited, not yet reaped; read from Linux ``/proc``)."""
    if not process_exists(pid):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def children(pid: int) -> set[int]:
    """The pids of ``pid``'s child processes (Linux ``/proc``)."""
    try:
        return {int(item) for item in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        pass
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if len(fields) > 1 and fields[1] == str(pid):
                found.add(int(entry.name))
    return found
