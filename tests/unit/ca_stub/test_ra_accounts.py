"""RA accounts: creation, contacts, terms of service, deactivation, key rollover, EAB (RFC 8555 §7.3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes import FakeCA, FakePolicy, FakeStorage, FakeVA
from test_ra_harness import EMAIL, NEW_ACCOUNT_URL, TERMS_URL, Harness, refused

from ca_stub.contracts import AccountRecord, TermsOfService
from ca_stub.ra import RegistrationAuthority
from letsencrypt.acme.jws import AccountKey, b64encode, sign_eab
from letsencrypt.acme.messages import AccountStatus

EAB_KEY = b"0123456789abcdef0123456789abcdef"


def test_new_account_then_the_same_key_returns_it() -> None:
    harness = Harness.build()
    key = AccountKey.generate("ec256")
    account, created = harness.ra.new_account(key.jwk, [EMAIL], False, False, None, NEW_ACCOUNT_URL)
    assert created and account.status == AccountStatus.VALID and account.contact == (EMAIL,)
    assert account.thumbprint == key.thumbprint and account.terms_agreed is None
    again, created_again = harness.ra.new_account(key.jwk, [], False, True, None, NEW_ACCOUNT_URL)
    assert (again, created_again) == (account, False)
    assert harness.ra.account_for_key(key.thumbprint) == account
    assert harness.ra.get_account(account.id) == account


class _RacedStorage(FakeStorage):
    """Another newAccount with the same key commits between the RA's lookup and its insert."""

    def __init__(self) -> None:
        super().__init__()
        self.missed = False

    def account_by_thumbprint(self, thumbprint: str) -> AccountRecord | None:
        found = super().account_by_thumbprint(thumbprint)
        if found is not None and not self.missed:
            self.missed = True
            return None
        return found


def test_new_account_race_returns_the_winner() -> None:
    storage = _RacedStorage()
    ra = RegistrationAuthority(storage, FakePolicy(), FakeVA(), FakeCA(), terms=None)
    key = AccountKey.generate("ec256")
    winner, _ = ra.new_account(key.jwk, [], True, False, None, NEW_ACCOUNT_URL)
    loser, created = ra.new_account(key.jwk, [], True, False, None, NEW_ACCOUNT_URL)
    assert storage.missed and (loser, created) == (winner, False)
    assert storage.counts()["accounts"] == 1


def test_only_return_existing_without_an_account() -> None:
    harness = Harness.build()
    key = AccountKey.generate("ec256")
    refused(lambda: harness.ra.new_account(key.jwk, [], True, True, None, NEW_ACCOUNT_URL), "accountDoesNotExist")
    assert harness.storage.counts()["accounts"] == 0


@pytest.mark.parametrize(
    ("contact", "problem_type"),
    [
        ("tel:+12025550123", "unsupportedContact"),
        ("https://example.com/me", "unsupportedContact"),
        ("admin@example.com", "unsupportedContact"),
        ("mailto:admin@example.com?subject=hi", "invalidContact"),
        ("mailto:a@example.com,b@example.com", "invalidContact"),
        ("mailto:admin%40example.com", "invalidContact"),
        ("mailto:not-an-address", "invalidContact"),
        ("mailto:admin@localhost", "invalidContact"),
        ("mailto:admin@192.0.2.1", "invalidContact"),
        ("mailto:ad min@example.com", "invalidContact"),
        ("mailto:admin@-bad-.example", "invalidContact"),
    ],
)
def test_contacts_are_one_plain_mailto_address(contact: str, problem_type: str) -> None:
    harness = Harness.build()
    key = AccountKey.generate("ec256")
    refused(lambda: harness.ra.new_account(key.jwk, [contact], True, False, None, NEW_ACCOUNT_URL), problem_type)
    assert harness.storage.counts()["accounts"] == 0


def test_contacts_are_normalised_and_limited() -> None:
    harness = Harness.build()
    key = AccountKey.generate("ec256")
    account, _ = harness.ra.new_account(
        key.jwk, ["MAILTO:First.Last+tag@Example.COM", "mailto:First.Last+tag@Example.COM"], True, False, None,
        NEW_ACCOUNT_URL,
    )
    assert account.contact == ("mailto:First.Last+tag@Example.COM",)
    many = [f"mailto:user{i}@example.com" for i in range(11)]
    other = AccountKey.generate("ec256")
    refused(lambda: harness.ra.new_account(other.jwk, many, True, False, None, NEW_ACCOUNT_URL), "malformed")


def test_weak_account_key_is_refused_by_the_policy() -> None:
    harness = Harness.build()
    weak = AccountKey(rsa.generate_private_key(65537, 1024))  # noqa: S505 - the weak key under test
    refused(lambda: harness.ra.new_account(weak.jwk, [], True, False, None, NEW_ACCOUNT_URL), "badPublicKey")
    refused(lambda: harness.ra.new_account({"kty": "oct", "k": "AAAA"}, [], True, False, None, NEW_ACCOUNT_URL),
             "badPublicKey")


