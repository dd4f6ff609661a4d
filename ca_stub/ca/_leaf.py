"""Leaf certificates: the validity window, the serial number, and the certificate itself.

The profile is Let's Encrypt's ``classic`` one (RFC 5280 and the CA/Browser Forum baseline
requirements): the subjectAltName holds exactly the order's identifiers (§4.2.1.6: dNSName,
iPAddress per RFC 8738 §3), critical when the subject is empty; the CN is the first DNS name
when the profile wants one and it fits ``ub-common-name`` (64); basicConstraints CA:FALSE
(critical); keyUsage digitalSignature, plus keyEncipherment for RSA keys (§4.2.1.3); EKU
serverAuth; SKI and AKI (§4.2.1.1-2); authorityInfoAccess with the OCSP responder and the
issuer's certificate (§4.2.2.1, RFC 6960 §3.1) and a CRL distribution point (§4.2.1.13) when the
CA is configured with those URLs. A TLS Feature (RFC 7633, Must-Staple) in the CSR is carried
over, as Pebble does.

Imports: stdlib, cryptography, ``ca_stub.contracts``, this package, ``letsencrypt.acme``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import secrets
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca_stub.ca._issuers import Issuer
from ca_stub.contracts import CAError, Profile
from letsencrypt.acme.messages import Identifier, format_time

__all__ = ["LeafURLs", "build_leaf", "new_serial", "serial_hex", "validity_window"]

BACKDATE = datetime.timedelta(minutes=1)  # notBefore when the order names none: clocks drift
MAX_PAST_NOT_BEFORE = datetime.timedelta(days=1)  # an order may not backdate further than this
_MAX_CN_LENGTH = 64  # ub-common-name, RFC 5280 appendix A.1


@dataclasses.dataclass(frozen=True, slots=True)
class LeafURLs:
    """Where the leaf points relying parties; ``None`` leaves the field out."""

    ocsp: str | None = None
    ca_issuers: str | None = None
    crl: str | None = None


def new_serial() -> int:
    """126 random bits with the top bits ``01``: positive, 16 DER octets, and 32 hex digits always.

    Because the first hex digit is never 0, the lower-case hex with and without zero padding is
    one string, whichever form another component computes (``format(n, "x")``). 126 bits is far
    above the 64 bits of entropy the baseline requirements ask for (§7.1).
    """
    return (int.from_bytes(secrets.token_bytes(16), "big") & ~(1 << 127)) | (1 << 126)


def serial_hex(serial: int) -> str:
    """The serial as records carry it: lower-case hex, no prefix."""
    return format(serial, "x")


def validity_window(
    now: datetime.datetime, profile: Profile, not_before: datetime.datetime | None, not_after: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    """The leaf's notBefore/notAfter (RFC 8555 §7.1.3 lets the order ask for them).

    Without a request: from one minute ago for ``profile.validity``. A requested window is
    honoured when it lies within the profile (no longer than its validity, not already over,
    backdated by at most a day); otherwise ``CAError(malformed)``. Whole seconds, as X.509 has.
    """
    start = (not_before if not_before is not None else now - BACKDATE).replace(microsecond=0)
    end = (not_after if not_after is not None else start + profile.validity).replace(microsecond=0)
    problem = None
    if end <= start:
        problem = "notAfter must be later than notBefore"
    elif end - start > profile.validity:
        problem = f"the requested validity exceeds the {profile.validity} of profile {profile.name!r}"
    elif end <= now:
        problem = "the requested notAfter has already passed"
    elif start < now - MAX_PAST_NOT_BEFORE:
        problem = f"notBefore may be at most {MAX_PAST_NOT_BEFORE} in the past"
    if problem is not None:
        raise CAError("malformed", f"{problem} (notBefore {format_time(start)}, notAfter {format_time(end)})")
    return start, end


def build_leaf(
    csr: x509.CertificateSigningRequest,
    identifiers: Sequence[Identifier],
    profile: Profile,
    issuer: Issuer,
    window: tuple[datetime.datetime, datetime.datetime],
    serial: int,
    urls: LeafURLs,
) -> x509.Certificate:
    """The leaf for ``csr``'s key naming exactly ``identifiers``, signed by ``issuer`` (SHA-256)."""
    names = _general_names(identifiers)
    subject = _subject(identifiers, profile)
    public_key = csr.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=len(subject) == 0)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(isinstance(public_key, rsa.RSAPublicKey)), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(issuer.subject_key_id, None, None), critical=False)
    )
    builder = _add_urls(builder, urls)
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):  # no Must-Staple requested
        builder = builder.add_extension(csr.extensions.get_extension_for_class(x509.TLSFeature).value, critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


def _general_names(identifiers: Sequence[Identifier]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for identifier in dict.fromkeys(identifiers):
        try:
            if identifier.type == "dns":
                names.append(x509.DNSName(identifier.value))
            elif identifier.type == "ip":
                names.append(x509.IPAddress(ipaddress.ip_address(identifier.value)))
            else:
                raise CAError("unsupportedIdentifier", f"cannot certify identifier type {identifier.type!r}")
        except ValueError as err:
            raise CAError("malformed", f"identifier {identifier.value!r} cannot go into a certificate: {err}") from err
    if not names:
        raise CAError("malformed", "a certificate needs at least one identifier")
    return names


def _subject(identifiers: Sequence[Identifier], profile: Profile) -> x509.Name:
    if profile.common_name:
        for identifier in identifiers:
            if identifier.type == "dns":
                if len(identifier.value) <= _MAX_CN_LENGTH:
                    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identifier.value)])
                break
    return x509.Name([])


def _key_usage(rsa_key: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=rsa_key, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )


def _add_urls(builder: x509.CertificateBuilder, urls: LeafURLs) -> x509.CertificateBuilder:
    aia = AuthorityInformationAccessOID
    methods = ((aia.OCSP, urls.ocsp), (aia.CA_ISSUERS, urls.ca_issuers))
    access = [x509.AccessDescription(oid, x509.UniformResourceIdentifier(url)) for oid, url in methods if url]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if urls.crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(urls.crl)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder
