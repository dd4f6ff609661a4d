"""In-memory fakes of ca_stub's component contracts, for testing one component without the others.

- ``FakeStorage``: the ``StorageAuthority`` in dictionaries, one lock around each method (the
  SQLite SA's transactions), compare-and-set where the contract says so.
- ``FakePolicy``: profiles ``default`` (90 days) and ``shortlived`` (160 hours); ``*.blocked.test``
  and ``blocked.test`` refused; wildcards get only dns-01, IP addresses no dns-01; RSA >= 2048 and
  P-256/P-384 keys.
- ``FakeVA``: reports at once (``mode="sync"``) or when the test calls ``complete`` (``"manual"``);
  ``outcome`` decides valid or not.
- ``FakeCA``: signs with a throwaway ECDSA issuer made with cryptography; can be told to fail or
  to wait on an event (finalize races).
- ``FakeClock``: the time, moved by the test.

Each carries a static check that it implements its Protocol, so a contract change breaks here.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import itertools
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca_stub import contracts
from ca_stub.contracts import (
    AccountRecord,
    AuthorizationRecord,
    CAError,
    CertificateRecord,
    ChallengeRecord,
    IssuedCertificate,
    NewAuthorization,
    OrderRecord,
    Profile,
    ValidationReporter,
    ValidationRequest,
    ValidationResult,
)
from letsencrypt.acme.errors import JWSError
from letsencrypt.acme.jws import public_key_from_jwk
from letsencrypt.acme.messages import (
    AccountStatus,
    AuthorizationStatus,
    ChallengeStatus,
    Identifier,
    OrderStatus,
    Problem,
)

START = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime.datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, delta: datetime.timedelta) -> None:
        self.now += delta


def _not_found(kind: str, key: object) -> CAError:
    return CAError("malformed", f"no {kind} {key}", status=404)


# --- storage ----------------------------------------------------------------------------------


class FakeStorage:
    """``StorageAuthority`` in memory."""

    def __init__(self, clock: Callable[[], datetime.datetime] | None = None) -> None:
        self._clock = clock or FakeClock()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.accounts: dict[int, AccountRecord] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.authorizations: dict[int, AuthorizationRecord] = {}
        self.certificates: dict[str, CertificateRecord] = {}
        self.replacement_taken = False  # mark_replaced loses every race (set by a test)

    def snapshot(self) -> tuple[dict[int, AccountRecord], dict[int, OrderRecord],
                                dict[int, AuthorizationRecord], dict[str, CertificateRecord]]:
        """Everything stored (the records are immutable), to show a refusal changed nothing."""
        with self._lock:
            return dict(self.accounts), dict(self.orders), dict(self.authorizations), dict(self.certificates)

    # accounts

    def add_account(
        self, jwk: Mapping[str, Any], thumbprint: str, contact: Sequence[str], terms_agreed: str | None,
        eab_kid: str | None,
    ) -> AccountRecord:
        with self._lock:
            self._check_key_free(thumbprint)
            record = AccountRecord(next(self._ids), dict(jwk), thumbprint, AccountStatus.VALID, tuple(contact),
                                   terms_agreed, self._clock(), eab_kid)
            self.accounts[record.id] = record
            return record

    def _check_key_free(self, thumbprint: str) -> None:
        holder = next((a for a in self.accounts.values() if a.thumbprint == thumbprint), None)
        if holder is not None:
            raise CAError("malformed", f"key in use by account {holder.id}", status=409, account_id=holder.id)

    def get_account(self, account_id: int) -> AccountRecord | None:
        return self.accounts.get(account_id)

    def account_by_thumbprint(self, thumbprint: str) -> AccountRecord | None:
        return next((a for a in self.accounts.values() if a.thumbprint == thumbprint), None)

    def update_account(
        self, account_id: int, *, contact: Sequence[str] | None = None, status: AccountStatus | None = None,
        terms_agreed: str | None = None, jwk: Mapping[str, Any] | None = None, thumbprint: str | None = None,
    ) -> AccountRecord:
        with self._lock:
            record = self.accounts.get(account_id)
            if record is None:
                raise _not_found("account", account_id)
            if thumbprint is not None and thumbprint != record.thumbprint:
                self._check_key_free(thumbprint)
            changes: dict[str, Any] = {"contact": None if contact is None else tuple(contact), "status": status,
                                       "terms_agreed": terms_agreed, "jwk": jwk, "thumbprint": thumbprint}
            record = dataclasses.replace(record, **{k: v for k, v in changes.items() if v is not None})
            self.accounts[account_id] = record
            return record

    # orders

    def add_order(
        self, account_id: int, identifiers: Sequence[Identifier], *, profile: str, expires: datetime.datetime,
        not_before: datetime.datetime | None, not_after: datetime.datetime | None, replaces: str | None,
        reused_authorization_ids: Sequence[int], new_authorizations: Sequence[NewAuthorization],
    ) -> OrderRecord:
        with self._lock:
            for reused in reused_authorization_ids:
                if self.authorizations[reused].account_id != account_id:
                    raise ValueError("reused authorization of another account")
            ids = list(reused_authorization_ids) + [self._add_authorization(account_id, n) for n in new_authorizations]
            ready = bool(ids) and all(self.authorizations[i].status == AuthorizationStatus.VALID for i in ids)
            order = OrderRecord(
                next(self._ids), account_id, OrderStatus.READY if ready else OrderStatus.PENDING, tuple(identifiers),
                tuple(ids), expires, self._clock(), profile, not_before, not_after, replaces=replaces,
            )
            self.orders[order.id] = order
            return order

    def _add_authorization(self, account_id: int, new: NewAuthorization) -> int:
        authorization_id = next(self._ids)
        challenges = tuple(
            ChallengeRecord(next(self._ids), authorization_id, c.type, ChallengeStatus.PENDING, c.token,
                            r=c.r, nonce=c.nonce)
            for c in new.challenges
        )
        self.authorizations[authorization_id] = AuthorizationRecord(
            authorization_id, account_id, new.identifier, AuthorizationStatus.PENDING, new.expires, new.wildcard,
            challenges,
        )
        return authorization_id

    def get_order(self, order_id: int) -> OrderRecord | None:
        return self.orders.get(order_id)

    def orders_of(
        self, account_id: int, *, offset: int, limit: int, statuses: Collection[OrderStatus] | None = None
    ) -> tuple[list[int], bool]:
        ids = sorted(o.id for o in self.orders.values()
                     if o.account_id == account_id and (statuses is None or o.status in statuses))
        return ids[offset:offset + limit], offset + limit < len(ids)

    def orders_in_status(self, status: OrderStatus) -> list[OrderRecord]:
        return sorted((o for o in self.orders.values() if o.status == status), key=lambda o: o.id)

    def certificate_of_order(self, order_id: int) -> CertificateRecord | None:
        return next((c for c in self.certificates.values() if c.order_id == order_id), None)

    def authorizations_of_order(self, order_id: int) -> list[AuthorizationRecord]:
        order = self.orders.get(order_id)
        return [] if order is None else [self.authorizations[i] for i in order.authorization_ids]

    def finish_order(self, order_id: int, certificate: CertificateRecord) -> OrderRecord | None:
        with self._lock:
            order = self.orders.get(order_id)
            if order is None:
                raise _not_found("order", order_id)
            if order.status != OrderStatus.PROCESSING:
                return None
            self.certificates[certificate.serial] = certificate
            order = dataclasses.replace(order, status=OrderStatus.VALID, certificate_serial=certificate.serial)
            self.orders[order_id] = order
            return order

    def expire_stale(self, now: datetime.datetime) -> tuple[int, int]:
        with self._lock:
            stale = [a for a in self.authorizations.values()
                     if a.status in (AuthorizationStatus.PENDING, AuthorizationStatus.VALID) and a.expires <= now]
            for authorization in stale:
                self.authorizations[authorization.id] = dataclasses.replace(
                    authorization, status=AuthorizationStatus.EXPIRED)
            orders = [o for o in self.orders.values()
                      if o.status in (OrderStatus.PENDING, OrderStatus.READY) and o.expires <= now]
            for order in orders:
                self.orders[order.id] = dataclasses.replace(order, status=OrderStatus.INVALID)
            return len(stale), len(orders)

    def set_order_status(
        self, order_id: int, status: OrderStatus, *, expect: OrderStatus | None = None,
        error: Problem | None = None, certificate_serial: str | None = None,
    ) -> OrderRecord | None:
        with self._lock:
            order = self.orders.get(order_id)
            if order is None:
                raise _not_found("order", order_id)
            if expect is not None and order.status != expect:
                return None
            order = dataclasses.replace(order, status=status, error=error or order.error,
                                        certificate_serial=certificate_serial or order.certificate_serial)
            self.orders[order_id] = order
            return order

    # authorizations and challenges

    def get_authorization(self, authorization_id: int) -> AuthorizationRecord | None:
        return self.authorizations.get(authorization_id)

    def valid_authorization(
        self, account_id: int, identifier: Identifier, wildcard: bool, now: datetime.datetime,
        min_expiry: datetime.datetime,
    ) -> AuthorizationRecord | None:
        found = [a for a in self.authorizations.values()
                 if a.account_id == account_id and a.identifier == identifier and a.wildcard == wildcard
                 and a.status == AuthorizationStatus.VALID and a.expires > max(now, min_expiry)]
        return max(found, key=lambda a: (a.expires, a.id), default=None)

    def set_authorization_status(self, authorization_id: int, status: AuthorizationStatus) -> AuthorizationRecord:
        with self._lock:
            authorization = self.authorizations.get(authorization_id)
            if authorization is None:
                raise _not_found("authorization", authorization_id)
            authorization = dataclasses.replace(authorization, status=status)
            self.authorizations[authorization_id] = authorization
            return authorization

    def _challenge(self, challenge_id: int) -> tuple[AuthorizationRecord, int] | None:
        for authorization in self.authorizations.values():
            for index, challenge in enumerate(authorization.challenges):
                if challenge.id == challenge_id:
                    return authorization, index
        return None

    def _put_challenge(self, authorization: AuthorizationRecord, index: int, challenge: ChallengeRecord,
                       **changes: Any) -> AuthorizationRecord:
        challenges = list(authorization.challenges)
        challenges[index] = challenge
        authorization = dataclasses.replace(authorization, challenges=tuple(challenges), **changes)
        self.authorizations[authorization.id] = authorization
        return authorization

    def get_challenge(self, challenge_id: int) -> ChallengeRecord | None:
        found = self._challenge(challenge_id)
        return None if found is None else found[0].challenges[found[1]]

    def challenges_in_status(self, status: ChallengeStatus) -> list[ChallengeRecord]:
        return sorted((c for a in self.authorizations.values() for c in a.challenges if c.status == status),
                      key=lambda c: c.id)

    def start_challenge(self, challenge_id: int, *, path: str | None, s: str | None) -> ChallengeRecord | None:
        with self._lock:
            found = self._challenge(challenge_id)
            if found is None:
                raise _not_found("challenge", challenge_id)
            authorization, index = found
            challenge = authorization.challenges[index]
            if challenge.status != ChallengeStatus.PENDING:
                return None
            challenge = dataclasses.replace(challenge, status=ChallengeStatus.PROCESSING,
                                            path=path or challenge.path, s=s or challenge.s)
            self._put_challenge(authorization, index, challenge)
            return challenge

    def finish_challenge(
        self, result: ValidationResult, now: datetime.datetime, *, expires: datetime.datetime | None = None
    ) -> AuthorizationRecord:
        with self._lock:
            found = self._challenge(result.challenge_id)
            if found is None:
                raise _not_found("challenge", result.challenge_id)
            authorization, index = found
            challenge = authorization.challenges[index]
            if challenge.status not in (ChallengeStatus.PENDING, ChallengeStatus.PROCESSING):
                return authorization
            status = ChallengeStatus.VALID if result.valid else ChallengeStatus.INVALID
            challenge = dataclasses.replace(challenge, status=status, validated=now if result.valid else None,
                                            error=None if result.valid else result.error)
            changes: dict[str, Any] = {}
            if authorization.status == AuthorizationStatus.PENDING:
                changes["status"] = AuthorizationStatus.VALID if result.valid else AuthorizationStatus.INVALID
                if result.valid and expires is not None:
                    changes["expires"] = expires
            return self._put_challenge(authorization, index, challenge, **changes)

    # certificates

    def add_certificate(self, record: CertificateRecord) -> None:
        with self._lock:
            self.certificates[record.serial] = record

    def get_certificate(self, serial: str) -> CertificateRecord | None:
        return self.certificates.get(serial.lower())

    def certificate_by_ari_id(self, ari_id: str) -> CertificateRecord | None:
        return next((c for c in self.certificates.values() if c.ari_id == ari_id), None)

    def revoke_certificate(self, serial: str, reason: int, when: datetime.datetime) -> bool:
        with self._lock:
            record = self.certificates.get(serial)
            if record is None:
                raise _not_found("certificate", serial)
            if record.revoked_at is not None:
                return False
            self.certificates[serial] = dataclasses.replace(record, revoked_at=when, revocation_reason=reason)
            return True

    def revoked_certificates(self, issuer_id: str) -> list[CertificateRecord]:
        return [c for c in self.certificates.values() if c.issuer_id == issuer_id and c.revoked_at is not None]

    def mark_replaced(self, ari_id: str, order_id: int) -> bool:
        with self._lock:
            record = self.certificate_by_ari_id(ari_id)
            if record is None:
                raise _not_found("certificate", ari_id)
            previous = record.replaced_by_order
            if self.replacement_taken:
                return False
            if previous not in (None, order_id) and self.orders[previous].status != OrderStatus.INVALID:
                return False
            self.certificates[record.serial] = dataclasses.replace(record, replaced_by_order=order_id)
            return True

    def counts(self) -> dict[str, int]:
        return {"accounts": len(self.accounts), "orders": len(self.orders),
                "authorizations": len(self.authorizations), "certificates": len(self.certificates)}

    def close(self) -> None:
        pass


# --- policy -----------------------------------------------------------------------------------

DEFAULT_PROFILE = Profile("default", "90 days", datetime.timedelta(days=90), datetime.timedelta(days=30))
SHORTLIVED_PROFILE = Profile("shortlived", "160 hours", datetime.timedelta(hours=160), datetime.timedelta(hours=7),
                             common_name=False)


class FakePolicy:
    """``PolicyAuthority`` with two profiles and a one-name block list."""

    BLOCKED = "blocked.test"

    def __init__(self, *, legacy: bool = False) -> None:
        self.legacy = legacy

    def check_identifiers(self, identifiers: Sequence[Identifier], profile: Profile) -> None:
        bad = []
        for identifier in identifiers:
            if identifier.type not in profile.identifier_types:
                bad.append(Problem.acme("unsupportedIdentifier", f"type {identifier.type}", identifier=identifier))
            elif identifier.value.removeprefix("*.") == self.BLOCKED:
                bad.append(Problem.acme("rejectedIdentifier", "blocked", identifier=identifier))
        if bad:
            raise CAError(bad[0].short_type, "identifiers refused", subproblems=bad)

    def challenge_types(self, identifier: Identifier, wildcard: bool) -> tuple[str, ...]:
        if wildcard:
            return ("dns-01",)
        if identifier.type == "ip":
            return ("http-01", "tls-alpn-01")
        legacy = ("simpleHttps", "dvsni") if self.legacy else ()
        return ("http-01", "dns-01", "tls-alpn-01", *legacy)

    def profiles(self) -> Mapping[str, Profile]:
        return {DEFAULT_PROFILE.name: DEFAULT_PROFILE, SHORTLIVED_PROFILE.name: SHORTLIVED_PROFILE}

    def profile(self, name: str | None) -> Profile:
        if name is None:
            return DEFAULT_PROFILE
        if name not in self.profiles():
            raise CAError("invalidProfile", f"no profile {name!r}")
        return self.profiles()[name]

    def allowed_key(self, public_key: Any) -> None:
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048:
            return
        if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in ("secp256r1", "secp384r1"):
            return
        raise CAError("badCSR", f"key {type(public_key).__name__} not allowed")

    def allowed_account_key(self, jwk: Mapping[str, Any]) -> None:
        try:
            key = public_key_from_jwk(jwk)
        except JWSError as err:
            raise CAError("badPublicKey", str(err)) from err
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
            raise CAError("badPublicKey", f"RSA key of {key.key_size} bits")


# --- validation -------------------------------------------------------------------------------


class FakeVA:
    """``ValidationAuthority`` that validates nothing: ``outcome(request)`` is the error, ``None`` for valid."""

    def __init__(self, mode: str = "sync", outcome: Callable[[ValidationRequest], Problem | None] | None = None,
                 *, refuse: bool = False) -> None:
        self.mode = mode
        self.outcome = outcome or (lambda request: None)
        self.refuse = refuse
        self.submitted: list[ValidationRequest] = []
        self.waiting: list[tuple[ValidationRequest, ValidationReporter]] = []

    def submit(self, request: ValidationRequest, reporter: ValidationReporter) -> None:
        if self.refuse:
            raise RuntimeError("validation pool is shut down")
        self.submitted.append(request)
        if self.mode == "sync":
            reporter.validation_done(self._result(request))
        else:
            self.waiting.append((request, reporter))

    def _result(self, request: ValidationRequest) -> ValidationResult:
        error = self.outcome(request)
        return ValidationResult(request.challenge_id, request.authorization_id, error is None, error)

    def complete(self) -> int:
        """Report every waiting validation; how many there were."""
        waiting, self.waiting = self.waiting, []
        for request, reporter in waiting:
            reporter.validation_done(self._result(request))
        return len(waiting)

    def close(self) -> None:
        pass


# --- certificate authority -------------------------------------------------------------------


def _issuer() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Issuer")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - datetime.timedelta(days=365)).not_valid_after(START + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _san(identifier: Identifier) -> x509.GeneralName:
    if identifier.type == "ip":
        return x509.IPAddress(ipaddress.ip_address(identifier.value))
    return x509.DNSName(identifier.value)


class FakeCA:
    """``CertificateAuthority`` signing leaves with a throwaway issuer; ``fail`` makes ``issue`` raise it,
    ``hold`` makes ``issue`` wait for the event (up to 10 s) first."""

    issuer_id = "fake"

    def __init__(self, clock: Callable[[], datetime.datetime] | None = None) -> None:
        self._clock = clock or FakeClock()
        self._key, self.issuer = _issuer()
        self.fail: Exception | None = None
        self.hold: threading.Event | None = None
        self.issued = 0

    def issue(
        self, csr_der: bytes, identifiers: Sequence[Identifier], profile: Profile,
        not_before: datetime.datetime | None, not_after: datetime.datetime | None,
    ) -> IssuedCertificate:
        if self.hold is not None:
            self.hold.wait(10)
        if self.fail is not None:
            raise self.fail
        csr = x509.load_der_x509_csr(csr_der)
        start = not_before or self._clock()
        end = not_after or start + profile.validity
        serial = x509.random_serial_number()
        certificate = (
            x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.issuer.subject)
            .public_key(csr.public_key()).serial_number(serial).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([_san(i) for i in identifiers]), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.issued += 1
        return IssuedCertificate(format(serial, "x"), certificate.public_bytes(serialization.Encoding.DER),
                                 (self.issuer_pem(),), self.issuer_id, start, end)

    def issuer_pem(self) -> str:
        return self.issuer.public_bytes(serialization.Encoding.PEM).decode()

    def roots_pem(self) -> tuple[str, ...]:
        return (self.issuer_pem(),)

    def intermediates_pem(self) -> tuple[str, ...]:
        return ()

    def ocsp_response(self, request_der: bytes, status_of: Callable[[str], CertificateRecord | None]) -> bytes:
        raise NotImplementedError("FakeCA has no OCSP responder")

    def crl(self, issuer_id: str, revoked: Sequence[CertificateRecord]) -> bytes:
        raise NotImplementedError("FakeCA makes no CRL")

    def issuer_ids(self) -> tuple[str, ...]:
        return (self.issuer_id,)


def _conformance(
    storage: FakeStorage, policy: FakePolicy, va: FakeVA, ca: FakeCA
) -> tuple[contracts.StorageAuthority, contracts.PolicyAuthority, contracts.ValidationAuthority,
           contracts.CertificateAuthority]:
    """Static check (mypy) that each fake implements its contract."""
    return storage, policy, va, ca
