"""ca_stub's CA component: issuance from the ceremony's intermediates, chains, OCSP and CRLs.

``SigningCA`` implements ``ca_stub.contracts.CertificateAuthority``; it reads the data directory
the key ceremony (``ca_stub.ceremony``) wrote and never a root private key. ``CAStateError``
says the data directory holds no usable CA.

Imports: stdlib, cryptography, ``ca_stub.contracts``, this package, ``letsencrypt.acme``.
"""

from ca_stub.ca._issuers import CAStateError
from ca_stub.ca._signing import SigningCA

__all__ = ["CAStateError", "SigningCA"]
