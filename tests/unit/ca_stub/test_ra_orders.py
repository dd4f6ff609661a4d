"""RA orders, authorizations and challenges: the RFC 8555 §7.1.6 state machines, reuse, expiry,
paging and ``replaces`` (RFC 9773 §5)."""

from __future__ import annotations

import datetime
import random
import re
from typing import Any

import pytest
from test_ra_harness import Harness, names, refused

from ca_stub.contracts import OrderRecord
from letsencrypt.acme.jws import AccountKey, b64decode
from letsencrypt.acme.messages import (
    AuthorizationStatus,
    ChallengeStatus,
    Identifier,
    OrderStatus,
    Problem,
)

B64URL_32 = re.compile(r"[A-Za-z0-9_-]{43}")


def _authorizations(harness: Harness, order: OrderRecord) -> list[Any]:
    return [harness.ra.get_authorization(i) for i in order.authorization_ids]


# --- new orders -----------------------------------------------------------------------------------


def test_new_order_normalises_identifiers_and_offers_challenges() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    order = harness.ra.new_order(
        account, [Identifier("dns", "WWW.Example.COM"), Identifier("dns", "www.example.com"),
                  Identifier("ip", "2001:DB8:0:0::1")],
        profile=None, not_before=None, not_after=None, replaces=None,
    )
    assert order.status == OrderStatus.PENDING and order.profile == "default"
    assert order.identifiers == (Identifier("dns", "www.example.com"), Identifier("ip", "2001:db8::1"))
    assert order.expires == harness.clock.now + datetime.timedelta(days=7)
    dns, ip = _authorizations(harness, order)
    assert dns.identifier == Identifier("dns", "www.example.com") and not dns.wildcard
    assert [c.type for c in dns.challenges] == ["http-01", "dns-01", "tls-alpn-01"]
    assert [c.type for c in ip.challenges] == ["http-01", "tls-alpn-01"]
    tokens = [c.token for a in (dns, ip) for c in a.challenges]
    assert all(B64URL_32.fullmatch(t) and len(b64decode(t)) == 32 for t in tokens)
    assert len(set(tokens)) == len(tokens)
    assert dns.status == AuthorizationStatus.PENDING
    assert dns.expires == harness.clock.now + datetime.timedelta(days=7)


def test_wildcard_is_authorized_through_its_base_name_with_dns01_only() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    order = harness.order(account, "*.Example.com", "example.com")
    wildcard, base = _authorizations(harness, order)
    assert (wildcard.identifier, wildcard.wildcard) == (Identifier("dns", "example.com"), True)
    assert [c.type for c in wildcard.challenges] == ["dns-01"]
    assert (base.identifier, base.wildcard) == (Identifier("dns", "example.com"), False)
    assert order.identifiers == names("*.example.com", "example.com")


def test_legacy_challenges_carry_fresh_r_and_nonce() -> None:
    harness = Harness.build(legacy=True)
    account, _ = harness.account()
    first = _authorizations(harness, harness.order(account, "a.example.com"))[0]
    second = _authorizations(harness, harness.order(account, "b.example.com"))[0]
    assert [c.type for c in first.challenges][-2:] == ["simpleHttps", "dvsni"]
    dvsnis = [next(c for c in a.challenges if c.type == "dvsni") for a in (first, second)]
    for dvsni in dvsnis:
        assert dvsni.r is not None and len(b64decode(dvsni.r)) == 32
        assert dvsni.nonce is not None and re.fullmatch(r"[0-9a-f]{32}", dvsni.nonce)
    assert dvsnis[0].nonce != dvsnis[1].nonce and dvsnis[0].r != dvsnis[1].r


