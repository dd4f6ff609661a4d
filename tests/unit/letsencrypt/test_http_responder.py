"""The standalone http-01 responder: one thread, raw sockets, every request answered or dropped."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from letsencrypt.plugins import _responders
from letsencrypt.plugins._responders import HttpResponder

PATH = "/.well-known/acme-challenge/token"


@pytest.fixture
def responder() -> Iterator[HttpResponder]:
    with HttpResponder("127.0.0.1", 0) as running:
        running.publish({PATH: b"token.thumbprint"})
        yield running


def _raw(port: int, data: bytes, *, shut: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _get(port: int, path: str, method: str = "GET") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(method, path, headers={"Host": "example.com", "User-Agent": "validator"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_answers_the_published_path_and_closes(responder: HttpResponder) -> None:
    answer = _raw(responder.port, f"GET {PATH} HTTP/1.1\r\nHost: a.example\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain" in head and b"Connection: close" in head
    assert b"Content-Length: 16" in head
    assert body == b"token.thumbprint"


def test_absolute_form_and_query_are_the_same_path(responder: HttpResponder) -> None:
    answer = _raw(responder.port, f"GET http://a.example{PATH}?x=1 HTTP/1.1\r\nHost: a.example\r\n\r\n".encode())
    assert answer.endswith(b"\r\n\r\ntoken.thumbprint")


def test_head_has_the_length_but_no_body(responder: HttpResponder) -> None:
    answer = _raw(responder.port, f"HEAD {PATH} HTTP/1.1\r\nHost: a.example\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 16" in answer
    assert answer.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n", b"404"),
        (f"POST {PATH} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n".encode(), b"501"),
        (b"GARBAGE\r\n\r\n", b"400"),
        (f"GET {PATH} SPDY/3\r\n\r\n".encode(), b"400"),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", b"431"),
    ],
)
def test_what_is_not_a_published_get_gets_an_error_status(
    responder: HttpResponder, request_bytes: bytes, status: bytes
) -> None:
    answer = _raw(responder.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]
    assert answer.endswith(b"\r\n\r\n")  # no body for errors


def test_a_request_head_in_pieces_is_put_together(responder: HttpResponder) -> None:
    with socket.create_connection(("127.0.0.1", responder.port), timeout=5) as sock:
        for piece in (b"GE", b"T " + PATH.encode(), b" HTTP/1.1\r\nHo", b"st: a\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.01)
        assert sock.recv(65536).endswith(b"token.thumbprint")


def test_a_client_closing_early_or_idling_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch, responder: HttpResponder
) -> None:
    monkeypatch.setattr(_responders, "REQUEST_TIMEOUT", 0.3)  # read at accept time
    idle = socket.create_connection(("127.0.0.1", responder.port), timeout=5)
    half = socket.create_connection(("127.0.0.1", responder.port), timeout=5)
    try:
        half.sendall(b"GET /")
        _raw(responder.port, b"GET / HT", shut=True)  # closes before the head is complete: dropped
        assert _get(responder.port, PATH).status == 200  # served while the others wait
        started = time.monotonic()
        assert idle.recv(10) == b""  # dropped after REQUEST_TIMEOUT
        assert half.recv(10) == b""
        assert time.monotonic() - started < 2
    finally:
        idle.close()
        half.close()


def test_many_validators_at_once(responder: HttpResponder) -> None:
    statuses: list[int] = []

    def fetch() -> None:
        statuses.append(_get(responder.port, PATH).status)

    threads = [threading.Thread(target=fetch) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == [200] * 50


def test_publish_replaces_what_is_served(responder: HttpResponder) -> None:
    responder.publish({"/.well-known/acme-challenge/new": b"new"})
    assert _get(responder.port, PATH).status == 404
    assert _get(responder.port, "/.well-known/acme-challenge/new").status == 200


def test_leaving_stops_the_thread_and_closes_open_connections() -> None:
    responder = HttpResponder("127.0.0.1", 0).__enter__()
    waiting = socket.create_connection(("127.0.0.1", responder.port), timeout=5)
    try:
        waiting.sendall(b"GET /")
        time.sleep(0.05)
        started = time.monotonic()
        responder.__exit__(None, None, None)
        assert time.monotonic() - started < 1
        assert not responder.thread.is_alive()
        assert waiting.recv(10) == b""
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", responder.port), timeout=1).close()
    finally:
        waiting.close()
