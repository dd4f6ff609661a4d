"""ca_stub.va: tls-alpn-01 (RFC 8737) and the legacy dvsni and simpleHttps, against real TLS servers."""

from __future__ import annotations

from pathlib import Path

from test_va_servers import (
    LOOPBACK,
    TlsServer,
    WebServer,
    free_port,
    new_token,
    request_for,
    self_signed,
    server_context,
)

from ca_stub.contracts import ValidationRequest, ValidationResult
from ca_stub.va import NetworkVA
from letsencrypt.acme.challenges import (
    ACME_TLS_ALPN_PROTOCOL,
    dvsni_solution,
    key_authorization,
    new_dvsni_challenge_fields,
    simple_https_solution,
    tls_alpn01_certificate,
    tls_alpn01_sni,
)
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import Identifier

NAME = Identifier.dns("example.com")


def validate_tls(port: int, request: ValidationRequest) -> ValidationResult:
    va = NetworkVA(tls_port=port, resolve_all=LOOPBACK, workers=1)
    try:
        return va.validate(request)
    finally:
        va.close()


def alpn_server(tmp_path: Path, identifier: Identifier, key_auth: str, alpn: tuple[str, ...]) -> TlsServer:
    challenge = server_context(tls_alpn01_certificate(identifier, key_auth), tmp_path, alpn)
    return TlsServer({tls_alpn01_sni(identifier): challenge}, server_context(self_signed(), tmp_path))


def test_tls_alpn01_valid(tmp_path: Path) -> None:
    request = request_for(NAME, "tls-alpn-01")
    with alpn_server(tmp_path, NAME, request.key_authorization, (ACME_TLS_ALPN_PROTOCOL,)) as server:
        result = validate_tls(server.port, request)
    assert result.valid, result.error
    assert server.snis == ["example.com"]


def test_tls_alpn01_for_an_ip_uses_the_reverse_name(tmp_path: Path) -> None:
    identifier = Identifier.ip(LOOPBACK)
    request = request_for(identifier, "tls-alpn-01")
    with alpn_server(tmp_path, identifier, request.key_authorization, (ACME_TLS_ALPN_PROTOCOL,)) as server:
        va = NetworkVA(tls_port=server.port, workers=1)
        result = va.validate(request)
        va.close()
    assert result.valid, result.error
    assert server.snis == ["1.0.0.127.in-addr.arpa"]


def test_tls_alpn01_without_acme_tls_1_is_invalid(tmp_path: Path) -> None:
    request = request_for(NAME, "tls-alpn-01")
    for alpn in ((), ("h2", "http/1.1")):
        with alpn_server(tmp_path, NAME, request.key_authorization, alpn) as server:
            result = validate_tls(server.port, request)
        error = result.error
        assert error is not None, alpn
        assert error.short_type == "unauthorized", error
        assert "negotiated ALPN protocol None, not 'acme-tls/1'" in error.detail


def test_tls_alpn01_wrong_key_authorization(tmp_path: Path) -> None:
    request = request_for(NAME, "tls-alpn-01")
    other = key_authorization(request.token, AccountKey.generate("ec256"))
    with alpn_server(tmp_path, NAME, other, (ACME_TLS_ALPN_PROTOCOL,)) as server:
        result = validate_tls(server.port, request)
    error = result.error
    assert error is not None and error.short_type == "unauthorized"
    assert f"{LOOPBACK}:{server.port}" in error.detail and "acmeIdentifier" in error.detail


def test_tls_alpn01_connection_refused() -> None:
    port = free_port()
    result = validate_tls(port, request_for(NAME, "tls-alpn-01"))
    error = result.error
    assert error is not None and error.short_type == "connection" and str(port) in error.detail


