"""Certificate rules of the RA: finalize's CSR checks (RFC 8555 §7.4), revocation reasons
(§7.6, RFC 5280 §5.3.1) and the renewal window (RFC 9773 §4.2).

Imports: stdlib, cryptography, ``ca_stub.contracts`` and ``letsencrypt.acme``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_stub.contracts import CAError, CertificateRecord
from letsencrypt.acme.crypto import csr_identifiers, csr_signature_valid, load_csr
from letsencrypt.acme.errors import JWSError, MessageError
from letsencrypt.acme.jws import public_key_from_jwk
from letsencrypt.acme.messages import Identifier

__all__ = [
    "REVOCATION_REASONS",
    "check_csr",
    "check_reason",
    "renewal_window",
    "same_public_key",
]

# RFC 5280 §5.3.1 codes ACME clients may ask for (as Boulder): unspecified, keyCompromise,
# affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.
REVOCATION_REASONS = frozenset({0, 1, 3, 4, 5, 9})
# Where a revoked certificate's renewal window ends, before now: clients renew at once (RFC 9773 §4.2).
_REVOKED_WINDOW = datetime.timedelta(hours=1)


def _spki(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def same_public_key(jwk: Mapping[str, Any], public_key: Any) -> bool:
    """Whether the public JWK is ``public_key`` (compared as SubjectPublicKeyInfo DER)."""
    try:
        return _spki(public_key_from_jwk(jwk)) == _spki(public_key)
    except (JWSError, ValueError, TypeError, AttributeError):
        return False


def _names(identifiers: Sequence[Identifier] | set[Identifier]) -> str:
    return ", ".join(sorted(str(identifier) for identifier in identifiers))


def check_csr(
    csr_der: bytes,
    order_identifiers: Sequence[Identifier],
    account_jwk: Mapping[str, Any],
    allowed_key: Callable[[Any], None],
) -> x509.CertificateSigningRequest:
    """The finalize CSR, or ``badCSR`` saying what is wrong with it (RFC 8555 §7.4).

    It must parse, be signed by its own key, name exactly the order's identifiers (in its
    subjectAltName and common name), carry a key the policy allows (``allowed_key`` raises), and
    that key must not be the account key.
    """
    try:
        csr = load_csr(csr_der)
        signature_ok = csr_signature_valid(csr)
        names = set(csr_identifiers(csr))
    except MessageError as err:
        raise CAError("badCSR", f"the CSR cannot be used: {err}") from err
    if not signature_ok:
        raise CAError("badCSR", "the CSR signature does not verify with the key it carries")
    expected = set(order_identifiers)
    extra, missing = names - expected, expected - names
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"names {_names(extra)} that the order lacks")
        if missing:
            parts.append(f"lacks {_names(missing)} of the order")
        raise CAError("badCSR", f"the CSR must name exactly the order's identifiers; it {' and '.join(parts)}")
    try:
        public_key = csr.public_key()
    except (ValueError, TypeError) as err:  # an unsupported key algorithm
        raise CAError("badCSR", f"the CSR key cannot be read: {err}") from err
    allowed_key(public_key)
    if same_public_key(account_jwk, public_key):
        raise CAError("badCSR", "the CSR key is the account key; use a separate certificate key")
    return csr


def check_reason(reason: int | None) -> int:
    """The reason code to record: ``None`` is 0 (unspecified); ``badRevocationReason`` unless allowed."""
    code = 0 if reason is None else reason
    if isinstance(code, bool) or not isinstance(code, int) or code not in REVOCATION_REASONS:
        raise CAError(
            "badRevocationReason",
            f"revocation reason {reason!r} is not allowed; use one of {sorted(REVOCATION_REASONS)}",
        )
    return code


def renewal_window(record: CertificateRecord, now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """The suggested renewal window (RFC 9773 §4.2).

    From two thirds to three quarters of the certificate's lifetime, as Let's Encrypt suggests
    renewing at two thirds; a revoked certificate gets a window that has already ended, so that
    clients replace it at once.
    """
    if record.revoked_at is not None:
        end = min(record.revoked_at, now)
        return end - _REVOKED_WINDOW, end
    lifetime = record.not_after - record.not_before
    return record.not_before + lifetime * 2 / 3, record.not_before + lifetime * 3 / 4
