"""HTTP/1.1 pipelining in the ACME client, against real sockets on 127.0.0.1 (no mock of the transport).

Wire and transport (``_wire.Connection.pipeline``, ``HttpTransport.pipeline``), each server a thread
that reads what has arrived and answers in order:

1. 20 requests with a window of 4 are answered on one connection, in order, and the server never
   has more than 4 unanswered (it counts them before every answer; it reads greedily);
2. request ``i`` is prepared only after answer ``i - window`` came (what lets ACME sign it with a
   nonce an earlier answer brought), and as soon as it came;
3. ``prepare`` returning ``None`` stops sending, the answers of what was sent still come;
4. a server closing after 3 of 8 answers (with or without ``Connection: close``): 3, no exception,
   the next request on a new connection;
5. a server that stalls after the first answer: 1, after about the timeout;
6. a request to another origin (also one a prefix of the first URL could be mistaken for), or
   one the wire refuses to send, ends the pipeline before it;
7. an exception from ``received`` (or ``prepare``) propagates and the connection is dropped, so no
   answer meant for the pipeline is ever taken for the next request's.

Client (``AcmeClient.authorizations`` and ``answer_challenges``, through ``_post_many``) against a
small HTTP/1.1 ACME server (``Ca``) that verifies every JWS, accepts each nonce once and records
where every nonce it accepted came from:

8. 10 authorizations: complete, in order, distinct nonces, at most ``window`` newNonce requests,
   the rest signed with nonces earlier answers brought;
9. a ``badNonce`` answer in the pipeline: that request alone is sent again;
10. a server answering one request per connection (HTTP/1.0): everything still works;
11. another problem document in one answer: its typed error, and the client carries on; an
    authorization URL the wire refuses: ``NetworkError`` as one by one, never a ``ValueError``;
12. ``answer_challenges`` posts ``{}`` (or the given payload) to each challenge, answers in order;
    ``answer_challenge`` still works.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import raw_server
from raw_server import TIMEOUT, RawRequest, RawServer, clear_environment, making_transports, serving

from letsencrypt.acme import _wire, errors
from letsencrypt.acme import client as client_module
from letsencrypt.acme._http import HttpTransport, PreparedRequest, Response
from letsencrypt.acme.client import AcmeClient, OrderHandle
from letsencrypt.acme.jws import AccountKey, FlattenedJWS
from letsencrypt.acme.messages import ERROR_PREFIX, Challenge, ChallengeStatus, Order

MAX_BODY = 2**20
KEY = AccountKey.generate("ec256")

# --- a server that reads pipelined requests ------------------------------------------------------


class Peer(raw_server.Peer):
    """One accepted connection: requests are parsed as they arrive and queued until answered."""

    def __init__(self, sock: socket.socket, index: int, stopping: threading.Event) -> None:
        super().__init__(sock, index, stopping)
        self.pending: collections.deque[RawRequest] = collections.deque()  # read, not yet answered
        self.in_flight: list[int] = []  # how many were unanswered before each answer

    def read_more(self, count: int, wait: float) -> bool:
        """Read (greedily) until ``count`` requests are unanswered or ``wait`` seconds passed.

        ``read_more(1, 10)`` waits for a request; ``read_more(sys.maxsize, 0)`` takes what has
        arrived. ``False`` when fewer than ``count`` are pending (the client closed, or the time ran out).
        """
        deadline = time.monotonic() + wait
        while True:
            while self.parse() is not None:
                pass
            if len(self.pending) >= count:
                return True
            remaining = max(0.0, deadline - time.monotonic())
            if not select.select([self.sock], [], [], remaining)[0]:
                return False
            if not self.recv():
                return False

    def parse(self) -> RawRequest | None:
        request = super().parse()
        if request is not None:
            self.pending.append(request)
        return request

    def next_request(self) -> RawRequest:
        """The oldest unanswered request; records how many were unanswered."""
        self.in_flight.append(len(self.pending))
        return self.pending.popleft()

    def echo(self, *headers: tuple[str, str]) -> None:
        """Answer the oldest unanswered request with what it was: ``GET /3 #3 on connection 0: <body>``."""
        number = len(self.requests) - len(self.pending)
        request = self.next_request()
        text = f"{request.method} {request.target} #{number} on connection {self.index}: {request.body.decode()}"
        self.respond(200, text.encode(), ("Content-Type", "text/plain"), *headers, head=request.method == "HEAD")

    def serve(self) -> None:
        """A well-behaved HTTP/1.1 server: every request answered in order, the connection kept."""
        while self.read_more(1, 10.0):
            self.read_more(sys.maxsize, 0.0)
            self.echo()