def test_tls_handshake_failure_is_a_tls_problem() -> None:
    with WebServer() as plain:  # plain HTTP where TLS is expected
        result = validate_tls(plain.port, request_for(NAME, "tls-alpn-01"))
    error = result.error
    assert error is not None and error.short_type == "tls", error
    assert f"{LOOPBACK}:{plain.port}" in error.detail


def dvsni_request(account: AccountKey, s: str, r: str, nonce: str) -> ValidationRequest:
    return request_for(NAME, "dvsni", account=account, r=r, nonce=nonce, s=s)


def test_dvsni_valid_and_invalid(tmp_path: Path) -> None:
    account = AccountKey.generate("ec256")
    r, nonce = new_dvsni_challenge_fields()
    solution = dvsni_solution(r, nonce, "example.com", account)
    contexts = {solution.sni: server_context(solution.challenge_certificate, tmp_path)}
    with TlsServer(contexts, server_context(self_signed(), tmp_path)) as server:
        good = validate_tls(server.port, dvsni_request(account, solution.s, r, nonce))
        other_s = dvsni_solution(r, nonce, "example.com", account).s
        wrong_s = validate_tls(server.port, dvsni_request(account, other_s, r, nonce))
        stranger = AccountKey.generate("ec256")
        wrong_key = validate_tls(server.port, dvsni_request(stranger, solution.s, r, nonce))
        other_nonce = new_dvsni_challenge_fields()[1]
        wrong_sni = validate_tls(server.port, dvsni_request(account, solution.s, r, other_nonce))
    assert good.valid, good.error
    assert server.snis[0] == f"{nonce}.acme.invalid"
    for result, found in ((wrong_s, "does not name"), (wrong_key, "account key"), (wrong_sni, "does not name")):
        error = result.error
        assert error is not None and error.short_type == "unauthorized", error
        assert found in error.detail and f"{LOOPBACK}:{server.port}" in error.detail


def test_dvsni_without_s_is_malformed() -> None:
    result = validate_tls(free_port(), request_for(NAME, "dvsni", r="x", nonce="ab"))
    assert result.error is not None and result.error.short_type == "malformed"


def test_simple_https_valid_and_invalid(tmp_path: Path) -> None:
    token = new_token()
    solution = simple_https_solution(token)
    with WebServer(tls_directory=tmp_path) as secure:
        secure.routes[solution.url_path] = (200, {"Content-Type": "text/plain; charset=utf-8"}, solution.body)
        good = validate_tls(secure.port, request_for(NAME, "simpleHttps", token=token, path=solution.path))
        assert good.valid, good.error
        assert secure.hosts == ["example.com"]

        secure.routes[solution.url_path] = (200, {"Content-Type": "text/html"}, solution.body)
        wrong_type = validate_tls(secure.port, request_for(NAME, "simpleHttps", token=token, path=solution.path))
        secure.routes[solution.url_path] = (200, {"Content-Type": "text/plain"}, b"not the token")
        wrong_body = validate_tls(secure.port, request_for(NAME, "simpleHttps", token=token, path=solution.path))
        secure.routes[solution.url_path] = (302, {"Location": "/elsewhere"}, b"")
        secure.routes["/elsewhere"] = (200, {"Content-Type": "text/plain"}, solution.body)
        redirect = validate_tls(secure.port, request_for(NAME, "simpleHttps", token=token, path=solution.path))
        bad_path = validate_tls(secure.port, request_for(NAME, "simpleHttps", token=token, path="../../etc"))
    url = f"https://example.com:{secure.port}/.well-known/acme-challenge/{solution.path}"
    for result, problem_type, found in (
        (wrong_type, "incorrectResponse", "text/html"),
        (wrong_body, "incorrectResponse", "not the token"),
        (redirect, "unauthorized", "HTTP 302"),
        (bad_path, "malformed", "base64url"),
    ):
        error = result.error
        assert error is not None and error.short_type == problem_type, error
        assert found in error.detail
        if problem_type != "malformed":
            assert url in error.detail
    assert secure.hits("/elsewhere") == 0
