"""ca_stub's key ceremony (``ca-stub ceremony``): offline roots and the intermediates that sign.

The only code that creates or touches root private keys; see ``_ceremony`` for the hierarchies
and the files it writes. The serving CA (``ca_stub.ca``) reads the result through the
``CAManifest`` of ``ca_stub.contracts``.

Imports: stdlib, cryptography, ``ca_stub.contracts``, this package, ``letsencrypt.acme``.
"""

from ca_stub.ceremony._ceremony import (
    FAST_KEYS,
    CeremonyError,
    CeremonyKeys,
    CeremonyResult,
    manifest_exists,
    run_ceremony,
)

__all__ = ["FAST_KEYS", "CeremonyError", "CeremonyKeys", "CeremonyResult", "manifest_exists", "run_ceremony"]
