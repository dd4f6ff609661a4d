"""``letsencrypt.acme._wire.Connection.exchange`` against a raw server on real loopback sockets.

``test_http_transport.py`` covers what the transport builds on this (keep-alive, stale connections,
proxies, trust anchors, deadlines). This file covers the HTTP/1.1 reader and writer themselves, with
a server thread that writes exactly the bytes a test chooses, in the pieces it chooses:

1. properties (hypothesis): any answer framed by ``Content-Length``, ``chunked`` (chunk extensions,
   trailers) or the connection's close, arriving in pieces of any size, is read back exactly, and a
   kept-alive connection then carries the next request; a request's bytes are exactly what was asked;
   a mangled answer gives one of the documented errors, never another exception;
2. edge cases of the answer: 1xx heads, obsolete line folding, HTTP/1.0 and ``Connection: close``,
   answers without a body, transfer codings, bad framing and bad heads, the size cap, answers cut
   short, a server that closes, stalls or stays silent;
3. the request's bytes: request line, ``Host`` first, the caller's fields in order, ``Content-Length``
   only with a body; a target or field that could split the request is refused before any byte;
4. ``closed_by_peer``: an idle connection closed by the server, or sent bytes nobody asked for.

No mocks: every server is a thread on a real socket; the fixture stops it, joins its threads and
checks its scripts did not fail; every ``Connection`` made through it is closed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import raw_server
from hypothesis import given, settings
from hypothesis import strategies as st
from integration._procs import skip_or_fail
from raw_server import TIMEOUT, RawServer, message

from letsencrypt.acme import _wire
from letsencrypt.acme._wire import Answer, Connection, ConnectionClosed, ProtocolError, SlowAnswer, TooLarge

MAX_BODY = 2**20

# --- a raw server --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reply:
    """What the server does for one request: write ``data`` (its first bytes in ``pieces``), then...

    ``pieces``: sizes of the first pieces, each its own ``send``, ``pause`` seconds apart (the rest of
    ``data`` follows in one piece); ``close``: close the connection afterwards; ``stall``: keep it open
    and silent until the server stops.
    """

    data: bytes = b""
    pieces: tuple[int, ...] = ()
    pause: float = 0.0
    close: bool = False
    stall: bool = False


class Peer(raw_server.Peer):
    """One accepted connection: every byte received (``raw``) and each request read (``requests``)."""

    def send(self, reply: Reply) -> None:
        data, position = reply.data, 0
        for size in reply.pieces:
            if position >= len(data):
                break
            self.sock.sendall(data[position : position + size])
            position += size
            time.sleep(reply.pause)  # the client's recv wakes up for this piece alone
        if position < len(data):
            self.sock.sendall(data[position:])


class Server(RawServer[Peer]):
    """A TCP server on ``host`` answering every request with the next ``Reply`` queued by the test.

    ``peers`` lists the connections in the order they were accepted. A request with no reply queued
    within ``TIMEOUT`` is a broken test (recorded in ``failures``, as is anything a script raises).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.replies: queue.Queue[Reply] = queue.Queue()
        self.clients: list[Connection] = []  # closed when the server stops
        super().__init__(self._answer, Peer, host=host)

    def reply(self, *replies: Reply | bytes) -> None:
        for reply in replies:
            self.replies.put(reply if isinstance(reply, Reply) else Reply(reply))

    def connect(self) -> Connection:
        """A plain-HTTP ``Connection`` to this server, closed when the server stops."""
        connection = Connection(self.host, self.port, tls=None)
        self.clients.append(connection)
        return connection

    @property
    def requests(self) -> list[tuple[int, bytes]]:  # type: ignore[override]
        """Every request read so far: (index of its connection, its bytes)."""
        return [(peer.index, request.data) for peer in self.peers for request in peer.requests]

    def _answer(self, peer: Peer) -> None:
        while peer.read_request() is not None:
            reply = self.replies.get(timeout=TIMEOUT)
            peer.send(reply)
            if reply.close:
                return
            if reply.stall:
                peer.stopping.wait()
                return

    def stop(self) -> None:
        for connection in self.clients:
            connection.close()
        super().stop()

    def drain(self) -> None:
        """Forget replies a failed exchange left queued."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.replies.get_nowait()


def _running() -> Iterator[Server]:
    started = Server()
    yield started
    started.stop()
    assert started.failures == []


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _running()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Server]:
    """One server for every example of the property tests (a new server per example would be slow)."""
    yield from _running()


def exchange(
    connection: Connection,
    target: str = "/",
    *,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    timeout: float = TIMEOUT,
    max_body: int = MAX_BODY,
) -> Answer:
    deadline = time.monotonic() + timeout
    return connection.exchange(method, target, headers or [], body, deadline=deadline, max_body=max_body)


def failing(connection: Connection, error: type[BaseException], **kwargs: Any) -> BaseException:
    """The error ``exchange`` raised; a failed exchange leaves the connection closed."""
    with pytest.raises(error) as caught:
        exchange(connection, **kwargs)
    assert not connection.is_open
    return caught.value


def ok(body: bytes = b"ok", *fields: str, status: str = "200 OK", version: str = "HTTP/1.1") -> bytes:
    """An answer with Content-Length (unless ``fields`` frame it otherwise) and ``fields`` as given."""
    return message(f"{version} {status}", fields, body)


# --- 1. properties -------------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VISIBLE = "".join(chr(code) for code in range(0x21, 0x7F))
FRAMING = {"content-length", "transfer-encoding", "connection"}

tokens = st.text(TCHAR, min_size=1, max_size=12)
field_names = st.one_of(st.sampled_from(["Link", "link", "X-Dup", "x-dup", "Retry-After"]), tokens).filter(
    lambda name: name.lower() not in FRAMING
)
words = st.text(VISIBLE, min_size=1, max_size=10)
field_values = st.lists(words, max_size=3).map(" ".join)  # visible ASCII, single spaces inside
ows = st.sampled_from(["", " ", "  ", "\t", " \t"])
interim_heads = st.sampled_from(
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"]
)


@dataclasses.dataclass(frozen=True)
class Generated:
    status: int
    reason: str
    fields: list[tuple[str, str]]  # as the answer must give them, the framing field included
    body: bytes
    framing: str  # "length", "chunked" or "close"
    raw: bytes


def _chunk_extensions(draw: st.DrawFn) -> str:
    forms = st.sampled_from([";a=b", ";ext", ' ; q="x; y"', ";n=1;m", "; a = b"])
    return "".join(draw(st.lists(forms, max_size=2)))


@st.composite
def generated_answers(draw: st.DrawFn) -> Generated:
    status = draw(st.integers(200, 599).filter(lambda code: code not in (204, 304)))
    reason = draw(st.lists(words, max_size=3).map(" ".join))
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    fields = draw(st.lists(st.tuples(field_names, field_values), max_size=5))
    if framing != "close":
        name = draw(st.sampled_from(["Content-Length", "content-length", "CONTENT-LENGTH"]))
        if framing == "chunked":
            name = draw(st.sampled_from(["Transfer-Encoding", "transfer-encoding"]))
        value = str(len(body)) if framing == "length" else draw(st.sampled_from(["chunked", "Chunked", "CHUNKED"]))
        fields.insert(draw(st.integers(0, len(fields))), (name, value))

    head = [f"HTTP/1.1 {status} {reason}" if reason or draw(st.booleans()) else f"HTTP/1.1 {status}"]
    head += [f"{name}:{draw(ows)}{value}{draw(ows)}" for name, value in fields]
    raw = b"".join(draw(st.lists(interim_heads, max_size=2)))
    raw += ("\r\n".join(head) + "\r\n\r\n").encode("ascii")
    if framing == "chunked":
        position = 0
        while position < len(body):
            size = draw(st.integers(1, max(1, len(body) - position)))
            hex_size = draw(st.sampled_from(["{:x}", "{:X}", "0{:x}"])).format(size)
            raw += f"{hex_size}{_chunk_extensions(draw)}\r\n".encode() + body[position : position + size] + b"\r\n"
            position += size
        raw += f"{draw(st.sampled_from(['0', '000']))}{_chunk_extensions(draw)}\r\n".encode()
        trailers = draw(st.lists(st.tuples(tokens, field_values), max_size=2))
        raw += "".join(f"{name}: {value}\r\n" for name, value in trailers).encode() + b"\r\n"
    else:
        raw += body
    return Generated(status, reason, fields, body, framing, raw)


piece_sizes = st.lists(st.one_of(st.just(1), st.integers(1, 40)), max_size=24).map(tuple)


@settings(max_examples=60, deadline=None)
@given(answer=generated_answers(), pieces=piece_sizes, slack=st.integers(0, 2), method=st.sampled_from(["GET", "POST"]))
def test_any_answer_in_any_pieces_is_read_back_exactly(
    shared_server: Server, answer: Generated, pieces: tuple[int, ...], slack: int, method: str
) -> None:
    server = shared_server
    server.drain()
    connection = Connection(server.host, server.port, tls=None)
    try:
        server.reply(Reply(answer.raw, pieces=pieces, pause=0.0002, close=answer.framing == "close"))
        body = b"{}" if method == "POST" else None
        got = exchange(connection, "/order", method=method, body=body, max_body=len(answer.body) + slack)

        assert (got.status, got.reason) == (answer.status, answer.reason)
        assert got.headers.items() == answer.fields
        for name, _ in answer.fields:
            values = [value for other, value in answer.fields if other.lower() == name.lower()]
            assert got.headers.get_all(name.swapcase()) == values
            assert got.headers.get(name.upper()) == values[0]
            assert got.headers[name.lower()] == values[0]
            assert name.swapcase() in got.headers
        assert got.headers.get("x-never-generated-so-long") is None
        assert got.headers.get_all("x-never-generated-so-long") == []
        assert got.body == answer.body

        if answer.framing == "close":
            assert not connection.is_open
            return
        assert connection.is_open
        assert not connection.closed_by_peer()
        used = server.requests[-1][0]
        server.reply(ok(b"second"))
        assert exchange(connection, "/again").body == b"second"
        assert server.requests[-1] == (used, f"GET /again HTTP/1.1\r\nHost: {connection.host_header}\r\n\r\n".encode())
    finally:
        connection.close()


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE"]),
    target=st.one_of(st.text(VISIBLE, max_size=30).map(lambda path: "/" + path), st.just("*")),
    headers=st.lists(st.tuples(tokens.filter(lambda name: name.lower() not in FRAMING | {"host"}), field_values)),
    body=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_request_bytes_are_exactly_what_was_asked(
    shared_server: Server, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
) -> None:
    server = shared_server
    server.drain()
    connection = Connection(server.host, server.port, tls=None)
    try:
        server.reply(ok(b"", "Content-Length: 0"))
        exchange(connection, target, method=method, headers=headers, body=body)
        lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        assert server.requests[-1][1] == ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    finally:
        connection.close()


DOCUMENTED = (ProtocolError, ConnectionClosed, TooLarge)


@settings(max_examples=60, deadline=None)
@given(
    answer=generated_answers(),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 2), st.binary(min_size=1, max_size=3)), max_size=4),
)
def test_a_mangled_answer_gives_a_documented_error_or_an_answer(
    shared_server: Server, answer: Generated, edits: list[tuple[int, int, bytes]]
) -> None:
    """Bytes replaced, dropped or inserted anywhere: never an IndexError, ValueError, UnicodeError..."""
    raw = answer.raw
    for position, action, data in edits:
        at = position % (len(raw) + 1)
        if action == 0:  # replaced
            raw = raw[:at] + data + raw[at + 1 :]
        elif action == 1:  # dropped
            raw = raw[:at] + raw[at + 1 :]
        else:  # inserted
            raw = raw[:at] + data + raw[at:]
    server = shared_server
    server.drain()
    connection = Connection(server.host, server.port, tls=None)
    try:
        server.reply(Reply(raw, close=True))  # every framing ends at the close: no wait for the deadline
        with contextlib.suppress(*DOCUMENTED):
            got = exchange(connection, max_body=400)
            assert 0 <= got.status <= 999
            assert len(got.body) <= 400
    finally:
        connection.close()


# --- 2. edge cases of the answer -----------------------------------------------------------------


def test_interim_answers_are_skipped(server: Server) -> None:
    server.reply(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final", "X-Final: yes")
    )
    connection = server.connect()
    got = exchange(connection, method="POST", body=b"{}")
    assert (got.status, got.reason, got.body) == (200, "OK", b"final")
    assert got.headers.items() == [("X-Final", "yes"), ("Content-Length", "5")]  # not the 103's Link
    assert connection.is_open


def test_close_after_an_interim_answer_is_a_protocol_error_not_a_stale_connection(server: Server) -> None:
    server.reply(Reply(b"HTTP/1.1 100 Continue\r\n\r\n", close=True))
    failing(server.connect(), ProtocolError)


def test_switching_protocols_is_the_answer(server: Server) -> None:
    server.reply(ok(b"", "Upgrade: h2c", "Content-Length: 0", status="101 Switching Protocols"))
    assert exchange(server.connect()).status == 101


def test_obsolete_line_folding_joins_the_previous_value(server: Server) -> None:
    server.reply(
        b"HTTP/1.1 200 OK\r\nX-Long: first\r\n  second\r\n\tthird \r\nX-Empty:\r\n folded\r\n"
        b"X-Blank: value\r\n \r\nContent-Length: 2\r\n\r\nok"
    )
    got = exchange(server.connect())
    assert got.headers.items() == [
        ("X-Long", "first second third"),
        ("X-Empty", "folded"),
        ("X-Blank", "value"),
        ("Content-Length", "2"),
    ]
    assert got.body == b"ok"


def test_folded_first_field_is_a_protocol_error(server: Server) -> None:
    server.reply(b"HTTP/1.1 200 OK\r\n folded\r\nContent-Length: 0\r\n\r\n")
    failing(server.connect(), ProtocolError)


def test_http_1_0_without_keep_alive_closes_the_connection(server: Server) -> None:
    server.reply(ok(b"one", version="HTTP/1.0"), ok(b"two"))  # the server itself leaves it open
    connection = server.connect()
    assert exchange(connection).body == b"one"
    assert not connection.is_open
    assert exchange(connection).body == b"two"
    assert [index for index, _ in server.requests] == [0, 1]


def test_http_1_0_with_keep_alive_keeps_the_connection(server: Server) -> None:
    server.reply(ok(b"one", "Connection: Keep-Alive", version="HTTP/1.0"), ok(b"two", version="HTTP/1.0"))
    connection = server.connect()
    assert exchange(connection).body == b"one"
    assert connection.is_open
    assert exchange(connection).body == b"two"
    assert not connection.is_open
    assert [index for index, _ in server.requests] == [0, 0]


def test_http_1_0_body_to_the_close(server: Server) -> None:
    server.reply(Reply(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", close=True))
    connection = server.connect()
    assert exchange(connection).body == b"all of it"
    assert not connection.is_open


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "CLOSE"])
def test_connection_close_closes(value: str, server: Server) -> None:
    server.reply(ok(b"one", f"Connection: {value}"), ok(b"two"))  # the server itself leaves it open
    connection = server.connect()
    assert exchange(connection).body == b"one"
    assert not connection.is_open
    assert exchange(connection).body == b"two"
    assert [index for index, _ in server.requests] == [0, 1]


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", "200 OK"), ("GET", "204 No Content"), ("GET", "304 Not Modified")]
)
@pytest.mark.parametrize("framing", ["Content-Length: 5", "Transfer-Encoding: chunked"])
def test_answers_without_a_body(method: str, status: str, framing: str, server: Server) -> None:
    server.reply(ok(b"", framing, "ETag: x", status=status), ok(b"next"))
    connection = server.connect()
    got = exchange(connection, method=method)
    assert (got.status, got.body) == (int(status[:3]), b"")
    assert got.headers.items() == [(framing.split(":")[0], framing.split(": ")[1]), ("ETag", "x")]
    assert exchange(connection).body == b"next"  # nothing was left to read: the next answer parses
    assert [index for index, _ in server.requests] == [0, 0]


@pytest.mark.parametrize(
    "fields",
    [
        ["Transfer-Encoding: gzip, chunked"],
        ["Transfer-Encoding: gzip,chunked"],
        ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],  # one list in two field lines
        ["Transfer-Encoding: chunked", "Content-Length: 99"],  # chunked wins
    ],
)
def test_chunked_last_is_chunked(fields: list[str], server: Server) -> None:
    server.reply(ok(b"4;x=y\r\n\x1f\x8b\x08\x00\r\n0\r\nX-Trailer: t\r\n\r\n", *fields), ok(b"next"))
    connection = server.connect()
    got = exchange(connection)
    assert got.body == b"\x1f\x8b\x08\x00"  # still gzip: decoding is not the reader's business
    assert got.headers.get("X-Trailer") is None
    assert connection.is_open
    assert exchange(connection).body == b"next"


@pytest.mark.parametrize("coding", ["gzip", "chunked, gzip", "identity"])
def test_transfer_coding_without_chunked_last_is_read_to_the_close(coding: str, server: Server) -> None:
    server.reply(Reply(ok(b"5\r\nabcde\r\n0\r\n\r\n", f"Transfer-Encoding: {coding}", "Content-Length: 3"), close=True))
    connection = server.connect()
    assert exchange(connection).body == b"5\r\nabcde\r\n0\r\n\r\n"
    assert not connection.is_open


def test_the_same_content_length_twice_is_fine(server: Server) -> None:
    server.reply(ok(b"abc", "Content-Length: 3", "Content-Length:  3 "))
    assert exchange(server.connect()).body == b"abc"


@pytest.mark.parametrize(
    "fields",
    [
        ["Content-Length: 3", "Content-Length: 4"],
        ["Content-Length: abc"],
        ["Content-Length: -1"],
        ["Content-Length: +3"],
        ["Content-Length: 3.0"],
        ["Content-Length: 0x3"],
        ["Content-Length: 3 3"],
        ["Content-Length: 3, 4"],
        ["Content-Length:"],
        ["Content-Length: \xb3"],  # SUPERSCRIPT THREE: str.isdigit() says yes, int() says no
        ["Content-Length: 1\xb2"],
    ],
)
def test_bad_content_length_is_a_protocol_error(fields: list[str], server: Server) -> None:
    server.reply(ok(b"abcd", *fields))
    failing(server.connect(), ProtocolError)


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/2 200",
        b"HTTP/2.0 200 OK",
        b"ICY 200 OK",
        b"garbage",
        b"",
        b"http/1.1 200 OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 2x0 OK",
        b"HTTP/1.1 +20 OK",
        b"HTTP/1.1 \xb2\xb2\xb2 OK",  # superscript digits
        b"HTTP/1.1 2\xb300 OK",
        b"\x00\x01\x02\xff",
    ],
)
def test_not_http_1_x_is_a_protocol_error(status_line: bytes, server: Server) -> None:
    server.reply(status_line + b"\r\nContent-Length: 0\r\n\r\n")
    failing(server.connect(), ProtocolError)


@pytest.mark.parametrize(
    "line",
    [b"no colon here", b": no name", b"Name : space before the colon", b"\x00"],
)
def test_bad_field_line_is_a_protocol_error(line: bytes, server: Server) -> None:
    server.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + line + b"\r\n\r\n")
    failing(server.connect(), ProtocolError)


def _head(size: int) -> bytes:
    """An answer whose head (status line and fields, without the last CRLF CRLF) is ``size`` bytes."""
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
    return start + b"a" * (size - len(start)) + b"\r\n\r\nok"


@pytest.mark.parametrize("pieces", [(), (1000,) * 70], ids=["one-piece", "pieces"])
def test_head_of_64_kib_is_read(pieces: tuple[int, ...], server: Server) -> None:
    server.reply(Reply(_head(_wire.MAX_HEAD), pieces=pieces))
    got = exchange(server.connect())
    assert got.body == b"ok"
    assert len(got.headers.get("X-Pad") or "") > 60_000


@pytest.mark.parametrize("pieces", [(), (1000,) * 70], ids=["one-piece", "pieces"])
@pytest.mark.parametrize("extra", [1, 4, 200 * 1024])
def test_head_over_64_kib_is_a_protocol_error(pieces: tuple[int, ...], extra: int, server: Server) -> None:
    server.reply(Reply(_head(_wire.MAX_HEAD + extra), pieces=pieces))
    error = failing(server.connect(), ProtocolError)
    assert "64 KiB" in str(error)


def test_endless_head_is_a_protocol_error_before_the_deadline(server: Server) -> None:
    server.reply(Reply(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 100_000, stall=True))  # no end of the head
    started = time.monotonic()
    failing(server.connect(), ProtocolError)
    assert time.monotonic() - started < 2


def _chunked(body: bytes, *fields: str, status: str = "200 OK") -> bytes:
    return ok(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body), "Transfer-Encoding: chunked", *fields, status=status)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(ok(b"x" * 101, status="201 Created")),
        Reply(ok(b"x" * 101, status="201 Created"), pieces=(60, 1, 1)),
        Reply(_chunked(b"x" * 101, status="201 Created")),
        Reply(ok(b"4\r\nxxxx\r\n" * 30 + b"0\r\n\r\n", "Transfer-Encoding: chunked", status="201 Created")),
        Reply(b"HTTP/1.1 201 Created\r\n\r\n" + b"x" * 101, close=True),  # all of it in one piece, then the close
        Reply(b"HTTP/1.1 201 Created\r\n\r\n" + b"x" * 101, pieces=(40, 1, 1, 20), pause=0.001, close=True),
        Reply(b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n" + b"x" * 101, stall=True),  # too large, still open
    ],
    ids=["length", "length-pieces", "chunked", "chunked-pieces", "close", "close-pieces", "close-open"],
)
def test_body_over_max_body_is_too_large(reply: Reply, server: Server) -> None:
    server.reply(reply)
    error = failing(server.connect(), TooLarge, max_body=100)
    assert isinstance(error, TooLarge)
    assert error.status == 201
    assert "201" in str(error)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_body_of_exactly_max_body_is_read(framing: str, server: Server) -> None:
    body = bytes(range(100))
    if framing == "length":
        server.reply(ok(body))
    elif framing == "chunked":
        server.reply(_chunked(body))
    else:
        server.reply(Reply(b"HTTP/1.1 200 OK\r\n\r\n" + body, close=True))
    assert exchange(server.connect(), max_body=100).body == body


@pytest.mark.parametrize(
    "sent",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
        b"HTTP/1.1 200 OK\r\nContent-Len",  # in the middle of the head
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhalf",  # in the middle of a chunk
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfull\r\n",  # no last chunk
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfull",  # no CRLF after the chunk
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfullXX0\r\n\r\n",  # not CRLF after it
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: t\r\n",  # trailers never end
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4",  # in the middle of a size line
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-4\r\nfull\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x4\r\nfull\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+4\r\nfull\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0_4\r\nfull\r\n0\r\n\r\n",
    ],
    ids=[
        "length",
        "head",
        "mid-chunk",
        "no-last-chunk",
        "no-crlf",
        "not-crlf",
        "trailers",
        "size-line",
        "bad-size",
        "empty-size",
        "negative-size",
        "0x-size",
        "plus-size",
        "underscore-size",
    ],
)
def test_answer_cut_short_or_misframed_is_a_protocol_error(sent: bytes, server: Server) -> None:
    server.reply(Reply(sent, close=True))
    error = failing(server.connect(), ProtocolError)
    assert not isinstance(error, ConnectionClosed)


def test_close_before_any_byte_is_connection_closed(server: Server) -> None:
    server.reply(Reply(close=True))
    error = failing(server.connect(), ConnectionClosed)
    assert isinstance(error, ConnectionError)  # the transport sends such a request once more


def test_close_on_a_kept_alive_connection_is_connection_closed(server: Server) -> None:
    server.reply(ok(), Reply(close=True), ok(b"fresh"))
    connection = server.connect()
    assert exchange(connection).body == b"ok"
    failing(connection, ConnectionClosed)
    assert exchange(connection).body == b"fresh"
    assert [index for index, _ in server.requests] == [0, 0, 1]


TRICKLE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"


def _failing_at_the_deadline(server: Server, reply: Reply, error: type[BaseException]) -> BaseException:
    """The ``error`` an exchange with a deadline of 0.3 s raised at about that deadline, ``reply`` sent."""
    server.reply(reply)
    started = time.monotonic()
    caught = failing(server.connect(), error, timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.5
    return caught


@pytest.mark.parametrize(
    "reply",
    [
        Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", stall=True),
        Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", stall=True),
        Reply(b"HTTP/1.1 200 OK\r\n\r\nto the close, which never comes", stall=True),
        Reply(TRICKLE_HEAD + b"x" * 1000, pieces=(len(TRICKLE_HEAD),) + (1,) * 200, pause=0.01),  # the head at once
    ],
    ids=["length", "chunked", "close", "trickle"],
)
def test_body_stalling_past_the_deadline_is_a_slow_answer(reply: Reply, server: Server) -> None:
    error = _failing_at_the_deadline(server, reply, SlowAnswer)
    assert isinstance(error, TimeoutError)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(stall=True),
        Reply(b"HTTP/1.1 200 OK\r\nContent-", stall=True),
        Reply(b"HTTP/1.1 100 Continue\r\n\r\n", stall=True),
        Reply(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 500 + b"\r\n\r\n", pieces=(1,) * 400, pause=0.005),
    ],
    ids=["silent", "half-head", "after-100", "head-trickle"],
)
def test_no_head_by_the_deadline_is_a_timeout_not_a_slow_answer(reply: Reply, server: Server) -> None:
    error = _failing_at_the_deadline(server, reply, TimeoutError)
    assert not isinstance(error, SlowAnswer)


def test_deadline_already_passed_sends_nothing(server: Server) -> None:
    connection = server.connect()
    failing(connection, TimeoutError, timeout=-1)
    assert server.peers == []  # not even connected


# --- 3. the request's bytes ----------------------------------------------------------------------


def test_request_bytes(server: Server) -> None:
    server.reply(ok(), ok(), ok())
    connection = server.connect()
    headers = [("User-Agent", "le/1"), ("Accept", "*/*"), ("Content-Type", "application/jose+json")]
    exchange(connection, "/new-order?x=1", method="POST", headers=headers, body=b'{"a": 1}')
    exchange(connection, "/empty", method="POST", headers=[("X-Tab", "a\tb")], body=b"")
    exchange(connection, "/dir")
    host = f"127.0.0.1:{server.port}"
    assert [request for _, request in server.requests] == [
        f"POST /new-order?x=1 HTTP/1.1\r\nHost: {host}\r\nUser-Agent: le/1\r\nAccept: */*\r\n"
        f'Content-Type: application/jose+json\r\nContent-Length: 8\r\n\r\n{{"a": 1}}'.encode(),
        f"POST /empty HTTP/1.1\r\nHost: {host}\r\nX-Tab: a\tb\r\nContent-Length: 0\r\n\r\n".encode(),
        f"GET /dir HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
    ]
    assert bytes(server.peers[0].raw) == b"".join(request for _, request in server.requests)


def test_request_over_ipv6_names_the_host_in_brackets() -> None:
    try:
        server = Server("::1")
    except OSError as err:
        skip_or_fail(f"no IPv6 on loopback: {err}")
    try:
        server.reply(ok())
        exchange(server.connect(), "/dir")
        assert server.requests == [(0, f"GET /dir HTTP/1.1\r\nHost: [::1]:{server.port}\r\n\r\n".encode())]
    finally:
        server.stop()
    assert server.failures == []


@pytest.mark.parametrize(
    ("host", "port", "tls", "expected"),
    [
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 443, False, "example.com:443"),
        ("example.com", 80, True, "example.com:80"),
        ("example.com", 14000, True, "example.com:14000"),
        ("::1", 443, True, "[::1]"),
        ("2001:db8::1", 8443, True, "[2001:db8::1]:8443"),
        ("::1", 80, False, "[::1]"),
    ],
)
def test_host_header(host: str, port: int, tls: bool, expected: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if tls else None
    assert Connection(host, port, tls=context).host_header == expected


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", "/a b", []),
        ("GET", "/a\r\nX-Injected: 1", []),
        ("GET", "/a\nX-Injected: 1", []),
        ("GET", "/a\rb", []),
        ("GET", "/a\x00", []),
        ("GET", "/a\x7f", []),
        ("GET", "/a\tb", []),
        ("GET", "", []),
        ("GE T", "/", []),
        ("GET\r\n", "/", []),
        ("GET", "/", [("X-A", "v\r\nX-Injected: 1")]),
        ("GET", "/", [("X-A", "v\nX-Injected: 1")]),
        ("GET", "/", [("X-A", "v\r")]),
        ("GET", "/", [("X-A", "v\x00")]),
        ("GET", "/", [("X A", "v")]),
        ("GET", "/", [("X-A:", "v")]),
        ("GET", "/", [("X-A\r\nX-Injected", "v")]),
        ("GET", "/", [("X-A", "\u20ac")]),  # no latin-1 for it
    ],
)
def test_request_that_could_split_is_refused_before_any_byte(
    method: str, target: str, headers: list[tuple[str, str]], server: Server
) -> None:
    connection = server.connect()
    with pytest.raises(ValueError):
        exchange(connection, target, method=method, headers=headers)
    assert not connection.is_open  # not even connected
    server.reply(ok(b"first"), ok(b"after"))
    assert exchange(connection).body == b"first"
    with pytest.raises(ValueError):
        exchange(connection, target, method=method, headers=headers)
    assert connection.is_open  # refused, not broken: the connection stays usable
    assert exchange(connection).body == b"after"
    expected = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    assert bytes(server.peers[0].raw) == expected * 2  # nothing of the refused requests
    assert len(server.peers) == 1


def test_connect_tunnel_names_an_ipv6_origin_in_brackets(server: Server) -> None:
    server.reply(ok(b"who are you?", status="407 Proxy Authentication Required"))
    connection = Connection(
        "2001:db8::1", 443, tls=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), proxy=(server.host, server.port, {"X-P": "1"})
    )
    server.clients.append(connection)
    with pytest.raises(OSError, match="407"):
        exchange(connection, "/dir")
    assert server.requests == [
        (0, b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\nX-P: 1\r\n\r\n"),
    ]


# --- 4. closed_by_peer ---------------------------------------------------------------------------


def _eventually(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_closed_by_peer_is_false_for_an_idle_open_connection(server: Server) -> None:
    connection = server.connect()
    assert not connection.closed_by_peer()  # never opened
    server.reply(ok())
    exchange(connection)
    for _ in range(5):
        assert not connection.closed_by_peer()
        time.sleep(0.01)
    assert connection.is_open


def test_closed_by_peer_after_the_server_closed(server: Server) -> None:
    server.reply(Reply(ok(), close=True))  # kept alive as far as the answer says, then closed
    connection = server.connect()
    exchange(connection)
    assert connection.is_open
    assert _eventually(connection.closed_by_peer)


def test_closed_by_peer_when_the_server_sent_more_than_the_answer(server: Server) -> None:
    server.reply(ok() + b"HTTP/1.1 200 OK\r\n")  # the junk arrives with the answer
    connection = server.connect()
    exchange(connection)
    assert connection.closed_by_peer()


def test_closed_by_peer_when_the_server_sends_while_idle(server: Server) -> None:
    server.reply(ok())
    connection = server.connect()
    exchange(connection)
    assert not connection.closed_by_peer()
    server.peers[0].sock.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")  # nobody asked
    assert _eventually(connection.closed_by_peer)
    assert connection.is_open  # noticed, not acted upon: the caller closes it
