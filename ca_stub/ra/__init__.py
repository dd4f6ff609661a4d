"""ca_stub's Registration Authority: the RFC 8555 state machines (protocol-notes B.2-B.6).

Accounts (contacts, terms of service, EAB, key rollover, deactivation), orders (authorization
reuse, profiles, ``replaces``), authorizations and challenges (``pending`` -> ``processing`` ->
``valid``/``invalid``, expiry), finalize, revocation and renewal information. The WFE calls it
through the ``RegistrationAuthority`` contract; the VA reports back through ``ValidationReporter``.

Imports: stdlib, cryptography, ``ca_stub.contracts``, ``ca_stub.ra`` and ``letsencrypt.acme``;
never another component (``ca_stub.server`` wires the concrete classes together).
"""

from ca_stub.contracts import TermsOfService
from ca_stub.ra.authority import Recovery, RegistrationAuthority

__all__ = ["Recovery", "RegistrationAuthority", "TermsOfService"]
