"""The account half of the RA (RFC 8555 §7.3): creation with contacts, terms of service and
external account binding, updates, deactivation and key rollover.

Every check runs before the SA is written, so a refused request leaves storage as it was.

Imports: stdlib, ``ca_stub.contracts``, ``ca_stub.ra`` and ``letsencrypt.acme``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ca_stub.contracts import AccountRecord, CAError, PolicyAuthority, StorageAuthority, TermsOfService
from ca_stub.ra._accounts import check_contacts, thumbprint_of, verify_eab
from letsencrypt.acme.messages import AccountStatus

__all__ = ["Accounts"]

logger = logging.getLogger(__name__)


class Accounts:
    """Account requests over the SA and the PA."""

    def __init__(
        self, storage: StorageAuthority, policy: PolicyAuthority, *, terms: TermsOfService | None,
        eab_keys: Mapping[str, bytes], eab_required: bool,
    ) -> None:
        self._storage = storage
        self._policy = policy
        self._terms = terms
        self._eab_keys = eab_keys
        self._eab_required = eab_required

    def new_account(
        self, jwk: Mapping[str, Any], contact: Sequence[str], terms_agreed: bool, only_return_existing: bool,
        eab: Mapping[str, Any] | None, new_account_url: str,
    ) -> tuple[AccountRecord, bool]:
        """The account of ``jwk`` and whether it was created now (RFC 8555 §7.3, §7.3.1, §7.3.4).

        An existing key returns its account (``unauthorized`` once deactivated, §7.3.6);
        ``onlyReturnExisting`` without one is ``accountDoesNotExist``. When the CA has terms, they
        must be agreed to (``malformed``, as Boulder answers). An EAB is verified whenever given and
        required when ``eab_required`` (``externalAccountRequired``).
        """
        thumbprint = thumbprint_of(jwk)
        existing = self._storage.account_by_thumbprint(thumbprint)
        if existing is not None:
            if existing.status != AccountStatus.VALID:
                raise CAError("unauthorized", f"the account of this key is {existing.status}", status=401)
            return existing, False
        if only_return_existing:
            raise CAError("accountDoesNotExist", "no account exists for this key (onlyReturnExisting)")
        self._policy.allowed_account_key(jwk)
        contacts = check_contacts(contact)
        terms_version = None
        if self._terms is not None:
            if not terms_agreed:
                raise CAError("malformed", f"must agree to the terms of service at {self._terms.url}")
            terms_version = self._terms.current_version()
        eab_kid = None
        if eab is not None:
            eab_kid = verify_eab(eab, account_thumbprint=thumbprint, keys=self._eab_keys,
                                 new_account_url=new_account_url)
        elif self._eab_required:
            raise CAError("externalAccountRequired", "this CA requires an external account binding (RFC 8555 §7.3.4)")
        try:
            account = self._storage.add_account(dict(jwk), thumbprint, contacts, terms_version, eab_kid)
        except CAError as err:  # a concurrent newAccount with this key won (the SA's 409)
            existing = self._storage.account_by_thumbprint(thumbprint) if err.status == 409 else None
            if existing is None:
                raise
            return existing, False
        logger.info("account %d created (key %s)", account.id, thumbprint)
        return account, True

    def live(self, account: AccountRecord) -> AccountRecord:
        """The stored account, which must still be valid (RFC 8555 §7.3.6: deactivation is final)."""
        current = self._storage.get_account(account.id)
        if current is None:
            raise CAError("accountDoesNotExist", f"account {account.id} does not exist")
        if current.status != AccountStatus.VALID:
            raise CAError("unauthorized", f"account {account.id} is {current.status}", status=401)
        return current

    def update_account(
        self, account: AccountRecord, contact: Sequence[str] | None, deactivate: bool, terms_agreed: bool | None,
    ) -> AccountRecord:
        """Contacts, agreement to the current terms, deactivation (RFC 8555 §7.3.2, §7.3.3, §7.3.6).

        ``termsOfServiceAgreed: false`` is ignored: agreement is not withdrawn that way.
        """
        current = self.live(account)
        contacts = check_contacts(contact) if contact is not None else None
        agreed = self._terms.current_version() if terms_agreed and self._terms is not None else None
        status = AccountStatus.DEACTIVATED if deactivate else None
        if contacts is None and agreed is None and status is None:
            return current
        updated = self._storage.update_account(current.id, contact=contacts, status=status, terms_agreed=agreed)
        if deactivate:
            logger.info("account %d deactivated", current.id)
        return updated

    def change_key(self, account: AccountRecord, new_jwk: Mapping[str, Any]) -> AccountRecord:
        """Key rollover (RFC 8555 §7.3.5).

        A key that already has an account (this one included) is ``malformed`` with status 409 and
        ``account_id`` naming that account, for the WFE's ``Location`` header.
        """
        current = self.live(account)
        thumbprint = thumbprint_of(new_jwk)
        holder = self._storage.account_by_thumbprint(thumbprint)
        if holder is not None:
            raise CAError("malformed", f"the new key already belongs to account {holder.id}", status=409,
                          account_id=holder.id)
        self._policy.allowed_account_key(new_jwk)
        updated = self._storage.update_account(current.id, jwk=dict(new_jwk), thumbprint=thumbprint)
        logger.info("account %d rolled over to key %s", current.id, thumbprint)
        return updated

    def check_terms(self, account: AccountRecord) -> None:
        """``userActionRequired`` (403) with a ``terms-of-service`` link and ``instance`` until the
        account has agreed to the current version of the terms (RFC 8555 §7.3.3)."""
        if self._terms is None:
            return
        if account.terms_agreed != self._terms.current_version():
            url = self._terms.url
            raise CAError(
                "userActionRequired",
                f"the terms of service have changed; review {url} and agree with termsOfServiceAgreed on the account",
                status=403, links=((url, "terms-of-service"),), instance=url,
            )
