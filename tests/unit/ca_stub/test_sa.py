"""SQLiteStorage: every method of the StorageAuthority contract, on a real SQLite file."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ca_stub.contracts import (
    AccountRecord,
    CAError,
    CertificateRecord,
    NewAuthorization,
    NewChallenge,
    OrderRecord,
    ValidationResult,
)
from ca_stub.sa import SQLiteStorage, StorageClosedError
from letsencrypt.acme.messages import (
    AccountStatus,
    AuthorizationStatus,
    ChallengeStatus,
    Identifier,
    OrderStatus,
    Problem,
)

NOW = datetime.datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
JWK = {"kty": "EC", "crv": "P-256", "x": "abc", "y": "def"}


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "ca.sqlite") as opened:
        yield opened


def _account(storage: SQLiteStorage, thumbprint: str = "thumb-1") -> AccountRecord:
    return storage.add_account(JWK, thumbprint, ["mailto:a@example.com"], "v1", None)


def _new_authz(name: str, *, wildcard: bool = False, expires: datetime.datetime = NOW + DAY) -> NewAuthorization:
    challenges = (NewChallenge("dns-01", f"tok-dns-{name}"),) if wildcard else (
        NewChallenge("http-01", f"tok-http-{name}"),
        NewChallenge("dvsni", f"tok-dvsni-{name}", r="rrr", nonce="nnn"),
    )
    return NewAuthorization(Identifier.dns(name), wildcard, expires, challenges)


def _order(
    storage: SQLiteStorage, account_id: int, names: Sequence[str], *, reuse: Sequence[int] = (),
    new: Sequence[NewAuthorization] | None = None, replaces: str | None = None,
) -> OrderRecord:
    if new is None:
        new = [_new_authz(n.removeprefix("*."), wildcard=n.startswith("*.")) for n in names]
    return storage.add_order(
        account_id, [Identifier.dns(n) for n in names], profile="classic", expires=NOW + DAY,
        not_before=None, not_after=None, replaces=replaces, reused_authorization_ids=reuse, new_authorizations=new,
    )


def _certificate(order: OrderRecord, serial: str = "0a1b", **changes: object) -> CertificateRecord:
    record = CertificateRecord(
        serial=serial, account_id=order.account_id, order_id=order.id, der=b"\x30\x03\x02\x01\x01",
        chains=("-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n", "alt"),
        identifiers=order.identifiers, not_before=NOW, not_after=NOW + 90 * DAY, issuer_id="r1",
        ari_id=f"aki.{serial}",
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]  # test-only overrides


# --- accounts ------------------------------------------------------------------------------------


def test_add_and_read_account(storage: SQLiteStorage) -> None:
    account = storage.add_account(JWK, "thumb-1", ["mailto:a@example.com"], "v1", "kid-1")
    assert account.id > 0
    assert account.jwk == JWK
    assert account.status is AccountStatus.VALID
    assert account.contact == ("mailto:a@example.com",)
    assert (account.terms_agreed, account.eab_kid) == ("v1", "kid-1")
    assert account.created.tzinfo is datetime.UTC
    assert storage.get_account(account.id) == account
    assert storage.account_by_thumbprint("thumb-1") == account
    assert storage.get_account(account.id + 1) is None
    assert storage.account_by_thumbprint("other") is None


def test_second_account_for_a_key_is_a_conflict_naming_the_holder(storage: SQLiteStorage) -> None:
    first = _account(storage)
    with pytest.raises(CAError) as caught:
        _account(storage)
    assert (caught.value.problem_type, caught.value.status, caught.value.account_id) == ("malformed", 409, first.id)
    assert storage.counts()["accounts"] == 1


def test_update_account_changes_only_given_fields(storage: SQLiteStorage) -> None:
    account = _account(storage)
    updated = storage.update_account(account.id, contact=[])
    assert updated.contact == ()
    assert (updated.terms_agreed, updated.status, updated.jwk) == ("v1", AccountStatus.VALID, JWK)
    updated = storage.update_account(account.id, terms_agreed="v2", status=AccountStatus.DEACTIVATED)
    assert (updated.terms_agreed, updated.status) == ("v2", AccountStatus.DEACTIVATED)
    assert storage.update_account(account.id) == updated
    assert storage.get_account(account.id) == updated


def test_key_change(storage: SQLiteStorage) -> None:
    account = _account(storage)
    other = _account(storage, "thumb-2")
    new_jwk = {"kty": "OKP", "crv": "Ed25519", "x": "xyz"}
    changed = storage.update_account(account.id, jwk=new_jwk, thumbprint="thumb-3")
    assert (changed.jwk, changed.thumbprint) == (new_jwk, "thumb-3")
    assert storage.account_by_thumbprint("thumb-1") is None
    assert storage.account_by_thumbprint("thumb-3") == changed
    with pytest.raises(CAError) as caught:  # RFC 8555 §7.3.5: the new key belongs to another account
        storage.update_account(account.id, jwk=JWK, thumbprint="thumb-2")
    assert (caught.value.status, caught.value.account_id) == (409, other.id)
    assert storage.get_account(account.id) == changed
    with pytest.raises(ValueError, match="together"):
        storage.update_account(account.id, thumbprint="thumb-4")


def test_update_unknown_account_is_404(storage: SQLiteStorage) -> None:
    with pytest.raises(CAError) as caught:
        storage.update_account(42, contact=["mailto:x@example.com"])
    assert (caught.value.problem_type, caught.value.status) == ("malformed", 404)


# --- orders --------------------------------------------------------------------------------------


def test_add_order_creates_authorizations_and_challenges(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com", "*.b.example.com"], replaces="aki.serial")
    assert order.status is OrderStatus.PENDING
    assert order.identifiers == (Identifier.dns("a.example.com"), Identifier.dns("*.b.example.com"))
    assert (order.profile, order.expires, order.replaces) == ("classic", NOW + DAY, "aki.serial")
    assert (order.error, order.certificate_serial, order.not_before) == (None, None, None)
    assert storage.get_order(order.id) == order
    first, second = storage.authorizations_of_order(order.id)
    assert (first.id, second.id) == order.authorization_ids
    assert (first.identifier, first.wildcard) == (Identifier.dns("a.example.com"), False)
    assert (second.identifier, second.wildcard) == (Identifier.dns("b.example.com"), True)
    assert first.status is AuthorizationStatus.PENDING and first.expires == NOW + DAY
    assert [c.type for c in first.challenges] == ["http-01", "dvsni"]
    assert [c.type for c in second.challenges] == ["dns-01"]
    dvsni = first.challenges[1]
    assert (dvsni.status, dvsni.token, dvsni.r, dvsni.nonce) == (ChallengeStatus.PENDING, "tok-dvsni-a.example.com",
                                                                 "rrr", "nnn")
    assert storage.get_authorization(first.id) == first
    assert storage.get_challenge(dvsni.id) == dvsni
    assert storage.counts() == {"accounts": 1, "orders": 1, "authorizations": 2, "order_authorizations": 2,
                                "challenges": 3, "certificates": 0}


def test_order_keeps_validity_window(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = storage.add_order(
        account.id, [Identifier.ip("192.0.2.1")], profile="shortlived", expires=NOW + HOUR, not_before=NOW,
        not_after=NOW + 6 * DAY, replaces=None, reused_authorization_ids=[],
        new_authorizations=[NewAuthorization(Identifier.ip("192.0.2.1"), False, NOW + HOUR, ())],
    )
    assert (order.not_before, order.not_after, order.profile) == (NOW, NOW + 6 * DAY, "shortlived")
    assert storage.get_order(order.id + 1) is None
    assert storage.authorizations_of_order(order.id + 1) == []


def _validate(storage: SQLiteStorage, authorization_id: int, *, valid: bool = True) -> None:
    authz = storage.get_authorization(authorization_id)
    assert authz is not None
    challenge = authz.challenges[0]
    assert storage.start_challenge(challenge.id, path=None, s=None) is not None
    storage.finish_challenge(ValidationResult(challenge.id, authz.id, valid), NOW)


def test_reused_authorizations_follow_the_identifiers(storage: SQLiteStorage) -> None:
    account = _account(storage)
    old = _order(storage, account.id, ["b.example.com"])
    _validate(storage, old.authorization_ids[0])
    order = _order(storage, account.id, ["a.example.com", "b.example.com"], reuse=[old.authorization_ids[0]],
                   new=[_new_authz("a.example.com")])
    assert order.authorization_ids[1] == old.authorization_ids[0]
    assert order.status is OrderStatus.PENDING
    only_reused = _order(storage, account.id, ["b.example.com"], reuse=old.authorization_ids, new=[])
    assert only_reused.status is OrderStatus.READY  # RFC 8555 §7.1.6: every authorization valid
    assert only_reused.authorization_ids == old.authorization_ids


def test_reusing_anothers_authorization_stores_nothing(storage: SQLiteStorage) -> None:
    mine, theirs = _account(storage), _account(storage, "thumb-2")
    their_order = _order(storage, theirs.id, ["b.example.com"])
    before = storage.counts()
    with pytest.raises(ValueError, match="not one of account"):
        _order(storage, mine.id, ["a.example.com", "b.example.com"], reuse=their_order.authorization_ids,
               new=[_new_authz("a.example.com")])
    with pytest.raises(ValueError, match="not one of account"):
        _order(storage, mine.id, ["b.example.com"], reuse=[9999], new=[])
    assert storage.counts() == before


def test_orders_of_pages(storage: SQLiteStorage) -> None:
    account, other = _account(storage), _account(storage, "thumb-2")
    ids = [_order(storage, account.id, [f"{i}.example.com"]).id for i in range(5)]
    _order(storage, other.id, ["x.example.com"])
    assert storage.orders_of(account.id, offset=0, limit=2) == (ids[:2], True)
    assert storage.orders_of(account.id, offset=2, limit=2) == (ids[2:4], True)
    assert storage.orders_of(account.id, offset=4, limit=2) == (ids[4:], False)
    assert storage.orders_of(account.id, offset=0, limit=5) == (ids, False)
    storage.set_order_status(ids[0], OrderStatus.INVALID)
    assert storage.orders_of(account.id, offset=0, limit=9, statuses={OrderStatus.PENDING}) == (ids[1:], False)
    assert storage.orders_of(account.id, offset=0, limit=9, statuses=()) == ([], False)


def test_set_order_status_and_compare_and_set(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    ready = storage.set_order_status(order.id, OrderStatus.READY)
    assert ready is not None and ready.status is OrderStatus.READY
    processing = storage.set_order_status(order.id, OrderStatus.PROCESSING, expect=OrderStatus.READY)
    assert processing is not None and processing.status is OrderStatus.PROCESSING
    assert storage.set_order_status(order.id, OrderStatus.PROCESSING, expect=OrderStatus.READY) is None
    problem = Problem.acme("badCSR", "no", 400, identifier=Identifier.dns("a.example.com"))
    invalid = storage.set_order_status(order.id, OrderStatus.INVALID, expect=OrderStatus.PROCESSING, error=problem)
    assert invalid is not None and invalid.error == problem
    assert storage.get_order(order.id) == invalid
    with pytest.raises(CAError) as caught:
        storage.set_order_status(order.id + 1, OrderStatus.READY)
    assert caught.value.status == 404


def test_orders_in_status(storage: SQLiteStorage) -> None:
    account = _account(storage)
    first, second, third = (_order(storage, account.id, [f"{i}.example.com"]) for i in range(3))
    storage.set_order_status(first.id, OrderStatus.PROCESSING)
    storage.set_order_status(third.id, OrderStatus.PROCESSING)
    assert [o.id for o in storage.orders_in_status(OrderStatus.PROCESSING)] == [first.id, third.id]
    assert storage.orders_in_status(OrderStatus.PENDING) == [storage.get_order(second.id)]


# --- authorizations and challenges ---------------------------------------------------------------


def test_start_challenge_is_compare_and_set(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    authz = storage.get_authorization(order.authorization_ids[0])
    assert authz is not None
    dvsni = authz.challenges[1]
    started = storage.start_challenge(dvsni.id, path=None, s="client-s")
    assert started is not None and (started.status, started.s, started.path) == (ChallengeStatus.PROCESSING,
                                                                                  "client-s", None)
    assert storage.start_challenge(dvsni.id, path="/p", s=None) is None
    assert storage.get_challenge(dvsni.id) == started
    assert storage.challenges_in_status(ChallengeStatus.PROCESSING) == [started]
    with pytest.raises(CAError):
        storage.start_challenge(9999, path=None, s=None)
    assert storage.get_challenge(9999) is None


def test_finish_challenge_valid(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    authz = storage.get_authorization(order.authorization_ids[0])
    assert authz is not None
    challenge = authz.challenges[0]
    storage.start_challenge(challenge.id, path=None, s=None)
    done = storage.finish_challenge(ValidationResult(challenge.id, authz.id, True), NOW, expires=NOW + 30 * DAY)
    assert (done.status, done.expires) == (AuthorizationStatus.VALID, NOW + 30 * DAY)
    finished = done.challenges[0]
    assert (finished.status, finished.validated, finished.error) == (ChallengeStatus.VALID, NOW, None)
    assert done.challenges[1].status is ChallengeStatus.PENDING
    assert storage.get_authorization(authz.id) == done
    again = storage.finish_challenge(ValidationResult(challenge.id, authz.id, False, Problem.acme("x", "y")), NOW)
    assert again == done  # a second report changes nothing


def test_finish_challenge_invalid(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    authz_id = order.authorization_ids[0]
    authz = storage.get_authorization(authz_id)
    assert authz is not None
    problem = Problem.acme("unauthorized", "fetched http://a.example.com/... and found 404", 403)
    storage.start_challenge(authz.challenges[0].id, path=None, s=None)
    done = storage.finish_challenge(ValidationResult(authz.challenges[0].id, authz_id, False, problem), NOW,
                                    expires=NOW + 30 * DAY)
    assert (done.status, done.expires) == (AuthorizationStatus.INVALID, NOW + DAY)
    assert (done.challenges[0].status, done.challenges[0].error, done.challenges[0].validated) == (
        ChallengeStatus.INVALID, problem, None)


def test_finish_challenge_leaves_deactivated_authorization(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    authz = storage.get_authorization(order.authorization_ids[0])
    assert authz is not None
    storage.start_challenge(authz.challenges[0].id, path=None, s=None)
    deactivated = storage.set_authorization_status(authz.id, AuthorizationStatus.DEACTIVATED)
    assert deactivated.status is AuthorizationStatus.DEACTIVATED
    done = storage.finish_challenge(ValidationResult(authz.challenges[0].id, authz.id, True), NOW)
    assert done.status is AuthorizationStatus.DEACTIVATED
    with pytest.raises(CAError):
        storage.set_authorization_status(9999, AuthorizationStatus.DEACTIVATED)


def test_valid_authorization_for_reuse(storage: SQLiteStorage) -> None:
    account, other = _account(storage), _account(storage, "thumb-2")
    order = _order(storage, account.id, ["a.example.com", "*.a.example.com"])
    plain, wildcard = order.authorization_ids
    name = Identifier.dns("a.example.com")
    assert storage.valid_authorization(account.id, name, False, NOW, NOW) is None  # still pending
    _validate(storage, plain)
    found = storage.valid_authorization(account.id, name, False, NOW, NOW + HOUR)
    assert found is not None and found.id == plain
    assert storage.valid_authorization(account.id, name, True, NOW, NOW) is None  # wildcard differs
    assert storage.valid_authorization(other.id, name, False, NOW, NOW) is None
    assert storage.valid_authorization(account.id, name, False, NOW, NOW + 2 * DAY) is None  # expires too soon
    assert storage.valid_authorization(account.id, name, False, NOW + 2 * DAY, NOW) is None  # expired
    _validate(storage, wildcard)
    found = storage.valid_authorization(account.id, name, True, NOW, NOW)
    assert found is not None and found.id == wildcard
    storage.set_authorization_status(plain, AuthorizationStatus.DEACTIVATED)
    assert storage.valid_authorization(account.id, name, False, NOW, NOW) is None


def test_expire_stale(storage: SQLiteStorage) -> None:
    account = _account(storage)
    soon = _order(storage, account.id, ["a.example.com"], new=[_new_authz("a.example.com", expires=NOW + HOUR)])
    late = _order(storage, account.id, ["b.example.com"], new=[_new_authz("b.example.com", expires=NOW + 2 * DAY)])
    processing = _order(storage, account.id, ["c.example.com"])
    storage.set_order_status(processing.id, OrderStatus.PROCESSING)
    assert storage.expire_stale(NOW) == (0, 0)
    assert storage.expire_stale(NOW + HOUR) == (1, 0)
    assert storage.expire_stale(NOW + DAY) == (1, 2)  # orders expire at NOW + DAY; c's authorization too
    assert storage.get_order(soon.id).status is OrderStatus.INVALID  # type: ignore[union-attr]
    assert storage.get_order(late.id).status is OrderStatus.INVALID  # type: ignore[union-attr]
    assert storage.get_order(processing.id).status is OrderStatus.PROCESSING  # type: ignore[union-attr]
    late_authz = storage.get_authorization(late.authorization_ids[0])
    assert late_authz is not None and late_authz.status is AuthorizationStatus.PENDING


# --- certificates --------------------------------------------------------------------------------


def test_add_and_read_certificate(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    record = _certificate(order)
    storage.add_certificate(record)
    assert storage.get_certificate("0a1b") == record
    assert storage.get_certificate("0A1B") == record
    assert storage.certificate_by_ari_id("aki.0a1b") == record
    assert storage.certificate_of_order(order.id) == record
    assert storage.get_certificate("ffff") is None
    assert storage.certificate_by_ari_id("nope") is None
    assert storage.certificate_of_order(order.id + 1) is None
    stored = storage.get_certificate("0a1b")
    assert stored is not None and stored.not_after.tzinfo is datetime.UTC


def test_finish_order_stores_certificate_with_the_order(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    assert storage.finish_order(order.id, _certificate(order)) is None  # not processing: nothing stored
    assert storage.get_certificate("0a1b") is None
    storage.set_order_status(order.id, OrderStatus.PROCESSING)
    done = storage.finish_order(order.id, _certificate(order, serial="0A1B", ari_id="aki.0a1b"))
    assert done is not None and (done.status, done.certificate_serial) == (OrderStatus.VALID, "0a1b")
    assert storage.certificate_of_order(order.id) == _certificate(order)
    assert storage.finish_order(order.id, _certificate(order, serial="0c")) is None
    with pytest.raises(CAError):
        storage.finish_order(9999, _certificate(order, serial="0d"))


def test_set_order_status_with_certificate(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    storage.add_certificate(_certificate(order))
    done = storage.set_order_status(order.id, OrderStatus.VALID, certificate_serial="0a1b")
    assert done is not None and done.certificate_serial == "0a1b"


def test_revocation(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    storage.add_certificate(_certificate(order, serial="01"))
    storage.add_certificate(_certificate(order, serial="02"))
    storage.add_certificate(_certificate(order, serial="03", issuer_id="e1"))
    assert storage.revoked_certificates("r1") == []
    assert storage.revoke_certificate("02", 1, NOW) is True
    assert storage.revoke_certificate("02", 4, NOW + HOUR) is False  # the first reason stands
    assert storage.revoke_certificate("03", 0, NOW) is True
    revoked = storage.revoked_certificates("r1")
    assert [(c.serial, c.revoked_at, c.revocation_reason) for c in revoked] == [("02", NOW, 1)]
    assert [c.serial for c in storage.revoked_certificates("e1")] == ["03"]
    with pytest.raises(CAError):
        storage.revoke_certificate("ff", 0, NOW)


def test_mark_replaced(storage: SQLiteStorage) -> None:
    account = _account(storage)
    old = _order(storage, account.id, ["a.example.com"])
    storage.add_certificate(_certificate(old))
    first = _order(storage, account.id, ["a.example.com"], replaces="aki.0a1b")
    second = _order(storage, account.id, ["a.example.com"], replaces="aki.0a1b")
    assert storage.mark_replaced("aki.0a1b", first.id) is True
    assert storage.mark_replaced("aki.0a1b", first.id) is True  # idempotent for the same order
    assert storage.mark_replaced("aki.0a1b", second.id) is False
    storage.set_order_status(first.id, OrderStatus.INVALID)  # a failed renewal frees the certificate
    assert storage.mark_replaced("aki.0a1b", second.id) is True
    certificate = storage.certificate_by_ari_id("aki.0a1b")
    assert certificate is not None and certificate.replaced_by_order == second.id
    with pytest.raises(CAError):
        storage.mark_replaced("aki.unknown", second.id)


# --- records and lifecycle -----------------------------------------------------------------------


def test_times_are_aware_utc_and_naive_ones_refused(storage: SQLiteStorage) -> None:
    account = _account(storage)
    order = _order(storage, account.id, ["a.example.com"])
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    storage.add_certificate(_certificate(order, not_before=NOW.astimezone(plus_two)))
    stored = storage.get_certificate("0a1b")
    assert stored is not None and stored.not_before == NOW and stored.not_before.tzinfo is datetime.UTC
    with pytest.raises(ValueError, match="naive"):
        storage.revoke_certificate("0a1b", 0, datetime.datetime(2030, 1, 1))


def test_closed_storage_refuses_use(tmp_path: Path) -> None:
    storage = SQLiteStorage(str(tmp_path / "ca.sqlite"))
    assert storage.path == tmp_path / "ca.sqlite"
    storage.close()
    with pytest.raises(StorageClosedError):
        storage.get_account(1)


def test_public_names() -> None:
    import ca_stub.sa

    assert sorted(ca_stub.sa.__all__) == sorted(
        ["BUSY_TIMEOUT", "MIGRATIONS", "SQLiteStorage", "SchemaVersionError", "StorageClosedError"]
    )
    assert all(hasattr(ca_stub.sa, name) for name in ca_stub.sa.__all__)
