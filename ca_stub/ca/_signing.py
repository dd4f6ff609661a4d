"""``SigningCA``: the serving CA that issues leaves, answers OCSP and makes CRLs.

It loads only what the ceremony left for it in the data directory (``ca.json``, intermediate
keys and certificates, root certificates), never a root key. Leaves are signed by the
intermediate whose key type matches the CSR's key (ECDSA leaf -> ``E1``, RSA leaf -> ``R1``), and
come with one chain per hierarchy (RFC 8555 §7.4.2): the default chain (the intermediate signed
by Root X1) and the alternate one (the same intermediate signed by Root X2), neither with the
leaf nor the root, as Let's Encrypt serves them.

URLs the leaves carry (each optional):

- ``base_url_for_ocsp``: the OCSP responder URL itself, put in authorityInfoAccess as is (a GET
  request appends ``/`` and the base64 request, RFC 6960 Appendix A.1);
- ``crl_base_url``: the CRL of issuer ``ID`` is at ``{crl_base_url}/{ID}`` (DER);
- ``ca_issuers_base_url``: the issuer certificate at ``{ca_issuers_base_url}/{ID}``, which
  must serve ``issuer_certificate_der(ID)`` (DER, RFC 5280 §4.2.2.1).

Management API mapping (Pebble-compatible): ``roots_pem()[i]`` is root ``i`` (0: Root X1, 1: Root
X2); ``intermediates_pem()[i]`` is every intermediate certified by root ``i`` as one PEM bundle,
``E1`` first (so a reader that takes the first certificate gets the issuer of the ECDSA leaves
most clients ask for), then ``R1``.

Imports: stdlib, cryptography, ``ca_stub.contracts``, this package, ``letsencrypt.acme``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from ca_stub.ca._crl import build_crl
from ca_stub.ca._issuers import Issuer, load_key_material
from ca_stub.ca._leaf import LeafURLs, build_leaf, new_serial, serial_hex, validity_window
from ca_stub.ca._ocsp import ocsp_response
from ca_stub.contracts import CAError, CertificateAuthority, CertificateRecord, IssuedCertificate, Profile, utcnow
from letsencrypt.acme.crypto import csr_signature_valid, key_type_of, load_csr, pem_of, split_pem_chain
from letsencrypt.acme.errors import MessageError
from letsencrypt.acme.messages import Identifier

__all__ = ["SigningCA"]

logger = logging.getLogger(__name__)


class SigningCA:
    """The ``CertificateAuthority`` of ca_stub (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        base_url_for_ocsp: str | None,
        crl_base_url: str | None,
        ca_issuers_base_url: str | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        """Load the key material; ``CAStateError`` when the data directory holds no usable CA."""
        material = load_key_material(data_dir)
        self._issuers = material.issuers
        self._roots_pem = tuple(pem_of([root]) for root in material.roots)
        self._intermediates_pem = tuple(
            pem_of(dict.fromkeys(cert for issuer in self._issuers for cert in split_pem_chain(issuer.chains_pem[i])))
            for i in range(len(material.roots))
        )
        self._ocsp_url = base_url_for_ocsp
        self._crl_base_url = crl_base_url.rstrip("/") if crl_base_url else None
        self._ca_issuers_base_url = ca_issuers_base_url.rstrip("/") if ca_issuers_base_url else None
        self._clock = clock
        logger.info("CA loaded from %s: issuers %s", data_dir, ", ".join(i.id for i in self._issuers))

    def issue(
        self, csr_der: bytes, identifiers: Sequence[Identifier], profile: Profile,
        not_before: datetime.datetime | None, not_after: datetime.datetime | None,
    ) -> IssuedCertificate:
        """A leaf for the CSR's key naming exactly ``identifiers`` (RFC 8555 §7.4).

        ``CAError(badCSR)`` for a CSR that does not parse, is not signed by its own key, or has a
        key no issuer signs for; ``CAError(malformed)`` for a validity outside the profile.
        """
        try:
            csr = load_csr(csr_der)
            signed = csr_signature_valid(csr)
            public_key = csr.public_key()
        except (MessageError, ValueError, UnsupportedAlgorithm) as err:
            raise CAError("badCSR", f"the CSR cannot be parsed: {err}") from err
        if not signed:
            raise CAError("badCSR", "the CSR signature does not verify with the key it carries")
        issuer = next((item for item in self._issuers if item.signs_for(public_key)), None)
        if issuer is None:
            raise CAError("badCSR", f"no issuer signs {key_type_of(public_key)} keys; use an RSA or ECDSA key")
        window = validity_window(self._clock(), profile, not_before, not_after)
        serial = new_serial()
        certificate = build_leaf(csr, identifiers, profile, issuer, window, serial, self._urls(issuer))
        logger.info("issued %s for %s by %s", serial_hex(serial), ", ".join(i.value for i in identifiers), issuer.id)
        return IssuedCertificate(
            serial=serial_hex(serial), der=certificate.public_bytes(Encoding.DER), chains=issuer.chains_pem,
            issuer_id=issuer.id, not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )

    def _urls(self, issuer: Issuer) -> LeafURLs:
        return LeafURLs(
            ocsp=self._ocsp_url,
            ca_issuers=f"{self._ca_issuers_base_url}/{issuer.id}" if self._ca_issuers_base_url else None,
            crl=self._crl_url(issuer.id),
        )

    def _crl_url(self, issuer_id: str) -> str | None:
        return f"{self._crl_base_url}/{issuer_id}" if self._crl_base_url else None

    def roots_pem(self) -> tuple[str, ...]:
        """Root certificates, Root X1 (default hierarchy) first."""
        return self._roots_pem

    def intermediates_pem(self) -> tuple[str, ...]:
        """Per root, the intermediates it certified, as one PEM bundle each (E1 first)."""
        return self._intermediates_pem

    def issuer_certificate_der(self, issuer_id: str) -> bytes:
        """The issuer's certificate in the default hierarchy, DER, for the CA Issuers URL."""
        return self._issuer(issuer_id).certificate.public_bytes(Encoding.DER)

    def ocsp_response(self, request_der: bytes, status_of: Callable[[str], CertificateRecord | None]) -> bytes:
        """A DER OCSP response (RFC 6960) signed by the certificate's issuer; see ``_ocsp``."""
        return ocsp_response(request_der, self._issuers, status_of, self._clock())

    def crl(self, issuer_id: str, revoked: Sequence[CertificateRecord]) -> bytes:
        """The DER CRL (RFC 5280 §5) of ``issuer_id``; ``CAError(malformed, 404)`` for an unknown issuer."""
        return build_crl(self._issuer(issuer_id), revoked, self._clock(), self._crl_url(issuer_id))

    def issuer_ids(self) -> tuple[str, ...]:
        return tuple(issuer.id for issuer in self._issuers)

    def _issuer(self, issuer_id: str) -> Issuer:
        for issuer in self._issuers:
            if issuer.id == issuer_id:
                return issuer
        raise CAError("malformed", f"no issuer {issuer_id!r}; issuers are {', '.join(self.issuer_ids())}", status=404)


def _conforms(ca: SigningCA) -> CertificateAuthority:  # static check that SigningCA implements the contract
    return ca
