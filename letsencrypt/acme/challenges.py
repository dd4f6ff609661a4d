"""Challenge math for both sides: what a client serves and answers, what a validator verifies.

Modern challenges come from RFC 8555 §8 (``http-01``, ``dns-01``) and RFC 8737 (``tls-alpn-01``,
with RFC 8738 for IP identifiers); the legacy pair (``simpleHttps``, ``dvsni``) follows the 2015
ACME draft as described in ``protocol-notes.md`` ("What this project implements for the legacy
pair"). The ``check_*`` functions are the validator's side: they take what the validator fetched
(a body, TXT values, a certificate) and raise :class:`ValidationFailed` carrying the RFC 8555
problem type the CA should report. Network I/O stays with the callers (the standalone
authenticator, ``ca_stub.va``); this module only computes.

Imports: stdlib, cryptography and ``letsencrypt.acme`` only; no disk writes, no printing.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.errors import ValidationFailed
from letsencrypt.acme.jws import AccountKey, PrivateKey, PublicKey, b64encode
from letsencrypt.acme.messages import ChallengeType, Identifier
from letsencrypt.acme.records import record

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
else:
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")  # its package imports ssh
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

__all__ = [
    "ACME_IDENTIFIER_OID",
    "ACME_IDENTIFIER_V1_OID",
    "ACME_TLS_ALPN_PROTOCOL",
    "DNS01_LABEL",
    "DVSNI_SUFFIX",
    "HTTP01_PATH_PREFIX",
    "SIMPLE_HTTPS_CONTENT_TYPE",
    "SIMPLE_HTTPS_PATH_MAX",
    "ChallengeCertificate",
    "DvsniSolution",
    "SimpleHttpsSolution",
    "challenge_response",
    "check_dns01",
    "check_dvsni",
    "check_http01",
    "check_simple_https",
    "check_simple_https_path",
    "check_tls_alpn01",
    "check_token",
    "dns01_record_name",
    "dns01_txt_value",
    "dvsni_solution",
    "dvsni_z",
    "http01_body",
    "http01_path",
    "key_authorization",
    "new_dvsni_challenge_fields",
    "simple_https_path",
    "simple_https_solution",
    "tls_alpn01_certificate",
    "tls_alpn01_extension_value",
    "tls_alpn01_sni",
]

HTTP01_PATH_PREFIX = "/.well-known/acme-challenge/"
DNS01_LABEL = "_acme-challenge"
ACME_TLS_ALPN_PROTOCOL = "acme-tls/1"
# ACME_IDENTIFIER_OID and ACME_IDENTIFIER_V1_OID (x509.ObjectIdentifier) are made on first use, by
# the module's __getattr__ below, so that importing this module does not import cryptography.x509.
ACME_IDENTIFIER_OID_TEXT = "1.3.6.1.5.5.7.1.31"
ACME_IDENTIFIER_V1_OID_TEXT = "1.3.6.1.5.5.7.1.30.1"  # drafts -01..-04 only; never emitted
_LAZY_OIDS = {"ACME_IDENTIFIER_OID": ACME_IDENTIFIER_OID_TEXT, "ACME_IDENTIFIER_V1_OID": ACME_IDENTIFIER_V1_OID_TEXT}
if TYPE_CHECKING:
    ACME_IDENTIFIER_OID: x509.ObjectIdentifier
    ACME_IDENTIFIER_V1_OID: x509.ObjectIdentifier
SIMPLE_HTTPS_CONTENT_TYPE = "text/plain"
SIMPLE_HTTPS_PATH_MAX = 25
DVSNI_SUFFIX = ".acme.invalid"

# Challenge certificates are looked at once, by a validator that ignores their dates; an hour of
# backdating absorbs clock skew for validators that look anyway.
_CERT_BACKDATE = datetime.timedelta(hours=1)
_CERT_LIFETIME = datetime.timedelta(days=7)
_CERT_SUBJECT_CN = "ACME challenge"

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_HEX_LABEL = re.compile(r"[0-9A-Fa-f]{1,63}")
_SHOWN = 80  # characters of a fetched value quoted in an error message


def __getattr__(name: str) -> Any:  # PEP 562: the public x509 constants, made when first read
    if name in _LAZY_OIDS:
        value = _oid(_LAZY_OIDS[name])
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _oid(dotted: str) -> x509.ObjectIdentifier:
    return x509.ObjectIdentifier(dotted)


def _cert_subject() -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, _CERT_SUBJECT_CN)])


def _show(value: bytes | str) -> str:
    """Quote what a validator found, truncated so that a stray HTML page cannot flood the error."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return repr(text[:_SHOWN]) + ("..." if len(text) > _SHOWN else "")


