"""Challenge math: key authorizations, http-01, dns-01, tls-alpn-01 and the legacy pair.

The tls-alpn-01 certificate also goes through a real TLS handshake on loopback, served the way
RFC 8737 §3 asks: only to a ClientHello that offers ``acme-tls/1`` with the right SNI.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from letsencrypt.acme import challenges
from letsencrypt.acme.challenges import (
    ACME_IDENTIFIER_OID,
    ACME_IDENTIFIER_V1_OID,
    ACME_TLS_ALPN_PROTOCOL,
    ChallengeCertificate,
    check_dns01,
    check_dvsni,
    check_http01,
    check_simple_https,
    check_simple_https_path,
    check_tls_alpn01,
    dvsni_solution,
    key_authorization,
    tls_alpn01_certificate,
    tls_alpn01_extension_value,
)
from letsencrypt.acme.errors import ValidationFailed
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import ChallengeType, Identifier

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"  # the RFC 8555 §8.3 example token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def account() -> AccountKey:
    return AccountKey.generate("ec256")


@pytest.fixture(scope="module")
def key_authz(account: AccountKey) -> str:
    return key_authorization(TOKEN, account)


# --- key authorizations --------------------------------------------------------------------


def test_key_authorization_is_token_dot_thumbprint(account: AccountKey) -> None:
    assert key_authorization(TOKEN, account) == f"{TOKEN}.{account.thumbprint}"
    assert key_authorization(TOKEN, account.thumbprint) == f"{TOKEN}.{account.thumbprint}"
    assert len(account.thumbprint) == 43


@pytest.mark.parametrize("token", ["", "../../etc/passwd", "abc=", "a b", "a+b/c", "tok\n", "x"])
def test_key_authorization_rejects_a_token_that_is_not_base64url(account: AccountKey, token: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        key_authorization(token, account)
    with pytest.raises(ValueError, match="base64url"):
        challenges.http01_path(token)


def test_key_authorization_rejects_something_that_is_no_thumbprint() -> None:
    with pytest.raises(ValueError, match="thumbprint"):
        key_authorization(TOKEN, "short")


def test_challenge_response_is_empty_for_modern_types() -> None:
    for kind in (ChallengeType.HTTP_01, ChallengeType.DNS_01, "tls-alpn-01"):
        assert challenges.challenge_response(kind) == {}
    assert challenges.challenge_response("simpleHttps", path="abc") == {"type": "simpleHttps", "path": "abc"}
    assert challenges.challenge_response(ChallengeType.DVSNI, s="xyz") == {"type": "dvsni", "s": "xyz"}
    with pytest.raises(ValueError, match="path"):
        challenges.challenge_response("simpleHttps")
    with pytest.raises(ValueError, match="unknown"):
        challenges.challenge_response("dns-account-01")


# --- http-01 ------------------------------------------------------------------------------------


def test_http01_path_and_body(key_authz: str) -> None:
    assert challenges.http01_path(TOKEN) == f"/.well-known/acme-challenge/{TOKEN}"
    assert challenges.http01_body(key_authz) == key_authz.encode("ascii")
    check_http01(challenges.http01_body(key_authz), key_authz)


@pytest.mark.parametrize("suffix", [b"\n", b"\r\n", b" \t\r\n  ", b"\n\n"])
def test_check_http01_ignores_trailing_whitespace(key_authz: str, suffix: bytes) -> None:
    check_http01(key_authz.encode() + suffix, key_authz)


def test_check_http01_does_not_ignore_leading_whitespace(key_authz: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_http01(b" " + key_authz.encode(), key_authz)
    assert info.value.problem_type == "incorrectResponse"


def test_check_http01_says_what_it_found_truncated(key_authz: str) -> None:
    page = b"<html>" + b"x" * 5000 + b"</html>"
    with pytest.raises(ValidationFailed) as info:
        check_http01(page, key_authz)
    message = str(info.value)
    assert info.value.problem_type == "incorrectResponse"
    assert "<html>xxx" in message and "..." in message and key_authz in message
    assert len(message) < 400


# --- dns-01 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "name"),
    [
        ("example.com", "_acme-challenge.example.com"),
        ("*.example.com", "_acme-challenge.example.com"),
        ("www.example.com.", "_acme-challenge.www.example.com"),
    ],
)
def test_dns01_record_name(domain: str, name: str) -> None:
    assert challenges.dns01_record_name(domain) == name


def test_dns01_txt_value_known_vector() -> None:
    authz = f"{TOKEN}.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    expected = base64.urlsafe_b64encode(hashlib.sha256(authz.encode()).digest()).decode().rstrip("=")
    assert challenges.dns01_txt_value(authz) == expected
    assert len(expected) == 43 and "=" not in expected


def test_check_dns01_accepts_any_of_several_values(key_authz: str) -> None:
    value = challenges.dns01_txt_value(key_authz)
    check_dns01(["other-value-for-the-wildcard", value], key_authz)
    check_dns01([f" {value} "], key_authz)


def test_check_dns01_names_the_values_it_found(key_authz: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_dns01(["stale-one", "stale-two"], key_authz, record_name="_acme-challenge.example.com")
    message = str(info.value)
    assert "stale-one" in message and "stale-two" in message
    assert "_acme-challenge.example.com" in message
    assert challenges.dns01_txt_value(key_authz) in message
    assert info.value.problem_type == "unauthorized"
    with pytest.raises(ValidationFailed, match="no TXT record found"):
        check_dns01([], key_authz)


# --- tls-alpn-01 ----------------------------------------------------------------------------

DNS_ID = Identifier.dns("example.com")
IPV4_ID = Identifier.ip("192.0.2.1")
IPV6_ID = Identifier.ip("2001:db8::1")


def test_tls_alpn01_sni_names() -> None:
    assert challenges.tls_alpn01_sni(Identifier.dns("Example.COM")) == "example.com"
    assert challenges.tls_alpn01_sni(IPV4_ID) == "1.2.0.192.in-addr.arpa"
    nibbles = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    assert challenges.tls_alpn01_sni(IPV6_ID) == nibbles
    with pytest.raises(ValueError, match="wildcard"):
        challenges.tls_alpn01_sni(Identifier("dns", "*.example.com"))
    with pytest.raises(ValueError, match="email"):
        challenges.tls_alpn01_sni(Identifier("email", "a@example.com"))


def test_tls_alpn01_extension_bytes_match_rfc8737(key_authz: str) -> None:
    digest = hashlib.sha256(key_authz.encode()).digest()
    assert tls_alpn01_extension_value(key_authz) == bytes.fromhex("0420") + digest

    served = tls_alpn01_certificate(DNS_ID, key_authz)
    extension = served.certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert extension.critical
    assert extension.oid.dotted_string == "1.3.6.1.5.5.7.1.31"
    full_extension = bytes.fromhex("3031 0608 2B06010505070 11F 0101FF 0422 0420".replace(" ", "")) + digest
    assert full_extension in served.certificate.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("identifier", [DNS_ID, IPV4_ID, IPV6_ID], ids=["dns", "ipv4", "ipv6"])
def test_tls_alpn01_certificate_passes_its_check(identifier: Identifier, key_authz: str) -> None:
    served = tls_alpn01_certificate(identifier, key_authz)
    certificate = served.certificate
    check_tls_alpn01(certificate, identifier, key_authz, ACME_TLS_ALPN_PROTOCOL)

    names = list(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    assert len(names) == 1
    if identifier.type == "ip":
        assert names[0] == x509.IPAddress(ipaddress.ip_address(identifier.value))
    else:
        assert names[0] == x509.DNSName("example.com")
    assert isinstance(served.private_key, ec.EllipticCurvePrivateKey)
    assert served.private_key.curve.name == "secp256r1"
    certificate.verify_directly_issued_by(certificate)
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc <= datetime.timedelta(days=8)
    assert b"PRIVATE KEY" in served.private_key_pem() and b"CERTIFICATE" in served.certificate_pem()
    assert "private_key" not in repr(served)


def test_tls_alpn01_certificate_uses_a_given_key(key_authz: str) -> None:
    key = rsa.generate_private_key(65537, 2048)
    served = tls_alpn01_certificate(DNS_ID, key_authz, private_key=key)
    assert served.private_key is key
    check_tls_alpn01(served.certificate, DNS_ID, key_authz, ACME_TLS_ALPN_PROTOCOL)


def _build_cert(
    names: Sequence[x509.GeneralName],
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.Certificate:
    """A self-signed certificate with exactly what a test asks for, to play a misbehaving client."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def _acme_ext(key_authz: str, oid: x509.ObjectIdentifier = ACME_IDENTIFIER_OID) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(oid, tls_alpn01_extension_value(key_authz))


