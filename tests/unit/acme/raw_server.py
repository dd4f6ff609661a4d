"""A raw TCP (or TLS) server on loopback that reads HTTP/1.1 requests and writes the bytes a test scripts.

Unlike ``scripted_server`` (a well-behaved ``http.server``), nothing here is HTTP the standard
library speaks for us: a test decides every byte of every answer, when it goes out, and whether the
connection then stays open, closes or goes silent. Used by ``test_http_transport.py``,
``test_pipeline.py`` and ``test_wire.py``.

- ``RawServer`` listens on ``host`` (port 0) and runs ``script(peer)`` on every accepted connection,
  each in its own thread (with ``context``: after a TLS handshake in that thread). A script ending
  with ``OSError`` is the client going away; anything else it raises is kept in ``failures``: a
  broken test. ``stop`` ends the accept loop, wakes blocked scripts and joins every thread.
- ``Peer`` is one accepted connection: ``read_request`` (blocking) or ``parse`` (what has arrived)
  give ``RawRequest``s, all recorded in ``requests`` with every byte received in ``raw``;
  ``respond`` writes an answer built by ``message``.
- ``serving`` and ``making_transports`` are the bodies of the fixtures that start servers and make
  ``HttpTransport``s, and clean up after them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import pytest

from letsencrypt.acme._http import HttpTransport

__all__ = [
    "TIMEOUT",
    "Peer",
    "RawRequest",
    "RawServer",
    "clear_environment",
    "making_transports",
    "message",
    "serving",
]

TIMEOUT = 5.0  # for the exchanges that must succeed: far above what loopback takes


@dataclasses.dataclass(frozen=True)
class RawRequest:
    """One request as read off the wire: request line parts, headers (names lower-cased), body, all its bytes."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    data: bytes  # the request exactly as it arrived: head, CRLF CRLF, body

    @property
    def line(self) -> str:
        return f"{self.method} {self.target} {self.version}"


def message(start: str, fields: Iterable[str], body: bytes, *, send_body: bool = True) -> bytes:
    """An HTTP message: ``start`` line, ``fields`` (``"Name: value"``), then ``Content-Length`` unless
    the fields frame the body themselves (``Content-Length`` or ``Transfer-Encoding``), then ``body``
    (left out with ``send_body=False``, as for an answer to HEAD)."""
    lines = [start, *fields]
    if not any(field.lower().startswith(("content-length:", "transfer-encoding:")) for field in lines[1:]):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (body if send_body else b"")


