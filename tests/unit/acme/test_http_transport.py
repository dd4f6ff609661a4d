"""The ACME client's HTTP transport (``letsencrypt.acme._http``) against real sockets on 127.0.0.1.

``test_client.py`` covers what a server answers (problem documents, HTML, truncated bodies, a
trickle, ``Link`` headers) through an HTTP/1.0 server. This file covers the connection layer that
``HttpTransport`` keeps itself, with scripted servers that speak HTTP/1.1 (or misbehave) on purpose:

1. keep-alive: requests to one origin share one TCP (or TLS) connection;
2. stale connections: closed while idle -> noticed before use; closed on a request -> sent once
   more on a new connection; a new connection closed without an answer -> ``NetworkError``, once;
3. proxies from the environment: absolute-URL requests with ``Proxy-Authorization``, CONNECT
   tunnels verified end to end against the origin, ``no_proxy``, https:// proxies refused;
4. trust anchors: an explicit bundle, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (read once), the
   system store, a missing or broken bundle, ``verify=False``;
5. the deadline: a silent server, a silent TLS handshake, a body over 16 MiB, a chunked body cut short;
6. bad URLs are ``NetworkError``, never another exception;
7. HEAD answers have no body and leave the connection usable.

No mock of ``http.client`` or ``ssl``: every server is a thread on a real socket, stopped and joined
(its sockets closed) by the fixture that started it. The environment's proxy and CA variables are
cleared for every test, so a developer's or CI's settings cannot leak in.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import ipaddress
import os
import re
import resource
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from integration._procs import require_binary, skip_or_fail
from raw_server import Peer, RawServer, clear_environment, making_transports, serving

from letsencrypt.acme import errors
from letsencrypt.acme._http import HttpTransport

MiB = 2**20

# --- the scripted servers --------------------------------------------------------------------------

Script = Callable[[Peer], None]


def serve_http(peer: Peer) -> None:
    """A well-behaved HTTP/1.1 server: every request answered, the connection kept alive."""
    while (request := peer.read_request()) is not None:
        body = f"{request.method} {request.target} on connection {peer.index}".encode()
        peer.respond(200, body, ("Content-Type", "text/plain"), head=request.method == "HEAD")


def pipe(a: socket.socket, b: socket.socket, stopping: threading.Event) -> None:
    """Copy bytes both ways until one side closes (or the server stops)."""
    while not stopping.is_set():
        readable, _, _ = select.select([a, b], [], [], 0.05)
        for source in readable:
            data = source.recv(64 * 1024)
            if not data:
                return
            (b if source is a else a).sendall(data)


def connect_proxy(target_port: int) -> Script:
    """A CONNECT proxy that tunnels every request to 127.0.0.1:``target_port``, whatever it names."""

    def script(peer: Peer) -> None:
        request = peer.read_request()
        if request is None:
            return
        assert request.method == "CONNECT", request.line
        with socket.create_connection(("127.0.0.1", target_port), timeout=10) as upstream:
            peer.sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pipe(peer.sock, upstream, peer.stopping)

    return script


# --- fixtures ------------------------------------------------------------------------------------

_ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or CA variable of the machine running the tests reaches the transport."""
    clear_environment(monkeypatch, *_ENVIRONMENT)


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    """Starts ``RawServer``s; each is stopped and joined at the end, and no script may have failed."""

    def start(script: Script = serve_http, *, context: ssl.SSLContext | None = None) -> RawServer:
        return RawServer(script, Peer, context=context)

    yield from serving(start)


@pytest.fixture
def transports() -> Iterator[Callable[..., HttpTransport]]:
    """Makes ``HttpTransport``s (timeout ``TIMEOUT`` unless given); all are closed at the end."""
    yield from making_transports()


