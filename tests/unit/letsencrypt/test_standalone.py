"""The standalone authenticator over real loopback sockets, checked with the validator's own functions."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from plugin_fakes import free_port, make_context, make_task

from letsencrypt.acme import challenges
from letsencrypt.acme.challenges import ACME_TLS_ALPN_PROTOCOL
from letsencrypt.acme.errors import ValidationFailed
from letsencrypt.acme.messages import Identifier
from letsencrypt.plugin_api import ChallengeSetupError, ChallengeTask, NotSupported
from letsencrypt.plugins.standalone import StandaloneAuthenticator


@pytest.fixture
def authenticator(tmp_path: Path) -> Iterator[StandaloneAuthenticator]:
    """A prepared authenticator on free loopback ports; every task it performed is cleaned up afterwards."""
    _all_tasks.clear()
    plugin = StandaloneAuthenticator(make_context(tmp_path, http01_port=free_port(), https_port=free_port()))
    plugin.prepare()
    yield plugin
    plugin.cleanup(list(_all_tasks))
    _all_tasks.clear()
    assert not _responder_threads()


_all_tasks: list[ChallengeTask] = []


def _perform(plugin: StandaloneAuthenticator, *tasks: ChallengeTask) -> list[dict[str, str]]:
    _all_tasks.extend(tasks)
    return [dict(response) for response in plugin.perform(tasks)]


def _responder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("http-01-responder", "tls-responder")]


def _get(port: int, path: str, method: str = "GET") -> tuple[int, bytes, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, headers={"Host": "example.com"})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type")
    finally:
        connection.close()


def _client_context(alpn: list[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # validators do not verify challenge certificates
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def _handshake(port: int, sni: str, alpn: list[str]) -> tuple[x509.Certificate, str | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        _client_context(alpn).wrap_socket(raw, server_hostname=sni) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der), tls.selected_alpn_protocol()


def _https_get(port: int, sni: str, path: str) -> tuple[int, bytes, str | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        _client_context(["http/1.1"]).wrap_socket(raw, server_hostname=sni) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(tls)  # an SSLSocket has makefile() like a socket
        response.begin()
        return response.status, response.read(), response.getheader("Content-Type")


def _ports(plugin: StandaloneAuthenticator) -> tuple[int, int]:
    context = plugin._context
    return context.http01_port, context.https_port


# --- http-01 ---------------------------------------------------------------------------------


def test_http01_serves_exactly_the_challenge_paths(authenticator: StandaloneAuthenticator) -> None:
    first, second = make_task("example.com"), make_task("www.example.com")
    assert _perform(authenticator, first, second) == [{}, {}]
    port, _ = _ports(authenticator)

    for task in (first, second):
        status, body, content_type = _get(port, task.http01_path)
        assert status == 200
        assert content_type == "text/plain"
        challenges.check_http01(body, task.key_authorization)
    assert _get(port, first.http01_path, "HEAD")[:2] == (200, b"")
    assert _get(port, first.http01_path + "x")[0] == 404
    assert _get(port, "/.well-known/acme-challenge/")[0] == 404
    assert _get(port, "/")[0] == 404


def test_cleanup_stops_serving_and_joins_the_threads(authenticator: StandaloneAuthenticator) -> None:
    first, second = make_task("example.com"), make_task("www.example.com")
    _perform(authenticator, first, second)
    port, _ = _ports(authenticator)
    assert "http-01-responder" in _responder_threads()

    authenticator.cleanup([first])
    assert _get(port, first.http01_path)[0] == 404
    assert _get(port, second.http01_path)[0] == 200

    authenticator.cleanup([second])
    assert _responder_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    authenticator.cleanup([first, second])  # cleaning up twice is harmless


def test_a_port_in_use_names_the_port_and_what_to_do(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        plugin = StandaloneAuthenticator(make_context(tmp_path, http01_port=port, https_port=free_port()))
        task = make_task("example.com")
        with pytest.raises(ChallengeSetupError) as caught:
            plugin.perform([task])
    assert f"127.0.0.1:{port}" in caught.value.message
    assert caught.value.hint == f"stop the web server on port {port} or use --webroot / --nginx"
    assert _responder_threads() == []


def test_a_busy_tls_port_releases_the_http_port(tmp_path: Path) -> None:
    http_port = free_port()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        https_port = busy.getsockname()[1]
        plugin = StandaloneAuthenticator(make_context(tmp_path, http01_port=http_port, https_port=https_port))
        with pytest.raises(ChallengeSetupError, match=str(https_port)):
            plugin.perform([make_task("example.com"), make_task("example.com", "tls-alpn-01")])
    assert _responder_threads() == []
    socket.create_server(("127.0.0.1", http_port)).close()  # released


# --- tls-alpn-01 -----------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["example.com", "192.0.2.7", "2001:db8::7"])
def test_tls_alpn01_is_served_to_acme_tls_handshakes(authenticator: StandaloneAuthenticator, domain: str) -> None:
    task = make_task(domain, "tls-alpn-01")
    assert _perform(authenticator, task) == [{}]
    _, port = _ports(authenticator)

    certificate, negotiated = _handshake(port, challenges.tls_alpn01_sni(task.identifier), [ACME_TLS_ALPN_PROTOCOL])
    assert negotiated == ACME_TLS_ALPN_PROTOCOL
    challenges.check_tls_alpn01(certificate, task.identifier, task.key_authorization, negotiated)


def test_tls_alpn01_certificate_is_not_served_without_the_acme_offer(
    authenticator: StandaloneAuthenticator,
) -> None:
    task = make_task("example.com", "tls-alpn-01")
    _perform(authenticator, task)
    _, port = _ports(authenticator)

    certificate, negotiated = _handshake(port, "example.com", ["http/1.1"])
    assert negotiated == "http/1.1"
    assert certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["letsencrypt-standalone.invalid"]
    with pytest.raises(ValidationFailed):
        challenges.check_tls_alpn01(certificate, task.identifier, task.key_authorization, ACME_TLS_ALPN_PROTOCOL)

    certificate, negotiated = _handshake(port, "example.com", [])
    with pytest.raises(ValidationFailed):
        challenges.check_tls_alpn01(certificate, task.identifier, task.key_authorization, ACME_TLS_ALPN_PROTOCOL)

    certificate, negotiated = _handshake(port, "other.example", [ACME_TLS_ALPN_PROTOCOL])
    assert negotiated is None
    with pytest.raises(ValidationFailed, match="ALPN"):
        challenges.check_tls_alpn01(certificate, task.identifier, task.key_authorization, negotiated)


# --- the legacy pair, all on one listener ------------------------------------------------------


def test_one_tls_listener_serves_tls_alpn01_dvsni_and_simple_https_at_once(
    authenticator: StandaloneAuthenticator,
) -> None:
    r, nonce = challenges.new_dvsni_challenge_fields()
    alpn = make_task("alpn.example", "tls-alpn-01")
    dvsni = make_task("dvsni.example", "dvsni", r=r, nonce=nonce)
    simple = make_task("simple.example", "simpleHttps")
    alpn_response, dvsni_response, simple_response = _perform(authenticator, alpn, dvsni, simple)
    _, port = _ports(authenticator)

    assert alpn_response == {}
    assert dvsni_response["type"] == "dvsni"
    certificate, _ = _handshake(port, f"{nonce}.acme.invalid", [])
    challenges.check_dvsni(certificate, r, dvsni_response["s"], "dvsni.example", dvsni.account_key.public_key())

    assert simple_response["type"] == "simpleHttps"
    challenges.check_simple_https_path(simple_response["path"])
    path = f"/.well-known/acme-challenge/{simple_response['path']}"
    status, body, content_type = _https_get(port, "simple.example", path)
    challenges.check_simple_https(status, content_type, body, simple.token)
    assert _https_get(port, "simple.example", "/.well-known/acme-challenge/other")[0] == 404

    certificate, negotiated = _handshake(port, "alpn.example", [ACME_TLS_ALPN_PROTOCOL])
    challenges.check_tls_alpn01(certificate, alpn.identifier, alpn.key_authorization, negotiated)


def test_dvsni_is_refused_without_the_challenge_fields(authenticator: StandaloneAuthenticator) -> None:
    with pytest.raises(ChallengeSetupError, match="lacks r or nonce"):
        _perform(authenticator, make_task("example.com", "dvsni"))
    assert _responder_threads() == []


# --- what it offers --------------------------------------------------------------------------


def test_supported_challenges(tmp_path: Path) -> None:
    plugin = StandaloneAuthenticator(make_context(tmp_path))
    assert plugin.supported_challenges(Identifier.dns("example.com")) == [
        "http-01", "tls-alpn-01", "dvsni", "simpleHttps",
    ]  # fmt: skip
    assert plugin.supported_challenges(Identifier.ip("192.0.2.1")) == ["http-01", "tls-alpn-01"]
    assert plugin.supported_challenges(Identifier("dns", "*.example.com")) == []


def test_dns01_is_not_supported(authenticator: StandaloneAuthenticator) -> None:
    with pytest.raises(NotSupported, match=r"dns-01 for example\.com"):
        _perform(authenticator, make_task("example.com", "dns-01"))


def test_an_invalid_port_fails_in_prepare(tmp_path: Path) -> None:
    with pytest.raises(ChallengeSetupError, match="--https-port 70000"):
        StandaloneAuthenticator(make_context(tmp_path, https_port=70000)).prepare()
