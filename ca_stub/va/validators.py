"""One function per challenge type: fetch what the client serves, then check it.

The checks themselves are ``letsencrypt.acme.challenges``' (shared with the client); this
module only does the network part and turns a ``ValidationFailed`` into a :class:`Failure`
whose detail says what was fetched (URL and address, or record name) and what was found.

- http-01 (RFC 8555 §8.3): ``GET http://NAME:HTTP_PORT/.well-known/acme-challenge/TOKEN``,
  following at most 10 redirects, each only to ``http`` on the http port or ``https`` on the
  TLS port (a redirect URL without a port means that scheme's configured port, as the first
  request does), each target a DNS name or an IP literal resolved like the first.
- tls-alpn-01 (RFC 8737 §3, RFC 8738 §6): handshake on the TLS port offering only
  ``acme-tls/1``, SNI the name (an IP's reverse-DNS name).
- dns-01 (RFC 8555 §8.4): TXT at ``_acme-challenge.NAME``.
- simpleHttps and dvsni: the 2015 draft as protocol-notes "What this project implements for the
  legacy pair" describes it (HTTPS without redirects and a short timeout; SNI ``N.acme.invalid``).

Imports: stdlib, cryptography, ``letsencrypt.acme``, ``ca_stub.contracts`` and ``ca_stub.va``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import urllib.parse

from ca_stub.contracts import ValidationRequest
from ca_stub.va._attempt import Attempt, Failure, quote
from ca_stub.va._transport import BODY_CAP, HttpResponse, handshake, http_get, try_addresses
from ca_stub.va.resolver import Resolver
from letsencrypt.acme.challenges import (
    ACME_TLS_ALPN_PROTOCOL,
    DVSNI_SUFFIX,
    HTTP01_PATH_PREFIX,
    check_dns01,
    check_dvsni,
    check_http01,
    check_simple_https,
    check_simple_https_path,
    check_tls_alpn01,
    dns01_record_name,
    http01_path,
    tls_alpn01_sni,
)
from letsencrypt.acme.errors import JWSError, ValidationFailed
from letsencrypt.acme.jws import public_key_from_jwk

__all__ = [
    "MAX_REDIRECTS",
    "Network",
    "validate_dns01",
    "validate_dvsni",
    "validate_http01",
    "validate_simple_https",
    "validate_tls_alpn01",
]

MAX_REDIRECTS = 10
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DNS_HOST = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)


@dataclasses.dataclass(frozen=True, slots=True)
class Network:
    """Where the VA connects: the ports standing in for 80 and 443, and how names resolve."""

    resolver: Resolver
    http_port: int = 80
    tls_port: int = 443


def _failed(err: ValidationFailed, where: str) -> Failure:
    return Failure(err.problem_type, f"{where}: {err}")


def _need(value: str | None, what: str, challenge: str) -> str:
    if not value:
        raise Failure("malformed", f"the {challenge} challenge has no {what}")
    return value


# --- http-01 -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    scheme: str  # "http" or "https"
    host: str  # a DNS name or an IP address, without brackets
    port: int
    path: str  # path and query

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


def _fetch(target: _Target, network: Network, attempt: Attempt) -> HttpResponse:
    addresses = network.resolver.addresses(target.host, attempt)
    return try_addresses(
        addresses,
        attempt,
        lambda address: http_get(
            address, target.port, tls=target.scheme == "https", host=target.host, path=target.path,
            attempt=attempt, url=target.url,
        ),
    )


def _redirect_host(hostname: str | None, url: str) -> str:
    if not hostname:
        raise Failure("connection", f"redirect to {url} refused: it names no host")
    host = hostname.rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if len(host) > 253 or not _DNS_HOST.fullmatch(host):
        raise Failure("connection", f"redirect to {url} refused: {host!r} is neither a DNS name nor an IP address")
    return host


def _redirect_target(current: _Target, location: str, network: Network) -> _Target:
    """The next hop of a redirect (RFC 9110 §15.4), or ``Failure(connection)`` if not allowed."""
    url = urllib.parse.urljoin(current.url, location.strip())
    parts = urllib.parse.urlsplit(url)
    allowed = f"only http on port {network.http_port} and https on port {network.tls_port} are followed"
    if parts.scheme not in ("http", "https"):
        raise Failure("connection", f"redirect to {quote(url)} refused: {allowed}")
    try:
        port = parts.port
    except ValueError as err:
        raise Failure("connection", f"redirect to {quote(url)} refused: bad port ({err})") from err
    host = _redirect_host(parts.hostname, quote(url))
    expected = network.http_port if parts.scheme == "http" else network.tls_port
    if port is not None and port != expected:
        raise Failure("connection", f"redirect to {quote(url)} refused: {allowed}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(parts.scheme, host, expected, path)


def validate_http01(request: ValidationRequest, network: Network, attempt: Attempt) -> None:
    """Fetch the key authorization over HTTP, following allowed redirects (RFC 8555 §8.3)."""
    target = _Target("http", request.identifier.value, network.http_port, http01_path(request.token))
    for hops in range(MAX_REDIRECTS + 1):
        response = _fetch(target, network, attempt)
        where = f"fetched {target.url} ({response.address})"
        if response.status in _REDIRECT_STATUSES and response.location is not None:
            if hops == MAX_REDIRECTS:
                raise Failure("connection", f"{where}: too many redirects (more than {MAX_REDIRECTS})")
            target = _redirect_target(target, response.location, network)
            continue
        break
    if response.status != 200:
        raise Failure("unauthorized", f"{where}: HTTP {response.status} with body {quote(response.body)}")
    if len(response.body) > BODY_CAP:
        raise Failure("unauthorized", f"{where}: the body is longer than {BODY_CAP} bytes: {quote(response.body)}")
    try:
        check_http01(response.body, request.key_authorization)
    except ValidationFailed as err:
        raise _failed(err, where) from err


def validate_simple_https(request: ValidationRequest, network: Network, attempt: Attempt) -> None:
    """``GET https://NAME:TLS_PORT/.well-known/acme-challenge/PATH``, no redirects (legacy A.1)."""
    try:
        path = check_simple_https_path(_need(request.path, "path", "simpleHttps"))
    except ValidationFailed as err:
        raise _failed(err, "simpleHttps") from err
    target = _Target("https", request.identifier.value, network.tls_port, HTTP01_PATH_PREFIX + path)
    response = _fetch(target, network, attempt)
    try:
        check_simple_https(response.status, response.content_type, response.body, request.token)
    except ValidationFailed as err:
        raise _failed(err, f"fetched {target.url} ({response.address})") from err


