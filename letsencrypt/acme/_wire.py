"""HTTP/1.1 on one kept-alive socket: exactly what the ACME transport needs (RFC 9112).

Why not ``http.client``: it parses every response head with the ``email`` package and reads
through a file object, about half of the client's CPU per request; a 100-name order is ~200
requests. This module sends each request with one ``sendall`` and parses the answer from one
buffer filled by ``recv``, checking a deadline before every read (so a server trickling bytes
cannot stretch an exchange past it).

What it does: status line and header fields (obsolete line folding joined, 1xx answers
skipped), bodies delimited by ``Content-Length``, ``chunked`` (extensions and trailers
skipped) or the connection's close; no body for HEAD, 204 and 304; a cap on the body size;
``Connection: close`` and HTTP/1.0 honoured; a CONNECT tunnel through an HTTP proxy; TLS with
the caller's context (certificate and host name checked by ``ssl``). Requests with a control
character or a space in the target or a header are refused before anything is sent.

Errors: ``TimeoutError`` (the deadline), ``ssl.SSLError``, ``OSError`` (connect, reset),
``ConnectionClosed`` (the server closed before the first byte of an answer: a kept-alive
connection gone stale), ``SlowAnswer`` (a ``TimeoutError``: the head came, the body did not in
time), ``ProtocolError`` (not HTTP/1.x, or cut short), ``TooLarge``.

Imports: the standard library only.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import time
from collections.abc import Callable

__all__ = ["Answer", "Connection", "ConnectionClosed", "Headers", "ProtocolError", "SlowAnswer", "TooLarge"]

MAX_HEAD = 64 * 1024  # status line and header fields; ACME answers send well under 4 KiB
_READ = 256 * 1024
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")  # in a method or request target
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # in a header value (tab is fine)
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() also takes "²", which int() refuses
_STATUS = re.compile(r"[0-9]{3}")
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]+")  # int(x, 16) also takes "0x", "+" and "_"


class ProtocolError(Exception):
    """The answer is not HTTP/1.x, or it ended before it was whole."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection before sending any byte of an answer."""


