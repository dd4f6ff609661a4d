"""The Registration Authority: the RFC 8555 state machines of accounts, orders, authorizations and
challenges (protocol-notes B.3), with authorization reuse, ``replaces`` (RFC 9773 §5), EAB and
terms of service. Issuance and revocation live in ``ca_stub.ra.issuance``.

The RA keeps no state of its own: every decision is read from and written to the SA, with
compare-and-set where two requests may race (challenge start, finalize, replacement). Statuses
that change with time (expiry, an order becoming ``ready``) are recomputed when read.

Imports: stdlib, ``ca_stub.contracts``, ``ca_stub.ra`` and ``letsencrypt.acme``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ca_stub import contracts
from ca_stub.contracts import (
    AccountRecord,
    AuthorizationRecord,
    CAError,
    CertificateAuthority,
    CertificateRecord,
    ChallengeRecord,
    NewAuthorization,
    OrderRecord,
    PolicyAuthority,
    Profile,
    StorageAuthority,
    TermsOfService,
    ValidationAuthority,
    ValidationReporter,
    ValidationResult,
    utcnow,
)
from ca_stub.ra._challenges import answer_fields, validation_request
from ca_stub.ra._orders import (
    as_utc,
    authorization_target,
    check_validity_window,
    new_challenge,
    normalise_identifiers,
    refreshed_status,
)
from ca_stub.ra.accounts import Accounts
from ca_stub.ra.issuance import Issuance
from letsencrypt.acme.ari import parse_certificate_id
from letsencrypt.acme.errors import MessageError
from letsencrypt.acme.messages import (
    AuthorizationStatus,
    ChallengeStatus,
    Identifier,
    OrderStatus,
    Problem,
)

__all__ = ["Recovery", "RegistrationAuthority"]

logger = logging.getLogger(__name__)

# A reused authorization must stay valid at least this long, so that the order can be finalized.
REUSE_MIN_REMAINING = datetime.timedelta(days=1)
_LIVE = (AuthorizationStatus.PENDING, AuthorizationStatus.VALID)
# What the orders list shows: RFC 8555 §7.1.2.1 says invalid orders SHOULD NOT be listed.
_LISTED = frozenset(set(OrderStatus) - {OrderStatus.INVALID, OrderStatus.UNKNOWN})


@dataclasses.dataclass(frozen=True, slots=True)
class Recovery:
    """What ``RegistrationAuthority.recover`` repaired after a crash."""

    orders_valid: int = 0  # processing orders whose certificate had been stored
    orders_ready: int = 0  # processing orders without a certificate: finalize may be retried
    challenges_resubmitted: int = 0  # processing challenges handed to the VA again
    authorizations_expired: int = 0
    orders_expired: int = 0


class RegistrationAuthority:
    """``RegistrationAuthority`` and ``ValidationReporter`` of the contracts (protocol-notes B.11)."""

    def __init__(
        self,
        storage: StorageAuthority,
        policy: PolicyAuthority,
        va: ValidationAuthority,
        ca: CertificateAuthority,
        *,
        terms: TermsOfService | None,
        eab_keys: Mapping[str, bytes] | None = None,
        eab_required: bool = False,
        authorization_reuse_percent: int = 100,
        order_lifetime: datetime.timedelta = datetime.timedelta(days=7),
        pending_authorization_lifetime: datetime.timedelta = datetime.timedelta(days=7),
        valid_authorization_lifetime: datetime.timedelta = datetime.timedelta(days=30),
        orders_per_page: int = 3,
        clock: Callable[[], datetime.datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        if orders_per_page < 1:
            raise ValueError("orders_per_page must be at least 1")
        self._storage = storage
        self._policy = policy
        self._va = va
        self._reuse_percent = authorization_reuse_percent
        self._order_lifetime = order_lifetime
        self._pending_lifetime = pending_authorization_lifetime
        self._valid_lifetime = valid_authorization_lifetime
        self._orders_per_page = orders_per_page
        self._clock = clock
        self._rng = rng if rng is not None else random.SystemRandom()
        self._accounts = Accounts(storage, policy, terms=terms, eab_keys=dict(eab_keys or {}),
                                  eab_required=eab_required)
        self._issuance = Issuance(storage, policy, ca, clock)

    # --- accounts (RFC 8555 §7.3): see ca_stub.ra.accounts ------------------------------------

    def new_account(
        self, jwk: Mapping[str, Any], contact: Sequence[str], terms_agreed: bool, only_return_existing: bool,
        eab: Mapping[str, Any] | None, new_account_url: str,
    ) -> tuple[AccountRecord, bool]:
        return self._accounts.new_account(jwk, contact, terms_agreed, only_return_existing, eab, new_account_url)

    def account_for_key(self, thumbprint: str) -> AccountRecord | None:
        return self._storage.account_by_thumbprint(thumbprint)

    def get_account(self, account_id: int) -> AccountRecord | None:
        return self._storage.get_account(account_id)

    def update_account(
        self, account: AccountRecord, contact: Sequence[str] | None, deactivate: bool, terms_agreed: bool | None,
    ) -> AccountRecord:
        return self._accounts.update_account(account, contact, deactivate, terms_agreed)

    def change_key(self, account: AccountRecord, new_jwk: Mapping[str, Any]) -> AccountRecord:
        return self._accounts.change_key(account, new_jwk)

    def check_terms(self, account: AccountRecord) -> None:
        self._accounts.check_terms(account)

    # --- orders (RFC 8555 §7.4) ------------------------------------------------------------------

    def new_order(
        self, account: AccountRecord, identifiers: Sequence[Identifier], *, profile: str | None,
        not_before: datetime.datetime | None, not_after: datetime.datetime | None, replaces: str | None,
    ) -> OrderRecord:
        """A new order with an authorization per identifier, reused or fresh (RFC 8555 §7.4, §7.1.3)."""
        now = self._clock()
        chosen = self._policy.profile(profile)
        wanted = normalise_identifiers(identifiers)
        self._policy.check_identifiers(wanted, chosen)
        check_validity_window(not_before, not_after, chosen, now, self._order_lifetime)
        if replaces is not None:
            self._check_replaces(account, wanted, replaces)
        reused, fresh = self._plan_authorizations(account, wanted, chosen, now)
        expiries = [now + self._order_lifetime, *(a.expires for a in reused), *(a.expires for a in fresh)]
        order = self._storage.add_order(
            account.id, wanted, profile=chosen.name, expires=min(expiries), not_before=not_before,
            not_after=not_after, replaces=replaces, reused_authorization_ids=[a.id for a in reused],
            new_authorizations=fresh,
        )
        if replaces is not None and not self._storage.mark_replaced(replaces, order.id):
            problem = Problem.acme("alreadyReplaced", f"certificate {replaces} was replaced meanwhile", 409)
            self._storage.set_order_status(order.id, OrderStatus.INVALID, error=problem)
            raise CAError("alreadyReplaced", problem.detail, status=409)
        logger.info("order %d for account %d: %s (%d authorizations reused)", order.id, account.id,
                    ", ".join(map(str, wanted)), len(reused))
        return self._refresh_order(order)

    def _check_replaces(self, account: AccountRecord, identifiers: Sequence[Identifier], ari_id: str) -> None:
        """RFC 9773 §5: the predecessor exists, is the account's, shares a name, is not yet replaced."""
        try:
            parse_certificate_id(ari_id)
        except MessageError as err:
            raise CAError("malformed", f"replaces: {err}") from err
        predecessor = self._storage.certificate_by_ari_id(ari_id)
        if predecessor is None:
            raise CAError("malformed", f"replaces: this CA issued no certificate {ari_id}")
        if predecessor.account_id != account.id:
            raise CAError("unauthorized", f"replaces: certificate {ari_id} belongs to another account", status=403)
        if not set(predecessor.identifiers) & set(identifiers):
            raise CAError("malformed", f"replaces: certificate {ari_id} shares no identifier with this order")
        if predecessor.replaced_by_order is not None:
            previous = self.get_order(predecessor.replaced_by_order)
            if previous is not None and previous.status != OrderStatus.INVALID:
                raise CAError("alreadyReplaced", f"certificate {ari_id} is already replaced by order {previous.id}",
                              status=409)

    def _reuse_allowed(self) -> bool:
        if self._reuse_percent >= 100:
            return True
        return self._reuse_percent > 0 and self._rng.random() * 100 < self._reuse_percent

    def _reusable(
        self, account: AccountRecord, target: Identifier, wildcard: bool, profile: Profile, now: datetime.datetime
    ) -> AuthorizationRecord | None:
        """A valid authorization of the account for ``target``, validated within the profile's reuse period."""
        found = self._storage.valid_authorization(account.id, target, wildcard, now, now + REUSE_MIN_REMAINING)
        if found is None:
            return None
        validated = [c.validated for c in found.challenges if c.status == ChallengeStatus.VALID and c.validated]
        if validated and max(as_utc(v) for v in validated) < now - profile.authorization_reuse:
            return None
        return found

    def _plan_authorizations(
        self, account: AccountRecord, identifiers: Sequence[Identifier], profile: Profile, now: datetime.datetime
    ) -> tuple[list[AuthorizationRecord], list[NewAuthorization]]:
        """Per identifier, a reusable valid authorization or a new pending one (RFC 8555 §7.1.4)."""
        reused: list[AuthorizationRecord] = []
        fresh: list[NewAuthorization] = []
        for identifier in identifiers:
            target, wildcard = authorization_target(identifier)
            found = self._reusable(account, target, wildcard, profile, now) if self._reuse_allowed() else None
            if found is not None:
                reused.append(found)
                continue
            types = self._policy.challenge_types(target, wildcard)
            if not types:
                raise CAError("unsupportedIdentifier", f"no challenge type can validate {identifier}",
                              subproblems=[Problem.acme("unsupportedIdentifier", "no challenge type offered",
                                                        identifier=identifier)])
            challenges = tuple(new_challenge(kind, self._rng) for kind in types)
            fresh.append(NewAuthorization(target, wildcard, now + self._pending_lifetime, challenges))
        return reused, fresh

    def get_order(self, order_id: int) -> OrderRecord | None:
        order = self._storage.get_order(order_id)
        return None if order is None else self._refresh_order(order)

    def _refresh_order(self, order: OrderRecord) -> OrderRecord:
        """Bring a pending or ready order up to date with its authorizations and its expiry (§7.1.6)."""
        if order.status not in (OrderStatus.PENDING, OrderStatus.READY):
            return order
        now = self._clock()
        authorizations = [self._expire(a, now) for a in self._storage.authorizations_of_order(order.id)]
        change = refreshed_status(order, authorizations, now)
        if change is None:
            return order
        status, error = change
        updated = self._storage.set_order_status(order.id, status, expect=order.status, error=error)
        if updated is None:  # another request moved it first
            return self._storage.get_order(order.id) or order
        return updated

    def orders_of(self, account: AccountRecord, page: int) -> tuple[list[int], bool]:
        """Page ``page`` (from 1) of the account's order ids, invalid ones left out, and whether more
        follow (RFC 8555 §7.1.2.1)."""
        if page < 1:
            raise CAError("malformed", f"page {page} does not exist; pages start at 1")
        size = self._orders_per_page
        return self._storage.orders_of(account.id, offset=(page - 1) * size, limit=size, statuses=_LISTED)

    # --- authorizations and challenges (RFC 8555 §7.5) ---------------------------------------

    def get_authorization(self, authorization_id: int) -> AuthorizationRecord | None:
        """The authorization, marked ``expired`` once past ``expires`` (RFC 8555 §7.1.6)."""
        authorization = self._storage.get_authorization(authorization_id)
        return None if authorization is None else self._expire(authorization, self._clock())

    def _expire(self, authorization: AuthorizationRecord, now: datetime.datetime) -> AuthorizationRecord:
        if authorization.status in _LIVE and as_utc(authorization.expires) <= now:
            return self._storage.set_authorization_status(authorization.id, AuthorizationStatus.EXPIRED)
        return authorization

    def _owned_authorization(self, account: AccountRecord, authorization_id: int) -> AuthorizationRecord:
        authorization = self.get_authorization(authorization_id)
        if authorization is None:
            raise CAError("malformed", f"no authorization {authorization_id}", status=404)
        if authorization.account_id != account.id:
            raise CAError("unauthorized", f"authorization {authorization_id} belongs to another account", status=403)
        return authorization

    def deactivate_authorization(self, account: AccountRecord, authorization_id: int) -> AuthorizationRecord:
        """A pending or valid authorization becomes ``deactivated`` (RFC 8555 §7.5.2)."""
        authorization = self._owned_authorization(account, authorization_id)
        if authorization.status not in (AuthorizationStatus.PENDING, AuthorizationStatus.VALID):
            raise CAError("malformed", f"authorization {authorization_id} is {authorization.status}; "
                                       "only a pending or valid one can be deactivated")
        return self._storage.set_authorization_status(authorization_id, AuthorizationStatus.DEACTIVATED)

    def get_challenge(self, account: AccountRecord, challenge_id: int) -> ChallengeRecord:
        challenge = self._storage.get_challenge(challenge_id)
        if challenge is None:
            raise CAError("malformed", f"no challenge {challenge_id}", status=404)
        self._owned_authorization(account, challenge.authorization_id)
        return challenge

    def answer_challenge(
        self, account: AccountRecord, challenge_id: int, payload: Mapping[str, Any]
    ) -> ChallengeRecord:
        """The client is ready (RFC 8555 §7.5.1): ``pending`` -> ``processing``, and the VA is asked.

        Idempotent: a challenge already processing or valid comes back unchanged.
        """
        challenge = self.get_challenge(account, challenge_id)
        authorization = self._owned_authorization(account, challenge.authorization_id)
        if challenge.status in (ChallengeStatus.PROCESSING, ChallengeStatus.VALID):
            return challenge
        if challenge.status != ChallengeStatus.PENDING or authorization.status != AuthorizationStatus.PENDING:
            raise CAError("malformed", f"challenge {challenge_id} is {challenge.status} and its authorization "
                                       f"{authorization.status}; only a pending challenge can be answered")
        path, s = answer_fields(challenge.type, payload)
        started = self._storage.start_challenge(challenge_id, path=path, s=s)
        if started is None:  # a concurrent answer won the compare-and-set
            return self._storage.get_challenge(challenge_id) or challenge
        self._submit(started, authorization, self._accounts.live(account))
        return started

    def _submit(self, challenge: ChallengeRecord, authorization: AuthorizationRecord, account: AccountRecord) -> None:
        """Hand the challenge to the VA; if that fails the challenge fails rather than stay processing."""
        try:
            self._va.submit(validation_request(challenge, authorization, account), self)
        except Exception as err:
            logger.exception("the VA refused challenge %d", challenge.id)
            problem = Problem.acme("serverInternal", f"validation could not be started: {err}", 500)
            self.validation_done(ValidationResult(challenge.id, authorization.id, False, problem))

    def validation_done(self, result: ValidationResult) -> None:
        """The VA's report (``ValidationReporter``): recorded, a validated authorization living
        ``valid_authorization_lifetime`` from now; orders follow when next read."""
        now = self._clock()
        authorization = self._storage.finish_challenge(result, now, expires=now + self._valid_lifetime)
        logger.info("challenge %d of authorization %d (%s): %s", result.challenge_id, result.authorization_id,
                    authorization.identifier, "valid" if result.valid else f"invalid: {result.error}")

    # --- certificates: see ca_stub.ra.issuance --------------------------------------------------

    def finalize(self, account: AccountRecord, order_id: int, csr_der: bytes) -> OrderRecord:
        order = self.get_order(order_id)
        if order is None:
            raise CAError("malformed", f"no order {order_id}", status=404)
        return self._issuance.finalize(account, order, csr_der)

    def get_certificate(self, serial: str) -> CertificateRecord | None:
        return self._storage.get_certificate(serial)

    def revoked_certificates(self, issuer_id: str) -> list[CertificateRecord]:
        return self._storage.revoked_certificates(issuer_id)

    def revoke(
        self, certificate_der: bytes, reason: int | None, *, account: AccountRecord | None,
        certificate_key_jwk: Mapping[str, Any] | None,
    ) -> None:
        self._issuance.revoke(certificate_der, reason, account=account, certificate_key_jwk=certificate_key_jwk)

    def renewal_info(self, ari_id: str) -> tuple[datetime.datetime, datetime.datetime]:
        return self._issuance.renewal_info(ari_id)

    # --- crash recovery -------------------------------------------------------------------------

    def recover(self) -> Recovery:
        """Repair what a crash left half done; call once at startup, before serving requests.

        An order left ``processing`` whose certificate was stored becomes ``valid`` (the certificate
        may have reached the client); without a certificate it goes back to ``ready``, so that the
        client's finalize can simply be retried: nothing was issued, and failing the order would
        make the client start over. Challenges left ``processing`` of still pending authorizations
        are handed to the VA again, since its work died with the process. Authorizations and
        orders that expired meanwhile are marked so (``StorageAuthority.expire_stale``).
        """
        orders_valid, orders_ready = self._recover_orders()
        resubmitted = self._recover_challenges()
        authorizations_expired, orders_expired = self._storage.expire_stale(self._clock())
        recovery = Recovery(orders_valid, orders_ready, resubmitted, authorizations_expired, orders_expired)
        if orders_valid or orders_ready or resubmitted:
            logger.warning("recovered after a crash: %s", recovery)
        return recovery

    def _recover_orders(self) -> tuple[int, int]:
        valid = ready = 0
        for order in self._storage.orders_in_status(OrderStatus.PROCESSING):
            certificate = self._storage.certificate_of_order(order.id)
            if certificate is not None:
                self._storage.set_order_status(order.id, OrderStatus.VALID, expect=OrderStatus.PROCESSING,
                                               certificate_serial=certificate.serial)
                valid += 1
            else:
                self._storage.set_order_status(order.id, OrderStatus.READY, expect=OrderStatus.PROCESSING)
                ready += 1
        return valid, ready

    def _recover_challenges(self) -> int:
        resubmitted = 0
        for challenge in self._storage.challenges_in_status(ChallengeStatus.PROCESSING):
            authorization = self._storage.get_authorization(challenge.authorization_id)
            if authorization is None or authorization.status != AuthorizationStatus.PENDING:
                continue
            account = self._storage.get_account(authorization.account_id)
            if account is not None:
                self._submit(challenge, authorization, account)
                resubmitted += 1
        return resubmitted


def _conformance(ra: RegistrationAuthority) -> tuple[contracts.RegistrationAuthority, ValidationReporter]:
    """Static check (mypy) that the class implements both contracts."""
    return ra, ra
