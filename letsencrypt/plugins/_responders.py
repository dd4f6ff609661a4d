"""The standalone authenticator's http-01 listener (:class:`HttpResponder`) and ``listen``.

:class:`HttpResponder` answers ``GET``/``HEAD`` for exactly the published paths (http-01,
RFC 8555 §8.3) and 404 for anything else, from one thread; what it serves is replaced as a whole
(:meth:`HttpResponder.publish`) with an immutable mapping, so the serving thread never sees a
half-updated state and needs no lock. The TLS listener lives in ``_tls_responder`` (imported only
when a TLS-based challenge is served: it needs ``http.server`` and ``socketserver``).

Imports: stdlib and ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import threading
import time
import types
import urllib.parse
from collections.abc import Mapping
from typing import Self

from letsencrypt.plugin_api import ChallengeSetupError

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5.0  # seconds a validator connection may stay idle
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
        self._answered: dict[tuple[str, str], int] = {}  # (request line, status) -> times; the thread's own
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
        counts: dict[str, int] = {}
        for (_, code), count in self._answered.items():
            counts[code] = counts.get(code, 0) + count
        summary = ", ".join(f"{count} x {code}" for code, count in sorted(counts.items())) or "no requests"
        logger.debug("%s on port %d stopped; answered %s", self._thread.name, self._port, summary)

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
        code = status.split(" ", 1)[0]
        key = (line, code)
        self._answered[key] = self._answered.get(key, 0) + 1
        if self._answered[key] == 1:  # validators ask several times (Pebble: 3 per name): the first is logged
            logger.debug('%s "%s" %s', incoming.peer, line, code)
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
