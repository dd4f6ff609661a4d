"""A RegistrationAuthority over the fakes, with shortcuts the RA tests share (no tests here).

``Harness`` builds the RA with a ``FakeStorage``, ``FakePolicy``, ``FakeVA``, ``FakeCA`` and a
``FakeClock``; ``account``, ``order``, ``validate`` and ``issue`` walk the state machines the way a
client would, through the RA's public methods only.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

import pytest
from fakes import FakeCA, FakeClock, FakePolicy, FakeStorage, FakeVA

from ca_stub.contracts import AccountRecord, CAError, CertificateRecord, OrderRecord, TermsOfService
from ca_stub.ra import RegistrationAuthority
from letsencrypt.acme.crypto import CertPrivateKey, generate_private_key, make_csr
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import AuthorizationStatus, Identifier, OrderStatus

NEW_ACCOUNT_URL = "https://ca.test/acme/new-account"
TERMS_URL = "https://ca.test/terms"
EMAIL = "mailto:admin@example.com"


@dataclasses.dataclass
class Harness:
    ra: RegistrationAuthority
    storage: FakeStorage
    policy: FakePolicy
    va: FakeVA
    ca: FakeCA
    clock: FakeClock

    @classmethod
    def build(cls, *, va_mode: str = "sync", legacy: bool = False, terms: TermsOfService | None = None,
              **options: Any) -> Harness:
        clock = FakeClock()
        storage, policy, va, ca = FakeStorage(clock), FakePolicy(legacy=legacy), FakeVA(va_mode), FakeCA(clock)
        ra = RegistrationAuthority(storage, policy, va, ca, terms=terms, clock=clock, **options)
        return cls(ra, storage, policy, va, ca, clock)

    def account(self, key: AccountKey | None = None) -> tuple[AccountRecord, AccountKey]:
        key = key or AccountKey.generate("ec256")
        account, created = self.ra.new_account(key.jwk, [EMAIL], True, False, None, NEW_ACCOUNT_URL)
        assert created
        return account, key

    def order(self, account: AccountRecord, *names: str, **options: Any) -> OrderRecord:
        options.setdefault("profile", None)
        options.setdefault("not_before", None)
        options.setdefault("not_after", None)
        options.setdefault("replaces", None)
        return self.ra.new_order(account, [Identifier.parse(name) for name in names], **options)

    def validate(self, account: AccountRecord, order: OrderRecord, challenge_type: str = "http-01") -> OrderRecord:
        """Answer one challenge of every pending authorization; the order as read afterwards."""
        for authorization_id in order.authorization_ids:
            authorization = self.ra.get_authorization(authorization_id)
            assert authorization is not None
            if authorization.status != AuthorizationStatus.PENDING:
                continue
            offered = {c.type: c for c in authorization.challenges}
            chosen = offered.get(challenge_type) or offered["dns-01"]
            self.ra.answer_challenge(account, chosen.id, {})
        self.va.complete()
        current = self.ra.get_order(order.id)
        assert current is not None
        return current

    def issue(
        self, account: AccountRecord, *names: str, key: CertPrivateKey | None = None
    ) -> tuple[OrderRecord, CertificateRecord, CertPrivateKey]:
        """Order, validate and finalize; the valid order, its certificate and the certificate key."""
        order = self.validate(account, self.order(account, *names))
        assert order.status == OrderStatus.READY, order
        key = key or generate_private_key("ec256")
        done = self.ra.finalize(account, order.id, csr(key, order.identifiers))
        assert done.status == OrderStatus.VALID and done.certificate_serial is not None
        certificate = self.ra.get_certificate(done.certificate_serial)
        assert certificate is not None
        return done, certificate, key

    def later(self, **delta: float) -> None:
        self.clock.advance(datetime.timedelta(**delta))


def csr(key: CertPrivateKey, identifiers: Sequence[Identifier]) -> bytes:
    return make_csr(key, identifiers)


def names(*values: str) -> tuple[Identifier, ...]:
    return tuple(Identifier.parse(value) for value in values)


def refused(call: Any, problem_type: str, status: int | None = None) -> CAError:
    """What ``call()`` raised, checked to be a CAError of ``problem_type`` (and ``status`` if given)."""
    with pytest.raises(CAError) as caught:
        call()
    assert caught.value.problem_type == problem_type, caught.value
    if status is not None:
        assert caught.value.status == status
    return caught.value
