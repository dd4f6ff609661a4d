"""The standalone authenticator's TLS listener: tls-alpn-01, dvsni and simpleHttps on one port.

Split from ``_responders`` so that an http-01 run does not import ``http.server`` and
``socketserver``. :class:`TlsResponder` peeks at each ClientHello and picks the certificate by SNI
and ALPN: the tls-alpn-01 certificate only to clients offering ``acme-tls/1`` (RFC 8737 §3), the
dvsni certificate for SNI ``N.acme.invalid``, and otherwise a plain self-signed certificate after
which it speaks HTTP over TLS for ``simpleHttps`` resources (2015 draft, protocol-notes A.1).
Entering starts its serving thread; leaving shuts the server down and joins that thread and every
request thread (request sockets time out, so leaving is bounded). Routes are replaced as a whole
with immutable mappings, so the serving threads need no lock.

Imports: stdlib, ``letsencrypt.acme``, ``letsencrypt.plugins._responders`` and ``letsencrypt.plugins._tls``.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import socketserver
import ssl
import threading
import types
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from letsencrypt.acme.challenges import ACME_TLS_ALPN_PROTOCOL
from letsencrypt.acme.records import record
from letsencrypt.plugins import _tls
from letsencrypt.plugins._responders import REQUEST_TIMEOUT, listen

logger = logging.getLogger(__name__)

_POLL_INTERVAL = 0.01  # how fast serve_forever notices shutdown(): each run waits for it once
_EMPTY: Mapping[str, bytes] = types.MappingProxyType({})


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threading TCP server on a socket we bound ourselves (no ``getfqdn`` lookup, dual-stack)."""

    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads

    def __init__(self, sock: socket.socket, handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(sock.getsockname()[:2], handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.resources: Mapping[str, bytes] = _EMPTY


class _ResourceHandler(BaseHTTPRequestHandler):
    """Serves ``server.resources`` (path -> body) as ``text/plain``; 404 for any other path."""

    server: _Server
    server_version = "letsencrypt-standalone"
    sys_version = ""
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        body = self.server.resources.get(urllib.parse.urlsplit(self.path).path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Responder:
    """A server thread around a :class:`_Server`; entering starts it, leaving stops and joins it."""

    def __init__(self, server: _Server, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": _POLL_INTERVAL}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def __enter__(self) -> Self:
        self._thread.start()
        logger.debug("%s listening on port %d", self._thread.name, self.port)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        logger.debug("%s on port %d stopped", self._thread.name, self.port)


@record
class TlsRoutes:
    """Which server context a handshake gets, decided from its peeked ClientHello.

    ``alpn``: SNI -> context for clients offering ``acme-tls/1``; ``sni``: SNI -> context regardless
    of ALPN (dvsni); ``default``: everyone else, followed by HTTP for ``resources`` (simpleHttps).
    """

    default: ssl.SSLContext
    alpn: Mapping[str, ssl.SSLContext] = dataclasses.field(default_factory=dict)
    sni: Mapping[str, ssl.SSLContext] = dataclasses.field(default_factory=dict)
    resources: Mapping[str, bytes] = dataclasses.field(default_factory=dict)

    def choose(self, hello: _tls.ClientHello) -> tuple[ssl.SSLContext, bool]:
        """The context for this handshake, and whether HTTP follows it."""
        name = hello.server_name
        if name is not None:
            if ACME_TLS_ALPN_PROTOCOL in hello.alpn and name in self.alpn:
                return self.alpn[name], False
            if name in self.sni:
                return self.sni[name], False
        return self.default, True


class _TlsHandler(socketserver.BaseRequestHandler):
    """Peek, choose the context, handshake; then close (a validator expects that) or serve HTTP."""

    server: _TlsServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        routes = self.server.routes
        if routes is None:
            return
        try:
            context, speaks_http = routes.choose(_tls.peek_client_hello(conn, REQUEST_TIMEOUT))
            conn.settimeout(REQUEST_TIMEOUT)
            with context.wrap_socket(conn, server_side=True) as tls:
                if speaks_http:
                    _ResourceHandler(tls, self.client_address, self.server)
        except (OSError, ssl.SSLError) as err:
            logger.debug("TLS connection from %s ended: %s", self.client_address[0], err)


class _TlsServer(_Server):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock, _TlsHandler)
        self.routes: TlsRoutes | None = None


class TlsResponder(_Responder):
    """Answers tls-alpn-01, dvsni and simpleHttps validation on one port, all at once."""

    def __init__(self, address: str, port: int) -> None:
        self._tls_server = _TlsServer(listen(address, port, "tls-alpn-01, dvsni and simpleHttps"))
        super().__init__(self._tls_server, "tls-responder")

    def publish(self, routes: TlsRoutes) -> None:
        """Route handshakes (and serve simpleHttps resources) by ``routes`` from now on."""
        self._tls_server.resources = types.MappingProxyType(dict(routes.resources))
        self._tls_server.routes = routes