def test_check_tls_alpn01_accepts_the_name_in_any_case(key_authz: str) -> None:
    certificate = _build_cert([x509.DNSName("EXAMPLE.com")], [(_acme_ext(key_authz), True)])
    check_tls_alpn01(certificate, DNS_ID, key_authz, ACME_TLS_ALPN_PROTOCOL)


@pytest.mark.parametrize("alpn", [None, "http/1.1", "h2", "acme-tls/2"])
def test_check_tls_alpn01_requires_the_acme_alpn_protocol(key_authz: str, alpn: str | None) -> None:
    served = tls_alpn01_certificate(DNS_ID, key_authz)
    with pytest.raises(ValidationFailed, match="ALPN") as info:
        check_tls_alpn01(served.certificate, DNS_ID, key_authz, alpn)
    assert info.value.problem_type == "unauthorized"
    assert repr(alpn) in str(info.value)


def test_check_tls_alpn01_rejects_a_wrong_digest(account: AccountKey, key_authz: str) -> None:
    other = key_authorization("b3RoZXItdG9rZW4", account)
    served = tls_alpn01_certificate(DNS_ID, other)
    with pytest.raises(ValidationFailed, match="acmeIdentifier extension holds") as info:
        check_tls_alpn01(served.certificate, DNS_ID, key_authz, ACME_TLS_ALPN_PROTOCOL)
    assert tls_alpn01_extension_value(other).hex() in str(info.value)