Script = Callable[[Peer], None]
Serve = Callable[..., RawServer]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy of the machine running the tests reaches the transport."""
    clear_environment(monkeypatch)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts ``RawServer``s; each is stopped and joined at the end, and no script may have failed."""

    def start(script: Script = Peer.serve) -> RawServer:
        return RawServer(script, Peer)

    yield from serving(start)


@pytest.fixture
def transports() -> Iterator[Callable[..., HttpTransport]]:
    yield from making_transports()


@dataclasses.dataclass
class Run:
    """What one ``HttpTransport.pipeline`` call did: its events in order, the answers, the result."""

    events: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    answers: dict[int, Response] = dataclasses.field(default_factory=dict)
    result: int | None = None

    @property
    def received(self) -> list[int]:
        return [index for event, index in self.events if event == "received"]

    @property
    def prepared(self) -> list[int]:
        return [index for event, index in self.events if event == "prepare"]

    def text(self, index: int) -> str:
        return self.answers[index].content.decode()


def pipeline(
    transport: HttpTransport,
    requests: list[PreparedRequest | None],
    *,
    window: int,
    fail: tuple[str, int] | None = None,
    run: Run | None = None,
) -> Run:
    """``transport.pipeline`` over ``requests`` (``None``: stop there); ``fail``: raise in that callback."""
    run = run if run is not None else Run()

    def prepare(index: int) -> PreparedRequest | None:
        run.events.append(("prepare", index))
        if fail == ("prepare", index):
            raise RuntimeError(f"prepare {index}")
        return requests[index]

    def received(index: int, response: Response) -> None:
        run.events.append(("received", index))
        run.answers[index] = response
        if fail == ("received", index):
            raise RuntimeError(f"received {index}")

    run.result = transport.pipeline(len(requests), prepare, received, window=window)
    return run


def gets(server: RawServer, count: int) -> list[PreparedRequest | None]:
    return [PreparedRequest("GET", server.url(f"/{i}")) for i in range(count)]


def text_of(response: Response) -> str:
    return response.content.decode()


# --- 1. in order, on one connection, never more than the window in flight -------------------------


def test_twenty_requests_with_a_window_of_four_share_one_connection(
    serve: Serve, transports: Callable[..., HttpTransport]
) -> None:
    total, window = 20, 4

    def script(peer: Peer) -> None:
        while peer.read_more(1, 10.0):
            answered = len(peer.requests) - len(peer.pending)
            peer.read_more(min(window, total - answered), 1.0)  # the client has these on the way
            peer.read_more(sys.maxsize, 0.005)  # and any beyond the window would be here by now
            peer.echo()

    server = serve(script)
    transport = transports()
    run = pipeline(transport, gets(server, total), window=window)
    assert run.result == total
    assert run.received == list(range(total))
    assert [text_of(run.answers[i]) for i in range(total)] == [f"GET /{i} #{i} on connection 0: " for i in range(total)]
    assert [run.answers[i].url for i in range(total)] == [server.url(f"/{i}") for i in range(total)]
    assert server.connections == 1
    in_flight = server.peers[0].in_flight
    assert max(in_flight) == window  # the window was used, and never exceeded
    assert in_flight[-window:] == [4, 3, 2, 1]  # the tail drains
    # the connection is kept for what comes next
    assert text_of(transport.request("GET", server.url("/after"))) == f"GET /after #{total} on connection 0: "
    assert server.connections == 1


def test_methods_and_bodies_mixed_in_one_pipeline_are_framed_right(
    serve: Serve, transports: Callable[..., HttpTransport]
) -> None:
    """A HEAD answer has no body although it names a length: the next answer starts right after its head."""
    server = serve()
    requests: list[PreparedRequest | None] = [
        PreparedRequest("POST", server.url("/a"), b'{"n":0}', "application/json"),
        PreparedRequest("HEAD", server.url("/b")),
        PreparedRequest("GET", server.url("/c?x=1")),
        PreparedRequest("HEAD", server.url("/d")),
        PreparedRequest("POST", server.url("/e"), b"", "application/jose+json"),
        PreparedRequest("POST", server.url("/f"), b"x" * 100_000, "application/octet-stream"),
    ]
    run = pipeline(transports(), requests, window=4)
    assert run.result == 6
    assert [text_of(run.answers[i]) for i in range(6)] == [
        'POST /a #0 on connection 0: {"n":0}',
        "",
        "GET /c?x=1 #2 on connection 0: ",
        "",
        "POST /e #4 on connection 0: ",
        "POST /f #5 on connection 0: " + "x" * 100_000,
    ]
    assert run.answers[1].headers.get("Content-Length") == str(len("HEAD /b #1 on connection 0: "))
    assert [r.headers.get("content-type") for r in server.peers[0].requests] == [
        "application/json",
        None,
        None,
        None,
        "application/jose+json",
        "application/octet-stream",
    ]
    assert server.connections == 1