@pytest.mark.parametrize(
    ("identifiers", "options", "problem_type"),
    [
        ([], {}, "malformed"),
        ([Identifier("ip", "300.1.2.3")], {}, "malformed"),
        ([Identifier("dns", "blocked.test")], {}, "rejectedIdentifier"),
        ([Identifier("email", "a@example.com")], {}, "unsupportedIdentifier"),
        ([Identifier("dns", "example.com")], {"profile": "nope"}, "invalidProfile"),
        ([Identifier("dns", "example.com")], {"not_after": "-1h"}, "malformed"),
        ([Identifier("dns", "example.com")], {"not_before": "+2d", "not_after": "+1d"}, "malformed"),
        ([Identifier("dns", "example.com")], {"not_after": "+91d"}, "malformed"),
        ([Identifier("dns", "example.com")], {"profile": "shortlived", "not_after": "+7d"}, "malformed"),
        ([Identifier("dns", "example.com")], {"not_before": "-2d"}, "malformed"),
        ([Identifier("dns", "example.com")], {"not_before": "+30d"}, "malformed"),
        ([Identifier("dns", "example.com")], {"replaces": "not-an-id"}, "malformed"),
        ([Identifier("dns", "example.com")], {"replaces": "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"}, "malformed"),
    ],
)
def test_new_order_refusals_store_nothing(identifiers: list[Identifier], options: dict[str, Any],
                                          problem_type: str) -> None:
    harness = Harness.build()
    account, _ = harness.account()
    now = harness.clock.now
    for field in ("not_before", "not_after"):
        if field in options:
            sign, amount, unit = options[field][0], int(options[field][1:-1]), options[field][-1]
            delta = datetime.timedelta(days=amount) if unit == "d" else datetime.timedelta(hours=amount)
            options[field] = now + delta if sign == "+" else now - delta
    arguments = {"profile": None, "not_before": None, "not_after": None, "replaces": None, **options}
    before = harness.storage.snapshot()
    refused(lambda: harness.ra.new_order(account, identifiers, **arguments), problem_type)
    assert harness.storage.snapshot() == before


def test_validity_window_within_the_profile_is_kept() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    start = harness.clock.now + datetime.timedelta(hours=1)
    order = harness.order(account, "example.com", profile="shortlived", not_before=start,
                          not_after=start + datetime.timedelta(hours=100))
    assert (order.profile, order.not_before, order.not_after) == (
        "shortlived", start, start + datetime.timedelta(hours=100))


# --- challenges and authorizations ------------------------------------------------------------


def test_challenge_goes_pending_processing_valid_and_the_order_ready() -> None:
    harness = Harness.build(va_mode="manual")
    account, key = harness.account()
    order = harness.order(account, "example.com")
    authorization = _authorizations(harness, order)[0]
    http = authorization.challenges[0]
    started = harness.ra.answer_challenge(account, http.id, {})
    assert started.status == ChallengeStatus.PROCESSING
    request = harness.va.waiting[0][0]
    assert request.key_authorization == f"{http.token}.{key.thumbprint}"
    assert (request.identifier, request.type, request.account_jwk) == (Identifier.dns("example.com"), "http-01",
                                                                        key.jwk)
    again = harness.ra.answer_challenge(account, http.id, {})  # re-POST while processing: unchanged
    assert again.status == ChallengeStatus.PROCESSING and len(harness.va.submitted) == 1
    assert harness.ra.get_order(order.id).status == OrderStatus.PENDING  # type: ignore[union-attr]
    harness.va.complete()
    challenge = harness.ra.get_challenge(account, http.id)
    assert challenge.status == ChallengeStatus.VALID and challenge.validated == harness.clock.now
    authorization = harness.ra.get_authorization(authorization.id)
    assert authorization is not None and authorization.status == AuthorizationStatus.VALID
    assert authorization.expires == harness.clock.now + datetime.timedelta(days=30)
    assert harness.ra.get_order(order.id).status == OrderStatus.READY  # type: ignore[union-attr]
    assert harness.ra.answer_challenge(account, http.id, {}).status == ChallengeStatus.VALID
    other = authorization.challenges[1]  # the authorization is valid: its other challenges cannot start
    refused(lambda: harness.ra.answer_challenge(account, other.id, {}), "malformed")