def test_check_tls_alpn01_rejects_an_extra_san(key_authz: str) -> None:
    names = [x509.DNSName("example.com"), x509.DNSName("www.example.com")]
    certificate = _build_cert(names, [(_acme_ext(key_authz), True)])
    with pytest.raises(ValidationFailed, match=r"exactly example\.com") as info:
        check_tls_alpn01(certificate, DNS_ID, key_authz, ACME_TLS_ALPN_PROTOCOL)
    assert "www.example.com" in str(info.value)


@pytest.mark.parametrize(
    ("identifier", "names"),
    [
        (DNS_ID, []),
        (DNS_ID, [x509.DNSName("example.org")]),
        (IPV4_ID, [x509.DNSName("192.0.2.1")]),
        (IPV4_ID, [x509.IPAddress(ipaddress.ip_address("192.0.2.2"))]),
        (DNS_ID, [x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]),
    ],
)
def test_check_tls_alpn01_rejects_a_san_that_is_not_the_identifier(
    key_authz: str, identifier: Identifier, names: list[x509.GeneralName]
) -> None:
    certificate = _build_cert(names, [(_acme_ext(key_authz), True)])
    with pytest.raises(ValidationFailed, match="subjectAltName must be exactly"):
        check_tls_alpn01(certificate, identifier, key_authz, ACME_TLS_ALPN_PROTOCOL)


def test_check_tls_alpn01_rejects_a_non_critical_extension(key_authz: str) -> None:
    certificate = _build_cert([x509.DNSName("example.com")], [(_acme_ext(key_authz), False)])
    with pytest.raises(ValidationFailed, match="not marked critical"):
        check_tls_alpn01(certificate, DNS_ID, key_authz, ACME_TLS_ALPN_PROTOCOL)


def test_check_tls_alpn01_rejects_a_missing_extension(key_authz: str) -> None:
    certificate = _build_cert([x509.DNSName("example.com")])
    with pytest.raises(ValidationFailed, match=r"lacks the acmeIdentifier extension \(1\.3\.6\.1\.5\.5\.7\.1\.31\)"):
        check_tls_alpn01(certificate, DNS_ID, key_authz, ACME_TLS_ALPN_PROTOCOL)


def test_check_tls_alpn01_names_the_obsolete_oid(key_authz: str) -> None:
    extension = _acme_ext(key_authz, ACME_IDENTIFIER_V1_OID)
    certificate = _build_cert([x509.DNSName("example.com")], [(extension, True)])
    with pytest.raises(ValidationFailed, match=r"obsolete acmeIdentifier OID 1\.3\.6\.1\.5\.5\.7\.1\.30\.1"):
        check_tls_alpn01(certificate, DNS_ID, key_authz, ACME_TLS_ALPN_PROTOCOL)


# --- tls-alpn-01 over a real handshake ------------------------------------------------------


