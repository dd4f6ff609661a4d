"""Loopback-capable challenge responders for the standalone authenticator: one HTTP, one TLS listener.

Each responder is a context manager: entering starts its serving thread, leaving shuts the server
down and joins that thread and every request thread (request sockets time out, so leaving is
bounded). What they serve is replaced as a whole (:meth:`HttpResponder.publish`,
:meth:`TlsResponder.publish`) with immutable mappings, so the serving threads never see a
half-updated state and need no lock.

- :class:`HttpResponder` answers ``GET``/``HEAD`` for exactly the published paths (http-01,
  RFC 8555 §8.3) and 404 for anything else.
- :class:`TlsResponder` peeks at each ClientHello and picks the certificate by SNI and ALPN:
  the tls-alpn-01 certificate only to clients offering ``acme-tls/1`` (RFC 8737 §3), the dvsni
  certificate for SNI ``N.acme.invalid``, and otherwise a plain self-signed certificate after
  which it speaks HTTP over TLS for ``simpleHttps`` resources (2015 draft, protocol-notes A.1).

Imports: stdlib, ``letsencrypt.plugin_api``, ``letsencrypt.acme`` and ``letsencrypt.plugins._tls``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import selectors
import socket
import socketserver
import ssl
import threading
import time
import types
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from letsencrypt.acme.challenges import ACME_TLS_ALPN_PROTOCOL
from letsencrypt.plugin_api import ChallengeSetupError
from letsencrypt.plugins import _tls

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5.0  # seconds a validator connection may stay idle
_POLL_INTERVAL = 0.01  # how fast serve_forever notices shutdown(): each run waits for it once
_EMPTY: Mapping[str, bytes] = types.MappingProxyType({})


def listen(address: str, port: int, purpose: str) -> socket.socket:
    """A listening TCP socket on ``address:port``; ``""`` means every address, IPv6 and IPv4.

    A bind failure becomes :class:`ChallengeSetupError` naming the port, with the next step.
    """
    try:
        if address in ("", "::") and socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return socket.create_server((address, port), family=family)
    except OSError as err:
        where = f"{address or '*'}:{port}"
        if err.errno == errno.EACCES:
            hint = f"run as root (port {port} is privileged) or use --webroot / --nginx"
        else:
            hint = f"stop the web server on port {port} or use --webroot / --nginx"
        raise ChallengeSetupError(
            f"the standalone authenticator cannot listen on {where} for {purpose}: {err.strerror or err}",
            hint=hint,
        ) from err


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


class HttpResponder:
    """Answers http-01 validation requests on one port (RFC 8555 §8.3), from one thread.

    A validator sends one small ``GET`` per connection, and a CA validating a 100-name order sends
    hundreds at once (Pebble asks three times per name). A thread and an ``http.server`` handler
    per request cost about 0.6 ms of CPU each, taken from the client's main thread by the GIL; one
    thread multiplexing non-blocking sockets with ``selectors`` answers the same in a tenth of
    that. Each connection gets one answer and is closed (``Connection: close``); a request head
    over 16 KiB gets 431, a malformed one 400, another method than GET/HEAD 501; a connection that
    sends nothing for ``REQUEST_TIMEOUT`` seconds is dropped. Leaving wakes the thread through a
    socket pair, closes every connection and joins it.
    """

    _MAX_HEAD = 16 * 1024

    def __init__(self, address: str, port: int) -> None:
        self._listener = listen(address, port, "http-01")
        self._listener.setblocking(False)
        self._port: int = self._listener.getsockname()[1]
        self._wake_read, self._wake_write = socket.socketpair()
        self._resources: Mapping[str, bytes] = _EMPTY
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="http-01-responder", daemon=True)

    @property
    def port(self) -> int:
        return self._port

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def publish(self, resources: Mapping[str, bytes]) -> None:
        """Serve exactly ``resources`` (URL path -> body) from now on."""
        self._resources = types.MappingProxyType(dict(resources))

    def __enter__(self) -> Self:
        self._thread.start()
        logger.debug("%s listening on port %d", self._thread.name, self.port)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread.is_alive():
            self._stopping = True
            self._wake_write.send(b"x")
            self._thread.join()
        for sock in (self._listener, self._wake_read, self._wake_write):
            sock.close()
        logger.debug("%s on port %d stopped", self._thread.name, self._port)

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        selector.register(self._wake_read, selectors.EVENT_READ, None)
        pending: dict[socket.socket, _Incoming] = {}
        try:
            while not self._stopping:
                timeout = min((c.deadline for c in pending.values()), default=None)
                if timeout is not None:
                    timeout = max(0.0, timeout - time.monotonic())
                for key, _ in selector.select(timeout):
                    sock = key.fileobj
                    if sock is self._listener:
                        self._accept(selector, pending)
                    elif sock is not self._wake_read:
                        assert isinstance(sock, socket.socket)
                        self._receive(selector, pending, sock)
                now = time.monotonic()
                for sock in [s for s, c in pending.items() if c.deadline <= now]:
                    self._close(selector, pending, sock)
        finally:
            for sock in list(pending):
                self._close(selector, pending, sock)
            selector.close()

    def _accept(self, selector: selectors.BaseSelector, pending: dict[socket.socket, _Incoming]) -> None:
        while True:
            try:
                conn, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # e.g. out of file descriptors: keep serving the others
                logger.debug("http-01 responder: accept failed: %s", err)
                return
            conn.setblocking(False)
            pending[conn] = _Incoming(str(peer[0]), time.monotonic() + REQUEST_TIMEOUT)
            selector.register(conn, selectors.EVENT_READ, None)

    def _receive(
        self, selector: selectors.BaseSelector, pending: dict[socket.socket, _Incoming], sock: socket.socket
    ) -> None:
        incoming = pending[sock]
        try:
            data = sock.recv(8192)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(selector, pending, sock)
            return
        incoming.data += data
        end = incoming.data.find(b"\r\n\r\n")
        if end < 0 and len(incoming.data) <= self._MAX_HEAD:
            return
        status, body, line = self._answer(incoming.data[:end] if 0 <= end <= self._MAX_HEAD else None)
        head = (
            f"HTTP/1.1 {status}\r\nServer: letsencrypt-standalone\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            # A few hundred bytes into a fresh socket's empty send buffer: this does not block.
            sock.settimeout(REQUEST_TIMEOUT)
            sock.sendall(head + (b"" if line.startswith("HEAD ") else body))
        except OSError as err:
            logger.debug("http-01 responder: answering %s failed: %s", incoming.peer, err)
        logger.debug('%s "%s" %s', incoming.peer, line, status.split(" ", 1)[0])
        self._close(selector, pending, sock)

    def _answer(self, head: bytes | None) -> tuple[str, bytes, str]:
        """Status, body and the request line (for the log) for one request head."""
        if head is None:
            return "431 Request Header Fields Too Large", b"", "<request head over 16 KiB>"
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return "400 Bad Request", b"", line[:200]
        method, target, _ = parts
        if method not in ("GET", "HEAD"):
            return "501 Not Implemented", b"", line[:200]
        body = self._resources.get(urllib.parse.urlsplit(target).path)
        if body is None:
            return "404 Not Found", b"", line[:200]
        return "200 OK", body, line[:200]

    @staticmethod
    def _close(selector: selectors.BaseSelector, pending: dict[socket.socket, _Incoming], sock: socket.socket) -> None:
        pending.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(sock)
        sock.close()


class _Incoming:
    """A connection's request head so far, and when it is dropped if the head is not complete."""

    __slots__ = ("data", "deadline", "peer")

    def __init__(self, peer: str, deadline: float) -> None:
        self.peer = peer
        self.deadline = deadline
        self.data = b""


@dataclasses.dataclass(frozen=True, slots=True)
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
