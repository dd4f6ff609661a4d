"""CRLReason codes (RFC 5280 §5.3.1) as cryptography's ``ReasonFlags``; shared by OCSP and the CRL.

Imports: cryptography.
"""

from __future__ import annotations

from cryptography import x509

__all__ = ["reason_flag"]

_REASONS = {
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}


def reason_flag(code: int | None) -> x509.ReasonFlags | None:
    """The flag for a recorded reason code; ``None`` for unspecified (0) or none.

    RFC 5280 §5.3.1: the reason code "unspecified" SHOULD be absent rather than encoded, and
    Let's Encrypt omits it the same way in CRLs and OCSP. Unknown codes (7 is unassigned) are
    left out too: the RA's reason checks keep them from being recorded in the first place.
    """
    if code is None:
        return None
    return _REASONS.get(code)
