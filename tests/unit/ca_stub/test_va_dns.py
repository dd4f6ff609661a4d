"""ca_stub.va: dns-01 (RFC 8555 §8.4) and name resolution against a real loopback DNS server."""

from __future__ import annotations

import socket

from integration._procs import skip_or_fail
from test_va_servers import LOOPBACK, DnsServer, WebServer, request_for

from ca_stub.va import NetworkVA
from letsencrypt.acme.challenges import dns01_txt_value, http01_path
from letsencrypt.acme.messages import Identifier

NAME = Identifier.dns("example.com")
RECORD = "_acme-challenge.example.com"


def test_dns01_valid_among_several_values() -> None:
    request = request_for(NAME, "dns-01")
    with DnsServer(txt={RECORD: ["unrelated", dns01_txt_value(request.key_authorization)]}) as server:
        va = NetworkVA(dns_server=server.address, workers=1)
        result = va.validate(request)
        va.close()
    assert result.valid, result.error
    assert server.questions == [(RECORD, "TXT")]
    assert any(RECORD in record for record in result.records)


def test_dns01_missing_record_is_a_dns_problem_naming_the_record() -> None:
    request = request_for(NAME, "dns-01")
    with DnsServer(txt={"_acme-challenge.other.example": ["x"]}) as server:
        va = NetworkVA(dns_server=server.address, workers=1)
        nxdomain = va.validate(request)
        no_answer = va.validate(request_for(Identifier.dns("other.example"), "dns-01"))
        va.close()
    error = nxdomain.error
    assert error is not None and error.short_type == "dns"
    assert RECORD in error.detail and "NXDOMAIN" in error.detail
    assert f"{server.address[0]}:{server.address[1]}" in error.detail
    assert no_answer.error is not None and no_answer.error.short_type == "unauthorized"  # a TXT, but wrong


def test_dns01_no_txt_at_an_existing_name() -> None:
    request = request_for(NAME, "dns-01")
    with DnsServer(a={RECORD: ["127.0.0.1"]}) as server:
        va = NetworkVA(dns_server=server.address, workers=1)
        result = va.validate(request)
        va.close()
    assert result.error is not None and result.error.short_type == "dns"
    assert RECORD in result.error.detail and "has none" in result.error.detail


def test_dns01_wrong_value_is_unauthorized() -> None:
    request = request_for(NAME, "dns-01")
    with DnsServer(txt={RECORD: ["not-the-digest"]}) as server:
        va = NetworkVA(dns_server=server.address, workers=1)
        result = va.validate(request)
        va.close()
    assert result.error is not None and result.error.short_type == "unauthorized"
    assert "not-the-digest" in result.error.detail and RECORD in result.error.detail


def test_dns01_for_an_ip_identifier_is_refused() -> None:
    va = NetworkVA(resolve_all=LOOPBACK, workers=1)
    result = va.validate(request_for(Identifier.ip(LOOPBACK), "dns-01"))
    va.close()
    assert result.error is not None and result.error.short_type == "malformed"


def test_dns_server_timeout_is_a_dns_problem() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        va = NetworkVA(dns_server=(LOOPBACK, silent.getsockname()[1]), workers=1, timeout=0.5)
        result = va.validate(request_for(NAME, "dns-01"))
        va.close()
    assert result.error is not None and result.error.short_type == "dns"
    assert "_acme-challenge.example.com" in result.error.detail


def test_http01_resolves_names_with_the_dns_server() -> None:
    request = request_for(NAME, "http-01")
    with WebServer() as web, DnsServer(a={"example.com": [LOOPBACK]}) as server:
        web.routes[http01_path(request.token)] = (200, {}, request.key_authorization.encode())
        va = NetworkVA(http_port=web.port, dns_server=server.address, workers=1)
        valid = va.validate(request)
        unknown = va.validate(request_for(Identifier.dns("unknown.example"), "http-01"))
        va.close()
    assert valid.valid, valid.error
    assert ("example.com", "A") in server.questions and ("example.com", "AAAA") in server.questions
    assert unknown.error is not None and unknown.error.short_type == "dns"
    assert "unknown.example" in unknown.error.detail and "NXDOMAIN" in unknown.error.detail


def test_dns_server_may_be_named_by_host_name() -> None:
    if socket.getaddrinfo("localhost", 53, proto=socket.IPPROTO_UDP)[0][4][0] != LOOPBACK:
        skip_or_fail("localhost resolves to IPv6 first here; the test DNS server listens on IPv4")
    request = request_for(NAME, "dns-01")
    with DnsServer(txt={RECORD: [dns01_txt_value(request.key_authorization)]}) as server:
        va = NetworkVA(dns_server=("localhost", server.address[1]), workers=1)
        result = va.validate(request)
        va.close()
    assert result.valid, result.error