def _b64url_bytes(text: str, what: str) -> bytes:
    """Strict unpadded base64url (RFC 8555 §6.1), raising ``ValueError`` naming ``what``."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError(f"{what} is not unpadded base64url: {_show(str(text))}")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- key authorizations (RFC 8555 §8.1) --------------------------------------------------------


def check_token(token: str) -> str:
    """Return ``token`` if it is unpadded base64url, else raise ``ValueError``.

    RFC 8555 §8.3 restricts tokens to the base64url alphabet; checking that before the token goes
    into a file name or URL path keeps a hostile CA from sending ``../../etc/passwd``.
    """
    _b64url_bytes(token, "challenge token")
    return token


def key_authorization(token: str, account_key: AccountKey | str) -> str:
    """``token || "." || base64url(JWK thumbprint)`` (RFC 8555 §8.1, RFC 7638).

    ``account_key`` is the account key or its thumbprint; the CA passes the thumbprint of the
    account's *current* key.
    """
    thumbprint = account_key.thumbprint if isinstance(account_key, AccountKey) else account_key
    if not _B64URL.fullmatch(thumbprint) or len(thumbprint) != 43:
        raise ValueError(f"not a base64url SHA-256 thumbprint: {_show(thumbprint)}")
    return f"{check_token(token)}.{thumbprint}"


def _digest(key_authorization: str) -> bytes:
    return hashlib.sha256(key_authorization.encode("ascii")).digest()


def challenge_response(
    challenge_type: ChallengeType | str, *, path: str | None = None, s: str | None = None
) -> dict[str, str]:
    """The payload a client POSTs to the challenge URL to say it is ready.

    Modern types answer ``{}`` (RFC 8555 §7.5.1; the CA recomputes the key authorization).
    ``simpleHttps`` names the chosen ``path`` and ``dvsni`` sends ``s`` (the 2015 draft).
    """
    kind = ChallengeType.parse(str(challenge_type))
    if kind is ChallengeType.SIMPLE_HTTPS:
        if path is None:
            raise ValueError("a simpleHttps response needs the path")
        return {"type": str(kind), "path": path}
    if kind is ChallengeType.DVSNI:
        if s is None:
            raise ValueError("a dvsni response needs s")
        return {"type": str(kind), "s": s}
    if kind is ChallengeType.UNKNOWN:
        raise ValueError(f"unknown challenge type {str(challenge_type)!r}")
    return {}


# --- http-01 (RFC 8555 §8.3) -----------------------------------------------------------------


def http01_path(token: str) -> str:
    """``/.well-known/acme-challenge/<token>``, after checking the token is base64url."""
    return HTTP01_PATH_PREFIX + check_token(token)


def http01_body(key_authorization: str) -> bytes:
    """The resource body: the key authorization in ASCII, nothing else (RFC 8555 §8.3)."""
    return key_authorization.encode("ascii")


def check_http01(body: bytes, expected_key_authorization: str) -> None:
    """Require the fetched body to be the key authorization; trailing whitespace is ignored (§8.3)."""
    found = body.rstrip()
    if not hmac.compare_digest(found, expected_key_authorization.encode("ascii")):
        raise ValidationFailed(
            f"the challenge resource holds {_show(found)}, expected {expected_key_authorization!r}",
            problem_type="incorrectResponse",
        )


# --- dns-01 (RFC 8555 §8.4) -----------------------------------------------------------------


def dns01_record_name(domain: str) -> str:
    """``_acme-challenge.<domain>``; a wildcard is validated at its base domain (RFC 8555 §8.4)."""
    name = domain.strip().rstrip(".")
    name = name.removeprefix("*.")
    return f"{DNS01_LABEL}.{name}"


def dns01_txt_value(key_authorization: str) -> str:
    """base64url(SHA-256(key authorization)): 43 characters (RFC 8555 §8.4)."""
    return b64encode(_digest(key_authorization))


def check_dns01(
    txt_values: Sequence[str], expected_key_authorization: str, *, record_name: str | None = None
) -> None:
    """Require one of the TXT values at the record name to be the expected digest (RFC 8555 §8.4).

    Several values may sit at one name (``example.com`` and ``*.example.com`` validated together),
    so any match passes. ``record_name`` only makes the error message precise.
    """
    expected = dns01_txt_value(expected_key_authorization).encode("ascii")
    if any(hmac.compare_digest(value.strip().encode("utf-8"), expected) for value in txt_values):
        return
    where = f" at {record_name}" if record_name else ""
    if not txt_values:
        raise ValidationFailed(f"no TXT record found{where}", problem_type="unauthorized")
    found = ", ".join(_show(value) for value in txt_values[:5])
    more = f" and {len(txt_values) - 5} more" if len(txt_values) > 5 else ""
    raise ValidationFailed(
        f"no TXT record{where} holds the expected value {expected.decode()}; found {found}{more}",
        problem_type="unauthorized",
    )


# --- challenge certificates (shared by tls-alpn-01 and dvsni) ---------------------------------


@record
class ChallengeCertificate:
    """A self-signed certificate to present in a validation handshake, with its private key."""

    certificate: x509.Certificate
    private_key: PrivateKey = dataclasses.field(repr=False)

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted: for ``ssl.SSLContext.load_cert_chain`` via a private temp file."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _self_signed(
    private_key: PrivateKey,
    names: Iterable[x509.GeneralName],
    extra: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_cert_subject())
        .issuer_name(_cert_subject())
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CERT_BACKDATE)
        .not_valid_after(now + _CERT_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    )
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    # Ed25519 signs the message itself: cryptography wants no separate hash algorithm then.
    algorithm = None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(private_key, algorithm)


def _extensions(certificate: x509.Certificate) -> x509.Extensions:
    try:
        return certificate.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as err:
        raise ValidationFailed(
            f"the certificate's extensions cannot be parsed: {err}", problem_type="unauthorized"
        ) from err


def _san_entries(extensions: x509.Extensions) -> list[x509.GeneralName]:
    try:
        return list(extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _describe_names(names: Sequence[x509.GeneralName]) -> str:
    if not names:
        return "no subjectAltName"
    shown = []
    for name in names[:5]:
        kind = {x509.DNSName: "DNS", x509.IPAddress: "IP"}.get(type(name), type(name).__name__)
        shown.append(f"{kind}:{_show(str(name.value))}")
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return ", ".join(shown) + more


def _dns_name(value: str) -> str:
    return value.strip().rstrip(".").lower()


# --- tls-alpn-01 (RFC 8737, RFC 8738 §6) -------------------------------------------------------


def _san_for(identifier: Identifier) -> x509.GeneralName:
    if identifier.type == "dns":
        return x509.DNSName(_dns_name(identifier.value))
    if identifier.type == "ip":
        return x509.IPAddress(ipaddress.ip_address(identifier.value))
    raise ValueError(f"tls-alpn-01 cannot validate a {identifier.type!r} identifier")


def tls_alpn01_sni(identifier: Identifier) -> str:
    """The SNI name a validator sends: the DNS name, or for an IP its reverse-DNS name (RFC 8738 §6).

    ``192.0.2.1`` becomes ``1.2.0.192.in-addr.arpa``; IPv6 addresses the nibble ``ip6.arpa`` form.
    """
    if identifier.type == "ip":
        return ipaddress.ip_address(identifier.value).reverse_pointer
    if identifier.type != "dns":
        raise ValueError(f"tls-alpn-01 cannot validate a {identifier.type!r} identifier")
    name = _dns_name(identifier.value)
    if name.startswith("*."):
        raise ValueError(f"a wildcard ({name}) is no SNI name; wildcards are validated with dns-01")
    return name


def tls_alpn01_extension_value(key_authorization: str) -> bytes:
    """The acmeIdentifier extnValue: DER ``OCTET STRING (SIZE (32))`` of SHA-256, ``04 20 <digest>``.

    RFC 8737 §3: ``Authorization ::= OCTET STRING (SIZE (32))`` holding SHA-256 of the key
    authorization.
    """
    return b"\x04\x20" + _digest(key_authorization)


def tls_alpn01_certificate(
    identifier: Identifier, key_authorization: str, private_key: PrivateKey | None = None
) -> ChallengeCertificate:
    """The self-signed certificate to serve for ``acme-tls/1`` handshakes (RFC 8737 §3).

    Its subjectAltName has exactly one entry (a dNSName, or an iPAddress for IP identifiers,
    RFC 8738 §6) and it carries the critical acmeIdentifier extension with OID .31 only. A
    fresh EC P-256 key is made when ``private_key`` is not given.
    """
    key = private_key if private_key is not None else ec.generate_private_key(ec.SECP256R1())
    extension = x509.UnrecognizedExtension(
        _oid(ACME_IDENTIFIER_OID_TEXT), tls_alpn01_extension_value(key_authorization)
    )
    certificate = _self_signed(key, [_san_for(identifier)], [(extension, True)])
    return ChallengeCertificate(certificate, key)


def _fail_tls(message: str) -> ValidationFailed:
    return ValidationFailed(message, problem_type="unauthorized")


def check_tls_alpn01(
    certificate: x509.Certificate,
    identifier: Identifier,
    key_authorization: str,
    negotiated_alpn: str | None,
) -> None:
    """Verify a certificate presented in a tls-alpn-01 handshake (RFC 8737 §3).

    Requires the ServerHello to have selected ``acme-tls/1``, a subjectAltName of exactly the
    identifier (DNS names compared case-insensitively), and a critical acmeIdentifier extension
    (OID 1.3.6.1.5.5.7.1.31) holding SHA-256 of the expected key authorization.
    """
    if negotiated_alpn != ACME_TLS_ALPN_PROTOCOL:
        raise _fail_tls(
            f"the server negotiated ALPN protocol {negotiated_alpn!r}, not {ACME_TLS_ALPN_PROTOCOL!r}"
        )
    extensions = _extensions(certificate)
    names = _san_entries(extensions)
    expected_name = _san_for(identifier)
    if len(names) != 1 or not _same_name(names[0], expected_name):
        raise _fail_tls(
            f"the certificate's subjectAltName must be exactly {identifier.value}; "
            f"found {_describe_names(names)}"
        )
    try:
        extension = extensions.get_extension_for_oid(_oid(ACME_IDENTIFIER_OID_TEXT))
    except x509.ExtensionNotFound:
        if any(ext.oid.dotted_string == ACME_IDENTIFIER_V1_OID_TEXT for ext in extensions):
            raise _fail_tls(
                "the certificate uses the obsolete acmeIdentifier OID "
                f"{ACME_IDENTIFIER_V1_OID_TEXT} of drafts before RFC 8737; "
                f"it must be {ACME_IDENTIFIER_OID_TEXT}"
            ) from None
        raise _fail_tls(
            f"the certificate lacks the acmeIdentifier extension ({ACME_IDENTIFIER_OID_TEXT})"
        ) from None
    if not extension.critical:
        raise _fail_tls("the certificate's acmeIdentifier extension is not marked critical")
    found = extension.value.public_bytes()
    expected = tls_alpn01_extension_value(key_authorization)
    if not hmac.compare_digest(found, expected):
        raise _fail_tls(
            f"the acmeIdentifier extension holds {found[:40].hex()}, expected {expected.hex()} "
            "(DER OCTET STRING of SHA-256 of the key authorization)"
        )


def _same_name(found: x509.GeneralName, expected: x509.GeneralName) -> bool:
    if isinstance(expected, x509.DNSName):
        return isinstance(found, x509.DNSName) and _dns_name(found.value) == expected.value
    return isinstance(found, x509.IPAddress) and found.value == expected.value


# --- simpleHttps (2015 draft; protocol-notes A.1) ----------------------------------------------


@record
class SimpleHttpsSolution:
    """What a client serves for ``simpleHttps``: ``body`` as ``text/plain`` at ``url_path`` over HTTPS."""

    path: str
    body: bytes
    content_type: str = SIMPLE_HTTPS_CONTENT_TYPE

    @property
    def url_path(self) -> str:
        return HTTP01_PATH_PREFIX + self.path

    def response_payload(self) -> dict[str, str]:
        return challenge_response(ChallengeType.SIMPLE_HTTPS, path=self.path)


def simple_https_path() -> str:
    """A fresh random path: 18 random bytes, base64url, 24 characters (the draft allows 25)."""
    return b64encode(secrets.token_bytes(18))


def simple_https_solution(token: str, path: str | None = None) -> SimpleHttpsSolution:
    """The resource to serve for a ``simpleHttps`` token: its body is exactly the token."""
    try:
        body = token.encode("ascii")
    except UnicodeEncodeError as err:
        raise ValueError(f"simpleHttps token is not ASCII: {_show(token)}") from err
    chosen = simple_https_path() if path is None else path
    try:
        check_simple_https_path(chosen)
    except ValidationFailed as err:
        raise ValueError(str(err)) from err
    return SimpleHttpsSolution(chosen, body)


def check_simple_https_path(path: str) -> str:
    """Return a client-chosen path if it is base64url of at most 25 characters; else ``malformed``."""
    if not isinstance(path, str) or not _B64URL.fullmatch(path) or len(path) > SIMPLE_HTTPS_PATH_MAX:
        raise ValidationFailed(
            f"simpleHttps path must be 1 to {SIMPLE_HTTPS_PATH_MAX} base64url characters, "
            f"got {_show(str(path))}",
            problem_type="malformed",
        )
    return path


def check_simple_https(status: int, content_type: str | None, body: bytes, token: str) -> None:
    """Verify what the CA fetched from ``https://DOMAIN/.well-known/acme-challenge/PATH``.

    Requires status 200, a Content-Type absent or ``text/plain`` (parameters such as ``charset``
    allowed), and a body equal to the token, compared in constant time.
    """
    if status != 200:
        raise ValidationFailed(f"the challenge resource answered HTTP {status}, not 200",
                               problem_type="unauthorized")
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != SIMPLE_HTTPS_CONTENT_TYPE:
            raise ValidationFailed(
                f"the challenge resource has Content-Type {_show(content_type)}, "
                f"not {SIMPLE_HTTPS_CONTENT_TYPE}",
                problem_type="incorrectResponse",
            )
    if not hmac.compare_digest(body, token.encode("utf-8")):
        raise ValidationFailed(
            f"the challenge resource holds {_show(body)}, expected the token {token!r}",
            problem_type="incorrectResponse",
        )


# --- dvsni, R/S form (2015 draft; protocol-notes A.4) ------------------------------------------


@record
class DvsniSolution:
    """What a client serves for ``dvsni``: for SNI ``sni``, a certificate naming the domain and ``z_name``.

    The certificate's key is the account key, so ``challenge_certificate.private_key`` is the
    account's private key: hand it only to the TLS server answering this challenge.
    """

    s: str
    z: str
    sni: str
    z_name: str
    challenge_certificate: ChallengeCertificate

    @property
    def certificate(self) -> x509.Certificate:
        return self.challenge_certificate.certificate

    def response_payload(self) -> dict[str, str]:
        return challenge_response(ChallengeType.DVSNI, s=self.s)


def new_dvsni_challenge_fields() -> tuple[str, str]:
    """The CA's fresh ``(r, nonce)``: R = 32 random bytes base64url, N = 16 random bytes hex."""
    return b64encode(secrets.token_bytes(32)), secrets.token_hex(16)