@dataclasses.dataclass(frozen=True)
class Tls:
    """PEM files: the test server's self-signed certificate and key, and an unrelated certificate."""

    cert: str  # valid for 127.0.0.1 and localhost: the right trust anchor
    key: str
    wrong: str  # another self-signed certificate: a bundle that trusts nothing the server has
    garbage: str  # a file that is no PEM at all
    empty_dir: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def _self_signed(name: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    paths = Tls(
        cert=str(folder / "server.pem"),
        key=str(folder / "server.key"),
        wrong=str(folder / "wrong.pem"),
        garbage=str(folder / "garbage.pem"),
        empty_dir=str(folder / "empty"),
    )
    Path(paths.cert).write_bytes(_self_signed("localhost", key).public_bytes(serialization.Encoding.PEM))
    Path(paths.key).write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    Path(paths.wrong).write_bytes(_self_signed("localhost", other_key).public_bytes(serialization.Encoding.PEM))
    Path(paths.garbage).write_text("this is not a certificate\n")
    Path(paths.empty_dir).mkdir()
    return paths


@pytest.fixture
def https_server(serve: Callable[..., RawServer], tls: Tls) -> RawServer:
    return serve(context=tls.server_context())


def _text(transport: HttpTransport, method: str, url: str, body: bytes | None = None) -> str:
    response = transport.request(method, url, body=body, content_type="application/jose+json" if body else None)
    assert response.status_code == 200
    return response.content.decode()


# --- 1. keep-alive -------------------------------------------------------------------------------


def test_requests_to_one_origin_share_one_connection(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    server = serve()
    transport = transports()
    assert _text(transport, "GET", server.url("/dir")) == "GET /dir on connection 0"
    assert _text(transport, "POST", server.url("/new-order"), b'{"a": 1}') == "POST /new-order on connection 0"
    assert _text(transport, "GET", server.url("/dir?x=1")) == "GET /dir?x=1 on connection 0"
    assert server.connections == 1
    assert [request.line for request in server.requests] == [
        "GET /dir HTTP/1.1",
        "POST /new-order HTTP/1.1",
        "GET /dir?x=1 HTTP/1.1",
    ]
    assert server.requests[1].body == b'{"a": 1}'
    assert server.requests[1].headers["content-type"] == "application/jose+json"
    assert server.requests[0].headers["user-agent"].startswith("letsencrypt-acme/")


def test_https_requests_share_one_connection(
    https_server: RawServer, tls: Tls, transports: Callable[..., HttpTransport]
) -> None:
    transport = transports(verify=tls.cert)
    for path in ("/a", "/b", "/c"):
        assert _text(transport, "GET", https_server.url(path)) == f"GET {path} on connection 0"
    assert https_server.connections == 1


def test_many_open_files_do_not_cost_the_kept_alive_connection(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    """A process with over 1024 files open (select()'s limit) still reuses its connection."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        skip_or_fail(f"needs 1200 open files, the limit is {soft}")
    server = serve()
    transport = transports()
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # the connection's fd comes after
    try:
        for path in ("/a", "/b", "/c"):
            assert _text(transport, "GET", server.url(path)) == f"GET {path} on connection 0"
    finally:
        for fd in spare:
            os.close(fd)
    assert server.connections == 1


def test_server_closing_after_its_answer_gets_a_new_connection_without_a_retry(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        request = peer.read_request()
        assert request is not None
        peer.respond(200, f"answer {peer.index}".encode(), ("Connection", "close"))

    server = serve(script)
    transport = transports()
    assert [_text(transport, "GET", server.url(f"/{n}")) for n in range(3)] == ["answer 0", "answer 1", "answer 2"]
    assert [len(peer.requests) for peer in server.peers] == [1, 1, 1]  # never sent twice


def test_head_has_no_body_and_the_connection_carries_on(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    server = serve()
    transport = transports()
    head = transport.request("HEAD", server.url("/new-nonce"))
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) > 0  # announced, as for a GET, and not sent
    assert _text(transport, "GET", server.url("/dir")) == "GET /dir on connection 0"
    assert transport.request("HEAD", server.url("/new-nonce")).content == b""
    assert _text(transport, "POST", server.url("/order"), b"{}") == "POST /order on connection 0"
    assert server.connections == 1
    assert [request.method for request in server.requests] == ["HEAD", "GET", "HEAD", "POST"]


# --- 2. stale connections ------------------------------------------------------------------------


def test_connection_closed_while_idle_is_noticed_before_it_is_used(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    closed = threading.Event()

    def script(peer: Peer) -> None:
        if peer.index > 0:
            serve_http(peer)
            return
        request = peer.read_request()
        assert request is not None
        peer.respond(200, b"first", ("Content-Type", "text/plain"))  # kept alive, by all it says
        peer.sock.shutdown(socket.SHUT_WR)  # then closed while idle; still reading, to see a late request
        closed.set()
        while peer.read_request() is not None:
            return  # a request on the closed connection: recorded, and never answered

    server = serve(script)
    transport = transports()
    assert _text(transport, "GET", server.url("/one")) == "first"
    assert closed.wait(5)
    time.sleep(0.02)  # the FIN crosses loopback
    assert _text(transport, "GET", server.url("/two")) == "GET /two on connection 1"
    assert server.connections == 2
    assert [len(peer.requests) for peer in server.peers] == [1, 1]  # /two never went to the closed one


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_kept_alive_connection_closed_on_a_request_sends_it_once_more(
    scheme: str, serve: Callable[..., RawServer], tls: Tls, transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        if peer.index > 0:
            serve_http(peer)
            return
        first = peer.read_request()
        assert first is not None
        peer.respond(200, b"first", ("Content-Type", "text/plain"))
        assert peer.read_request() is not None  # the second request arrives on the kept-alive connection...
        # ...and the server goes away without a word (as one does that reached its idle limit)

    server = serve(script, context=tls.server_context() if scheme == "https" else None)
    transport = transports(verify=tls.cert)
    assert _text(transport, "GET", server.url("/dir")) == "first"
    body = b'{"protected": "e30", "payload": "", "signature": "c2ln"}'
    assert _text(transport, "POST", server.url("/order"), body) == "POST /order on connection 1"
    assert server.connections == 2
    first, second = server.peers
    assert [request.line for request in first.requests] == ["GET /dir HTTP/1.1", "POST /order HTTP/1.1"]
    assert [request.line for request in second.requests] == ["POST /order HTTP/1.1"]
    assert first.requests[1].body == second.requests[0].body == body  # the same POST, twice


def test_new_connection_closed_without_an_answer_is_not_retried(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        peer.read_request()  # and close

    server = serve(script)
    with pytest.raises(errors.NetworkError) as caught:
        transports().request("POST", server.url("/order"), body=b"{}")
    assert "the server closed the connection without an answer" in str(caught.value)
    assert server.url("/order") in str(caught.value)
    assert caught.value.url == server.url("/order")
    assert server.connections == 1
    assert len(server.requests) == 1


def test_request_resent_and_closed_again_gives_network_error(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        if peer.index == 0:
            assert peer.read_request() is not None
            peer.respond(200, b"first")
        peer.read_request()  # and close, on the kept-alive connection and on the new one alike

    server = serve(script)
    transport = transports()
    assert _text(transport, "GET", server.url("/dir")) == "first"
    with pytest.raises(errors.NetworkError) as caught:
        transport.request("POST", server.url("/order"), body=b"{}")
    assert "the server closed the connection without an answer" in str(caught.value)
    assert server.connections == 2  # one resend, not more
    assert [request.line for request in server.requests] == [
        "GET /dir HTTP/1.1",
        "POST /order HTTP/1.1",
        "POST /order HTTP/1.1",
    ]
    server.script = serve_http  # and the transport recovers on the next request
    assert _text(transport, "GET", server.url("/dir")) == "GET /dir on connection 2"


# --- 3. proxies from the environment -------------------------------------------------------------


def test_http_proxy_gets_the_absolute_url_and_the_credentials(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve()
    monkeypatch.setenv("http_proxy", f"http://user:p%40ss@127.0.0.1:{proxy.port}")
    transport = transports()
    assert _text(transport, "GET", "http://acme.invalid/dir") == "GET http://acme.invalid/dir on connection 0"
    assert _text(transport, "POST", "http://acme.invalid/order", b"{}") == (
        "POST http://acme.invalid/order on connection 0"
    )
    assert proxy.connections == 1  # the proxy connection is kept alive too
    for request in proxy.requests:
        assert request.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
        assert request.headers["host"] == "acme.invalid"
    assert proxy.requests[0].line == "GET http://acme.invalid/dir HTTP/1.1"


def test_all_proxy_is_used_when_no_scheme_proxy_is_set(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve()
    monkeypatch.setenv("all_proxy", f"127.0.0.1:{proxy.port}")  # no scheme: http:// is meant
    assert _text(transports(), "GET", "http://acme.invalid/dir") == "GET http://acme.invalid/dir on connection 0"
    assert "proxy-authorization" not in proxy.requests[0].headers


def test_https_goes_through_a_connect_tunnel_verified_end_to_end(
    serve: Callable[..., RawServer],
    https_server: RawServer,
    tls: Tls,
    transports: Callable[..., HttpTransport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = serve(connect_proxy(https_server.port))
    monkeypatch.setenv("https_proxy", f"http://user:secret@127.0.0.1:{proxy.port}")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # not for https
    transport = transports(verify=tls.cert)
    assert _text(transport, "GET", https_server.url("/dir")) == "GET /dir on connection 0"
    assert _text(transport, "POST", https_server.url("/order"), b"{}") == "POST /order on connection 0"
    assert proxy.connections == 1
    assert https_server.connections == 1
    (connect,) = proxy.requests
    assert connect.method == "CONNECT"
    assert connect.target == f"127.0.0.1:{https_server.port}"
    assert connect.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:secret").decode()
    # inside the tunnel: origin-form requests, and the proxy's credentials stay with the proxy
    assert [request.line for request in https_server.requests] == ["GET /dir HTTP/1.1", "POST /order HTTP/1.1"]
    assert all("proxy-authorization" not in request.headers for request in https_server.requests)


def test_tunnel_checks_the_certificate_against_the_origin_name(
    serve: Callable[..., RawServer],
    https_server: RawServer,
    tls: Tls,
    transports: Callable[..., HttpTransport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = serve(connect_proxy(https_server.port))  # tunnels to the server, whatever name is asked
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.port}")
    transport = transports(verify=tls.cert)
    url = f"https://wrong.invalid:{https_server.port}/dir"
    with pytest.raises(errors.NetworkError) as caught:
        transport.request("GET", url)
    assert "TLS failure" in str(caught.value)
    assert "Hostname mismatch" in str(caught.value)  # what was wrong, not just CERTIFICATE_VERIFY_FAILED
    assert "not valid for 'wrong.invalid'" in str(caught.value)
    assert proxy.requests[0].target == f"wrong.invalid:{https_server.port}"
    assert https_server.requests == []


def test_proxy_refusing_the_tunnel_gives_network_error(
    serve: Callable[..., RawServer], tls: Tls, transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(peer: Peer) -> None:
        assert peer.read_request() is not None
        peer.respond(407, b"who are you?", ("Proxy-Authenticate", 'Basic realm="proxy"'))

    proxy = serve(script)
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.port}")
    with pytest.raises(errors.NetworkError) as caught:
        transports(verify=tls.cert).request("GET", "https://acme.invalid/dir")
    assert "407" in str(caught.value)
    assert "https://acme.invalid/dir" in str(caught.value)


def test_no_proxy_goes_direct(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and now has no listener
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    server = serve()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert _text(transports(), "GET", server.url("/dir")) == "GET /dir on connection 0"
    assert server.requests[0].target == "/dir"  # origin form: it was not asked as a proxy


def test_https_proxy_url_is_refused(transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "https://proxy.invalid:3128")
    with pytest.raises(errors.NetworkError) as caught:
        transports().request("GET", "https://acme.invalid/dir")
    assert "only http:// proxies are supported" in str(caught.value)
    assert "https://proxy.invalid:3128" in str(caught.value)


# --- 4. trust anchors ----------------------------------------------------------------------------


def system_store(monkeypatch: pytest.MonkeyPatch, bundle: str, tls: Tls) -> None:
    """The system store (what ``verify=True`` falls back to) is ``bundle`` alone: no ``SSL_CERT_DIR``."""
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    monkeypatch.setenv("SSL_CERT_DIR", tls.empty_dir)


def test_explicit_bundle_wins_over_the_environment(
    https_server: RawServer, tls: Tls, transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.wrong)
    monkeypatch.setenv("CURL_CA_BUNDLE", tls.wrong)
    assert _text(transports(verify=tls.cert), "GET", https_server.url("/dir")) == "GET /dir on connection 0"


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_verify_true_uses_the_environment_bundle(
    variable: str,
    https_server: RawServer,
    tls: Tls,
    transports: Callable[..., HttpTransport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    system_store(monkeypatch, tls.wrong, tls)  # the system store would not do
    monkeypatch.setenv(variable, tls.cert)
    assert _text(transports(verify=True), "GET", https_server.url("/dir")) == "GET /dir on connection 0"


def test_requests_ca_bundle_comes_before_curl_ca_bundle(
    https_server: RawServer, tls: Tls, transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.wrong)
    monkeypatch.setenv("CURL_CA_BUNDLE", tls.cert)
    with pytest.raises(errors.NetworkError, match="TLS failure"):
        transports(verify=True).request("GET", https_server.url("/dir"))


def test_verify_true_without_the_environment_uses_the_system_store(
    https_server: RawServer, tls: Tls, transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    system_store(monkeypatch, tls.wrong, tls)
    with pytest.raises(errors.NetworkError) as caught:
        transports(verify=True).request("GET", https_server.url("/dir"))
    assert "TLS failure" in str(caught.value)
    assert "trust anchor" in str(caught.value)
    assert re.search("self.signed certificate", str(caught.value))  # OpenSSL's words for what it found
    assert https_server.url("/dir") in str(caught.value)
    assert isinstance(caught.value.__cause__, ssl.SSLError)
    assert https_server.requests == []


def test_system_store_honours_ssl_cert_file(
    https_server: RawServer, tls: Tls, transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    system_store(monkeypatch, tls.cert, tls)
    assert _text(transports(verify=True), "GET", https_server.url("/dir")) == "GET /dir on connection 0"


def test_missing_bundle_is_named(https_server: RawServer, transports: Callable[..., HttpTransport]) -> None:
    with pytest.raises(errors.NetworkError) as caught:
        transports(verify="/nonexistent.pem").request("GET", https_server.url("/dir"))
    assert "cannot use the trust anchor bundle /nonexistent.pem" in str(caught.value)
    assert https_server.connections == 0  # refused before connecting


def test_bundle_that_is_no_pem_is_named(
    https_server: RawServer, tls: Tls, transports: Callable[..., HttpTransport]
) -> None:
    with pytest.raises(errors.NetworkError) as caught:
        transports(verify=tls.garbage).request("GET", https_server.url("/dir"))
    assert f"cannot use the trust anchor bundle {tls.garbage}" in str(caught.value)


def test_verify_false_talks_to_a_self_signed_server(
    https_server: RawServer, transports: Callable[..., HttpTransport]
) -> None:
    assert _text(transports(verify=False), "GET", https_server.url("/dir")) == "GET /dir on connection 0"


def test_hashed_directory_is_a_bundle(
    https_server: RawServer,
    tls: Tls,
    transports: Callable[..., HttpTransport],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    openssl = require_binary("openssl", "openssl")  # to hash a certificate directory
    subject_hash = subprocess.run(
        [openssl, "x509", "-noout", "-subject_hash", "-in", tls.cert], capture_output=True, text=True, check=True
    ).stdout.strip()
    shutil.copy(tls.cert, tmp_path / f"{subject_hash}.0")
    assert _text(transports(verify=str(tmp_path)), "GET", https_server.url("/a")) == "GET /a on connection 0"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path))  # requests took a directory there too
    assert _text(transports(verify=True), "GET", https_server.url("/b")) == "GET /b on connection 1"


def test_environment_is_read_when_the_transport_is_made(
    https_server: RawServer, tls: Tls, transports: Callable[..., HttpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    system_store(monkeypatch, tls.wrong, tls)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.cert)
    trusting = transports(verify=True)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    distrusting = transports(verify=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.wrong)
    assert _text(trusting, "GET", https_server.url("/dir")) == "GET /dir on connection 0"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.cert)
    with pytest.raises(errors.NetworkError, match="TLS failure"):
        distrusting.request("GET", https_server.url("/dir"))


# --- 5. the deadline and the size limit ----------------------------------------------------------


def test_silent_server_gives_network_error_in_about_the_timeout(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.stopping.wait()  # accepted, read, and never answered

    server = serve(script)
    started = time.monotonic()
    with pytest.raises(errors.NetworkError) as caught:
        transports(timeout=0.5).request("GET", server.url("/dir"))
    elapsed = time.monotonic() - started
    assert "no answer within 0.5 s" in str(caught.value)
    assert server.url("/dir") in str(caught.value)
    assert 0.45 <= elapsed < 1.5
    assert server.connections == 1  # a timeout is not resent


def test_silent_tls_handshake_gives_network_error_in_about_the_timeout(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    server = serve(lambda peer: peer.stopping.wait())  # TCP accepted, no TLS answer
    started = time.monotonic()
    with pytest.raises(errors.NetworkError) as caught:
        transports(timeout=0.5).request("GET", server.url("/dir", scheme="https"))
    elapsed = time.monotonic() - started
    assert "no answer within 0.5 s" in str(caught.value)
    assert 0.45 <= elapsed < 1.5


def test_answer_over_16_mib_is_refused(
    serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        assert peer.read_request() is not None
        size = 17 * MiB
        peer.respond(200, b"", ("Content-Type", "application/json"), ("Content-Length", str(size)))
        zeros = bytes(MiB)
        for _ in range(17):
            peer.sock.sendall(zeros)  # the client hangs up midway: BrokenPipe ends the script

    server = serve(script)
    with pytest.raises(errors.UnexpectedResponse) as caught:
        transports().request("GET", server.url("/cert"))
    assert "over 16 MiB" in str(caught.value)
    assert caught.value.status == 200
    assert caught.value.url == server.url("/cert")


@pytest.mark.parametrize(
    "sent",
    [
        b"10\r\n" + b"a" * 5,  # a chunk announced at 16 bytes, 5 sent
        b"5\r\naaaaa\r\n",  # whole chunks, and no last (empty) chunk
        b"zz\r\n",  # a chunk size that is no hex number
    ],
    ids=["mid-chunk", "no-last-chunk", "bad-size"],
)
def test_chunked_body_cut_short_gives_network_error(
    sent: bytes, serve: Callable[..., RawServer], transports: Callable[..., HttpTransport]
) -> None:
    def script(peer: Peer) -> None:
        assert peer.read_request() is not None
        peer.respond(200, b"", ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"))
        peer.sock.sendall(sent)  # and close

    server = serve(script)
    transport = transports()
    with pytest.raises(errors.NetworkError) as caught:
        transport.request("GET", server.url("/order"))
    assert server.url("/order") in str(caught.value)
    server.script = serve_http  # the broken connection is not used again
    assert _text(transport, "GET", server.url("/order")) == "GET /order on connection 1"


# --- 6. bad URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x/",
        "https:///nohost",
        "http://h:99999/",
        "http://h:port/",
        "http://[::1/",
        "not a url",
        "",
        "http://127.0.0.1:1/a b",
        "http://127.0.0.1:1/a\r\nX-Injected: 1",
    ],
)
def test_bad_url_gives_network_error(url: str, transports: Callable[..., HttpTransport]) -> None:
    with pytest.raises(errors.NetworkError) as caught:
        transports().request("GET", url)
    assert caught.value.url == url