# --- terms of service (RFC 8555 §7.3.3) -----------------------------------------------------------


class _Terms:
    """A terms document whose version the test changes."""

    def __init__(self) -> None:
        self.version = "v1"

    def __call__(self) -> str:
        return self.version


def test_terms_must_be_agreed_to_on_creation() -> None:
    harness = Harness.build(terms=TermsOfService(TERMS_URL, "v1"))
    key = AccountKey.generate("ec256")
    error = refused(lambda: harness.ra.new_account(key.jwk, [], False, False, None, NEW_ACCOUNT_URL), "malformed")
    assert TERMS_URL in error.detail
    account, _ = harness.ra.new_account(key.jwk, [], True, False, None, NEW_ACCOUNT_URL)
    assert account.terms_agreed == "v1"
    harness.ra.check_terms(account)


def test_changed_terms_require_agreement_again() -> None:
    terms = _Terms()
    harness = Harness.build(terms=TermsOfService(TERMS_URL, terms))
    account, _ = harness.account()
    harness.ra.check_terms(account)
    terms.version = "v2"
    error = refused(lambda: harness.ra.check_terms(account), "userActionRequired", 403)
    assert error.links == ((TERMS_URL, "terms-of-service"),)
    assert error.problem().instance == TERMS_URL
    unchanged = harness.ra.update_account(account, None, False, False)  # false does not agree
    refused(lambda: harness.ra.check_terms(unchanged), "userActionRequired")
    agreed = harness.ra.update_account(account, None, False, True)
    assert agreed.terms_agreed == "v2"
    harness.ra.check_terms(agreed)


def test_terms_from_a_file_change_with_the_file(tmp_path: Any) -> None:
    document = tmp_path / "terms.txt"
    document.write_text("Be nice.\n")
    harness = Harness.build(terms=TermsOfService.from_file(TERMS_URL, document))
    account, _ = harness.account()
    harness.ra.check_terms(account)
    document.write_text("Be nicer.\n")
    refused(lambda: harness.ra.check_terms(account), "userActionRequired")


def test_no_terms_means_no_agreement_needed() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    harness.ra.check_terms(account)
    assert harness.ra.update_account(account, None, False, True).terms_agreed is None


# --- updates and deactivation (RFC 8555 §7.3.2, §7.3.6) ----------------------------------------


def test_update_contacts() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    updated = harness.ra.update_account(account, ["mailto:new@example.org"], False, None)
    assert updated.contact == ("mailto:new@example.org",)
    assert harness.ra.update_account(updated, [], False, None).contact == ()
    before = harness.storage.snapshot()
    refused(lambda: harness.ra.update_account(updated, ["tel:1"], False, None), "unsupportedContact")
    assert harness.storage.snapshot() == before
    assert harness.ra.update_account(updated, None, False, None) == harness.ra.get_account(account.id)


def test_deactivated_account_is_refused_everything() -> None:
    harness = Harness.build()
    account, key = harness.account()
    deactivated = harness.ra.update_account(account, None, True, None)
    assert deactivated.status == AccountStatus.DEACTIVATED
    refused(lambda: harness.ra.update_account(account, ["mailto:x@example.com"], False, None), "unauthorized", 401)
    refused(lambda: harness.ra.update_account(deactivated, None, True, None), "unauthorized")
    refused(lambda: harness.ra.new_account(key.jwk, [], True, False, None, NEW_ACCOUNT_URL), "unauthorized")
    refused(lambda: harness.ra.change_key(account, AccountKey.generate("ec256").jwk), "unauthorized")


# --- key rollover (RFC 8555 §7.3.5) ----------------------------------------------------------------


def test_change_key() -> None:
    harness = Harness.build()
    account, old = harness.account()
    new = AccountKey.generate("ed25519")
    rolled = harness.ra.change_key(account, new.jwk)
    assert rolled.id == account.id and rolled.thumbprint == new.thumbprint and rolled.jwk == new.jwk
    assert harness.ra.account_for_key(new.thumbprint) == rolled
    assert harness.ra.account_for_key(old.thumbprint) is None


def test_change_to_a_key_in_use_is_a_conflict_naming_its_account() -> None:
    harness = Harness.build()
    account, key = harness.account()
    other, other_key = harness.account()
    before = harness.storage.snapshot()
    error = refused(lambda: harness.ra.change_key(account, other_key.jwk), "malformed", 409)
    assert error.account_id == other.id
    error = refused(lambda: harness.ra.change_key(account, key.jwk), "malformed", 409)
    assert error.account_id == account.id
    weak = AccountKey(rsa.generate_private_key(65537, 1024))  # noqa: S505 - the weak key under test
    refused(lambda: harness.ra.change_key(account, weak.jwk), "badPublicKey")
    assert harness.storage.snapshot() == before


