"""The CA certificates a ceremony signs: self-signed roots and the intermediates under them.

Profiles follow RFC 5280 and the CA/Browser Forum baseline requirements as Let's Encrypt uses
them: a root is ``CA:TRUE`` with keyCertSign and cRLSign (§4.2.1.9, §4.2.1.3) and a subject key
identifier (§4.2.1.2); an intermediate adds ``pathLenConstraint 0`` (no CA below it),
digitalSignature (it signs OCSP responses directly, RFC 6960 §4.2.2.2), the serverAuth extended
key usage (§4.2.1.12) and the authority key identifier of its root (§4.2.1.1).

Imports: stdlib, cryptography, ``letsencrypt.acme``.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from letsencrypt.acme.crypto import CertPrivateKey

__all__ = ["INTERMEDIATE_VALIDITY", "ROOT_VALIDITY", "make_intermediate", "make_root", "signature_hash"]

ROOT_VALIDITY = datetime.timedelta(days=20 * 365 + 5)  # ~20 years, leap days included
INTERMEDIATE_VALIDITY = datetime.timedelta(days=5 * 365 + 1)  # ~5 years
_BACKDATE = datetime.timedelta(minutes=1)  # tolerate clocks slightly behind ours
_ORGANIZATION = "ca_stub"


def signature_hash(key: CertPrivateKey) -> hashes.SHA256 | hashes.SHA384:
    """SHA-384 for P-384 and larger curves, SHA-256 otherwise (matching hash and key strength)."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _start(now: datetime.datetime) -> datetime.datetime:
    return (now - _BACKDATE).replace(microsecond=0)


def make_root(
    key: CertPrivateKey, common_name: str, now: datetime.datetime, validity: datetime.timedelta = ROOT_VALIDITY
) -> x509.Certificate:
    """A self-signed root certificate for ``key`` (RFC 5280 §4.2.1.9: CA with no path length limit)."""
    name = _name(common_name)
    start = _start(now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(digital_signature=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, signature_hash(key))


def make_intermediate(
    key: CertPrivateKey,
    common_name: str,
    root: x509.Certificate,
    root_key: CertPrivateKey,
    now: datetime.datetime,
    validity: datetime.timedelta = INTERMEDIATE_VALIDITY,
) -> x509.Certificate:
    """An intermediate for ``key`` signed by ``root_key``; the same name and key under any root.

    Signing the same subject and key under a second root is how alternate chains work: a leaf
    signed once by ``key`` verifies through whichever of these certificates the client picks.
    """
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    start = _start(now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + validity, root.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
    )
    return builder.sign(root_key, signature_hash(root_key))


def _ca_key_usage(*, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
