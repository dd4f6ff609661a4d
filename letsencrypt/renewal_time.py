"""When a certificate is due for renewal.

With renewal information from the CA (RFC 9773 §4.2) the answer is the CA's: a time picked at random
in its suggested window (a revoked certificate gets a window in the past, so it is renewed at once).
Without it, certbot 4's rule: renew once a third of the lifetime is left, or half of it for
certificates that live less than 10 days (protocol-notes B.9).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.ari import choose_renewal_time
from letsencrypt.acme.messages import RenewalInfo
from letsencrypt.acme.records import record

if TYPE_CHECKING:
    import random

    from cryptography import x509
else:
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

__all__ = ["Decision", "renewal_decision"]

SHORT_LIVED = datetime.timedelta(days=10)


@record
class Decision:
    due: bool
    when: datetime.datetime  # when it is (or was) due
    reason: str


def renewal_decision(
    certificate: x509.Certificate,
    now: datetime.datetime,
    *,
    renewal_info: RenewalInfo | None = None,
    rng: random.Random | None = None,
) -> Decision:
    if renewal_info is not None:
        when = choose_renewal_time(renewal_info, rng=rng)
        return Decision(
            when <= now,
            when,
            f"the CA suggests renewing between {renewal_info.start:%Y-%m-%d %H:%M} and "
            f"{renewal_info.end:%Y-%m-%d %H:%M} UTC (RFC 9773 renewal information)",
        )
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    lifetime = not_after - not_before
    share = 2 if lifetime < SHORT_LIVED else 3
    when = not_after - lifetime / share
    left = "half" if share == 2 else "a third"
    reason = f"renewal is due when {left} of the lifetime is left ({when:%Y-%m-%d %H:%M} UTC)"
    return Decision(when <= now, when, reason)