# --- external account binding (RFC 8555 §7.3.4) ----------------------------------------------------


def _eab_harness(required: bool = True) -> Harness:
    return Harness.build(eab_keys={"kid-1": EAB_KEY}, eab_required=required)


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tampered(eab: dict[str, str], **header: Any) -> dict[str, str]:
    """The binding with its protected header changed and MACed again, so only the header is wrong."""
    protected = {**json.loads(_b64decode(eab["protected"])), **header}
    encoded = b64encode(json.dumps({k: v for k, v in protected.items() if v is not None}).encode())
    mac = hmac.new(EAB_KEY, f"{encoded}.{eab['payload']}".encode(), hashlib.sha256).digest()
    return {"protected": encoded, "payload": eab["payload"], "signature": b64encode(mac)}


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_eab_binds_the_account(alg: str) -> None:
    harness = _eab_harness()
    key = AccountKey.generate("ec256")
    eab = sign_eab(key.jwk, kid="kid-1", hmac_key=EAB_KEY, url=NEW_ACCOUNT_URL, alg=alg)
    account, created = harness.ra.new_account(key.jwk, [], True, False, eab, NEW_ACCOUNT_URL)
    assert created and account.eab_kid == "kid-1"


def test_eab_required_but_missing() -> None:
    harness = _eab_harness()
    key = AccountKey.generate("ec256")
    refused(lambda: harness.ra.new_account(key.jwk, [], True, False, None, NEW_ACCOUNT_URL), "externalAccountRequired")
    assert harness.storage.counts()["accounts"] == 0


def test_eab_given_when_not_required_is_still_checked() -> None:
    harness = _eab_harness(required=False)
    key = AccountKey.generate("ec256")
    account, _ = harness.ra.new_account(key.jwk, [], True, False, None, NEW_ACCOUNT_URL)
    assert account.eab_kid is None
    other = AccountKey.generate("ec256")
    bad = sign_eab(other.jwk, kid="kid-1", hmac_key=b"wrong key", url=NEW_ACCOUNT_URL)
    refused(lambda: harness.ra.new_account(other.jwk, [], True, False, bad, NEW_ACCOUNT_URL), "unauthorized")


_Bad = Callable[[AccountKey, dict[str, str]], Mapping[str, Any]]
EAB_REFUSALS: list[tuple[str, _Bad, str]] = [
    ("unknown kid", lambda key, good: sign_eab(key.jwk, kid="kid-2", hmac_key=EAB_KEY, url=NEW_ACCOUNT_URL),
     "unauthorized"),
    ("bad MAC", lambda key, good: sign_eab(key.jwk, kid="kid-1", hmac_key=b"x" * 32, url=NEW_ACCOUNT_URL),
     "unauthorized"),
    ("wrong url", lambda key, good: sign_eab(key.jwk, kid="kid-1", hmac_key=EAB_KEY, url="https://ca.test/other"),
     "malformed"),
    ("payload is another key",
     lambda key, good: sign_eab(AccountKey.generate("ec256").jwk, kid="kid-1", hmac_key=EAB_KEY, url=NEW_ACCOUNT_URL),
     "malformed"),
    ("nonce in the header", lambda key, good: _tampered(good, nonce="abc"), "malformed"),
    ("not an HMAC alg", lambda key, good: _tampered(good, alg="RS256"), "malformed"),
    ("no kid", lambda key, good: _tampered(good, kid=None), "unauthorized"),
    ("not a JWS", lambda key, good: {"protected": good["protected"]}, "malformed"),
    ("padded base64url", lambda key, good: {**good, "signature": good["signature"] + "="}, "malformed"),
    ("payload not a JWK", lambda key, good: {**good, "payload": b64encode(b'"hello"')}, "malformed"),
]


@pytest.mark.parametrize(("case", "bad", "problem_type"), EAB_REFUSALS, ids=[case[0] for case in EAB_REFUSALS])
def test_eab_refusals(case: str, bad: _Bad, problem_type: str) -> None:
    harness = _eab_harness()
    key = AccountKey.generate("ec256")
    good = sign_eab(key.jwk, kid="kid-1", hmac_key=EAB_KEY, url=NEW_ACCOUNT_URL)
    eab = bad(key, good)
    refused(lambda: harness.ra.new_account(key.jwk, [], True, False, eab, NEW_ACCOUNT_URL), problem_type)
    assert harness.storage.counts()["accounts"] == 0
    account, created = harness.ra.new_account(key.jwk, [], True, False, good, NEW_ACCOUNT_URL)
    assert created and account.eab_kid == "kid-1"
