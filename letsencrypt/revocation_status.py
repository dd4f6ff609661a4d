"""Is a certificate revoked? Ask its CA's OCSP responder (RFC 6960) or fetch its CRL (RFC 5280).

``check_revocation(certificate, issuer)`` asks the OCSP responder named in the certificate's
authorityInfoAccess (§4.2.2.1) with a POST of a one-CertID request (RFC 6960 Appendix A.1), and
believes the answer only if it is signed by the issuer, or by a responder certificate the issuer
delegated with the id-kp-OCSPSigning key purpose (§4.2.2.2), names this certificate's CertID,
and is current. When the certificate names no responder, or the responder gives no usable answer,
the CRL from its cRLDistributionPoints (§4.2.1.13) is fetched, checked against the issuer's key
and searched for the serial number.

Nothing here raises for the network or for a bad answer: every failure becomes status ``unknown``
with ``detail`` saying why, so ``letsencrypt certificates`` can show it and go on. Requests use a
short timeout and a size cap; ``verify`` is the trust anchor for an ``https`` URL (the client's
``--server-ca-bundle``), as ``requests`` takes it.

Imports: the standard library, cryptography and requests.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
import urllib.parse
from collections.abc import Sequence
from typing import Literal

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from letsencrypt.acme.records import record

__all__ = [
    "DEFAULT_TIMEOUT",
    "Method",
    "RevocationStatus",
    "Status",
    "check_revocation",
    "crl_urls",
    "ocsp_urls",
]

logger = logging.getLogger(__name__)

Status = Literal["good", "revoked", "unknown", "unavailable"]
Method = Literal["ocsp", "crl"]

DEFAULT_TIMEOUT = 5.0  # seconds for one whole answer: a status display must not hang on a dead responder
OCSP_MAX_BYTES = 64 * 1024
CRL_MAX_BYTES = 32 * 1024 * 1024
CLOCK_SKEW = datetime.timedelta(minutes=5)


@record
class RevocationStatus:
    """What the CA says about one certificate.

    ``status``: ``good`` (not revoked), ``revoked``, ``unknown`` (asked, but no trustworthy answer;
    ``detail`` says why) or ``unavailable`` (the certificate names neither an OCSP responder nor a
    CRL). ``reason`` is the RFC 5280 CRLReason name (``keyCompromise``, ...) of a revocation, None
    when the CA gave none (``unspecified``).
    """

    status: Status
    source: Method | None = None
    url: str | None = None
    reason: str | None = None
    revoked_at: datetime.datetime | None = None
    detail: str | None = None

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"


class _Unusable(Exception):
    """An answer that cannot be trusted or understood; becomes status ``unknown``."""


def ocsp_urls(certificate: x509.Certificate) -> list[str]:
    """The OCSP responder URLs of the authorityInfoAccess extension, in order."""
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        description.access_location.value
        for description in access
        if description.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(description.access_location, x509.UniformResourceIdentifier)
    ]


def crl_urls(certificate: x509.Certificate) -> list[str]:
    """The URLs of the cRLDistributionPoints extension, in order."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def check_revocation(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    verify: bool | str = True,
    timeout: float = DEFAULT_TIMEOUT,
    methods: Sequence[Method] = ("ocsp", "crl"),
    session: requests.Session | None = None,
    now: datetime.datetime | None = None,
) -> RevocationStatus:
    """The revocation status of ``certificate``, issued by ``issuer``; never raises for the CA's faults.

    ``methods`` are tried in order (OCSP first by default); the first trustworthy answer wins.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as err:
        return RevocationStatus("unknown", detail=f"the chain's first certificate did not issue it ({err})")
    own_session = session is None
    http = session or requests.Session()
    failures: list[str] = []
    try:
        for method in methods:
            for url in ocsp_urls(certificate) if method == "ocsp" else crl_urls(certificate):
                try:
                    if method == "ocsp":
                        return _ask_ocsp(http, url, certificate, issuer, verify, timeout, now)
                    return _read_crl(http, url, certificate, issuer, verify, timeout, now)
                except _Unusable as err:
                    logger.info("revocation status of serial %x from %s: %s", certificate.serial_number, url, err)
                    failures.append(f"{method.upper()} {url}: {err}")
    finally:
        if own_session:
            http.close()
    if not failures:
        return RevocationStatus("unavailable", detail="the certificate names no OCSP responder and no CRL")
    return RevocationStatus("unknown", detail="; ".join(failures))


# --- HTTP ------------------------------------------------------------------------------------------


def _fetch(
    http: requests.Session, url: str, *, body: bytes | None, verify: bool | str, timeout: float, limit: int
) -> bytes:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise _Unusable(f"unsupported URL scheme {scheme or '(none)'}")
    deadline = time.monotonic() + timeout
    method, headers = ("GET", {}) if body is None else ("POST", {"Content-Type": "application/ocsp-request"})
    try:
        with http.request(method, url, data=body, headers=headers, timeout=timeout, verify=verify,
                          stream=True, allow_redirects=body is None) as response:
            if response.status_code != 200:
                raise _Unusable(f"HTTP {response.status_code}")
            data = bytearray()
            for chunk in response.iter_content(65536):
                data += chunk
                if len(data) > limit:
                    raise _Unusable(f"the answer is larger than {limit} bytes")
                if time.monotonic() > deadline:
                    raise _Unusable(f"no complete answer within {timeout:g} s")
            return bytes(data)
    except requests.RequestException as err:
        raise _Unusable(f"no answer ({type(err).__name__}: {err})") from err


# --- OCSP (RFC 6960) -----------------------------------------------------------------------------


def _ask_ocsp(
    http: requests.Session, url: str, certificate: x509.Certificate, issuer: x509.Certificate,
    verify: bool | str, timeout: float, now: datetime.datetime,
) -> RevocationStatus:
    nonce = os.urandom(16)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())  # noqa: S303 - RFC 5019 §2.1.1: CertID uses SHA-1
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    answer = _fetch(http, url, body=request.public_bytes(serialization.Encoding.DER), verify=verify,
                    timeout=timeout, limit=OCSP_MAX_BYTES)
    try:
        response = ocsp.load_der_ocsp_response(answer)
    except ValueError as err:
        raise _Unusable(f"not an OCSP response ({err})") from err
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _Unusable(f"the responder answered {response.response_status.name.lower()}")
    signer = _responder(response, issuer, now)
    if not _signature_valid(signer.public_key(), response):
        raise _Unusable("the response's signature does not verify against the issuer")
    _check_nonce(response, nonce)
    single = _single_response(response, certificate, issuer)
    _check_current(single.this_update_utc, single.next_update_utc, now)
    if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
        return RevocationStatus("good", "ocsp", url)
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason
        return RevocationStatus("revoked", "ocsp", url, reason=None if reason is None else reason.value,
                                revoked_at=single.revocation_time_utc)
    raise _Unusable("the responder does not know this certificate")


def _key_hash(certificate: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey bits: RFC 6960 ``ResponderID byKey`` (the same as RFC 5280 SKI method 1)."""
    return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def _responder(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime.datetime) -> x509.Certificate:
    """Who signed the response: the issuer itself, or a responder certificate it delegated (§4.2.2.2)."""

    def names(candidate: x509.Certificate) -> bool:
        if response.responder_key_hash is not None:
            return response.responder_key_hash == _key_hash(candidate)
        return response.responder_name == candidate.subject

    if names(issuer):
        return issuer
    for candidate in response.certificates:
        if not names(candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
            purposes = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in purposes and (
            candidate.not_valid_before_utc - CLOCK_SKEW <= now <= candidate.not_valid_after_utc + CLOCK_SKEW
        ):
            return candidate
    raise _Unusable("the response is signed neither by the issuer nor by a responder it delegated")


def _signature_valid(public_key: object, response: ocsp.OCSPResponse) -> bool:
    try:
        algorithm = response.signature_hash_algorithm
        data, signature = response.tbs_response_bytes, response.signature
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def _check_nonce(response: ocsp.OCSPResponse, nonce: bytes) -> None:
    """A responder may ignore the nonce (RFC 8954 §2.1; Let's Encrypt's do), but may not change it."""
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return
    if echoed != nonce:
        raise _Unusable("the response answers another request (its nonce differs)")


def _single_response(
    response: ocsp.OCSPResponse, certificate: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        if single.serial_number != certificate.serial_number:
            continue
        try:  # our CertID made with the responder's hash algorithm, for comparison
            mine = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, single.hash_algorithm).build()
        except (ValueError, UnsupportedAlgorithm):
            continue
        if (single.issuer_key_hash, single.issuer_name_hash) == (mine.issuer_key_hash, mine.issuer_name_hash):
            return single
    raise _Unusable("the response does not speak about this certificate")


def _check_current(
    this_update: datetime.datetime, next_update: datetime.datetime | None, now: datetime.datetime
) -> None:
    if this_update > now + CLOCK_SKEW:
        raise _Unusable(f"the answer is dated in the future ({this_update:%Y-%m-%d %H:%M} UTC)")
    if next_update is not None and next_update < now - CLOCK_SKEW:
        raise _Unusable(f"the answer is stale (next update was due {next_update:%Y-%m-%d %H:%M} UTC)")


# --- CRL (RFC 5280 §5) ---------------------------------------------------------------------------


def _read_crl(
    http: requests.Session, url: str, certificate: x509.Certificate, issuer: x509.Certificate,
    verify: bool | str, timeout: float, now: datetime.datetime,
) -> RevocationStatus:
    data = _fetch(http, url, body=None, verify=verify, timeout=timeout, limit=CRL_MAX_BYTES)
    try:
        crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
    except ValueError as err:
        raise _Unusable(f"not a CRL ({err})") from err
    if crl.issuer != certificate.issuer:
        raise _Unusable("the CRL is not the issuer's")
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
                      | ed448.Ed448PublicKey):
        raise _Unusable(f"the issuer's key ({type(key).__name__}) cannot check a CRL")
    try:
        valid = crl.is_signature_valid(key)
    except (TypeError, UnsupportedAlgorithm) as err:
        raise _Unusable(f"the CRL's signature cannot be checked ({err})") from err
    if not valid:
        raise _Unusable("the CRL's signature does not verify against the issuer")
    _check_scope(crl, url)
    _check_current(crl.last_update_utc, crl.next_update_utc, now)
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if entry is None:
        return RevocationStatus("good", "crl", url)
    try:
        reason: str | None = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        reason = None
    return RevocationStatus("revoked", "crl", url, reason=None if reason == "unspecified" else reason,
                            revoked_at=entry.revocation_date_utc)


def _check_scope(crl: x509.CertificateRevocationList, url: str) -> None:
    """A partitioned CRL (RFC 5280 §5.2.5) must be the partition at the URL the certificate names."""
    try:
        point = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return
    if point.only_contains_ca_certs or point.only_contains_attribute_certs or point.only_some_reasons:
        raise _Unusable("the CRL does not cover end-entity certificates for every reason")
    names = [name.value for name in point.full_name or () if isinstance(name, x509.UniformResourceIdentifier)]
    if names and url not in names:
        raise _Unusable(f"the CRL is the partition {names[0]}, not {url}")