# --- 2. request i is made after answer i - window came, and right then --------------------------


def test_request_is_prepared_only_after_the_answer_a_window_before_it(
    serve: Serve, transports: Callable[..., HttpTransport]
) -> None:
    server = serve()
    run = pipeline(transports(), gets(server, 10), window=3)
    assert run.result == 10
    for i in range(3, 10):
        assert run.events.index(("received", i - 3)) < run.events.index(("prepare", i))
    # the window is filled first, then each answer lets exactly one more request go
    expected = [("prepare", 0), ("prepare", 1), ("prepare", 2)]
    for i in range(7):
        expected += [("received", i), ("prepare", i + 3)]
    expected += [("received", 7), ("received", 8), ("received", 9)]
    assert run.events == expected


def test_a_window_of_one_is_one_by_one(serve: Serve, transports: Callable[..., HttpTransport]) -> None:
    server = serve()
    run = pipeline(transports(), gets(server, 4), window=1)
    assert run.result == 4
    assert run.events == [(event, i) for i in range(4) for event in ("prepare", "received")]
    assert max(server.peers[0].in_flight) == 1


# --- 3. prepare returning None stops sending -------------------------------------------------------


def test_prepare_returning_none_stops_and_what_was_sent_is_answered(
    serve: Serve,
) -> None:
    """On the wire level: ``Connection.pipeline`` returns the count, and the connection carries on."""
    server = serve()
    prepared: list[int] = []
    received: list[tuple[int, bytes]] = []

    def prepare(index: int) -> tuple[str, str, list[tuple[str, str]], bytes | None] | None:
        prepared.append(index)
        return ("GET", f"/{index}", [], None) if index < 5 else None

    def on_answer(index: int, answer: _wire.Answer) -> None:
        received.append((index, answer.body))

    connection = _wire.Connection("127.0.0.1", server.port, tls=None)
    try:
        answered = connection.pipeline(10, prepare, on_answer, window=3, timeout=TIMEOUT, max_body=MAX_BODY)
        assert answered == 5
        assert prepared == [0, 1, 2, 3, 4, 5]  # asked once for the sixth, not again
        assert received == [(i, f"GET /{i} #{i} on connection 0: ".encode()) for i in range(5)]
        assert [r.target for r in server.peers[0].requests] == [f"/{i}" for i in range(5)]
        assert connection.is_open
        answer = connection.exchange("GET", "/after", [], None, deadline=time.monotonic() + TIMEOUT, max_body=MAX_BODY)
        assert answer.body == b"GET /after #5 on connection 0: "
    finally:
        connection.close()
    assert server.connections == 1


def test_prepare_returning_none_at_once_sends_nothing(serve: Serve, transports: Callable[..., HttpTransport]) -> None:
    server = serve()
    transport = transports()
    run = pipeline(transport, [None, *gets(server, 3)], window=4)
    assert run.result == 0
    assert run.events == [("prepare", 0)]
    assert transport.pipeline(0, lambda i: None, lambda i, r: None, window=4) == 0
    assert server.connections == 0


def test_transport_pipeline_stops_at_none_too(serve: Serve, transports: Callable[..., HttpTransport]) -> None:
    server = serve()
    transport = transports()
    requests = gets(server, 8)
    requests[6] = None
    run = pipeline(transport, requests, window=4)
    assert run.result == 6
    assert run.received == list(range(6))
    assert len(server.peers[0].requests) == 6
    assert text_of(transport.request("GET", server.url("/after"))) == "GET /after #6 on connection 0: "


# --- 4. the server closes in the middle --------------------------------------------------------


