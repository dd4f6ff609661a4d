"""Connections for validation: TCP to each resolved address, TLS without verification, one GET.

The validator connects to the addresses the resolver gave, in order, moving to the next only
when a connection cannot be made (like Boulder's IPv6-then-IPv4 fallback). TLS never verifies
the peer: http-01 redirects to https (RFC 8555 §8.3), tls-alpn-01 (RFC 8737 §3) and the legacy
pair all look at self-signed certificates, or at none. Bodies are read up to a cap, so a
hostile server cannot exhaust memory, and every read respects the attempt's deadline.

Imports: stdlib, cryptography and ``ca_stub.va``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from cryptography import x509

from ca_stub.va._attempt import Attempt, Failure, host_port

__all__ = ["BODY_CAP", "Handshake", "HttpResponse", "handshake", "http_get", "try_addresses"]

BODY_CAP = 64 * 1024
USER_AGENT = "ca-stub-va/1 (ACME validation)"
_T = TypeVar("_T")


class _ConnectFailed(Failure):
    """No TCP connection to one address: the next address may still answer."""


def try_addresses(addresses: Sequence[str], attempt: Attempt, action: Callable[[str], _T]) -> _T:
    """``action(address)`` for each address until one connects; the last connection failure else."""
    failure: Failure | None = None
    for address in addresses:
        try:
            return action(address)
        except _ConnectFailed as err:
            failure = err
    if failure is None:
        raise Failure("dns", "no address to connect to")
    raise failure


def _connect(address: str, port: int, attempt: Attempt) -> socket.socket:
    where = host_port(address, port)
    try:
        return socket.create_connection((address, port), timeout=attempt.remaining(f"connecting to {where}"))
    except TimeoutError as err:
        raise _ConnectFailed("connection", f"timed out connecting to {where}") from err
    except OSError as err:
        raise _ConnectFailed("connection", f"cannot connect to {where}: {err.strerror or err}") from err


def _tls_context(alpn: Sequence[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # validation certificates are self-signed by design
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def _sni(name: str | None) -> str | None:
    """SNI carries DNS names only (RFC 6066 §3); ``None`` for an IP literal."""
    if name is None:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return None


def _wrap(sock: socket.socket, sni: str | None, alpn: Sequence[str], where: str) -> ssl.SSLSocket:
    try:
        return _tls_context(alpn).wrap_socket(sock, server_hostname=_sni(sni))
    except ssl.SSLError as err:
        raise Failure("tls", f"TLS handshake with {where} (SNI {sni!r}) failed: {err.reason or err}") from err
    except TimeoutError as err:
        raise Failure("connection", f"timed out in the TLS handshake with {where}") from err
    except OSError as err:
        raise Failure("connection", f"TLS handshake with {where} broke off: {err.strerror or err}") from err


class _Watchdog:
    """Shuts the connection down at the attempt's deadline.

    Socket timeouts bound each read, not their sum: a server dripping a byte at a time could
    otherwise hold a worker far past the deadline during a handshake or the response headers.
    A duplicate of the socket is shut down, which also ends TLS sockets wrapped around it.
    """

    def __init__(self, sock: socket.socket, attempt: Attempt) -> None:
        self.fired = threading.Event()
        self._duplicate = sock.dup()
        self._timer = threading.Timer(max(0.0, attempt.deadline - time.monotonic()), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        self.fired.set()
        with contextlib.suppress(OSError):
            self._duplicate.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        self._timer.join()
        self._duplicate.close()


# --- TLS handshakes (tls-alpn-01, dvsni) -----------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Handshake:
    certificate: x509.Certificate
    alpn: str | None  # the protocol the server selected, if any
    where: str  # "ADDRESS:PORT"


def handshake(address: str, port: int, sni: str, alpn: Sequence[str], attempt: Attempt) -> Handshake:
    """Complete a TLS handshake, take the server's certificate and close (RFC 8737 §3)."""
    where = host_port(address, port)
    sock = _connect(address, port, attempt)
    watchdog = _Watchdog(sock, attempt)
    try:
        sock.settimeout(attempt.remaining(f"the TLS handshake with {where}"))
        with _wrap(sock, sni, alpn, where) as tls:
            der = tls.getpeercert(binary_form=True)
            selected = tls.selected_alpn_protocol()
    except Failure as err:
        if watchdog.fired.is_set():
            raise Failure("connection", f"timed out in the TLS handshake with {where}") from err
        raise
    finally:
        watchdog.close()
        sock.close()
    attempt.note(f"TLS {where} SNI {sni} ALPN {list(alpn)} -> selected {selected!r}")
    if not der:
        raise Failure("tls", f"{where} (SNI {sni}) presented no certificate")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as err:
        raise Failure("tls", f"{where} (SNI {sni}) presented a certificate that cannot be parsed: {err}") from err
    return Handshake(certificate, selected, where)


# --- one HTTP GET (http-01 and its redirects, simpleHttps) -----------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    content_type: str | None
    location: str | None
    body: bytes  # at most BODY_CAP + 1 bytes: longer means truncated
    address: str  # "ADDRESS:PORT" actually contacted


def _read_capped(response: http.client.HTTPResponse, sock: socket.socket, attempt: Attempt, where: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total <= BODY_CAP:
        sock.settimeout(attempt.remaining(f"reading the body from {where}"))
        chunk = response.read1(min(16384, BODY_CAP + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def http_get(
    address: str, port: int, *, tls: bool, host: str, path: str, attempt: Attempt, url: str
) -> HttpResponse:
    """``GET path`` from ``address:port`` with ``Host: host`` (and SNI ``host`` over TLS)."""
    where = host_port(address, port)
    shown = f"{url} ({where})"
    sock: socket.socket = _connect(address, port, attempt)
    watchdog = _Watchdog(sock, attempt)
    try:
        if tls:
            sock.settimeout(attempt.remaining(f"the TLS handshake with {where}"))
            sock = _wrap(sock, host, (), where)
        sock.settimeout(attempt.remaining(f"sending the request to {shown}"))
        connection = http.client.HTTPConnection(address, port)
        connection.sock = sock
        host_header = f"[{host}]" if ":" in host else host
        connection.request(
            "GET", path, headers={"Host": host_header, "User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
        )
        response = connection.getresponse()
        body = _read_capped(response, sock, attempt, shown)
        if watchdog.fired.is_set():
            raise TimeoutError  # the watchdog cut the body short
    except (Failure, OSError, http.client.HTTPException) as err:
        if watchdog.fired.is_set() or isinstance(err, TimeoutError):
            raise Failure("connection", f"timed out fetching {shown}") from err
        if isinstance(err, Failure):
            raise
        raise Failure("connection", f"fetching {shown} failed: {type(err).__name__}: {err}") from err
    finally:
        watchdog.close()
        sock.close()
    attempt.note(f"GET {shown} -> HTTP {response.status}, {len(body)} bytes")
    return HttpResponse(
        response.status, response.getheader("Content-Type"), response.getheader("Location"), body, where
    )