def test_failed_challenge_makes_the_order_invalid_with_subproblems() -> None:
    harness = Harness.build()
    harness.va.outcome = lambda request: (
        Problem.acme("incorrectResponse", f"fetched nothing from {request.identifier}", 403)
        if request.identifier.value == "bad.example.com" else None
    )
    account, _ = harness.account()
    order = harness.validate(account, harness.order(account, "good.example.com", "*.bad.example.com",
                                                    "bad.example.com"))
    assert order.status == OrderStatus.INVALID
    assert order.error is not None and order.error.short_type == "incorrectResponse"
    failed = {sub.identifier: sub for sub in order.error.subproblems}
    assert set(failed) == set(names("*.bad.example.com", "bad.example.com"))
    assert all(sub.short_type == "incorrectResponse" and "fetched nothing" in sub.detail for sub in failed.values())
    good, wildcard, bad = _authorizations(harness, order)
    assert (good.status, wildcard.status, bad.status) == (AuthorizationStatus.VALID, AuthorizationStatus.INVALID,
                                                          AuthorizationStatus.INVALID)
    challenge = next(c for c in bad.challenges if c.status == ChallengeStatus.INVALID)
    refused(lambda: harness.ra.answer_challenge(account, challenge.id, {}), "malformed")
    assert harness.ra.get_order(order.id) == order  # invalid is final


def test_mixed_failures_are_compound() -> None:
    harness = Harness.build()
    harness.va.outcome = lambda request: Problem.acme(
        "dns" if request.identifier.value.startswith("a.") else "connection", "no", 400)
    account, _ = harness.account()
    order = harness.validate(account, harness.order(account, "a.example.com", "b.example.com"))
    assert order.error is not None and order.error.short_type == "compound"
    assert {sub.short_type for sub in order.error.subproblems} == {"dns", "connection"}


def test_challenge_of_another_account_or_unknown() -> None:
    harness = Harness.build()
    owner, _ = harness.account()
    stranger, _ = harness.account()
    challenge = _authorizations(harness, harness.order(owner, "example.com"))[0].challenges[0]
    before = harness.storage.snapshot()
    refused(lambda: harness.ra.answer_challenge(stranger, challenge.id, {}), "unauthorized", 403)
    refused(lambda: harness.ra.get_challenge(stranger, challenge.id), "unauthorized", 403)
    refused(lambda: harness.ra.answer_challenge(owner, 999_999, {}), "malformed", 404)
    refused(lambda: harness.ra.deactivate_authorization(stranger, challenge.authorization_id), "unauthorized")
    assert harness.storage.snapshot() == before and harness.va.submitted == []


def test_key_authorization_uses_the_current_account_key() -> None:
    harness = Harness.build(va_mode="manual")
    account, _ = harness.account()
    challenge = _authorizations(harness, harness.order(account, "example.com"))[0].challenges[0]
    new_key = AccountKey.generate("ec384")
    rolled = harness.ra.change_key(account, new_key.jwk)
    harness.ra.answer_challenge(account, challenge.id, {})  # the WFE's record predates the rollover
    request = harness.va.waiting[0][0]
    assert request.key_authorization == f"{challenge.token}.{new_key.thumbprint}"
    assert request.account_jwk == rolled.jwk


def test_legacy_answers_are_checked_and_passed_to_the_va() -> None:
    harness = Harness.build(va_mode="manual", legacy=True)
    account, _ = harness.account()
    authorization = _authorizations(harness, harness.order(account, "example.com"))[0]
    simple = next(c for c in authorization.challenges if c.type == "simpleHttps")
    dvsni = next(c for c in authorization.challenges if c.type == "dvsni")
    for payload in ({}, {"path": "../etc/passwd"}, {"path": "a" * 26}, {"path": 5}, {"type": "dvsni", "path": "x"}):
        refused(lambda payload=payload: harness.ra.answer_challenge(account, simple.id, payload), "malformed")
    for payload in ({}, {"s": "short"}, {"s": "A" * 43 + "="}, {"s": 1}):
        refused(lambda payload=payload: harness.ra.answer_challenge(account, dvsni.id, payload), "malformed")
    assert harness.va.submitted == []
    started = harness.ra.answer_challenge(account, simple.id, {"type": "simpleHttps", "path": "abc_DEF-123"})
    assert started.path == "abc_DEF-123" and harness.va.submitted[-1].path == "abc_DEF-123"
    s = "B" * 43
    started = harness.ra.answer_challenge(account, dvsni.id, {"s": s})
    request = harness.va.submitted[-1]
    assert started.s == s and (request.s, request.r, request.nonce) == (s, dvsni.r, dvsni.nonce)