# --- TLS-based ---------------------------------------------------------------------------------


def validate_tls_alpn01(request: ValidationRequest, network: Network, attempt: Attempt) -> None:
    """Handshake offering ``acme-tls/1`` and check the challenge certificate (RFC 8737 §3)."""
    identifier = request.identifier
    try:
        sni = tls_alpn01_sni(identifier)
    except ValueError as err:
        raise Failure("malformed", f"tls-alpn-01: {err}") from err
    addresses = network.resolver.addresses(identifier.value, attempt)
    result = try_addresses(
        addresses, attempt,
        lambda address: handshake(address, network.tls_port, sni, (ACME_TLS_ALPN_PROTOCOL,), attempt),
    )
    try:
        check_tls_alpn01(result.certificate, identifier, request.key_authorization, result.alpn)
    except ValidationFailed as err:
        raise _failed(err, f"TLS to {result.where} with SNI {sni}") from err


def validate_dvsni(request: ValidationRequest, network: Network, attempt: Attempt) -> None:
    """Handshake with SNI ``N.acme.invalid``; the certificate must name Z and the domain (legacy A.4)."""
    r = _need(request.r, "r", "dvsni")
    s = _need(request.s, "s", "dvsni")
    sni = _need(request.nonce, "nonce", "dvsni").lower() + DVSNI_SUFFIX
    try:
        account_key = public_key_from_jwk(request.account_jwk)
    except JWSError as err:
        raise Failure("serverInternal", f"dvsni: the account key cannot be used: {err}") from err
    addresses = network.resolver.addresses(request.identifier.value, attempt)
    result = try_addresses(
        addresses, attempt, lambda address: handshake(address, network.tls_port, sni, (), attempt)
    )
    try:
        check_dvsni(result.certificate, r, s, request.identifier.value, account_key)
    except ValidationFailed as err:
        raise _failed(err, f"TLS to {result.where} with SNI {sni}") from err


# --- dns-01 ------------------------------------------------------------------------------------


def validate_dns01(request: ValidationRequest, network: Network, attempt: Attempt) -> None:
    """Look for base64url(SHA-256(key authorization)) among the TXT values (RFC 8555 §8.4)."""
    if request.identifier.type != "dns":
        raise Failure("malformed", f"dns-01 cannot validate a {request.identifier.type!r} identifier (RFC 8738 §7)")
    name = dns01_record_name(request.identifier.value)
    values = network.resolver.txt(name, attempt)
    try:
        check_dns01(values, request.key_authorization, record_name=name)
    except ValidationFailed as err:
        raise _failed(err, "dns-01") from err
