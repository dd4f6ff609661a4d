"""Challenge responders for the integration tests and benchmarks: a small HTTP server (http-01, and
the 2015 draft's simpleHttp over TLS) and a TLS listener choosing a certificate by SNI (tls-alpn-01,
dvsni). Each serves on a thread until its ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from letsencrypt.acme import challenges

LOOPBACK = "127.0.0.1"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@contextlib.contextmanager
def http_responder(
    host: str, port: int, bodies: Mapping[str, bytes], *, tls: ssl.SSLContext | None = None,
    content_type: str = "text/plain",
) -> Iterator[None]:
    """Serve ``bodies`` (path -> body) on host:port, over TLS with ``tls``, until the block ends."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def setup(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(5)
                self.request.do_handshake()  # here, in the handler's thread, not in accept()
            super().setup()

        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(body if body is not None else b"not found")

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = _family(host)

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a failed TLS handshake is the client's business

    server = Server((host, port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def tls_responder(
    host: str, port: int, certs: Mapping[str, challenges.ChallengeCertificate], tmp: Path, *, alpn: str | None,
) -> Iterator[list[str | None]]:
    """A TLS listener presenting, for each SNI name, its certificate (the first one for any other name).

    With ``alpn`` it offers that protocol (``acme-tls/1`` for tls-alpn-01); dvsni negotiates none.
    Yields the SNI names the validator sent, in order.
    """
    contexts: dict[str, ssl.SSLContext] = {}
    for index, (name, cert) in enumerate(certs.items()):
        pem = tmp / f"tls-{port}-{index}.pem"
        pem.write_bytes(cert.certificate_pem() + cert.private_key_pem())
        pem.chmod(0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if alpn is not None:
            context.set_alpn_protocols([alpn])
        context.load_cert_chain(pem)
        contexts[name.lower()] = context
    default = next(iter(contexts.values()))
    seen: list[str | None] = []

    def pick(sock: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
        seen.append(server_name)
        sock.context = contexts.get((server_name or "").lower(), default)

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if alpn is not None:
        server_context.set_alpn_protocols([alpn])
    server_context.load_cert_chain(tmp / f"tls-{port}-0.pem")
    server_context.sni_callback = pick
    listener = socket.create_server((host, port), family=_family(host))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with contextlib.suppress(OSError), conn:
                conn.settimeout(5)
                with server_context.wrap_socket(conn, server_side=True):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def http01_responder(port: int, responses: Mapping[str, bytes]) -> contextlib.AbstractContextManager[None]:
    """Serve ``/.well-known/acme-challenge/TOKEN`` bodies on 127.0.0.1:port until the block ends
    (``responses`` is read at each request: it may change meanwhile)."""
    return http_responder(LOOPBACK, port, responses)


def tls_alpn01_responder(port: int, certs: Mapping[str, challenges.ChallengeCertificate],
                         tmp: Path) -> contextlib.AbstractContextManager[list[str | None]]:
    """A TLS listener on 127.0.0.1:port that answers ALPN ``acme-tls/1`` with the challenge
    certificate for the SNI."""
    return tls_responder(LOOPBACK, port, certs, tmp, alpn=challenges.ACME_TLS_ALPN_PROTOCOL)
