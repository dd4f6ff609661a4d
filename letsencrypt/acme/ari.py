"""ACME Renewal Information, client side (RFC 9773), and ``Retry-After`` parsing.

The certificate identifier (RFC 9773 §4.1) names a certificate in the ``renewalInfo`` URL and
in newOrder's ``replaces``; ``choose_renewal_time`` picks the moment to renew inside the
server's suggested window (§4.2); ``parse_retry_after`` and ``clamp_retry_after`` turn the
``Retry-After`` header (RFC 9110 §10.2.3) into a bounded polling interval (§4.3). The HTTP
client uses ``parse_retry_after`` for every endpoint, not only ARI.

Imports: stdlib, cryptography and ``letsencrypt.acme`` only.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import TYPE_CHECKING

from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.errors import JWSError, MessageError
from letsencrypt.acme.jws import b64decode, b64encode
from letsencrypt.acme.messages import RenewalInfo

if TYPE_CHECKING:
    import random

    from cryptography import x509
else:
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "MAX_RETRY_AFTER",
    "MIN_RETRY_AFTER",
    "certificate_id",
    "certificate_id_from_parts",
    "choose_renewal_time",
    "clamp_retry_after",
    "parse_certificate_id",
    "parse_retry_after",
    "renewal_info_url",
]

DEFAULT_RETRY_AFTER = 6 * 3600.0  # long-term errors or no header: retry after ~6 h (RFC 9773 §4.3.3)
MIN_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 24 * 3600.0

_DELAY_SECONDS = re.compile(r"-?[0-9]+")


def _der_integer_content(value: int) -> bytes:
    """The content octets of a DER INTEGER: minimal two's complement (X.690 §8.3).

    A positive value whose top bit is set keeps its leading 0x00.
    """
    magnitude = value if value >= 0 else ~value
    return value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True)


def certificate_id_from_parts(aki: bytes, serial: int) -> str:
    """``base64url(keyIdentifier) "." base64url(serial)`` (RFC 9773 §4.1), padding stripped.

    ``aki`` is the keyIdentifier of the certificate's Authority Key Identifier; ``serial`` is
    encoded as the content bytes of its DER INTEGER, so 0x87654321 becomes ``00 87 65 43 21``.
    """
    if not aki:
        raise MessageError("a certificate identifier needs a non-empty authority key identifier")
    return f"{b64encode(aki)}.{b64encode(_der_integer_content(serial))}"


def certificate_id(cert: x509.Certificate) -> str:
    """The RFC 9773 §4.1 identifier of ``cert``.

    ``MessageError`` when the certificate has no Authority Key Identifier extension with a
    keyIdentifier (RFC 5280 §4.2.1.1 requires one of every CA-issued certificate).
    """
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound as err:
        raise MessageError(
            f"certificate {cert.serial_number:#x} has no authority key identifier; "
            "cannot name it for renewal information (RFC 9773 §4.1)"
        ) from err
    except ValueError as err:
        raise MessageError(f"certificate {cert.serial_number:#x} has malformed extensions: {err}") from err
    if not aki.key_identifier:
        raise MessageError(
            f"the authority key identifier of certificate {cert.serial_number:#x} has no keyIdentifier; "
            "cannot name it for renewal information (RFC 9773 §4.1)"
        )
    return certificate_id_from_parts(aki.key_identifier, cert.serial_number)


def parse_certificate_id(cert_id: str) -> tuple[bytes, int]:
    """The (keyIdentifier, serial) a certificate identifier names; the server side of §4.1.

    Strict: only the exact encoding ``certificate_id_from_parts`` produces is accepted (unpadded
    base64url, minimal serial), so one certificate has one identifier. ``MessageError`` otherwise.
    """
    aki_text, dot, serial_text = cert_id.partition(".")
    if not dot or not aki_text or not serial_text:
        raise MessageError(f"not a certificate identifier (keyIdentifier.serial): {cert_id[:80]!r}")
    try:
        aki = b64decode(aki_text)
        serial_bytes = b64decode(serial_text)
    except JWSError as err:
        raise MessageError(f"certificate identifier is not base64url: {cert_id[:80]!r}") from err
    serial = int.from_bytes(serial_bytes, "big", signed=True)
    if not aki or certificate_id_from_parts(aki, serial) != cert_id:
        raise MessageError(f"certificate identifier is not in canonical form: {cert_id[:80]!r}")
    return aki, serial


def renewal_info_url(base_url: str, cert_id: str) -> str:
    """Where to GET renewal information: the directory's ``renewalInfo`` URL, "/", the ID (§4.1)."""
    return base_url.rstrip("/") + "/" + cert_id


def choose_renewal_time(info: RenewalInfo, *, rng: random.Random | None = None) -> datetime.datetime:
    """A time drawn uniformly from ``[start, end)`` of the suggested window (RFC 9773 §4.2).

    Spreading renewals over the window is what lets a CA shift load; a caller that finds the
    result in the past renews now. ``rng`` is for tests; the default is the system source.
    """
    import random  # here, not at start-up: only a renewal decision draws a time

    source = rng if rng is not None else random.SystemRandom()
    return info.start + (info.end - info.start) * source.random()


def clamp_retry_after(
    seconds: float | None,
    *,
    default: float = DEFAULT_RETRY_AFTER,
    minimum: float = MIN_RETRY_AFTER,
    maximum: float = MAX_RETRY_AFTER,
) -> float:
    """A polling interval within ``[minimum, maximum]`` (RFC 9773 §4.3, protocol-notes B.6).

    ``None`` (no usable header) and NaN give ``default``, itself clamped. A server cannot make
    the client hammer it (``minimum``) nor stop asking for a day or more (``maximum``).
    """
    if minimum > maximum:
        raise ValueError(f"clamp_retry_after: minimum {minimum} is above maximum {maximum}")
    value = default if seconds is None or math.isnan(seconds) else seconds
    return min(max(value, minimum), maximum)


def parse_retry_after(header_value: str | None, *, now: datetime.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), or ``None``.

    Accepts delay-seconds or an HTTP-date (compared with ``now``, default the current UTC time;
    naive datetimes are taken as UTC). A negative delay or a date in the past gives 0; a missing
    or unparseable value gives ``None``, so that the caller falls back to its own default.
    """
    if header_value is None:
        return None
    text = header_value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(max(int(text), 0))
    import email.utils  # here, not at start-up: ~10 ms, and most Retry-After values are seconds

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    reference = now if now is not None else datetime.datetime.now(datetime.UTC)
    delay = (_as_utc(when) - _as_utc(reference)).total_seconds()
    return max(delay, 0.0)


def _as_utc(value: datetime.datetime) -> datetime.datetime:
    """HTTP-dates are always GMT (RFC 9110 §5.6.7), so a naive value is UTC."""
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value