class TooLarge(Exception):
    """The body is longer than the caller accepts."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}: the body is too large")
        self.status = status


class SlowAnswer(TimeoutError):
    """The head of the answer came, its body did not within the deadline."""


class Headers:
    """Header fields in arrival order; names compared without case. ``get`` gives the first.

    Lookups go through an index by lower-cased name, made at the first one (an answer is asked
    for its type, length, nonce, location, links and retry time: lower-casing every field for each
    lookup was a tenth of the client's work per answer).
    """

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields
        self._index: dict[str, list[str]] | None = None

    def _by_name(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for key, value in self._fields:
                index.setdefault(key.lower(), []).append(value)
            self._index = index
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._by_name().get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self._by_name().get(name.lower(), ()))

    def __getitem__(self, name: str) -> str | None:  # as email.message.Message: None when absent
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


class Answer:
    """One parsed response."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: Headers, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body


class Connection:
    """One connection to ``host:port`` (through ``proxy`` when given), opened on first use.

    ``tls``: the context for HTTPS, ``None`` for plain HTTP. ``proxy``: ``(host, port, headers)``
    of an HTTP proxy: HTTPS goes through a CONNECT tunnel; plain HTTP requests are sent to the
    proxy as they are (the caller then gives the whole URL as the target).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        proxy: tuple[str, int, dict[str, str]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.proxy = proxy
        self.sock: socket.socket | None = None
        self._buffer = bytearray()  # appended to in place: a large body is not copied per read
        default_port = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port == default_port else f"{name}:{port}"

    @property
    def is_open(self) -> bool:
        return self.sock is not None

    def closed_by_peer(self) -> bool:
        """Whether an idle open connection has something to read: the server's close (or junk)."""
        if self.sock is None:
            return False
        if self._buffer:
            return True
        try:
            if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                return True
            return bool(_readable(self.sock))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        sock, self.sock, self._buffer = self.sock, None, bytearray()
        if sock is not None:
            sock.close()

    # --- one exchange ------------------------------------------------------------------------

    def exchange(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        *,
        deadline: float,
        max_body: int,
    ) -> Answer:
        """Send one request and read its whole answer; closes the connection on any failure."""
        request = _request_bytes(method, target, self.host_header, headers, body)
        try:
            self._send(request, deadline)
            answer, keep = self._read_answer(method, deadline, max_body)
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return answer

    def pipeline(
        self,
        count: int,
        prepare: Callable[[int], tuple[str, str, list[tuple[str, str]], bytes | None] | None],
        received: Callable[[int, Answer], None],
        *,
        window: int,
        timeout: float,
        max_body: int,
    ) -> int:
        """Up to ``window`` requests in flight at once (HTTP/1.1 pipelining, RFC 9112 §9.3.2).

        ``prepare(i)`` makes request ``i`` just before it is sent (``None``, or a request this
        module refuses to send: send no more), so it may use what the earlier answers brought (an
        ACME nonce); ``received(i, answer)`` gets each answer, in order, before the next request is
        prepared. Each answer must come within ``timeout`` of being awaited. Returns how many
        answers came: when the server closes, breaks the protocol or is too slow, the connection is
        closed and the rest is the caller's to send again, one by one (the usual errors then say
        what is wrong). An exception from a callback closes the connection (answers may still be
        owed on it) and is raised.
        """
        methods: list[str] = []
        answered = 0
        try:
            while answered < count:
                while len(methods) < count and len(methods) - answered < window:
                    request = prepare(len(methods))
                    if request is None:
                        count = len(methods)
                        break
                    method, target, headers, body = request
                    try:
                        data = _request_bytes(method, target, self.host_header, headers, body)
                    except ValueError:  # refused (a space in the target): the caller's exchange() will say so
                        count = len(methods)
                        break
                    try:
                        self._send(data, time.monotonic() + timeout)
                    except (OSError, ProtocolError):
                        self.close()
                        return answered
                    methods.append(method)
                if answered >= len(methods):
                    break
                try:
                    answer, keep = self._read_answer(methods[answered], time.monotonic() + timeout, max_body)
                except (OSError, ProtocolError, TooLarge):
                    self.close()
                    return answered
                answered += 1
                received(answered - 1, answer)
                if not keep:
                    self.close()
                    break
        except BaseException:
            self.close()
            raise
        return answered

    def _send(self, data: bytes, deadline: float) -> None:
        """Open the connection if it is not, then send ``data`` whole within the deadline."""
        if self.sock is None:
            self._open(deadline)
        assert self.sock is not None
        self.sock.settimeout(_remaining(deadline))
        self.sock.sendall(data)

    def _open(self, deadline: float) -> None:
        host, port = (self.proxy[0], self.proxy[1]) if self.proxy else (self.host, self.port)
        # An ASCII name goes to getaddrinfo as bytes: a str would load the idna codec (~3 ms) first.
        address: str | bytes = host.encode("ascii") if host.isascii() else host
        sock = socket.create_connection((address, port), timeout=_remaining(deadline))  # type: ignore[arg-type]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            if self.proxy is not None and self.tls is not None:
                self._tunnel(deadline)
            if self.tls is not None:
                sock.settimeout(_remaining(deadline))
                # As bytes, an ASCII name skips ssl's idna encoding (and the codec's import).
                name: str | bytes = self.host.encode("ascii") if self.host.isascii() else self.host
                self.sock = self.tls.wrap_socket(sock, server_hostname=name)
        except BaseException:
            self.sock = None
            sock.close()
            raise

    def _tunnel(self, deadline: float) -> None:
        assert self.proxy is not None and self.sock is not None
        # host:port, the port always: host_header leaves out 443, the default port of a TLS origin
        authority = self.host_header if self.port != 443 else f"{self.host_header}:443"
        request = _request_bytes("CONNECT", authority, authority, list(self.proxy[2].items()), None)
        self.sock.settimeout(_remaining(deadline))
        self.sock.sendall(request)
        status, reason, _ = self._read_head(deadline)
        if status != 200:
            raise OSError(f"the proxy {self.proxy[0]}:{self.proxy[1]} answered {status} {reason} to CONNECT")
        if self._buffer:
            raise ProtocolError("the proxy sent data after its CONNECT answer")

    # --- reading -----------------------------------------------------------------------------

    def _fill(self, deadline: float) -> bool:
        """Append what has arrived to the buffer; ``False`` at the end of the stream."""
        sock = self.sock
        assert sock is not None
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(_READ)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _read_head(self, deadline: float) -> tuple[int, str, Headers]:
        """Status, reason and fields of the next answer head (1xx heads skipped)."""
        started = not self._buffer
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(self._buffer) > MAX_HEAD + 3:  # the head's end, when it comes, is past MAX_HEAD
                    raise ProtocolError(f"the answer's head is over {MAX_HEAD // 1024} KiB")
                if not self._fill(deadline):
                    if started and not self._buffer:
                        raise ConnectionClosed("the server closed the connection without an answer")
                    raise ProtocolError("the connection closed in the middle of the answer's head")
                end = self._buffer.find(b"\r\n\r\n")
            if end > MAX_HEAD:  # a whole head can come in one read
                raise ProtocolError(f"the answer's head is over {MAX_HEAD // 1024} KiB")
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            status, reason, headers = _parse_head(head)
            if not 100 <= status < 200 or status == 101:
                return status, reason, headers
            started = False

    def _read_answer(self, method: str, deadline: float, max_body: int) -> tuple[Answer, bool]:
        status, reason, headers = self._read_head(deadline)
        try:
            return self._read_body(method, status, reason, headers, deadline, max_body)
        except TooLarge:
            raise TooLarge(status) from None
        except TimeoutError as err:
            raise SlowAnswer("the answer's body did not come within the deadline") from err

    def _read_body(
        self, method: str, status: int, reason: str, headers: Headers, deadline: float, max_body: int
    ) -> tuple[Answer, bool]:
        version_keep = headers.get(":version") != "HTTP/1.0"
        connection = (headers.get("Connection") or "").lower()
        keep = "close" not in connection and (version_keep or "keep-alive" in connection)
        fields = Headers([(k, v) for k, v in headers.items() if k != ":version"])
        if method == "HEAD" or status in (204, 304):
            return Answer(status, reason, fields, b""), keep
        transfer = ", ".join(headers.get_all("Transfer-Encoding")).lower()  # one list over all its field lines
        if transfer:
            if transfer.rsplit(",", 1)[-1].strip() != "chunked":
                return Answer(status, reason, fields, self._read_to_close(deadline, max_body)), False
            return Answer(status, reason, fields, self._read_chunked(deadline, max_body)), keep
        lengths = {value.strip() for value in headers.get_all("Content-Length")}
        if not lengths:
            return Answer(status, reason, fields, self._read_to_close(deadline, max_body)), False
        if len(lengths) != 1 or not _DIGITS.fullmatch(next(iter(lengths))):
            raise ProtocolError(f"invalid Content-Length {', '.join(sorted(lengths))}")
        length = int(next(iter(lengths)))
        if length > max_body:
            raise TooLarge(0)
        return Answer(status, reason, fields, self._read_exactly(length, deadline)), keep

    def _read_exactly(self, length: int, deadline: float) -> bytes:
        while len(self._buffer) < length:
            if not self._fill(deadline):
                raise ProtocolError(f"the answer ended after {len(self._buffer)} of {length} bytes")
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return body

    def _read_to_close(self, deadline: float, max_body: int) -> bytes:
        while True:  # the size checked before every read too: the head's read may have brought it all
            if len(self._buffer) > max_body:
                raise TooLarge(0)
            if not self._fill(deadline):
                break
        body = bytes(self._buffer)
        self._buffer.clear()
        return body

    def _read_line(self, deadline: float) -> bytes:
        end = self._buffer.find(b"\r\n")
        while end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ProtocolError("a chunk size line or trailer is too long")
            if not self._fill(deadline):
                raise ProtocolError("the chunked answer ended early")
            end = self._buffer.find(b"\r\n")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _read_chunked(self, deadline: float, max_body: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self._read_line(deadline).split(b";", 1)[0].strip()
            if not _HEX_DIGITS.fullmatch(line):
                raise ProtocolError(f"invalid chunk size {line[:20]!r}")
            chunk_size = int(line, 16)
            if chunk_size == 0:
                while self._read_line(deadline):  # trailer fields, up to the empty line
                    pass
                return b"".join(parts)
            size += chunk_size
            if size > max_body:
                raise TooLarge(0)
            parts.append(self._read_exactly(chunk_size, deadline))
            if self._read_exactly(2, deadline) != b"\r\n":
                raise ProtocolError("a chunk does not end with CRLF")


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the deadline passed")
    return remaining


def _readable(sock: socket.socket) -> bool:
    if hasattr(select, "poll"):  # select() refuses a descriptor over 1023
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _request_bytes(method: str, target: str, host: str, headers: list[tuple[str, str]], body: bytes | None) -> bytes:
    if _FORBIDDEN.search(method) or _FORBIDDEN.search(target) or not target:
        raise ValueError(f"a request target may not contain control characters or spaces: {target!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers:
        if _FORBIDDEN.search(name) or ":" in name or _BAD_VALUE.search(value):
            raise ValueError(f"invalid header field {name!r}")
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


def _parse_head(head: bytes) -> tuple[int, str, Headers]:
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[0] not in ("HTTP/1.1", "HTTP/1.0") or not _STATUS.fullmatch(parts[1]):
        raise ProtocolError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
    fields: list[tuple[str, str]] = [(":version", parts[0])]
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # obsolete line folding (RFC 9112 §5.2): part of the previous value
            if len(fields) == 1:
                raise ProtocolError("the answer's head starts with a folded line")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"invalid header line {line[:80]!r}")
        fields.append((name, value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", Headers(fields)
