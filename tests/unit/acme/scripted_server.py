"""A scripted HTTP server on loopback for testing clients against real sockets (no mocks).

``ScriptedServer`` listens on ``127.0.0.1`` port 0 in a thread. Tests register routes, keyed by
method and path (query string included), each a handler that takes the ``Recorded`` request and
returns ``(status, headers, body)``; every request is recorded in ``requests`` in arrival order.
``headers`` is a mapping or a sequence of pairs (repeat a name to send the header several times);
``body`` is bytes or text (sent as UTF-8). Unknown routes answer 404. Use as a context manager:
leaving it stops the server, releases ``hang`` handlers and joins every thread.

Helpers: ``sequence`` scripts a route that answers differently on each call (the last answer
repeats), ``hang`` accepts the request and never answers until the server stops.
"""

from __future__ import annotations

import dataclasses
import http.server
import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from email.message import Message
from types import TracebackType
from typing import Any

__all__ = ["Handler", "Recorded", "Reply", "ScriptedServer", "sequence"]

Headers = Mapping[str, str] | Sequence[tuple[str, str]]
Reply = tuple[int, Headers, bytes | str]


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: Message
    body: bytes


Handler = Callable[[Recorded], Reply]


def sequence(*replies: Reply | Handler) -> Handler:
    """A handler giving ``replies`` in turn (each a reply or a handler); the last one repeats."""
    if not replies:
        raise ValueError("sequence needs at least one reply")
    calls = itertools.count()

    def handle(request: Recorded) -> Reply:
        reply = replies[min(next(calls), len(replies) - 1)]
        return reply(request) if callable(reply) else reply

    return handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True
    scripted: ScriptedServer


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a stuck client cannot keep a handler thread (and the join at stop) forever

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Recorded(self.command, self.path, self.headers, body)
        status, headers, payload = self.server.scripted.dispatch(request)
        data = payload.encode() if isinstance(payload, str) else payload
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        try:
            self.send_response(status)
            for name, value in pairs:
                self.send_header(name, value)
            if not any(name.lower() == "content-length" for name, _ in pairs):
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # the base class names it format
        pass


class ScriptedServer:
    """An HTTP server on 127.0.0.1 whose routes are handler functions; records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Recorded] = []
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _RequestHandler)
        self._httpd.scripted = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="scripted-server"
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, method: str, path: str, handler: Handler | Reply) -> None:
        """Answer ``method path`` with ``handler`` (or always the same reply)."""
        self.routes[(method.upper(), path)] = handler if callable(handler) else sequence(handler)

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def dispatch(self, request: Recorded) -> Reply:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return 404, {"Content-Type": "text/plain"}, f"no route for {request.method} {request.path}"
        return handler(request)

    def hang(self, request: Recorded) -> Reply:
        """A handler that accepts the request and answers nothing until the server stops."""
        self._stopping.wait()
        return 503, {"Content-Type": "text/plain"}, "stopped"

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
