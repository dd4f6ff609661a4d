"""ca_stub's validation authority (VA): proves control of identifiers over the network.

http-01, dns-01 and tls-alpn-01 (RFC 8555 §8, RFC 8737, RFC 8738), and the 2015 draft's
simpleHttps and dvsni, each checked with ``letsencrypt.acme.challenges``; validations run
concurrently and report back to the RA through ``ValidationReporter``.

Imports: stdlib, cryptography, dnspython, ``letsencrypt.acme``, ``ca_stub.contracts`` and this
package.
"""

from __future__ import annotations

from ca_stub.va.authority import SIMPLE_HTTPS_TIMEOUT, NetworkVA
from ca_stub.va.resolver import Resolver
from ca_stub.va.validators import MAX_REDIRECTS

__all__ = ["MAX_REDIRECTS", "SIMPLE_HTTPS_TIMEOUT", "NetworkVA", "Resolver"]