class Peer:
    """One accepted connection, as a script sees it: read requests, write answers, close."""

    def __init__(self, sock: socket.socket, index: int, stopping: threading.Event) -> None:
        self.sock = sock
        self.index = index  # 0 for the server's first connection, 1 for the next...
        self.stopping = stopping  # set when the server stops: a script that waits, waits on this
        self.raw = bytearray()  # every byte received
        self.requests: list[RawRequest] = []  # every request read, in order
        self._buffer = b""

    def recv(self) -> bool:
        """Read what has arrived (blocking until something has); ``False`` when the client closed."""
        data = self.sock.recv(64 * 1024)
        self.raw += data
        self._buffer += data
        return bool(data)

    def parse(self) -> RawRequest | None:
        """The next whole request among the bytes received (recorded in ``requests``), else ``None``."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        line, *fields = self._buffer[:end].decode("latin-1").split("\r\n")
        method, target, version = line.split(" ", 2)
        headers: dict[str, str] = {}
        for field in fields:
            name, _, value = field.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = end + 4 + int(headers.get("content-length", "0"))
        if len(self._buffer) < size:
            return None
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        request = RawRequest(method, target, version, headers, data[end + 4 :], data)
        self.requests.append(request)
        return request

    def read_request(self) -> RawRequest | None:
        """The next request, or ``None`` when the client closed first (between requests)."""
        while (request := self.parse()) is None:
            if not self.recv():
                if self._buffer:
                    raise ConnectionError(f"the client closed in the middle of a request: {self._buffer!r}")
                return None
        return request

    def respond(
        self,
        status: int = 200,
        body: bytes = b"",
        *headers: tuple[str, str],
        head: bool = False,
        version: str = "HTTP/1.1",
    ) -> None:
        """An answer (kept alive unless ``headers`` say otherwise), Content-Length added unless framed."""
        start = f"{version} {status} {http.HTTPStatus(status).phrase}"
        fields = [f"{name}: {value}" for name, value in headers]
        self.sock.sendall(message(start, fields, body, send_body=not head))


P = TypeVar("P", bound=Peer)


class RawServer(Generic[P]):
    """A TCP server on ``host`` running ``script`` on every connection, each in its own thread.

    ``peer`` makes the ``Peer`` (or subclass) for each connection. With ``context`` every
    connection is wrapped in TLS (the handshake happens in the connection's thread; a failed one is
    recorded in ``handshake_failures``). ``peers`` lists the connections in the order they were
    accepted, each with the requests its script read.
    """

    def __init__(
        self,
        script: Callable[[P], None],
        peer: Callable[[socket.socket, int, threading.Event], P],
        *,
        context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.script = script
        self.context = context
        self.host = host
        self.peers: list[P] = []
        self.handshake_failures: list[ssl.SSLError] = []
        self.failures: list[BaseException] = []  # anything else a script raised: a broken test
        self._peer = peer
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family)
        self._listener.settimeout(0.005)  # the accept loop looks at _stopping this often
        self.port: int = self._listener.getsockname()[1]
        self._accepter = threading.Thread(target=self._accept, name="raw-server-accept")
        self._accepter.start()

    def url(self, path: str = "/", scheme: str | None = None) -> str:
        return f"{scheme or ('https' if self.context else 'http')}://127.0.0.1:{self.port}{path}"

    @property
    def connections(self) -> int:
        return len(self.peers)

    @property
    def requests(self) -> list[RawRequest]:
        return [request for peer in self.peers for request in peer.requests]

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(10)  # no script waits on a client forever, whatever the test does
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # every piece its own segment
            peer = self._peer(sock, len(self.peers), self._stopping)
            self.peers.append(peer)
            thread = threading.Thread(target=self._run, args=(peer,), name=f"raw-server-{peer.index}")
            self._threads.append(thread)
            thread.start()

    def _run(self, peer: P) -> None:
        try:
            if self.context is not None:
                try:
                    peer.sock = self.context.wrap_socket(peer.sock, server_side=True)
                except ssl.SSLError as err:
                    self.handshake_failures.append(err)
                    return
            self.script(peer)
        except OSError:  # the client went away (or the server stops): the script's business ends
            pass
        except Exception as err:
            self.failures.append(err)
        finally:
            peer.sock.close()

    def join(self, index: int) -> None:
        """Wait for the script on connection ``index`` to end (what it read is then all there)."""
        self._threads[index].join(TIMEOUT)
        assert not self._threads[index].is_alive()

    def stop(self) -> None:
        self._stopping.set()
        self._accepter.join()
        self._listener.close()
        for peer in self.peers:  # wakes a script blocked reading a kept-alive connection
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join()


S = TypeVar("S", bound=RawServer[Any])


def serving(start: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """A fixture's body: yields ``start`` (which makes a server); at the end every server it made
    is stopped and joined, and no script may have failed."""
    servers: list[S] = []

    def started(*args: Any, **kwargs: Any) -> S:
        server = start(*args, **kwargs)
        servers.append(server)
        return server

    yield started
    for server in servers:
        server.stop()
    assert [failure for server in servers for failure in server.failures] == []


def making_transports() -> Iterator[Callable[..., HttpTransport]]:
    """A fixture's body: makes ``HttpTransport``s (timeout ``TIMEOUT`` unless given); all are closed at the end."""
    made: list[HttpTransport] = []

    def make(*, verify: bool | str = True, timeout: float = TIMEOUT) -> HttpTransport:
        transport = HttpTransport(verify=verify, timeout=timeout)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


def clear_environment(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """No proxy variable (``*_proxy``), nor any of ``names``, of the machine running the tests reaches the code."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name in names:
            monkeypatch.delenv(name)