def test_modern_answers_ignore_extra_members() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    challenge = _authorizations(harness, harness.order(account, "example.com"))[0].challenges[0]
    harness.ra.answer_challenge(account, challenge.id, {"keyAuthorization": "whatever"})
    assert harness.ra.get_challenge(account, challenge.id).status == ChallengeStatus.VALID


def test_a_va_that_cannot_start_fails_the_challenge_instead_of_leaving_it_processing() -> None:
    harness = Harness.build()
    harness.va.refuse = True
    account, _ = harness.account()
    order = harness.order(account, "example.com")
    challenge = _authorizations(harness, order)[0].challenges[0]
    harness.ra.answer_challenge(account, challenge.id, {})
    failed = harness.ra.get_challenge(account, challenge.id)
    assert failed.status == ChallengeStatus.INVALID and failed.error is not None
    assert failed.error.short_type == "serverInternal"
    assert harness.ra.get_order(order.id).status == OrderStatus.INVALID  # type: ignore[union-attr]


def test_deactivating_an_authorization_invalidates_its_order() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    order = harness.order(account, "example.com")
    authorization_id = order.authorization_ids[0]
    deactivated = harness.ra.deactivate_authorization(account, authorization_id)
    assert deactivated.status == AuthorizationStatus.DEACTIVATED
    refused(lambda: harness.ra.deactivate_authorization(account, authorization_id), "malformed")
    refused(lambda: harness.ra.deactivate_authorization(account, 999_999), "malformed", 404)
    refreshed = harness.ra.get_order(order.id)
    assert refreshed is not None and refreshed.status == OrderStatus.INVALID
    assert refreshed.error is not None and "deactivated" in refreshed.error.subproblems[0].detail


# --- expiry -------------------------------------------------------------------------------------------


def test_pending_authorizations_and_orders_expire() -> None:
    harness = Harness.build(va_mode="manual", order_lifetime=datetime.timedelta(days=2),
                            pending_authorization_lifetime=datetime.timedelta(days=1))
    account, _ = harness.account()
    order = harness.order(account, "example.com")
    assert order.expires == harness.clock.now + datetime.timedelta(days=1)  # no later than its authorizations
    challenge = _authorizations(harness, order)[0].challenges[0]
    harness.later(days=1, seconds=1)
    assert harness.ra.get_authorization(order.authorization_ids[0]).status == AuthorizationStatus.EXPIRED  # type: ignore[union-attr]
    refused(lambda: harness.ra.answer_challenge(account, challenge.id, {}), "malformed")
    expired = harness.ra.get_order(order.id)
    assert expired is not None and expired.status == OrderStatus.INVALID and expired.error is not None


def test_ready_order_expires_too() -> None:
    harness = Harness.build(order_lifetime=datetime.timedelta(hours=1))
    account, _ = harness.account()
    order = harness.validate(account, harness.order(account, "example.com"))
    assert order.status == OrderStatus.READY
    harness.later(hours=2)
    expired = harness.ra.get_order(order.id)
    assert expired is not None and expired.status == OrderStatus.INVALID
    assert expired.error is not None and "expired" in expired.error.detail


# --- authorization reuse ----------------------------------------------------------------------------


def test_valid_authorizations_are_reused() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    first = harness.validate(account, harness.order(account, "example.com"))
    second = harness.order(account, "example.com")
    assert second.status == OrderStatus.READY and second.authorization_ids == first.authorization_ids
    assert harness.storage.counts()["authorizations"] == 1


def test_reuse_off_creates_new_authorizations() -> None:
    harness = Harness.build(authorization_reuse_percent=0)
    account, _ = harness.account()
    first = harness.validate(account, harness.order(account, "example.com"))
    second = harness.order(account, "example.com")
    assert second.status == OrderStatus.PENDING and second.authorization_ids != first.authorization_ids


def test_partial_reuse_follows_the_random_source() -> None:
    harness = Harness.build(authorization_reuse_percent=50, rng=random.Random(7))
    account, _ = harness.account()
    harness.validate(account, harness.order(account, "example.com"))
    reused = [harness.order(account, "example.com").status == OrderStatus.READY for _ in range(40)]
    assert 5 < sum(reused) < 35