def dvsni_z(r: str, s: str) -> str:
    """Z = SHA-256(R || S) over the decoded bytes, lowercase hex (64 characters)."""
    return hashlib.sha256(_b64url_bytes(r, "dvsni r") + _b64url_bytes(s, "dvsni s")).hexdigest()


def dvsni_solution(r: str, nonce: str, domain: str, account_key: AccountKey) -> DvsniSolution:
    """Pick S, compute Z and build the certificate to serve for SNI ``<nonce>.acme.invalid``.

    The certificate is self-signed by the account key (Ed25519 included) and its SANs are exactly
    the domain and ``<Z>.acme.invalid``. The 64-character Z label is longer than DNS allows, which
    is fine inside a certificate and is what the 2015 draft specifies.
    """
    if not isinstance(nonce, str) or not _HEX_LABEL.fullmatch(nonce):
        raise ValueError(f"dvsni nonce is not a hex DNS label: {_show(str(nonce))}")
    s = b64encode(secrets.token_bytes(32))
    z = dvsni_z(r, s)
    z_name = z + DVSNI_SUFFIX
    names = [x509.DNSName(_dns_name(domain)), x509.DNSName(z_name)]
    certificate = _self_signed(account_key.private_key, names)
    return DvsniSolution(
        s=s,
        z=z,
        sni=nonce.lower() + DVSNI_SUFFIX,
        z_name=z_name,
        challenge_certificate=ChallengeCertificate(certificate, account_key.private_key),
    )


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _describe_key(spki: bytes) -> str:
    return f"SPKI SHA-256 {hashlib.sha256(spki).hexdigest()[:16]}..."


