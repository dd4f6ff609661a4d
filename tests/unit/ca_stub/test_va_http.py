"""ca_stub.va: http-01 (RFC 8555 §8.3) against real loopback HTTP and HTTPS servers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_va_servers import LOOPBACK, WebServer, free_port, request_for

from ca_stub.va import MAX_REDIRECTS, NetworkVA
from letsencrypt.acme.challenges import http01_path
from letsencrypt.acme.messages import Identifier

NAME = Identifier.dns("example.com")
TEXT = {"Content-Type": "text/plain"}


@pytest.fixture
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        yield server


def va_for(web: WebServer, **options: object) -> NetworkVA:
    return NetworkVA(http_port=web.port, resolve_all=LOOPBACK, workers=1, **options)  # type: ignore[arg-type]


def test_valid_key_authorization(web: WebServer) -> None:
    request = request_for(NAME, "http-01")
    web.routes[http01_path(request.token)] = (200, TEXT, request.key_authorization.encode() + b"\r\n")
    va = va_for(web)
    result = va.validate(request)
    va.close()
    assert result.valid, result.error
    assert (result.challenge_id, result.authorization_id, result.error) == (1, 1001, None)
    assert web.hosts == ["example.com"]
    assert any(f"{LOOPBACK}:{web.port}" in record and "HTTP 200" in record for record in result.records)


def test_ip_identifier_is_fetched_with_the_address_as_host(web: WebServer) -> None:
    request = request_for(Identifier.ip(LOOPBACK), "http-01")
    web.routes[http01_path(request.token)] = (200, TEXT, request.key_authorization.encode())
    va = NetworkVA(http_port=web.port, workers=1)  # no resolve-all: IP identifiers are used as they are
    assert va.validate(request).valid
    va.close()
    assert web.hosts == [LOOPBACK]


def test_wrong_body_names_url_address_and_what_was_found(web: WebServer) -> None:
    request = request_for(NAME, "http-01")
    web.routes[http01_path(request.token)] = (200, TEXT, b"<html>someone else's page</html>")
    va = va_for(web)
    result = va.validate(request)
    va.close()
    assert not result.valid and result.error is not None
    assert result.error.short_type == "incorrectResponse"
    assert result.error.identifier == NAME
    detail = result.error.detail
    assert f"http://example.com:{web.port}/.well-known/acme-challenge/{request.token}" in detail
    assert f"{LOOPBACK}:{web.port}" in detail
    assert "someone else's page" in detail and request.key_authorization in detail


def test_not_found_is_unauthorized(web: WebServer) -> None:
    va = va_for(web)
    result = va.validate(request_for(NAME, "http-01"))
    va.close()
    assert result.error is not None and result.error.short_type == "unauthorized"
    assert "HTTP 404" in result.error.detail and "not here" in result.error.detail
    assert result.error.status == 403


def test_oversized_body_is_refused(web: WebServer) -> None:
    request = request_for(NAME, "http-01")
    web.routes[http01_path(request.token)] = (200, TEXT, request.key_authorization.encode() + b" " * 200_000)
    va = va_for(web)
    result = va.validate(request)
    va.close()
    assert result.error is not None and "longer than" in result.error.detail


def test_connection_refused() -> None:
    port = free_port()
    va = NetworkVA(http_port=port, resolve_all=LOOPBACK, workers=1)
    result = va.validate(request_for(NAME, "http-01"))
    va.close()
    assert result.error is not None and result.error.short_type == "connection"
    assert f"{LOOPBACK}:{port}" in result.error.detail


def test_silent_server_times_out() -> None:
    import socket

    with socket.create_server((LOOPBACK, 0)) as silent:  # accepts (in the kernel), never answers
        va = NetworkVA(http_port=silent.getsockname()[1], resolve_all=LOOPBACK, workers=1, timeout=0.5)
        result = va.validate(request_for(NAME, "http-01"))
        va.close()
    assert result.error is not None and result.error.short_type == "connection"
    assert "timed out" in result.error.detail


def test_redirect_to_the_http_port_is_followed(web: WebServer) -> None:
    request = request_for(NAME, "http-01")
    first, second = http01_path(request.token), "/elsewhere?x=1"
    web.routes[first] = (301, {"Location": "http://www.example.com/elsewhere?x=1"}, b"")
    web.routes[second] = (200, TEXT, request.key_authorization.encode())
    va = va_for(web)
    result = va.validate(request)
    va.close()
    assert result.valid, result.error
    assert web.hosts == ["example.com", "www.example.com"]
    assert web.hits(second) == 1


def test_relative_redirect_with_explicit_allowed_port(web: WebServer) -> None:
    request = request_for(NAME, "http-01")
    web.routes[http01_path(request.token)] = (302, {"Location": f"http://example.com:{web.port}/b"}, b"")
    web.routes["/b"] = (307, {"Location": "/c"}, b"")
    web.routes["/c"] = (200, TEXT, request.key_authorization.encode())
    va = va_for(web)
    assert va.validate(request).valid
    va.close()


def test_redirect_to_https_on_the_tls_port_is_followed(web: WebServer, tmp_path: Path) -> None:
    request = request_for(NAME, "http-01")
    with WebServer(tls_directory=tmp_path) as secure:
        web.routes[http01_path(request.token)] = (302, {"Location": "https://example.com/secure"}, b"")
        secure.routes["/secure"] = (200, TEXT, request.key_authorization.encode())
        va = NetworkVA(http_port=web.port, tls_port=secure.port, resolve_all=LOOPBACK, workers=1)
        result = va.validate(request)
        va.close()
        assert result.valid, result.error
        assert secure.hosts == ["example.com"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://example.com:1/x", "only http on port"),
        ("https://example.com:80/x", "only http on port"),
        ("ftp://example.com/x", "only http on port"),
        ("http://exa mple.com/x", "neither a DNS name"),
        ("http://:1/x", "names no host"),
    ],
)
def test_disallowed_redirects_are_refused(web: WebServer, location: str, reason: str) -> None:
    request = request_for(NAME, "http-01")
    web.routes[http01_path(request.token)] = (302, {"Location": location}, b"")
    va = va_for(web)
    result = va.validate(request)
    va.close()
    assert result.error is not None and result.error.short_type == "connection"
    assert "refused" in result.error.detail and reason in result.error.detail
    assert len(web.hosts) == 1  # nothing fetched after the refused redirect


def test_redirect_loop_is_capped(web: WebServer) -> None:
    request = request_for(NAME, "http-01")
    path = http01_path(request.token)
    web.routes[path] = (302, {"Location": path}, b"")
    va = va_for(web)
    result = va.validate(request)
    va.close()
    assert result.error is not None and result.error.short_type == "connection"
    assert "too many redirects" in result.error.detail
    assert web.hits(path) == MAX_REDIRECTS + 1


def test_drip_feeding_server_is_cut_at_the_deadline() -> None:
    """Each byte arrives well within a socket timeout; the validation's deadline still holds."""
    stop = threading.Event()
    with socket.create_server((LOOPBACK, 0)) as listener:

        def drip() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                while not stop.wait(0.05):
                    try:
                        connection.sendall(b"X")
                    except OSError:
                        return

        thread = threading.Thread(target=drip)
        thread.start()
        va = NetworkVA(http_port=listener.getsockname()[1], resolve_all=LOOPBACK, workers=1, timeout=0.6)
        started = time.monotonic()
        result = va.validate(request_for(NAME, "http-01"))
        elapsed = time.monotonic() - started
        va.close()
        stop.set()
        thread.join()
    assert result.error is not None and result.error.short_type == "connection"
    assert "timed out" in result.error.detail
    assert elapsed < 2.0


def test_ipv6_literal_identifier() -> None:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    request = request_for(Identifier.ip("::1"), "http-01")
    with WebServer(host="::1") as web:
        web.routes[http01_path(request.token)] = (200, TEXT, request.key_authorization.encode())
        va = NetworkVA(http_port=web.port, workers=1)
        result = va.validate(request)
        va.close()
    assert result.valid, result.error
    assert web.hosts == ["[::1]"]
    assert any(f"[::1]:{web.port}" in record for record in result.records)


def test_system_resolver_with_fallback_between_addresses(web: WebServer) -> None:
    """``localhost`` from getaddrinfo: if ::1 comes first, it refuses and 127.0.0.1 answers."""
    request = request_for(Identifier.dns("localhost"), "http-01")
    web.routes[http01_path(request.token)] = (200, TEXT, request.key_authorization.encode())
    va = NetworkVA(http_port=web.port, workers=1)
    result = va.validate(request)
    va.close()
    assert result.valid, result.error
    assert any("addresses of localhost from the system resolver" in record for record in result.records)