def test_server_closing_after_three_answers(serve: Serve, transports: Callable[..., HttpTransport]) -> None:
    def script(peer: Peer) -> None:
        if peer.index > 0:
            return peer.serve()
        assert peer.read_more(8, TIMEOUT)  # all read: the close is a FIN, not a reset losing the answers
        for _ in range(3):
            peer.echo()
        return None  # closed with five requests unanswered, and no word about it

    server = serve(script)
    transport = transports()
    run = pipeline(transport, gets(server, 8), window=8)
    assert run.result == 3
    assert run.received == [0, 1, 2]
    assert [text_of(run.answers[i]) for i in range(3)] == [f"GET /{i} #{i} on connection 0: " for i in range(3)]
    assert text_of(transport.request("GET", server.url("/after"))) == "GET /after #0 on connection 1: "
    assert server.connections == 2


def test_connection_close_on_the_third_answer_ends_the_pipeline(
    serve: Serve, transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        if peer.index > 0:
            return peer.serve()
        for _ in range(2):
            assert peer.read_more(1, TIMEOUT)
            peer.echo()
        assert peer.read_more(1, TIMEOUT)
        peer.echo(("Connection", "close"))
        peer.sock.shutdown(socket.SHUT_WR)
        while peer.read_more(sys.maxsize, TIMEOUT):  # up to the client's close: what else did it send?
            pass
        return None

    server = serve(script)
    transport = transports()
    run = pipeline(transport, gets(server, 8), window=2)
    assert run.result == 3
    assert run.received == [0, 1, 2]
    # request 3 was on its way before answer 2 said close; none was sent after it
    server.join(0)
    assert [r.target for r in server.peers[0].requests] == ["/0", "/1", "/2", "/3"]
    assert text_of(transport.request("GET", server.url("/after"))) == "GET /after #0 on connection 1: "
    assert server.connections == 2


def test_server_closing_before_any_answer_gives_zero(serve: Serve, transports: Callable[..., HttpTransport]) -> None:
    def script(peer: Peer) -> None:
        if peer.index > 0:
            return peer.serve()
        assert peer.read_more(4, TIMEOUT)
        return None

    server = serve(script)
    transport = transports()
    run = pipeline(transport, gets(server, 4), window=4)
    assert run.result == 0
    assert run.received == []
    assert text_of(transport.request("GET", server.url("/after"))) == "GET /after #0 on connection 1: "


# --- 5. the server stalls ---------------------------------------------------------------------------


def test_server_stalling_after_the_first_answer_gives_one_after_the_timeout(
    serve: Serve, transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        if peer.index > 0:
            return peer.serve()
        assert peer.read_more(1, TIMEOUT)
        peer.echo()
        peer.stopping.wait(10)  # reads nothing more, answers nothing more
        return None

    server = serve(script)
    transport = transports(timeout=0.3)
    started = time.monotonic()
    run = pipeline(transport, gets(server, 6), window=4)
    elapsed = time.monotonic() - started
    assert run.result == 1
    assert run.received == [0]
    assert 0.25 <= elapsed < 2.0
    assert text_of(transport.request("GET", server.url("/after"))) == "GET /after #0 on connection 1: "


# --- 6. another origin -----------------------------------------------------------------------------


def test_another_origin_ends_the_pipeline_before_it(serve: Serve, transports: Callable[..., HttpTransport]) -> None:
    server, other = serve(), serve()
    requests = gets(server, 8)
    requests[3] = PreparedRequest("GET", other.url("/3"))
    transport = transports()
    run = pipeline(transport, requests, window=4)
    assert run.result == 3
    assert run.received == [0, 1, 2]
    assert run.prepared == [0, 1, 2, 3]
    assert other.connections == 0
    assert [r.target for r in server.peers[0].requests] == ["/0", "/1", "/2"]
    # the same host with another scheme is another origin too
    requests = gets(server, 4)
    requests[1] = PreparedRequest("GET", f"https://127.0.0.1:{server.port}/1")
    run = pipeline(transport, requests, window=4)
    assert run.result == 1
    assert server.connections == 1


def test_first_url_without_a_path_does_not_make_a_shorter_origin(
    serve: Serve, transports: Callable[..., HttpTransport]
) -> None:
    """``http://127.0.0.1:44403``, then ``http://127.0.0.1:4440/x``: another port, not a path of the first."""
    server = serve()
    requests: list[PreparedRequest | None] = [
        PreparedRequest("GET", f"http://127.0.0.1:{server.port}"),
        PreparedRequest("GET", f"http://127.0.0.1:{server.port // 10}/x"),
        PreparedRequest("GET", server.url("/2")),
    ]
    run = pipeline(transports(), requests, window=3)
    assert run.result == 1
    assert [r.target for r in server.peers[0].requests] == ["/"]


def test_query_before_any_path_is_kept_in_the_target(serve: Serve, transports: Callable[..., HttpTransport]) -> None:
    server = serve()
    requests: list[PreparedRequest | None] = [
        PreparedRequest("GET", f"http://127.0.0.1:{server.port}?q/x"),
        PreparedRequest("GET", f"http://127.0.0.1:{server.port}?q/y"),
        PreparedRequest("GET", f"http://127.0.0.1:{server.port}/z?a/b"),
    ]
    run = pipeline(transports(), requests, window=3)
    assert run.result == 3
    assert [r.target for r in server.peers[0].requests] == ["/?q/x", "/?q/y", "/z?a/b"]


def test_request_the_wire_refuses_ends_the_pipeline_before_it(
    serve: Serve, transports: Callable[..., HttpTransport]
) -> None:
    """A space in the target is refused before anything is sent: left to ``request``, which reports it."""
    server = serve()
    transport = transports()
    requests = gets(server, 6)
    requests[2] = PreparedRequest("GET", server.url("/a b"))
    run = pipeline(transport, requests, window=4)
    assert run.result == 2
    assert run.received == [0, 1]
    assert [r.target for r in server.peers[0].requests] == ["/0", "/1"]
    with pytest.raises(errors.NetworkError, match="control characters or spaces"):
        transport.request("GET", server.url("/a b"))
    assert text_of(transport.request("GET", server.url("/after"))) == "GET /after #0 on connection 1: "


# --- 7. an exception from a callback ----------------------------------------------------------------


@pytest.mark.parametrize(("fail", "answered"), [(("received", 0), 1), (("received", 2), 3), (("prepare", 5), 2)])
def test_exception_in_a_callback_propagates_and_drops_the_connection(
    fail: tuple[str, int], answered: int, serve: Serve, transports: Callable[..., HttpTransport]
) -> None:
    """The answers still due come late: a kept connection would hand one to the next request."""

    def script(peer: Peer) -> None:
        if peer.index > 0:
            return peer.serve()
        for _ in range(answered):
            assert peer.read_more(1, TIMEOUT)
            peer.echo()
        peer.stopping.wait(0.3)
        return peer.serve()

    server = serve(script)
    transport = transports()
    run = Run()
    with pytest.raises(RuntimeError, match=f"{fail[0]} {fail[1]}"):
        pipeline(transport, gets(server, 8), window=4, fail=fail, run=run)
    assert run.events[-1] == fail
    assert run.received == list(range(answered))
    assert text_of(transport.request("GET", server.url("/after"))) == "GET /after #0 on connection 1: "
    assert server.connections == 2


def test_exception_in_received_propagates_from_the_wire(serve: Serve) -> None:
    server = serve()

    def on_answer(index: int, answer: _wire.Answer) -> None:
        if index == 1:
            raise KeyError("received")

    connection = _wire.Connection("127.0.0.1", server.port, tls=None)
    try:
        with pytest.raises(KeyError):
            connection.pipeline(
                6,
                lambda i: ("GET", f"/{i}", [], None),
                on_answer,
                window=3,
                timeout=TIMEOUT,
                max_body=MAX_BODY,
            )
    finally:
        connection.close()


# --- a small ACME server ---------------------------------------------------------------------------

Reply = tuple[int, list[tuple[str, str]], bytes]


@dataclasses.dataclass(frozen=True)
class Post:
    """One POST the CA read: where it went, the nonce it used and which answer brought that nonce."""

    path: str
    nonce: str
    nonce_from: str  # "HEAD" or the number of the POST whose answer carried it, as "POST 3"
    payload: Any
    connection: int
    accepted: bool  # False: answered badNonce


class Ca:
    """An HTTP/1.1 ACME server: directory, newNonce, authorizations and challenges by number.

    Every answer carries a fresh ``Replay-Nonce``; a POST must be signed by ``KEY`` for its URL and
    the account, with a nonce handed out and not used yet, else ``badNonce``. ``faults`` answer the
    ``n``-th accepted POST to a path otherwise: ``{("/authz/3", 0): reply}``. With
    ``one_per_connection`` it answers in HTTP/1.0 and closes after each answer.
    """

    def __init__(self, serve: Serve, *, one_per_connection: bool = False) -> None:
        self.one_per_connection = one_per_connection
        self.faults: dict[tuple[str, int], Callable[[], Reply]] = {}
        self.posts: list[Post] = []
        self.heads = 0
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._issued: dict[str, str] = {}  # nonce -> which answer brought it
        self._used: set[str] = set()
        self.server = serve(self._serve)

    def url(self, path: str) -> str:
        return self.server.url(path)

    @property
    def account_url(self) -> str:
        return self.url("/acct/1")

    def order(self, count: int) -> OrderHandle:
        document = {
            "status": "pending",
            "identifiers": [{"type": "dns", "value": f"name{i}.example"} for i in range(count)],
            "authorizations": [self.url(f"/authz/{i}") for i in range(count)],
            "finalize": self.url("/order/1/finalize"),
        }
        return OrderHandle(self.url("/order/1"), Order.from_json(document))

    def accepted(self, prefix: str = "/") -> list[Post]:
        return [post for post in self.posts if post.accepted and post.path.startswith(prefix)]

    def _serve(self, peer: Peer) -> None:
        while peer.read_more(1, 10.0):
            peer.read_more(sys.maxsize, 0.0)
            request = peer.next_request()
            with self._lock:
                status, headers, body = self._answer(request, peer.index)
                nonce = f"n{next(self._counter)}"
                self._issued[nonce] = f"POST {len(self.posts) - 1}" if request.method == "POST" else request.method
            headers = [*headers, ("Replay-Nonce", nonce), ("Cache-Control", "no-store")]
            if self.one_per_connection:
                peer.respond(status, body, *headers, head=request.method == "HEAD", version="HTTP/1.0")
                return
            peer.respond(status, body, *headers, head=request.method == "HEAD")

    def _answer(self, request: RawRequest, connection: int) -> Reply:
        if (request.method, request.target) == ("GET", "/dir"):
            directory = {
                "newNonce": self.url("/new-nonce"),
                "newAccount": self.url("/new-acct"),
                "newOrder": self.url("/new-order"),
                "revokeCert": self.url("/revoke-cert"),
                "keyChange": self.url("/key-change"),
            }
            return _json(200, directory)
        if (request.method, request.target) == ("HEAD", "/new-nonce"):
            self.heads += 1
            return 200, [], b""
        if request.method != "POST":
            return _json(404, {"detail": f"no {request.method} {request.target}"})
        assert request.headers.get("content-type") == "application/jose+json"
        jws = FlattenedJWS.parse(request.body)
        jws.verify(KEY.public_key())
        assert jws.header["url"] == self.url(request.target), jws.header
        assert jws.header["kid"] == self.account_url
        nonce = jws.header["nonce"]
        accepted = nonce in self._issued and nonce not in self._used
        self._used.add(nonce)
        payload = jws.json_payload()
        before = len(self.accepted(request.target))
        self.posts.append(Post(request.target, nonce, self._issued.get(nonce, "?"), payload, connection, accepted))
        if not accepted:
            return _problem(400, "badNonce", f"nonce {nonce} is not one of ours, or used")
        fault = self.faults.get((request.target, before))
        if fault is not None:
            return fault()
        kind, _, number = request.target.rpartition("/")
        if kind == "/authz" and payload is None:
            challenge = {"type": "http-01", "url": self.url(f"/chall/{number}"), "status": "pending", "token": "t"}
            authz = {
                "identifier": {"type": "dns", "value": f"name{number}.example"},
                "status": "pending",
                "challenges": [challenge],
            }
            return _json(200, authz)
        if kind == "/chall" and isinstance(payload, dict):
            challenge = {"type": "http-01", "url": self.url(request.target), "status": "processing", "token": "t"}
            return _json(200, challenge, ("Link", f'<{self.url(f"/authz/{number}")}>;rel="up"'))
        return _problem(404, "malformed", f"no {request.target} for {payload!r}")


def _json(status: int, document: Mapping[str, Any], *extra: tuple[str, str], content_type: str = "") -> Reply:
    return status, [("Content-Type", content_type or "application/json"), *extra], json.dumps(document).encode()


def _problem(status: int, short_type: str, detail: str) -> Reply:
    document = {"type": ERROR_PREFIX + short_type, "detail": detail, "status": status}
    return _json(status, document, content_type="application/problem+json")


@pytest.fixture
def clients() -> Iterator[Callable[[Ca], AcmeClient]]:
    made: list[AcmeClient] = []

    def make(ca: Ca) -> AcmeClient:
        client = AcmeClient(ca.url("/dir"), KEY, account_url=ca.account_url, timeout=TIMEOUT)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _authz_paths(count: int) -> list[str]:
    return [f"/authz/{i}" for i in range(count)]


def assert_authorizations(ca: Ca, order: OrderHandle, handles: list[Any]) -> None:
    assert [handle.url for handle in handles] == list(order.order.authorizations)
    assert [handle.authorization.identifier.value for handle in handles] == [
        f"name{i}.example" for i in range(len(handles))
    ]
    assert [handle.authorization.challenges[0].url for handle in handles] == [
        ca.url(f"/chall/{i}") for i in range(len(handles))
    ]


# --- 8. authorizations, pipelined with the nonces the answers bring ---------------------------------


@pytest.mark.parametrize("window", [client_module.PIPELINE_WINDOW, 3])
def test_ten_authorizations_pipelined_with_nonces_from_earlier_answers(
    window: int,
    serve: Serve,
    clients: Callable[[Ca], AcmeClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "PIPELINE_WINDOW", window)
    ca = Ca(serve)
    order = ca.order(10)
    handles = clients(ca).authorizations(order)
    assert_authorizations(ca, order, handles)
    posts = ca.posts
    assert [post.path for post in posts] == _authz_paths(10)  # each once: nothing sent again
    assert all(post.accepted for post in posts)
    assert all(post.payload is None for post in posts)  # POST-as-GET
    assert len({post.nonce for post in posts}) == 10
    assert ca.heads <= window
    from_answers = [post for post in posts if post.nonce_from != "HEAD"]
    assert len(from_answers) >= 10 - window
    for number, post in enumerate(posts):  # a nonce an answer to an earlier POST brought
        if post.nonce_from != "HEAD":
            assert int(post.nonce_from.split()[1]) < number
    assert ca.server.connections == 1
    assert max(ca.server.peers[0].in_flight) <= window


def test_a_second_pipeline_uses_the_nonces_left_from_the_first(
    serve: Serve, clients: Callable[[Ca], AcmeClient]
) -> None:
    ca = Ca(serve)
    client = clients(ca)
    order = ca.order(10)
    client.authorizations(order)
    heads = ca.heads
    assert_authorizations(ca, order, client.authorizations(order))
    assert ca.heads == heads  # the pool had enough from the first run's answers
    assert len({post.nonce for post in ca.posts}) == 20
    assert all(post.accepted for post in ca.posts)


def test_a_single_authorization_is_not_pipelined(serve: Serve, clients: Callable[[Ca], AcmeClient]) -> None:
    ca = Ca(serve)
    order = ca.order(1)
    handles = clients(ca).authorizations(order)
    assert_authorizations(ca, order, handles)
    assert ca.heads == 1
    assert clients(ca).authorizations(ca.order(0)) == []


# --- 9. badNonce in the pipeline ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[0], [3], [9], [2, 5]])
def test_bad_nonce_in_the_pipeline_sends_that_request_again_alone(
    bad: list[int], serve: Serve, clients: Callable[[Ca], AcmeClient]
) -> None:
    ca = Ca(serve)
    for number in bad:
        ca.faults[(f"/authz/{number}", 0)] = lambda: _problem(400, "badNonce", "try again")
    order = ca.order(10)
    handles = clients(ca).authorizations(order)
    assert_authorizations(ca, order, handles)
    paths = [post.path for post in ca.posts]
    assert paths[:10] == _authz_paths(10)  # the pipeline went on after the badNonce answers
    assert sorted(paths[10:]) == [f"/authz/{number}" for number in sorted(bad)]  # those alone, again
    assert len({post.nonce for post in ca.posts}) == len(ca.posts)
    assert all(post.accepted for post in ca.posts)
    assert ca.server.connections == 1


# --- 10. a server that does not pipeline ----------------------------------------------------------------


def test_server_answering_one_request_per_connection(serve: Serve, clients: Callable[[Ca], AcmeClient]) -> None:
    ca = Ca(serve, one_per_connection=True)
    client = clients(ca)
    order = ca.order(10)
    assert_authorizations(ca, order, client.authorizations(order))
    challenges = [handle.authorization.challenges[0] for handle in client.authorizations(order)]
    answered = client.answer_challenges([(challenge, None) for challenge in challenges])
    assert [challenge.url for challenge in answered] == [ca.url(f"/chall/{i}") for i in range(10)]
    assert all(challenge.status == ChallengeStatus.PROCESSING for challenge in answered)
    # every authorization and challenge reached; none twice with one nonce
    assert sorted({post.path for post in ca.accepted()}) == sorted(
        _authz_paths(10) + [f"/chall/{i}" for i in range(10)]
    )
    assert len({post.nonce for post in ca.posts}) == len(ca.posts)
    assert all(post.accepted for post in ca.posts)
    assert ca.server.connections > 10


# --- 11. other problem documents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("short_type", "status", "error"),
    [
        ("unauthorized", 403, errors.ProblemError),
        ("rateLimited", 429, errors.RateLimited),
        ("userActionRequired", 403, errors.UserActionRequired),
        ("serverInternal", 500, errors.ProblemError),
    ],
)
def test_problem_in_one_answer_raises_its_typed_error(
    short_type: str,
    status: int,
    error: type[errors.ProblemError],
    serve: Serve,
    clients: Callable[[Ca], AcmeClient],
) -> None:
    ca = Ca(serve)
    ca.faults[("/authz/5", 0)] = lambda: _problem(status, short_type, "not for you")
    client = clients(ca)
    order = ca.order(10)
    with pytest.raises(errors.ProblemError) as caught:
        client.authorizations(order)
    assert type(caught.value) is error
    assert caught.value.type == ERROR_PREFIX + short_type
    assert caught.value.status == status
    assert caught.value.url == ca.url("/authz/5")
    assert [post.path for post in ca.posts] == _authz_paths(10)  # not sent again
    # every answer was read: the connection is in step for the next request
    handle = client.get_authorization(ca.url("/authz/7"))
    assert handle.authorization.identifier.value == "name7.example"
    assert ca.server.connections == 1


def test_answer_that_is_not_json_raises_unexpected_response(serve: Serve, clients: Callable[[Ca], AcmeClient]) -> None:
    ca = Ca(serve)
    ca.faults[("/authz/2", 0)] = lambda: (502, [("Content-Type", "text/html")], b"<h1>Bad Gateway</h1>")
    with pytest.raises(errors.UnexpectedResponse) as caught:
        clients(ca).authorizations(ca.order(4))
    assert caught.value.url == ca.url("/authz/2")
    assert caught.value.status == 502


def test_authorization_url_the_wire_refuses_gives_network_error_as_one_by_one(
    serve: Serve, clients: Callable[[Ca], AcmeClient]
) -> None:
    """An order naming an authorization URL that cannot be sent: the typed error, never a ``ValueError``."""
    ca = Ca(serve)
    order = ca.order(5)
    urls = list(order.order.authorizations)
    urls[2] = ca.url("/authz/2 x")
    order = OrderHandle(order.url, dataclasses.replace(order.order, authorizations=tuple(urls)))
    client = clients(ca)
    with pytest.raises(errors.NetworkError, match=r"/authz/2 x: a request target may not contain") as one:
        client.get_authorization(urls[2])
    with pytest.raises(errors.NetworkError) as pipelined:
        client.authorizations(order)
    assert str(pipelined.value) == str(one.value)
    assert pipelined.value.url == urls[2]
    assert [post.path for post in ca.posts] == ["/authz/0", "/authz/1"]


# --- 12. answer_challenges ------------------------------------------------------------------------------


def test_answer_challenges_posts_each_payload_and_returns_them_in_order(
    serve: Serve, clients: Callable[[Ca], AcmeClient]
) -> None:
    ca = Ca(serve)
    client = clients(ca)
    challenges = [Challenge("http-01", ca.url(f"/chall/{i}"), ChallengeStatus.PENDING, token="t") for i in range(5)]
    legacy = {"keyAuthorization": "t.thumbprint"}
    answers: list[tuple[Challenge, Mapping[str, Any] | None]] = [(challenge, None) for challenge in challenges]
    answers[3] = (challenges[3], legacy)
    answered = client.answer_challenges(answers)
    assert [challenge.url for challenge in answered] == [ca.url(f"/chall/{i}") for i in range(5)]
    assert all(challenge.status == ChallengeStatus.PROCESSING for challenge in answered)
    assert [(post.path, post.payload) for post in ca.posts] == [
        (f"/chall/{i}", legacy if i == 3 else {}) for i in range(5)
    ]
    assert len({post.nonce for post in ca.posts}) == 5
    assert all(post.accepted for post in ca.posts)
    assert ca.server.connections == 1
    # one challenge: the plain way
    single = client.answer_challenge(challenges[1])
    assert single.url == ca.url("/chall/1")
    assert single.status == ChallengeStatus.PROCESSING
    assert (ca.posts[-1].path, ca.posts[-1].payload) == ("/chall/1", {})
    assert client.answer_challenges([]) == []
