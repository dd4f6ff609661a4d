"""Certificate revocation lists (RFC 5280 §5), one per issuer, made on request.

A CRL is signed by the intermediate it speaks for and carries the extensions §5.2 requires of a
conforming CA: the authority key identifier (§5.2.1) and a CRL number (§5.2.3) that increases
with every CRL: the microseconds since the epoch of its thisUpdate clock, so it keeps increasing
across restarts with no stored counter. When the CA has a CRL URL, the issuing distribution
point (§5.2.5, critical) names it, as the leaves' CRL distribution point does, and says the CRL
covers end-entity certificates only. Entries carry the revocation date and, except for
"unspecified", the reason code (§5.3.1).

Imports: stdlib, cryptography, ``ca_stub.contracts``, this package.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ca_stub.ca._issuers import Issuer
from ca_stub.ca._reasons import reason_flag
from ca_stub.contracts import CertificateRecord

__all__ = ["CRL_VALIDITY", "build_crl"]

logger = logging.getLogger(__name__)

CRL_VALIDITY = datetime.timedelta(hours=24)  # nextUpdate - thisUpdate


def build_crl(
    issuer: Issuer, revoked: Sequence[CertificateRecord], now: datetime.datetime, url: str | None
) -> bytes:
    """The DER CRL of ``issuer`` listing those of ``revoked`` that it issued and that are revoked."""
    this_update = now.replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(this_update)
        .next_update(this_update + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1_000_000)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(issuer.subject_key_id, None, None), critical=False)
    )
    if url is not None:
        point = x509.IssuingDistributionPoint(
            full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, only_contains_user_certs=True,
            only_contains_ca_certs=False, only_some_reasons=None, indirect_crl=False,
            only_contains_attribute_certs=False,
        )
        builder = builder.add_extension(point, critical=True)
    for record in revoked:
        entry = _entry(record, issuer)
        if entry is not None:
            builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _entry(record: CertificateRecord, issuer: Issuer) -> x509.RevokedCertificate | None:
    if record.revoked_at is None or record.issuer_id != issuer.id:
        return None
    try:
        serial = int(record.serial, 16)
        if serial <= 0:
            raise ValueError("not positive")
    except ValueError:
        logger.warning("CRL of %s: skipping a record whose serial %r is not hex", issuer.id, record.serial)
        return None
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(record.revoked_at)
    flag = reason_flag(record.revocation_reason)
    if flag is not None:
        builder = builder.add_extension(x509.CRLReason(flag), critical=False)
    return builder.build()