def test_reuse_is_per_account_per_wildcard_flag_and_within_the_profile_period() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    other, _ = harness.account()
    harness.validate(account, harness.order(account, "example.com"))
    assert harness.order(other, "example.com").status == OrderStatus.PENDING
    assert harness.order(account, "*.example.com").status == OrderStatus.PENDING
    harness.later(hours=8)  # past shortlived's 7 hours of reuse, within default's 30 days
    assert harness.order(account, "example.com", profile="shortlived").status == OrderStatus.PENDING
    assert harness.order(account, "example.com").status == OrderStatus.READY
    harness.later(days=29)  # valid 30 days: less than the one day a reused authorization must have left
    assert harness.order(account, "example.com").status == OrderStatus.PENDING


# --- the orders list (RFC 8555 §7.1.2.1) --------------------------------------------------------------


def test_orders_are_listed_in_pages_without_invalid_ones() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    other, _ = harness.account()
    ids = [harness.order(account, f"n{i}.example.com").id for i in range(7)]
    harness.order(other, "other.example.com")
    assert harness.ra.orders_of(account, 1) == (ids[0:3], True)
    assert harness.ra.orders_of(account, 2) == (ids[3:6], True)
    assert harness.ra.orders_of(account, 3) == (ids[6:7], False)
    assert harness.ra.orders_of(account, 4) == ([], False)
    refused(lambda: harness.ra.orders_of(account, 0), "malformed")
    harness.ra.deactivate_authorization(account, harness.storage.orders[ids[0]].authorization_ids[0])
    harness.ra.get_order(ids[0])
    assert harness.ra.orders_of(account, 1) == (ids[1:4], True)


# --- replaces (RFC 9773 §5) -------------------------------------------------------------------------


def test_replaces_marks_the_predecessor() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    _, certificate, _ = harness.issue(account, "example.com", "www.example.com")
    renewal = harness.order(account, "example.com", replaces=certificate.ari_id)
    assert renewal.replaces == certificate.ari_id and renewal.status == OrderStatus.READY
    assert harness.storage.certificate_by_ari_id(certificate.ari_id).replaced_by_order == renewal.id  # type: ignore[union-attr]
    error = refused(lambda: harness.order(account, "example.com", replaces=certificate.ari_id),
                     "alreadyReplaced", 409)
    assert str(renewal.id) in error.detail


def test_replaces_refusals() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    stranger, _ = harness.account()
    _, certificate, _ = harness.issue(account, "example.com")
    before = harness.storage.snapshot()
    refused(lambda: harness.order(stranger, "example.com", replaces=certificate.ari_id), "unauthorized", 403)
    refused(lambda: harness.order(account, "other.example.com", replaces=certificate.ari_id), "malformed")
    assert harness.storage.snapshot() == before


def _only_authorization(harness: Harness, account: Any) -> int:
    (authorization_id,) = {a.id for a in harness.storage.authorizations.values() if a.account_id == account.id}
    return authorization_id


def test_an_invalid_replacement_frees_the_certificate() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    _, certificate, _ = harness.issue(account, "example.com")
    harness.ra.deactivate_authorization(account, _only_authorization(harness, account))  # no reuse: pending
    failed = harness.order(account, "example.com", replaces=certificate.ari_id)
    harness.ra.deactivate_authorization(account, failed.authorization_ids[0])
    assert harness.ra.get_order(failed.id).status == OrderStatus.INVALID  # type: ignore[union-attr]
    retry = harness.order(account, "example.com", replaces=certificate.ari_id)
    assert harness.storage.certificate_by_ari_id(certificate.ari_id).replaced_by_order == retry.id  # type: ignore[union-attr]


def test_replacement_race_is_won_once() -> None:
    """Both renewals pass the RA's checks; the SA's compare-and-set refuses the second: its order fails."""
    harness = Harness.build()
    account, _ = harness.account()
    _, certificate, _ = harness.issue(account, "example.com")
    harness.storage.replacement_taken = True  # another request marks it between the check and the order
    refused(lambda: harness.order(account, "example.com", replaces=certificate.ari_id), "alreadyReplaced", 409)
    loser = max(harness.storage.orders.values(), key=lambda o: o.id)
    assert loser.replaces == certificate.ari_id and loser.status == OrderStatus.INVALID
    assert loser.error is not None and loser.error.short_type == "alreadyReplaced"