def _client_hello_alpn(record: bytes) -> list[str]:
    """The ALPN protocols a peeked TLS ClientHello offers (RFC 8446 §4.1.2, RFC 7301 §3.1)."""
    if len(record) < 5 or record[0] != 0x16:
        return []
    hello = record[5 : 5 + int.from_bytes(record[3:5], "big")]
    if not hello or hello[0] != 1:
        return []
    pos = 4 + 2 + 32  # handshake header, legacy_version, random
    pos += 1 + hello[pos]  # legacy_session_id
    pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher_suites
    pos += 1 + hello[pos]  # legacy_compression_methods
    end = pos + 2 + int.from_bytes(hello[pos : pos + 2], "big")
    pos += 2
    while pos + 4 <= end:
        kind = int.from_bytes(hello[pos : pos + 2], "big")
        length = int.from_bytes(hello[pos + 2 : pos + 4], "big")
        data, pos = hello[pos + 4 : pos + 4 + length], pos + 4 + length
        if kind == 16:  # application_layer_protocol_negotiation
            protocols, i = [], 2
            while i < len(data):
                protocols.append(data[i + 1 : i + 1 + data[i]].decode("ascii", "replace"))
                i += 1 + data[i]
            return protocols
    return []


def _write_pair(directory: Path, stem: str, served: ChallengeCertificate) -> tuple[Path, Path]:
    cert_file, key_file = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_file.write_bytes(served.certificate_pem())
    key_file.write_bytes(served.private_key_pem())
    return cert_file, key_file


