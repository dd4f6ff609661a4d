"""The certificate profiles the test CA offers (draft-ietf-acme-profiles, protocol-notes B.8).

Modelled on Pebble's default configuration and Let's Encrypt's profiles: ``default`` is the
classic 90-day certificate with a common name and 30 days of authorization reuse; ``shortlived``
is Let's Encrypt's 160-hour profile (no common name, 7 hours of reuse). Both allow DNS and IP
identifiers (RFC 8738) so that loopback tests can use either.

Imports: stdlib and ``ca_stub.contracts`` only.
"""

from __future__ import annotations

import datetime
import types
from collections.abc import Mapping

from ca_stub.contracts import Profile

__all__ = ["DEFAULT", "DEFAULT_PROFILES", "SHORTLIVED"]

DEFAULT = Profile(
    name="default",
    description="The classic profile: 90-day certificates with a common name; authorizations reused for 30 days",
    validity=datetime.timedelta(days=90),
    authorization_reuse=datetime.timedelta(days=30),
    identifier_types=frozenset({"dns", "ip"}),
    common_name=True,
)

SHORTLIVED = Profile(
    name="shortlived",
    description="Short-lived 160-hour certificates without a common name; authorizations reused for 7 hours",
    validity=datetime.timedelta(hours=160),
    authorization_reuse=datetime.timedelta(hours=7),
    identifier_types=frozenset({"dns", "ip"}),
    common_name=False,
)

DEFAULT_PROFILES: Mapping[str, Profile] = types.MappingProxyType(
    {DEFAULT.name: DEFAULT, SHORTLIVED.name: SHORTLIVED}
)
