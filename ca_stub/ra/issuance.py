"""The certificate half of the RA: finalize (RFC 8555 §7.4), revocation (§7.6) and renewal
information (RFC 9773 §4).

Finalize is a compare-and-set ``ready`` -> ``processing`` in the SA, so of two concurrent requests
one issues and the other gets ``orderNotReady``; the certificate is stored in the same transaction
that makes the order ``valid``, and an order a crash leaves ``processing`` is put back to ``ready``
by ``RegistrationAuthority.recover``.

Imports: stdlib, cryptography, ``ca_stub.contracts``, ``ca_stub.ra`` and ``letsencrypt.acme``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from cryptography import x509

from ca_stub.contracts import (
    AccountRecord,
    CAError,
    CertificateAuthority,
    CertificateRecord,
    IssuedCertificate,
    OrderRecord,
    PolicyAuthority,
    StorageAuthority,
)
from ca_stub.ra._certificates import check_csr, check_reason, renewal_window, same_public_key
from ca_stub.ra._orders import authorization_target
from letsencrypt.acme.ari import certificate_id, parse_certificate_id
from letsencrypt.acme.errors import MessageError
from letsencrypt.acme.messages import Identifier, OrderStatus

__all__ = ["Issuance"]

logger = logging.getLogger(__name__)

# Problems of the request itself that the CA may still find: the order stays ready for another CSR.
_CSR_PROBLEMS = frozenset({"badCSR", "badPublicKey"})


class Issuance:
    """Finalize, revoke and renewal information, over the SA, the PA and the CA."""

    def __init__(
        self, storage: StorageAuthority, policy: PolicyAuthority, ca: CertificateAuthority,
        clock: Callable[[], datetime.datetime],
    ) -> None:
        self._storage = storage
        self._policy = policy
        self._ca = ca
        self._clock = clock

    # --- finalize (RFC 8555 §7.4) ------------------------------------------------------------

    def finalize(self, account: AccountRecord, order: OrderRecord, csr_der: bytes) -> OrderRecord:
        """Check the CSR, win ``ready`` -> ``processing``, issue, store, and mark the order ``valid``.

        ``unauthorized`` (403) for another account's order; ``orderNotReady`` (403) unless the order
        is ready, also for the loser of a race; ``badCSR`` leaves the order ready (protocol-notes B.2).
        """
        if order.account_id != account.id:
            raise CAError("unauthorized", f"order {order.id} belongs to another account", status=403)
        if order.status != OrderStatus.READY:
            raise CAError("orderNotReady", f"order {order.id} is {order.status}, not ready", status=403)
        check_csr(csr_der, order.identifiers, account.jwk, self._policy.allowed_key)
        profile = self._policy.profile(order.profile)
        if self._storage.set_order_status(order.id, OrderStatus.PROCESSING, expect=OrderStatus.READY) is None:
            raise CAError("orderNotReady", f"order {order.id} is being finalized by another request", status=403)
        try:
            issued = self._ca.issue(csr_der, order.identifiers, profile, order.not_before, order.not_after)
            record = self._record(order, issued)
        except CAError as err:
            self._fail(order, err)
            raise
        except Exception as err:
            logger.exception("issuance for order %d failed", order.id)
            failure = CAError("serverInternal", f"issuance failed: {type(err).__name__}", status=500)
            self._fail(order, failure)
            raise failure from err
        done = self._storage.finish_order(order.id, record)  # the certificate and "valid" in one transaction
        if done is None:
            raise CAError("serverInternal", f"order {order.id} left processing during issuance", status=500)
        logger.info("order %d finalized: certificate %s for %s", order.id, record.serial,
                    ", ".join(map(str, order.identifiers)))
        return done

    def _record(self, order: OrderRecord, issued: IssuedCertificate) -> CertificateRecord:
        try:
            ari_id = certificate_id(x509.load_der_x509_certificate(issued.der))
        except (ValueError, MessageError) as err:
            raise RuntimeError(f"the CA issued a certificate without a usable identifier: {err}") from err
        return CertificateRecord(
            serial=issued.serial, account_id=order.account_id, order_id=order.id, der=issued.der,
            chains=issued.chains, identifiers=order.identifiers, not_before=issued.not_before,
            not_after=issued.not_after, issuer_id=issued.issuer_id, ari_id=ari_id,
        )

    def _fail(self, order: OrderRecord, err: CAError) -> None:
        """A CSR problem the CA found sends the order back to ready; anything else makes it invalid."""
        if err.problem_type in _CSR_PROBLEMS:
            self._storage.set_order_status(order.id, OrderStatus.READY, expect=OrderStatus.PROCESSING)
        else:
            self._storage.set_order_status(order.id, OrderStatus.INVALID, expect=OrderStatus.PROCESSING,
                                           error=err.problem())

    # --- revocation (RFC 8555 §7.6) ------------------------------------------------------------

    def revoke(
        self, certificate_der: bytes, reason: int | None, *, account: AccountRecord | None,
        certificate_key_jwk: Mapping[str, Any] | None,
    ) -> None:
        """Revoke a certificate this CA issued, if the requester may (RFC 8555 §7.6).

        Allowed: (a) the issuing account, (b) an account holding valid authorizations for every
        identifier of the certificate, (c) a request signed by the certificate's own key. The
        reason given is recorded as is in all three cases (Boulder forces keyCompromise for (c) and
        blocks the key; a test CA keeps what the client asked for, so tests can check it).
        """
        try:
            certificate = x509.load_der_x509_certificate(certificate_der)
        except ValueError as err:
            raise CAError("malformed", f"the certificate cannot be parsed: {err}") from err
        record = self._find(certificate)
        if record is None or record.der != certificate_der:
            raise CAError("malformed", "the certificate was not issued by this CA", status=404)
        code = check_reason(reason)
        now = self._clock()
        authority = self._revocation_authority(record, certificate, account, certificate_key_jwk, now)
        if record.revoked_at is not None or not self._storage.revoke_certificate(record.serial, code, now):
            raise CAError("alreadyRevoked", f"certificate {record.serial} is already revoked")
        logger.info("certificate %s revoked (reason %d) by %s", record.serial, code, authority)

    def _find(self, certificate: x509.Certificate) -> CertificateRecord | None:
        """By its RFC 9773 identifier (independent of how the CA writes serials), else by serial."""
        try:
            found = self._storage.certificate_by_ari_id(certificate_id(certificate))
        except MessageError:
            found = None
        return found or self._storage.get_certificate(format(certificate.serial_number, "x"))

    def _revocation_authority(
        self, record: CertificateRecord, certificate: x509.Certificate, account: AccountRecord | None,
        certificate_key_jwk: Mapping[str, Any] | None, now: datetime.datetime,
    ) -> str:
        """Who may revoke, as a phrase for the log; ``unauthorized`` (403) for anyone else."""
        if certificate_key_jwk is not None:
            if same_public_key(certificate_key_jwk, certificate.public_key()):
                return "the certificate key"
            raise CAError("unauthorized", "the request is not signed by the certificate's key", status=403)
        if account is None:
            raise CAError("unauthorized", "revocation must be signed by an account or the certificate key",
                          status=403)
        if account.id == record.account_id:
            return f"issuing account {account.id}"
        missing = [i for i in record.identifiers if not self._holds_authorization(account, i, now)]
        if missing:
            raise CAError(
                "unauthorized",
                f"account {account.id} did not order this certificate and holds no valid authorization for "
                + ", ".join(map(str, missing)),
                status=403,
            )
        return f"account {account.id}, authorized for every name"

    def _holds_authorization(self, account: AccountRecord, identifier: Identifier, now: datetime.datetime) -> bool:
        """A valid authorization for the name; for ``*.example.com`` one for ``example.com`` will do."""
        target, _ = authorization_target(identifier)
        return any(
            self._storage.valid_authorization(account.id, target, wildcard, now, now) is not None
            for wildcard in (False, True)
        )

    # --- renewal information (RFC 9773 §4) --------------------------------------------------------

    def renewal_info(self, ari_id: str) -> tuple[datetime.datetime, datetime.datetime]:
        """The suggested window; ``malformed`` for a bad identifier, 404 for an unknown certificate."""
        try:
            parse_certificate_id(ari_id)
        except MessageError as err:
            raise CAError("malformed", str(err)) from err
        record = self._storage.certificate_by_ari_id(ari_id)
        if record is None:
            raise CAError("malformed", f"this CA issued no certificate {ari_id}", status=404)
        return renewal_window(record, self._clock())