def check_dvsni(
    certificate: x509.Certificate, r: str, s: str, domain: str, account_public_key: PublicKey
) -> None:
    """Verify the certificate served for SNI ``N.acme.invalid`` against the client's ``s``.

    Requires all three checks of the draft: ``hex(Z).acme.invalid`` and the domain among the
    subjectAltName dNSNames, and the certificate's key equal to the account key (DER
    SubjectPublicKeyInfo compared).
    """
    try:
        if len(_b64url_bytes(s, "dvsni s")) != 32:
            raise ValueError(f"dvsni s must encode 32 bytes: {_show(s)}")
        z_name = dvsni_z(r, s) + DVSNI_SUFFIX
    except ValueError as err:
        raise ValidationFailed(str(err), problem_type="malformed") from err
    entries = _san_entries(_extensions(certificate))
    dns_names = {_dns_name(entry.value) for entry in entries if isinstance(entry, x509.DNSName)}
    if z_name not in dns_names:
        raise ValidationFailed(
            f"the certificate does not name {z_name}; found {_describe_names(entries)}",
            problem_type="unauthorized",
        )
    if _dns_name(domain) not in dns_names:
        raise ValidationFailed(
            f"the certificate does not name {_dns_name(domain)}; found {_describe_names(entries)}",
            problem_type="unauthorized",
        )
    found_key = certificate.public_key()
    found = _spki(found_key)
    expected = _spki(account_public_key)
    if not hmac.compare_digest(found, expected):
        raise ValidationFailed(
            f"the certificate's key ({type(found_key).__name__}, {_describe_key(found)}) is not the "
            f"account key ({_describe_key(expected)})",
            problem_type="unauthorized",
        )
