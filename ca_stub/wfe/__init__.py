"""ca_stub's web front end: the ACME API (``WebFrontEnd``), nonces, and the management API.

Imports: ``ca_stub.contracts``, ``ca_stub.wfe``, ``letsencrypt.acme``; talks only to the RA
(and to the CA for OCSP, CRLs and the management API's certificates).
"""

from ca_stub.wfe.app import WebFrontEnd, WFEConfig
from ca_stub.wfe.management import ManagementAPI
from ca_stub.wfe.nonces import NonceService

__all__ = ["ManagementAPI", "NonceService", "WFEConfig", "WebFrontEnd"]