class _AlpnResponder:
    """A loopback TLS server answering like a tls-alpn-01 responder (RFC 8737 §3).

    Python's ssl module does not show the offered ALPN list before it picks a certificate, so
    the ClientHello is peeked first; the SNI callback then swaps in the challenge context (which
    selects ``acme-tls/1``) only for the right name with ``acme-tls/1`` offered. Anyone else gets
    the ordinary certificate.
    """

    def __init__(self, directory: Path, sni: str, challenge: ChallengeCertificate) -> None:
        ordinary_key = ec.generate_private_key(ec.SECP256R1())
        ordinary = ChallengeCertificate(_build_cert([x509.DNSName(sni)], key=ordinary_key), ordinary_key)
        self.ordinary_certificate = ordinary.certificate
        self._sni = sni
        self._offered: list[str] = []
        self._default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._default.load_cert_chain(*_write_pair(directory, "ordinary", ordinary))
        self._default.set_alpn_protocols(["http/1.1"])
        self._default.sni_callback = self._pick
        self._challenge = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._challenge.minimum_version = ssl.TLSVersion.TLSv1_2
        self._challenge.load_cert_chain(*_write_pair(directory, "challenge", challenge))
        self._challenge.set_alpn_protocols([ACME_TLS_ALPN_PROTOCOL])
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="alpn-responder", daemon=True)

    def __enter__(self) -> _AlpnResponder:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self._listener.close()

    def _pick(self, tls: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if server_name == self._sni and ACME_TLS_ALPN_PROTOCOL in self._offered:
            tls.context = self._challenge

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    self._offered = _client_hello_alpn(self._peek_record(conn))
                    with self._default.wrap_socket(conn, server_side=True):
                        pass  # handshake done: close at once, as a validator expects
                except (OSError, ssl.SSLError):
                    continue

    @staticmethod
    def _peek_record(conn: socket.socket) -> bytes:
        data = b""
        for _ in range(100):
            data = conn.recv(16384, socket.MSG_PEEK)
            if not data or (len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big")):
                break
        return data


def _handshake(port: int, sni: str, alpn: list[str]) -> tuple[x509.Certificate, str | None]:
    """Connect as a validator does: no verification of the self-signed certificate, given ALPN/SNI."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        negotiated = tls.selected_alpn_protocol()
    assert der is not None
    return x509.load_der_x509_certificate(der), negotiated


@pytest.fixture
def responder_for() -> Iterator[dict[str, _AlpnResponder]]:
    """Start responders on demand (one per identifier); all are stopped and joined afterwards."""
    started: dict[str, _AlpnResponder] = {}
    try:
        yield started
    finally:
        for responder in started.values():
            responder.__exit__(None, None, None)
            assert not responder.thread.is_alive()


def _start(started: dict[str, _AlpnResponder], directory: Path, identifier: Identifier, key_authz: str) -> int:
    sni = challenges.tls_alpn01_sni(identifier)
    responder = _AlpnResponder(directory, sni, tls_alpn01_certificate(identifier, key_authz))
    started[sni] = responder.__enter__()
    return responder.port


@pytest.mark.parametrize("identifier", [DNS_ID, IPV4_ID, IPV6_ID], ids=["dns", "ipv4", "ipv6"])
def test_tls_alpn01_over_a_real_handshake(
    responder_for: dict[str, _AlpnResponder], tmp_path: Path, key_authz: str, identifier: Identifier
) -> None:
    port = _start(responder_for, tmp_path, identifier, key_authz)
    sni = challenges.tls_alpn01_sni(identifier)
    certificate, negotiated = _handshake(port, sni, [ACME_TLS_ALPN_PROTOCOL])
    assert negotiated == ACME_TLS_ALPN_PROTOCOL
    check_tls_alpn01(certificate, identifier, key_authz, negotiated)


def test_tls_alpn01_certificate_is_not_served_without_the_acme_offer(
    responder_for: dict[str, _AlpnResponder], tmp_path: Path, key_authz: str
) -> None:
    port = _start(responder_for, tmp_path, DNS_ID, key_authz)
    ordinary = responder_for["example.com"].ordinary_certificate

    certificate, negotiated = _handshake(port, "example.com", ["http/1.1"])
    assert (certificate, negotiated) == (ordinary, "http/1.1")
    with pytest.raises(ValidationFailed, match="ALPN"):
        check_tls_alpn01(certificate, DNS_ID, key_authz, negotiated)
    with pytest.raises(ValidationFailed, match="lacks the acmeIdentifier"):
        check_tls_alpn01(certificate, DNS_ID, key_authz, ACME_TLS_ALPN_PROTOCOL)

    certificate, negotiated = _handshake(port, "other.example", [ACME_TLS_ALPN_PROTOCOL])
    assert (certificate, negotiated) == (ordinary, None)
    with pytest.raises(ValidationFailed, match="ALPN"):
        check_tls_alpn01(certificate, DNS_ID, key_authz, negotiated)


# --- simpleHttps (legacy) -------------------------------------------------------------------


def test_simple_https_path_is_short_random_base64url() -> None:
    paths = {challenges.simple_https_path() for _ in range(20)}
    assert len(paths) == 20
    for path in paths:
        assert check_simple_https_path(path) == path
        assert 0 < len(path) <= 25


def test_simple_https_solution() -> None:
    token = _b64(b"\x01" * 32)
    solution = challenges.simple_https_solution(token, path="abc_DEF-123")
    assert solution.body == token.encode()
    assert solution.content_type == "text/plain"
    assert solution.url_path == "/.well-known/acme-challenge/abc_DEF-123"
    assert solution.response_payload() == {"type": "simpleHttps", "path": "abc_DEF-123"}
    assert len(challenges.simple_https_solution(token).path) <= 25
    with pytest.raises(ValueError, match="base64url"):
        challenges.simple_https_solution(token, path="../../x")
    with pytest.raises(ValueError, match="ASCII"):
        challenges.simple_https_solution("t\u00f6ken")


@pytest.mark.parametrize("path", ["", "a" * 26, "../x", "a+b", "a/b", "abc=", 7])
def test_check_simple_https_path_rejects_bad_paths(path: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_simple_https_path(path)
    assert info.value.problem_type == "malformed"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "text/plain; charset=utf-8", "TEXT/Plain;charset=UTF-8"]
)
def test_check_simple_https_accepts_plain_text(content_type: str | None) -> None:
    check_simple_https(200, content_type, b"the-token", "the-token")


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream", "", "text/plain-ish"])
def test_check_simple_https_rejects_other_content_types(content_type: str) -> None:
    with pytest.raises(ValidationFailed, match="Content-Type") as info:
        check_simple_https(200, content_type, b"the-token", "the-token")
    assert info.value.problem_type == "incorrectResponse"


def test_check_simple_https_requires_200_and_the_exact_token() -> None:
    with pytest.raises(ValidationFailed, match="HTTP 404") as info:
        check_simple_https(404, "text/plain", b"the-token", "the-token")
    assert info.value.problem_type == "unauthorized"
    for body in (b"other-token", b"the-token\n", b""):
        with pytest.raises(ValidationFailed, match="expected the token") as info:
            check_simple_https(200, "text/plain", body, "the-token")
        assert info.value.problem_type == "incorrectResponse"


# --- dvsni (legacy) -------------------------------------------------------------------------


def test_new_dvsni_challenge_fields() -> None:
    r, nonce = challenges.new_dvsni_challenge_fields()
    assert len(base64.urlsafe_b64decode(r + "=")) == 32
    assert len(nonce) == 32 and int(nonce, 16) >= 0 and nonce == nonce.lower()
    assert challenges.new_dvsni_challenge_fields() != (r, nonce)


@pytest.fixture(scope="module", params=["rsa2048", "ec256", "ed25519"])
def dvsni_account(request: pytest.FixtureRequest) -> AccountKey:
    return AccountKey.generate(request.param)


def test_dvsni_round_trip(dvsni_account: AccountKey) -> None:
    r, nonce = challenges.new_dvsni_challenge_fields()
    solution = dvsni_solution(r, nonce, "Example.com", dvsni_account)

    s_bytes = base64.urlsafe_b64decode(solution.s + "=")
    assert len(s_bytes) == 32
    z = hashlib.sha256(base64.urlsafe_b64decode(r + "=") + s_bytes).hexdigest()
    assert solution.z == z and len(z) == 64
    assert solution.z_name == f"{z}.acme.invalid"
    assert solution.sni == f"{nonce}.acme.invalid"
    assert solution.response_payload() == {"type": "dvsni", "s": solution.s}

    certificate = solution.certificate
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == sorted(["example.com", solution.z_name])
    assert len(list(names)) == 2
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert certificate.public_key().public_bytes(*spki) == dvsni_account.public_key().public_bytes(*spki)
    assert solution.challenge_certificate.private_key is dvsni_account.private_key
    certificate.verify_directly_issued_by(certificate)
    if isinstance(dvsni_account.private_key, ed25519.Ed25519PrivateKey):
        assert certificate.signature_hash_algorithm is None

    check_dvsni(certificate, r, solution.s, "example.com", dvsni_account.public_key())


def test_check_dvsni_rejects_the_wrong_key(dvsni_account: AccountKey) -> None:
    r, nonce = challenges.new_dvsni_challenge_fields()
    solution = dvsni_solution(r, nonce, "example.com", dvsni_account)
    other = AccountKey.generate("ec256")
    with pytest.raises(ValidationFailed, match="is not the account key") as info:
        check_dvsni(solution.certificate, r, solution.s, "example.com", other.public_key())
    assert info.value.problem_type == "unauthorized"


def test_check_dvsni_rejects_a_missing_domain(account: AccountKey) -> None:
    r, nonce = challenges.new_dvsni_challenge_fields()
    solution = dvsni_solution(r, nonce, "example.com", account)
    with pytest.raises(ValidationFailed, match=r"does not name example\.org") as info:
        check_dvsni(solution.certificate, r, solution.s, "example.org", account.public_key())
    assert "example.com" in str(info.value)


def test_check_dvsni_rejects_a_wrong_s(account: AccountKey) -> None:
    r, nonce = challenges.new_dvsni_challenge_fields()
    solution = dvsni_solution(r, nonce, "example.com", account)
    wrong_s = _b64(b"\x00" * 32)
    with pytest.raises(ValidationFailed, match=r"does not name [0-9a-f]{64}\.acme\.invalid") as info:
        check_dvsni(solution.certificate, r, wrong_s, "example.com", account.public_key())
    assert solution.z_name[:20] in str(info.value)  # names what the certificate holds
    assert info.value.problem_type == "unauthorized"


@pytest.mark.parametrize("s", ["not base64!", _b64(b"\x00" * 16), "abc="])
def test_check_dvsni_rejects_a_malformed_s(account: AccountKey, s: str) -> None:
    r, nonce = challenges.new_dvsni_challenge_fields()
    solution = dvsni_solution(r, nonce, "example.com", account)
    with pytest.raises(ValidationFailed) as info:
        check_dvsni(solution.certificate, r, s, "example.com", account.public_key())
    assert info.value.problem_type == "malformed"


def test_dvsni_solution_rejects_bad_challenge_fields(account: AccountKey) -> None:
    r, nonce = challenges.new_dvsni_challenge_fields()
    with pytest.raises(ValueError, match="nonce"):
        dvsni_solution(r, "not-hex", "example.com", account)
    with pytest.raises(ValueError, match="dvsni r"):
        dvsni_solution("r+with/std=", nonce, "example.com", account)
