"""AcmeClient failure handling and its narrow retry and poll rules, against a scripted local server.

Every test talks HTTP to a real ``ScriptedServer`` on 127.0.0.1; only the clock and the sleep of
the poll loop are injected. What is proven:

- a server answering garbage (HTML, truncated JSON, bare 5xx, a hang, a closed port, objects
  missing fields) gives a typed ``AcmeError`` naming the URL, never a raw exception;
- only ``badNonce`` is retried, with the nonce the error carried, and only so many times;
- polls back off from 50 ms, follow ``Retry-After`` within the deadline, and end;
- ``newOrder`` with ``replaces`` is retried once without it, rate limits are not retried;
- alternate chains, order-list pages and ``Link`` headers are followed as RFC 8555/8288 say.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from scripted_server import Recorded, Reply, ScriptedServer, sequence

from letsencrypt.acme import errors
from letsencrypt.acme._http import HttpTransport, links
from letsencrypt.acme.client import AcmeClient, OrderHandle
from letsencrypt.acme.crypto import pem_of
from letsencrypt.acme.jws import AccountKey, FlattenedJWS
from letsencrypt.acme.messages import ERROR_PREFIX, Identifier, Order, OrderStatus

KEY = AccountKey.generate("ec256")
ACCOUNT_PATH = "/acme/acct/1"
ORDERS_PATH = "/acme/acct/1/orders"
ORDER_PATH = "/acme/order/1"
AUTHZ_PATH = "/acme/authz/1"
CHALLENGE_PATH = "/acme/chall/1"
FINALIZE_PATH = "/acme/order/1/finalize"
CERT_PATH = "/acme/cert/abc"
NAME = Identifier("dns", "example.com")

_nonces = itertools.count()


def fresh_nonce() -> str:
    return f"nonce-{next(_nonces)}"


# --- replies ---------------------------------------------------------------------------------


def json_reply(
    status: int, obj: Any, *extra: tuple[str, str], content_type: str = "application/json", nonce: str | None = None
) -> Reply:
    """A JSON answer with a fresh ``Replay-Nonce``, as an ACME server gives on every response."""
    headers = [("Content-Type", content_type), ("Replay-Nonce", nonce or fresh_nonce()), *extra]
    return status, headers, json.dumps(obj)


def problem_reply(
    status: int, short_type: str, detail: str, *extra: tuple[str, str], nonce: str | None = None
) -> Reply:
    document = {"type": ERROR_PREFIX + short_type, "detail": detail, "status": status}
    return json_reply(status, document, *extra, content_type="application/problem+json", nonce=nonce)


def raw_reply(status: int, content_type: str, body: bytes | str, *extra: tuple[str, str]) -> Reply:
    return status, [("Content-Type", content_type), ("Replay-Nonce", fresh_nonce()), *extra], body


def order_json(server: ScriptedServer, status: str = "pending", **fields: Any) -> dict[str, Any]:
    return {
        "status": status,
        "identifiers": [NAME.to_json()],
        "authorizations": [server.url(AUTHZ_PATH)],
        "finalize": server.url(FINALIZE_PATH),
        **fields,
    }


def authz_json(
    server: ScriptedServer, status: str = "pending", error: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    challenge: dict[str, Any] = {
        "type": "http-01",
        "url": server.url(CHALLENGE_PATH),
        "status": "invalid" if error else "pending",
        "token": "tok",
    }
    if error is not None:
        challenge["error"] = dict(error)
    return {"identifier": NAME.to_json(), "status": status, "challenges": [challenge]}


def jws_of(request: Recorded) -> FlattenedJWS:
    return FlattenedJWS.parse(request.body)


def posts(server: ScriptedServer, path: str) -> list[Recorded]:
    return server.requests_to(path, "POST")


# --- fixtures --------------------------------------------------------------------------------


@dataclasses.dataclass
class Acme:
    """A scripted server with the ACME basics routed: directory, newNonce, newAccount, account."""

    server: ScriptedServer
    directory: dict[str, Any]

    def url(self, path: str) -> str:
        return self.server.url(path)

    def route(self, method: str, path: str, handler: Callable[[Recorded], Reply] | Reply) -> None:
        self.server.route(method, path, handler)

    def client(self, *, account: bool = True, **kwargs: Any) -> AcmeClient:
        client = AcmeClient(self.url("/dir"), KEY, account_url=self.url(ACCOUNT_PATH) if account else None, **kwargs)
        self._clients.append(client)
        return client

    def __post_init__(self) -> None:
        self._clients: list[AcmeClient] = []
        self.route("GET", "/dir", lambda _: json_reply(200, self.directory))
        self.route("HEAD", "/acme/new-nonce", lambda _: (200, {"Replay-Nonce": fresh_nonce()}, b""))
        self.route(
            "POST",
            "/acme/new-acct",
            lambda _: json_reply(201, {"status": "valid"}, ("Location", self.url(ACCOUNT_PATH))),
        )
        self.route(
            "POST", ACCOUNT_PATH, lambda _: json_reply(200, {"status": "valid", "orders": self.url(ORDERS_PATH)})
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def acme(server: ScriptedServer) -> Iterator[Acme]:
    directory = {
        "newNonce": server.url("/acme/new-nonce"),
        "newAccount": server.url("/acme/new-acct"),
        "newOrder": server.url("/acme/new-order"),
        "revokeCert": server.url("/acme/revoke-cert"),
        "keyChange": server.url("/acme/key-change"),
        "renewalInfo": server.url("/acme/renewal-info"),
    }
    instance = Acme(server, directory)
    yield instance
    instance.close()


@dataclasses.dataclass
class FakeClock:
    """A monotonic clock that only moves when the client sleeps; records every sleep."""

    now: float = 1000.0
    sleeps: list[float] = dataclasses.field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# --- 1. garbage gives a clear, typed error ---------------------------------------------------


def test_directory_answering_html_names_url_and_content_type(acme: Acme) -> None:
    acme.route("GET", "/dir", raw_reply(200, "text/html; charset=utf-8", "<html><body>Welcome</body></html>"))
    with pytest.raises(errors.AcmeError) as caught:
        _ = acme.client().directory
    err = caught.value
    assert isinstance(err, errors.UnexpectedResponse)
    assert acme.url("/dir") in str(err)
    assert "text/html" in str(err)
    assert "Welcome" in str(err)
    assert err.url == acme.url("/dir")
    assert err.content_type == "text/html"


def test_truncated_json_is_invalid_json(acme: Acme) -> None:
    acme.route("GET", "/dir", raw_reply(200, "application/json", json.dumps(acme.directory)[:40]))
    with pytest.raises(errors.AcmeError) as caught:
        _ = acme.client().directory
    assert isinstance(caught.value, errors.UnexpectedResponse)
    assert "invalid JSON" in str(caught.value)
    assert acme.url("/dir") in str(caught.value)
    assert isinstance(caught.value.__cause__, ValueError)  # chained, not swallowed


def test_500_with_html_body_gives_status_and_snippet(acme: Acme) -> None:
    page = "<html>\n  <h1>502   Bad Gateway</h1>\n" + "x" * 500 + "</html>"
    acme.route("POST", ORDER_PATH, raw_reply(500, "text/html", page))
    with pytest.raises(errors.AcmeError) as caught:
        acme.client().get_order(acme.url(ORDER_PATH))
    err = caught.value
    assert isinstance(err, errors.UnexpectedResponse)
    assert err.status == 500
    assert "HTTP 500" in str(err)
    assert acme.url(ORDER_PATH) in str(err)
    assert "<h1>502 Bad Gateway</h1>" in str(err)  # whitespace folded
    assert str(err).endswith("...")  # cut short, not the whole page
    assert len(str(err)) < 400


def test_500_with_problem_document_gives_problem_error(acme: Acme) -> None:
    acme.route("POST", ORDER_PATH, problem_reply(500, "serverInternal", "database on fire"))
    with pytest.raises(errors.AcmeError) as caught:
        acme.client().get_order(acme.url(ORDER_PATH))
    err = caught.value
    assert type(err) is errors.ProblemError
    assert err.type == ERROR_PREFIX + "serverInternal"
    assert err.detail == "database on fire"
    assert err.status == 500
    assert err.url == acme.url(ORDER_PATH)
    assert "serverInternal (500)" in str(err)


def test_hang_gives_network_error_within_the_timeout(acme: Acme) -> None:
    acme.route("GET", "/dir", acme.server.hang)
    client = acme.client(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(errors.AcmeError) as caught:
        _ = client.directory
    elapsed = time.monotonic() - started
    assert isinstance(caught.value, errors.NetworkError)
    assert acme.url("/dir") in str(caught.value)
    assert "0.5 s" in str(caught.value)
    assert elapsed < 2.0


def test_connection_refused_gives_network_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and now has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/dir"
    with AcmeClient(url, KEY, timeout=2) as client, pytest.raises(errors.AcmeError) as caught:
        _ = client.directory
    assert isinstance(caught.value, errors.NetworkError)
    assert caught.value.url == url
    assert url in str(caught.value)
    assert "refused" in str(caught.value).lower()


def test_body_cut_short_by_the_server_gives_network_error(acme: Acme) -> None:
    body = json.dumps(acme.directory)
    acme.route("GET", "/dir", (200, {"Content-Type": "application/json", "Content-Length": "5000"}, body))
    with pytest.raises(errors.AcmeError) as caught:
        _ = acme.client(timeout=2).directory
    assert isinstance(caught.value, errors.NetworkError)
    assert acme.url("/dir") in str(caught.value)


def test_directory_missing_new_order_is_malformed(acme: Acme) -> None:
    del acme.directory["newOrder"]
    with pytest.raises(errors.AcmeError) as caught:
        _ = acme.client().directory
    assert isinstance(caught.value, errors.UnexpectedResponse)
    assert "malformed object" in str(caught.value)
    assert "newOrder" in str(caught.value)
    assert acme.url("/dir") in str(caught.value)


def test_new_account_201_without_location(acme: Acme) -> None:
    acme.route("POST", "/acme/new-acct", json_reply(201, {"status": "valid"}))
    client = acme.client(account=False)
    with pytest.raises(errors.AcmeError) as caught:
        client.register(terms_of_service_agreed=True)
    assert isinstance(caught.value, errors.UnexpectedResponse)
    assert "Location" in str(caught.value)
    assert caught.value.status == 201
    assert client.account_url is None


@pytest.mark.parametrize("nonce_header", [None, "not a nonce!"])
def test_new_nonce_without_a_valid_replay_nonce(acme: Acme, nonce_header: str | None) -> None:
    headers = {} if nonce_header is None else {"Replay-Nonce": nonce_header}
    acme.route("HEAD", "/acme/new-nonce", (200, headers, b""))
    with pytest.raises(errors.AcmeError) as caught:
        acme.client().get_order(acme.url(ORDER_PATH))
    assert isinstance(caught.value, errors.UnexpectedResponse)
    assert "Replay-Nonce" in str(caught.value)
    assert acme.url("/acme/new-nonce") in str(caught.value)
    assert posts(acme.server, ORDER_PATH) == []


@pytest.mark.parametrize(
    ("reply", "expected", "words"),
    [
        pytest.param(
            raw_reply(200, "application/json", "[" * 100_000),
            errors.UnexpectedResponse,
            "invalid JSON",
            id="json-nested-too-deep",
        ),
        pytest.param(
            raw_reply(200, "application/json", b"\xff\xfe{\x00"),
            errors.UnexpectedResponse,
            "invalid JSON",
            id="not-utf8",
        ),
        pytest.param(
            raw_reply(200, "application/json", "[1, 2]"), errors.UnexpectedResponse, "malformed object", id="json-list"
        ),
        pytest.param(
            raw_reply(200, "application/json", ""), errors.UnexpectedResponse, "invalid JSON", id="empty-json"
        ),
        pytest.param(raw_reply(200, "text/plain", ""), errors.UnexpectedResponse, "empty body", id="empty-text"),
        pytest.param(
            raw_reply(503, "application/problem+json", '"busy"'),
            errors.UnexpectedResponse,
            "HTTP 503",
            id="problem-not-an-object",
        ),
        pytest.param(
            raw_reply(503, "application/problem+json", "[" * 100_000),
            errors.UnexpectedResponse,
            "HTTP 503",
            id="problem-nested-too-deep",
        ),
        pytest.param(
            raw_reply(400, "application/problem+json", '{"type": 5}'),
            errors.UnexpectedResponse,
            "HTTP 400",
            id="problem-type-not-a-string",
        ),
        pytest.param(
            raw_reply(301, "text/html", "moved", ("Location", "https://elsewhere.example/")),
            errors.UnexpectedResponse,
            "HTTP 301",
            id="redirect-not-followed",
        ),
    ],
)
def test_no_raw_exception_escapes_from_the_directory(
    acme: Acme, reply: Reply, expected: type[errors.AcmeError], words: str
) -> None:
    acme.route("GET", "/dir", reply)
    with pytest.raises(errors.AcmeError) as caught:
        _ = acme.client().directory
    assert type(caught.value) is expected
    assert words in str(caught.value)
    assert acme.url("/dir") in str(caught.value)


@pytest.mark.parametrize(
    "order",
    [
        pytest.param({"status": "pending"}, id="no-finalize"),
        pytest.param(
            {"status": "pending", "identifiers": "example.com", "authorizations": [], "finalize": "u"},
            id="identifiers-not-a-list",
        ),
        pytest.param(
            {"status": "pending", "identifiers": [], "authorizations": [], "finalize": "u", "expires": "tomorrow"},
            id="bad-timestamp",
        ),
        pytest.param(
            {"status": "invalid", "identifiers": [], "authorizations": [], "finalize": "u", "error": "it broke"},
            id="error-not-a-problem",
        ),
    ],
)
def test_malformed_order_is_unexpected_response(acme: Acme, order: dict[str, Any]) -> None:
    acme.route("POST", ORDER_PATH, json_reply(200, order))
    with pytest.raises(errors.AcmeError) as caught:
        acme.client().get_order(acme.url(ORDER_PATH))
    assert isinstance(caught.value, errors.UnexpectedResponse)
    assert f"{acme.url(ORDER_PATH)} answered a malformed object" in str(caught.value)


# --- 2. badNonce, and only badNonce, is retried ----------------------------------------------


def _bad_nonces_then(n: int, final: Reply) -> tuple[Callable[[Recorded], Reply], list[str]]:
    """A handler answering badNonce ``n`` times (each with a fresh nonce, recorded), then ``final``."""
    carried: list[str] = []

    def bad_nonce(_: Recorded) -> Reply:
        carried.append(fresh_nonce())
        return problem_reply(400, "badNonce", "JWS has an invalid anti-replay nonce", nonce=carried[-1])

    return sequence(*([bad_nonce] * n), final), carried


@pytest.mark.parametrize("bad", [1, 2])
def test_bad_nonce_retried_with_the_nonce_the_error_carried(acme: Acme, bad: int) -> None:
    handler, carried = _bad_nonces_then(bad, json_reply(200, order_json(acme.server)))
    acme.route("POST", ORDER_PATH, handler)
    handle = acme.client(bad_nonce_retries=2).get_order(acme.url(ORDER_PATH))
    assert handle.order.status == OrderStatus.PENDING
    seen = [jws_of(r).header["nonce"] for r in posts(acme.server, ORDER_PATH)]
    assert len(seen) == bad + 1
    assert seen[1:] == carried  # each retry used the nonce its badNonce answer carried
    assert len(acme.server.requests_to("/acme/new-nonce", "HEAD")) == 1  # only the first came from newNonce
    assert len(set(seen)) == len(seen)


def test_bad_nonce_beyond_the_retries_raises_bad_nonce_error(acme: Acme) -> None:
    handler, _ = _bad_nonces_then(3, json_reply(200, order_json(acme.server)))
    acme.route("POST", ORDER_PATH, handler)
    with pytest.raises(errors.AcmeError) as caught:
        acme.client(bad_nonce_retries=2).get_order(acme.url(ORDER_PATH))
    assert isinstance(caught.value, errors.BadNonceError)
    assert caught.value.status == 400
    assert len(posts(acme.server, ORDER_PATH)) == 3


def test_bad_nonce_retries_zero_means_one_request(acme: Acme) -> None:
    handler, _ = _bad_nonces_then(1, json_reply(200, order_json(acme.server)))
    acme.route("POST", ORDER_PATH, handler)
    with pytest.raises(errors.BadNonceError):
        acme.client(bad_nonce_retries=0).get_order(acme.url(ORDER_PATH))
    assert len(posts(acme.server, ORDER_PATH)) == 1


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(problem_reply(400, "malformed", "bad JWS"), id="malformed"),
        pytest.param(problem_reply(500, "serverInternal", "oops"), id="serverInternal"),
        pytest.param(problem_reply(403, "unauthorized", "no"), id="unauthorized"),
        pytest.param(raw_reply(503, "text/html", "<h1>maintenance</h1>"), id="html-503"),
    ],
)
def test_other_errors_are_not_retried(acme: Acme, reply: Reply) -> None:
    acme.route("POST", ORDER_PATH, reply)
    with pytest.raises(errors.AcmeError) as caught:
        acme.client().get_order(acme.url(ORDER_PATH))
    assert not isinstance(caught.value, errors.BadNonceError)
    assert len(posts(acme.server, ORDER_PATH)) == 1


# --- 3. polling: backoff, Retry-After, deadline ----------------------------------------------


def test_poll_backs_off_from_50ms_without_retry_after(acme: Acme, clock: FakeClock) -> None:
    pending = json_reply(200, authz_json(acme.server))
    acme.route("POST", AUTHZ_PATH, sequence(pending, pending, json_reply(200, authz_json(acme.server, "valid"))))
    client = acme.client(sleep=clock.sleep, clock=clock)
    handle = client.wait_for_authorization(acme.url(AUTHZ_PATH), deadline=clock.now + 60)
    assert str(handle.authorization.status) == "valid"
    assert clock.sleeps == pytest.approx([0.01, 0.015])
    assert len(posts(acme.server, AUTHZ_PATH)) == 3


def test_poll_follows_retry_after(acme: Acme, clock: FakeClock) -> None:
    pending = json_reply(200, authz_json(acme.server), ("Retry-After", "3"))
    acme.route("POST", AUTHZ_PATH, sequence(pending, pending, json_reply(200, authz_json(acme.server, "valid"))))
    client = acme.client(sleep=clock.sleep, clock=clock)
    client.wait_for_authorization(acme.url(AUTHZ_PATH), deadline=clock.now + 60)
    assert clock.sleeps == [3.0, 3.0]


def test_poll_ignores_unparseable_retry_after(acme: Acme, clock: FakeClock) -> None:
    pending = json_reply(200, authz_json(acme.server), ("Retry-After", "soon"))
    acme.route("POST", AUTHZ_PATH, sequence(pending, json_reply(200, authz_json(acme.server, "valid"))))
    client = acme.client(sleep=clock.sleep, clock=clock)
    client.wait_for_authorization(acme.url(AUTHZ_PATH), deadline=clock.now + 60)
    assert clock.sleeps == [0.01]


def test_retry_after_beyond_the_deadline_is_cut_to_the_remaining_time(acme: Acme, clock: FakeClock) -> None:
    acme.route("POST", AUTHZ_PATH, json_reply(200, authz_json(acme.server), ("Retry-After", "10")))
    client = acme.client(sleep=clock.sleep, clock=clock)
    with pytest.raises(errors.PollTimeout) as caught:
        client.wait_for_authorization(acme.url(AUTHZ_PATH), deadline=clock.now + 2)
    assert clock.sleeps == [2.0]
    assert caught.value.last_status == "pending"
    assert len(posts(acme.server, AUTHZ_PATH)) == 2  # one more look at the deadline, then give up


def test_poll_past_the_deadline_raises_poll_timeout(acme: Acme, clock: FakeClock) -> None:
    acme.route("POST", ORDER_PATH, json_reply(200, order_json(acme.server, "processing")))
    client = acme.client(sleep=clock.sleep, clock=clock)
    deadline = clock.now + 1.0
    with pytest.raises(errors.AcmeError) as caught:
        client.wait_for_order(acme.url(ORDER_PATH), deadline=deadline)
    err = caught.value
    assert isinstance(err, errors.PollTimeout)
    assert err.last_status == "processing"
    assert err.url == acme.url(ORDER_PATH)
    # each wait 1.5 times the last, the last cut to the deadline
    expected = [0.01 * 1.5**n for n in range(9)]
    expected.append(1.0 - sum(expected))
    assert clock.sleeps == pytest.approx(expected)
    assert clock.now == pytest.approx(deadline)


def test_poll_with_the_deadline_already_passed_looks_once(acme: Acme, clock: FakeClock) -> None:
    acme.route("POST", AUTHZ_PATH, json_reply(200, authz_json(acme.server)))
    client = acme.client(sleep=clock.sleep, clock=clock)
    with pytest.raises(errors.PollTimeout):
        client.wait_for_authorization(acme.url(AUTHZ_PATH), deadline=clock.now - 1)
    assert clock.sleeps == []
    assert len(posts(acme.server, AUTHZ_PATH)) == 1


def test_invalid_authorization_carries_the_challenge_problem(acme: Acme, clock: FakeClock) -> None:
    problem = {
        "type": ERROR_PREFIX + "unauthorized",
        "detail": "got 404 for /.well-known/acme-challenge/tok",
        "status": 403,
    }
    acme.route(
        "POST",
        AUTHZ_PATH,
        sequence(
            json_reply(200, authz_json(acme.server)), json_reply(200, authz_json(acme.server, "invalid", problem))
        ),
    )
    client = acme.client(sleep=clock.sleep, clock=clock)
    with pytest.raises(errors.ResourceFailed) as caught:
        client.wait_for_authorization(acme.url(AUTHZ_PATH), deadline=clock.now + 60)
    err = caught.value
    assert err.problem is not None
    assert err.problem.short_type == "unauthorized"
    assert err.problem.detail == problem["detail"]
    assert "example.com" in str(err)
    assert "got 404" in str(err)
    assert err.url == acme.url(AUTHZ_PATH)


def test_wait_for_order_invalid_carries_the_order_error(acme: Acme, clock: FakeClock) -> None:
    error = {"type": ERROR_PREFIX + "caa", "detail": "CAA record forbids issuance", "status": 403}
    acme.route(
        "POST",
        ORDER_PATH,
        sequence(
            json_reply(200, order_json(acme.server)), json_reply(200, order_json(acme.server, "invalid", error=error))
        ),
    )
    client = acme.client(sleep=clock.sleep, clock=clock)
    with pytest.raises(errors.ResourceFailed) as caught:
        client.wait_for_order(acme.url(ORDER_PATH), deadline=clock.now + 60)
    assert caught.value.problem is not None
    assert caught.value.problem.short_type == "caa"
    assert "CAA record forbids issuance" in str(caught.value)
    assert clock.sleeps == [0.01]


def test_finalize_waits_before_its_first_look_at_a_processing_order(acme: Acme, clock: FakeClock) -> None:
    """The finalize answer already said "processing": asking again at once could only say it again."""
    acme.route("POST", FINALIZE_PATH, json_reply(200, order_json(acme.server, "processing")))
    acme.route("POST", ORDER_PATH, json_reply(200, order_json(acme.server, "valid",
                                                              certificate=acme.url("/acme/cert/1"))))
    client = acme.client(sleep=clock.sleep, clock=clock)
    order = OrderHandle(acme.url(ORDER_PATH), Order.from_json(order_json(acme.server, "ready")), None)
    done = client.finalize(order, b"csr", deadline=clock.now + 60)
    assert str(done.order.status) == "valid"
    assert clock.sleeps == [0.01]
    assert len(posts(acme.server, ORDER_PATH)) == 1


@pytest.mark.parametrize(("seen_status", "sleeps", "looks"), [("pending", [0.01], 1), ("ready", [], 1)])
def test_wait_for_order_with_the_order_just_seen(acme: Acme, clock: FakeClock, seen_status: str,
                                                 sleeps: list[float], looks: int) -> None:
    acme.route("POST", ORDER_PATH, json_reply(200, order_json(acme.server, "ready")))
    client = acme.client(sleep=clock.sleep, clock=clock)
    seen = OrderHandle(acme.url(ORDER_PATH), Order.from_json(order_json(acme.server, seen_status)), None)
    handle = client.wait_for_order(acme.url(ORDER_PATH), deadline=clock.now + 60, seen=seen)
    assert str(handle.order.status) == "ready"
    assert clock.sleeps == sleeps  # a pending order is waited for; a finished one is looked at again at once
    assert len(posts(acme.server, ORDER_PATH)) == looks


# --- 4. newOrder: replaces, rate limits, terms of service ------------------------------------


def _new_order_route(acme: Acme, refuse: Callable[[dict[str, Any]], Reply | None]) -> None:
    def handle(request: Recorded) -> Reply:
        answer = refuse(jws_of(request).json_payload())
        if answer is not None:
            return answer
        return json_reply(201, order_json(acme.server), ("Location", acme.url(ORDER_PATH)))

    acme.route("POST", "/acme/new-order", handle)


def _new_order_payloads(acme: Acme) -> list[dict[str, Any]]:
    return [jws_of(r).json_payload() for r in posts(acme.server, "/acme/new-order")]


def test_replaces_refused_is_retried_once_without_it(acme: Acme) -> None:
    _new_order_route(
        acme,
        lambda payload: problem_reply(409, "alreadyReplaced", "already replaced") if "replaces" in payload else None,
    )
    handle = acme.client().new_order([NAME], replaces="aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    assert isinstance(handle, OrderHandle)
    assert handle.url == acme.url(ORDER_PATH)
    first, second = _new_order_payloads(acme)
    assert first == {"identifiers": [NAME.to_json()], "replaces": "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"}
    assert second == {"identifiers": [NAME.to_json()]}


def test_replaces_refused_twice_raises_after_one_retry(acme: Acme) -> None:
    _new_order_route(acme, lambda _: problem_reply(400, "malformed", "no"))
    with pytest.raises(errors.ProblemError):
        acme.client().new_order([NAME], replaces="abc.def")
    assert len(_new_order_payloads(acme)) == 2


def test_no_renewal_info_in_directory_means_no_replaces(acme: Acme) -> None:
    del acme.directory["renewalInfo"]
    _new_order_route(acme, lambda _: None)
    acme.client().new_order([NAME], replaces="abc.def")
    assert _new_order_payloads(acme) == [{"identifiers": [NAME.to_json()]}]


def test_rate_limited_is_not_retried_and_carries_retry_after(acme: Acme) -> None:
    _new_order_route(acme, lambda _: problem_reply(429, "rateLimited", "too many certificates", ("Retry-After", "120")))
    with pytest.raises(errors.AcmeError) as caught:
        acme.client().new_order([NAME], replaces="abc.def")
    err = caught.value
    assert isinstance(err, errors.RateLimited)
    assert err.retry_after == 120.0
    assert err.status == 429
    assert len(_new_order_payloads(acme)) == 1


def test_rate_limited_retry_after_as_http_date(acme: Acme) -> None:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    _new_order_route(acme, lambda _: problem_reply(429, "rateLimited", "slow down", ("Retry-After", header)))
    with pytest.raises(errors.RateLimited) as caught:
        acme.client().new_order([NAME])
    assert caught.value.retry_after == pytest.approx(3600, abs=5)


def test_user_action_required_carries_terms_of_service_link(acme: Acme) -> None:
    tos = ("Link", '<https://ca.example/terms-v2.pdf>;rel="terms-of-service"')
    _new_order_route(acme, lambda _: problem_reply(403, "userActionRequired", "agree to the new terms", tos))
    with pytest.raises(errors.AcmeError) as caught:
        acme.client().new_order([NAME], replaces="abc.def")
    err = caught.value
    assert isinstance(err, errors.UserActionRequired)
    assert err.terms_of_service == "https://ca.example/terms-v2.pdf"
    assert len(_new_order_payloads(acme)) == 1


# --- 5. certificate download and alternate chains --------------------------------------------


def _cn(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_cn(subject))
        .issuer_name(_cn(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


@dataclasses.dataclass(frozen=True)
class Chains:
    by_a: str  # leaf <- Intermediate (issued by Root A)
    by_b: str  # leaf <- Intermediate (issued by Root B)
    by_b_long: str  # leaf <- Intermediate <- Root B (issued by Old Root)


@pytest.fixture(scope="module")
def chains() -> Chains:
    root_a, root_b, old_root, inter, leaf = (ec.generate_private_key(ec.SECP256R1()) for _ in range(5))
    inter_a = _certificate("Intermediate", inter, "Root A", root_a, ca=True)
    inter_b = _certificate("Intermediate", inter, "Root B", root_b, ca=True)
    cross_b = _certificate("Root B", root_b, "Old Root", old_root, ca=True)
    leaf_cert = _certificate("example.com", leaf, "Intermediate", inter, ca=False)
    return Chains(
        by_a=pem_of([leaf_cert, inter_a]),
        by_b=pem_of([leaf_cert, inter_b]),
        by_b_long=pem_of([leaf_cert, inter_b, cross_b]),
    )


def _pem_reply(pem: str, *extra: tuple[str, str]) -> Reply:
    return raw_reply(200, "application/pem-certificate-chain", pem, *extra)


def test_download_follows_every_alternate_link(acme: Acme, chains: Chains) -> None:
    acme.route(
        "POST",
        CERT_PATH,
        _pem_reply(
            chains.by_a,
            ("Link", '<abc/1>;rel="alternate"'),  # relative to /acme/cert/abc: /acme/cert/abc/1
            ("Link", '</acme/cert/abc/2>; rel="alternate"'),
            ("Link", f'<{acme.url("/acme/cert/abc/1")}>;rel="index"'),
        ),
    )
    acme.route("POST", "/acme/cert/abc/1", _pem_reply(chains.by_b_long))
    acme.route("POST", "/acme/cert/abc/2", _pem_reply(chains.by_b))
    download = acme.client().download_certificate(acme.url(CERT_PATH))
    assert download.url == acme.url(CERT_PATH)
    assert download.chains == (chains.by_a, chains.by_b_long, chains.by_b)
    for path in (CERT_PATH, "/acme/cert/abc/1", "/acme/cert/abc/2"):
        (request,) = posts(acme.server, path)
        assert request.headers["Accept"] == "application/pem-certificate-chain"
        assert jws_of(request).payload_b64 == ""
    assert download.select("Root B") == chains.by_b  # the chain whose top-most issuer is Root B
    assert download.select("Old Root") == chains.by_b_long
    assert download.select("Root A") == chains.by_a
    assert download.select("Nobody") == chains.by_a  # no match: the default
    assert download.select(None) == chains.by_a


def test_download_from_order_without_alternates(acme: Acme, chains: Chains) -> None:
    acme.route("POST", CERT_PATH, _pem_reply(chains.by_a, ("Link", '<abc/1>;rel="alternate"')))
    acme.route("POST", ORDER_PATH, json_reply(200, order_json(acme.server, "valid", certificate=acme.url(CERT_PATH))))
    client = acme.client()
    download = client.download_certificate(client.get_order(acme.url(ORDER_PATH)), alternates=False)
    assert download.chains == (chains.by_a,)
    assert acme.server.requests_to("/acme/cert/abc/1") == []


def test_download_non_pem_body_is_unexpected_response(acme: Acme) -> None:
    acme.route("POST", CERT_PATH, raw_reply(200, "text/html", "<html>Certificate portal</html>"))
    with pytest.raises(errors.AcmeError) as caught:
        acme.client().download_certificate(acme.url(CERT_PATH))
    assert isinstance(caught.value, errors.UnexpectedResponse)
    assert acme.url(CERT_PATH) in str(caught.value)
    assert "text/html" in str(caught.value)


def test_download_non_pem_alternate_is_unexpected_response(acme: Acme, chains: Chains) -> None:
    acme.route("POST", CERT_PATH, _pem_reply(chains.by_a, ("Link", '<abc/1>;rel="alternate"')))
    acme.route("POST", "/acme/cert/abc/1", _pem_reply("garbage"))
    with pytest.raises(errors.UnexpectedResponse) as caught:
        acme.client().download_certificate(acme.url(CERT_PATH))
    assert caught.value.url == acme.url("/acme/cert/abc/1")


# --- 6. order list pagination ----------------------------------------------------------------


def test_list_orders_follows_next_and_stops_on_a_loop(acme: Acme) -> None:
    page2, page3 = ORDERS_PATH + "?cursor=2", ORDERS_PATH + "?cursor=3"
    acme.route(
        "POST",
        ORDERS_PATH,
        json_reply(
            200, {"orders": [acme.url("/acme/order/1"), acme.url("/acme/order/2")]}, ("Link", f'<{page2}>;rel="next"')
        ),
    )
    acme.route(
        "POST",
        page2,
        json_reply(200, {"orders": [acme.url("/acme/order/3")]}, ("Link", '<orders?cursor=3>; rel="next"')),
    )
    acme.route(
        "POST",
        page3,
        json_reply(200, {"orders": [acme.url("/acme/order/4")]}, ("Link", f'<{acme.url(ORDERS_PATH)}>;rel="next"')),
    )
    orders = list(acme.client().list_orders())
    assert orders == [acme.url(f"/acme/order/{i}") for i in (1, 2, 3, 4)]
    pages = [r.path for r in acme.server.requests if r.path.startswith(ORDERS_PATH)]
    assert pages == [ORDERS_PATH, page2, page3]


def test_list_orders_respects_max_pages(acme: Acme) -> None:
    def page(request: Recorded) -> Reply:
        n = int(request.path.rpartition("=")[2]) if "=" in request.path else 1
        acme.route("POST", f"{ORDERS_PATH}?p={n + 1}", page)
        return json_reply(
            200, {"orders": [acme.url(f"/acme/order/{n}")]}, ("Link", f'<{ORDERS_PATH}?p={n + 1}>;rel="next"')
        )

    acme.route("POST", ORDERS_PATH, page)
    assert len(list(acme.client().list_orders(max_pages=5))) == 5


# --- 7. what every request carries -----------------------------------------------------------


def test_every_request_has_user_agent_and_posts_are_jose(acme: Acme) -> None:
    acme.route("POST", ORDER_PATH, json_reply(200, order_json(acme.server)))
    client = acme.client(account=False)
    account = client.register(contact=["mailto:admin@example.com"], terms_of_service_agreed=True)
    assert account.created
    assert account.url == acme.url(ACCOUNT_PATH)
    client.get_order(acme.url(ORDER_PATH))

    methods = [(r.method, r.path) for r in acme.server.requests]
    assert methods == [("GET", "/dir"), ("HEAD", "/acme/new-nonce"), ("POST", "/acme/new-acct"), ("POST", ORDER_PATH)]
    for request in acme.server.requests:
        assert request.headers["User-Agent"].startswith("letsencrypt-acme/")
    new_account, get_order = (r for r in acme.server.requests if r.method == "POST")
    for request in (new_account, get_order):
        assert request.headers["Content-Type"] == "application/jose+json"
        header = jws_of(request).header
        assert header["url"] == acme.url(request.path)
        assert header["nonce"].startswith("nonce-")
    assert "jwk" in jws_of(new_account).header
    assert "kid" not in jws_of(new_account).header
    assert jws_of(new_account).json_payload() == {"contact": ["mailto:admin@example.com"], "termsOfServiceAgreed": True}
    assert jws_of(get_order).header["kid"] == acme.url(ACCOUNT_PATH)
    assert jws_of(get_order).payload_b64 == ""  # POST-as-GET
    jws_of(get_order).verify(KEY.public_key())


def test_nonce_from_a_response_is_reused_without_new_nonce(acme: Acme) -> None:
    acme.route("POST", ORDER_PATH, json_reply(200, order_json(acme.server)))
    client = acme.client()
    client.get_order(acme.url(ORDER_PATH))
    client.get_order(acme.url(ORDER_PATH))
    assert len(acme.server.requests_to("/acme/new-nonce")) == 1


# --- 8. Link header parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            [("Link", '<https://a.example/next>; rel="next", <https://a.example/alt>;rel=alternate, </up>; rel="up"')],
            {"next": ["https://a.example/next"], "alternate": ["https://a.example/alt"], "up": ["{base}/up"]},
            id="several-rels-in-one-header",
        ),
        pytest.param(
            [
                ("Link", '<https://a.example/1>;rel="alternate"'),
                ("Link", '<2>;rel="alternate"'),
                ("Link", '<https://a.example/i>;rel="index"'),
            ],
            {"alternate": ["https://a.example/1", "{base}/links/2"], "index": ["https://a.example/i"]},
            id="several-link-headers",
        ),
        pytest.param(
            [
                (
                    "Link",
                    '<https://a.example/tos>; title="Terms, v2; read me"; rel="terms-of-service", '
                    '<https://a.example/n>; rel="next"',
                )
            ],
            {"terms-of-service": ["https://a.example/tos"], "next": ["https://a.example/n"]},
            id="quoted-param-with-comma-and-semicolon",
        ),
        pytest.param(
            [("Link", '<https://a.example/x>; title="not; rel=next, really"; rel="alternate"')],
            {"alternate": ["https://a.example/x"]},
            id="rel-inside-a-quoted-param-is-not-a-rel",
        ),
        pytest.param(
            [("Link", '<https://a.example/x>; REL="Next Alternate"; anchor="#a"')],
            {"next": ["https://a.example/x"], "alternate": ["https://a.example/x"]},
            id="multi-valued-case-insensitive-rel",
        ),
        pytest.param(
            [("Link", '<https://a.example/a,b;c>; rel="next"')],
            {"next": ["https://a.example/a,b;c"]},
            id="comma-and-semicolon-in-the-target",
        ),
        pytest.param([("X-Other", "1")], {}, id="no-link-header"),
    ],
)
def test_links(server: ScriptedServer, headers: list[tuple[str, str]], expected: dict[str, list[str]]) -> None:
    server.route("GET", "/links/page", (200, [("Content-Type", "text/plain"), *headers], "ok"))
    transport = HttpTransport()
    try:
        response = transport.request("GET", server.url("/links/page"))
    finally:
        transport.close()
    want = {rel: [url.format(base=server.base_url) for url in urls] for rel, urls in expected.items()}
    assert links(response) == want


def test_trickling_server_is_cut_off_at_the_timeout() -> None:
    """A server that sends one byte every 0.2 s never trips a per-read timeout; the total one wins."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    client = AcmeClient(f"http://127.0.0.1:{port}/dir", AccountKey.generate(), timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(errors.NetworkError) as caught:
            _ = client.directory
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert time.monotonic() - started < 2.5
    assert "took over 1 s" in str(caught.value)
