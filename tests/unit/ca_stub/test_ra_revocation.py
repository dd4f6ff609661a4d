"""RA revocation (RFC 8555 §7.6) by each of its three authorities, its refusals, and renewal
information (RFC 9773 §4.2)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from test_ra_harness import Harness, refused

from letsencrypt.acme.ari import certificate_id
from letsencrypt.acme.crypto import generate_private_key
from letsencrypt.acme.jws import AccountKey


def _issued(harness: Harness, *domains: str) -> tuple[Any, Any, Any]:
    account, _ = harness.account()
    _, certificate, key = harness.issue(account, *domains)
    return account, certificate, key


def test_the_issuing_account_may_revoke() -> None:
    harness = Harness.build()
    account, certificate, _ = _issued(harness, "example.com")
    harness.ra.revoke(certificate.der, 4, account=account, certificate_key_jwk=None)
    revoked = harness.ra.get_certificate(certificate.serial)
    assert revoked is not None and revoked.revoked_at == harness.clock.now and revoked.revocation_reason == 4
    assert harness.ra.revoked_certificates("fake") == [revoked]
    refused(lambda: harness.ra.revoke(certificate.der, 4, account=account, certificate_key_jwk=None),
             "alreadyRevoked")


def test_an_account_authorized_for_every_name_may_revoke() -> None:
    harness = Harness.build()
    _, certificate, _ = _issued(harness, "example.com", "*.example.com", "www.example.com")
    other, _ = harness.account()
    harness.validate(other, harness.order(other, "example.com", "www.example.com"))  # *. via example.com
    harness.ra.revoke(certificate.der, None, account=other, certificate_key_jwk=None)
    revoked = harness.ra.get_certificate(certificate.serial)
    assert revoked is not None and revoked.revocation_reason == 0


def test_an_account_missing_one_name_may_not() -> None:
    harness = Harness.build()
    _, certificate, _ = _issued(harness, "example.com", "www.example.com")
    other, _ = harness.account()
    harness.validate(other, harness.order(other, "example.com"))
    error = refused(lambda: harness.ra.revoke(certificate.der, 1, account=other, certificate_key_jwk=None),
                     "unauthorized", 403)
    assert "www.example.com" in error.detail and "example.com," not in error.detail
    assert harness.ra.get_certificate(certificate.serial).revoked_at is None  # type: ignore[union-attr]


def test_expired_authorizations_do_not_count() -> None:
    harness = Harness.build()
    _, certificate, _ = _issued(harness, "example.com")
    other, _ = harness.account()
    harness.validate(other, harness.order(other, "example.com"))
    harness.later(days=31)
    refused(lambda: harness.ra.revoke(certificate.der, 1, account=other, certificate_key_jwk=None), "unauthorized")


def test_the_certificate_key_may_revoke_keeping_the_reason() -> None:
    harness = Harness.build()
    _, certificate, key = _issued(harness, "example.com")
    jwk = AccountKey(key).jwk
    harness.ra.revoke(certificate.der, 3, account=None, certificate_key_jwk=jwk)
    revoked = harness.ra.get_certificate(certificate.serial)
    assert revoked is not None and revoked.revocation_reason == 3


def test_another_key_or_nobody_may_not() -> None:
    harness = Harness.build()
    _, certificate, _ = _issued(harness, "example.com")
    stranger, stranger_key = harness.account()
    for account, jwk in ((None, AccountKey.generate("ec256").jwk), (None, stranger_key.jwk), (stranger, None),
                         (None, None)):
        refused(lambda account=account, jwk=jwk: harness.ra.revoke(certificate.der, 1, account=account,
                                                                    certificate_key_jwk=jwk), "unauthorized", 403)
    assert harness.ra.revoked_certificates("fake") == []


@pytest.mark.parametrize("reason", [2, 6, 7, 8, 10, -1, True])
def test_reasons_outside_the_allowed_set(reason: int) -> None:
    harness = Harness.build()
    account, certificate, _ = _issued(harness, "example.com")
    refused(lambda: harness.ra.revoke(certificate.der, reason, account=account, certificate_key_jwk=None),
             "badRevocationReason")


def test_unknown_or_forged_certificates() -> None:
    harness = Harness.build()
    account, certificate, _ = _issued(harness, "example.com")
    refused(lambda: harness.ra.revoke(b"\x30\x03garbage", 0, account=account, certificate_key_jwk=None), "malformed")
    stranger_ca = Harness.build()
    _, elsewhere, _ = _issued(stranger_ca, "example.com")
    refused(lambda: harness.ra.revoke(elsewhere.der, 0, account=account, certificate_key_jwk=None), "malformed", 404)
    # Same serial and AKI, another key, self-made: revoking it by its own key must not touch the real one.
    attacker_key = generate_private_key()
    real = x509.load_der_x509_certificate(certificate.der)
    forged = (
        x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.issuer)
        .public_key(attacker_key.public_key()).serial_number(real.serial_number)
        .not_valid_before(real.not_valid_before_utc).not_valid_after(real.not_valid_after_utc)
        .add_extension(real.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value, critical=False)
        .sign(attacker_key, hashes.SHA256())
    )
    assert certificate_id(forged) == certificate.ari_id
    refused(lambda: harness.ra.revoke(forged.public_bytes(serialization.Encoding.DER), 1, account=None,
                                       certificate_key_jwk=AccountKey(attacker_key).jwk), "malformed", 404)
    assert harness.ra.get_certificate(certificate.serial).revoked_at is None  # type: ignore[union-attr]


# --- renewal information ------------------------------------------------------------------------------


def test_renewal_window_is_late_in_the_lifetime() -> None:
    harness = Harness.build()
    account, certificate, _ = _issued(harness, "example.com")
    start, end = harness.ra.renewal_info(certificate.ari_id)
    assert start == certificate.not_before + datetime.timedelta(days=60)
    assert end == certificate.not_before + datetime.timedelta(days=67, hours=12)
    harness.later(days=3)
    harness.ra.revoke(certificate.der, 1, account=account, certificate_key_jwk=None)
    harness.later(days=1)
    start, end = harness.ra.renewal_info(certificate.ari_id)
    assert start < end <= harness.clock.now  # already over: renew now


def test_renewal_info_for_unknown_or_malformed_ids() -> None:
    harness = Harness.build()
    refused(lambda: harness.ra.renewal_info("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"), "malformed", 404)
    for bad in ("nodot", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE=", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAAB"):
        refused(lambda bad=bad: harness.ra.renewal_info(bad), "malformed", 400)
