"""ca_stub's policy authority (PA): identifiers, challenge offers, profiles, acceptable keys.

The RA asks it whether an order's identifiers may be issued for, which challenges to offer
for an authorization, which profile an order gets, and whether a key is acceptable. It keeps no
state beyond its configuration.

Imports: stdlib, cryptography, ``letsencrypt.acme``, ``ca_stub.contracts`` and this package.
"""

from __future__ import annotations

from ca_stub.pa.identifiers import BlockList
from ca_stub.pa.keys import check_account_key, check_certificate_key
from ca_stub.pa.policy import MAX_IDENTIFIERS, Policy
from ca_stub.pa.profiles import DEFAULT, DEFAULT_PROFILES, SHORTLIVED

__all__ = [
    "DEFAULT",
    "DEFAULT_PROFILES",
    "MAX_IDENTIFIERS",
    "SHORTLIVED",
    "BlockList",
    "Policy",
    "check_account_key",
    "check_certificate_key",
]
