"""RA finalize (RFC 8555 §7.4), crash recovery, revocation (§7.6) and renewal information (RFC 9773)."""

from __future__ import annotations

import dataclasses
import datetime
import threading
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from test_ra_harness import Harness, csr, names, refused

from ca_stub.contracts import AccountRecord, CAError, CertificateRecord
from letsencrypt.acme.ari import certificate_id
from letsencrypt.acme.crypto import generate_private_key, make_csr
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import ChallengeStatus, OrderStatus


def _ready(harness: Harness, *domains: str) -> tuple[Any, Any]:
    account, _ = harness.account()
    order = harness.validate(account, harness.order(account, *domains))
    assert order.status == OrderStatus.READY
    return account, order


# --- finalize ---------------------------------------------------------------------------------------


def test_finalize_issues_and_stores_the_certificate() -> None:
    harness = Harness.build()
    account, order = _ready(harness, "example.com", "*.example.com", "192.0.2.7")
    key = generate_private_key("rsa2048")
    done = harness.ra.finalize(account, order.id, csr(key, names("192.0.2.7", "*.example.com", "EXAMPLE.com")))
    assert done.status == OrderStatus.VALID and done.certificate_serial is not None
    record = harness.ra.get_certificate(done.certificate_serial)
    assert record is not None
    leaf = x509.load_der_x509_certificate(record.der)
    assert record.ari_id == certificate_id(leaf) and record.order_id == order.id
    assert record.account_id == account.id and record.identifiers == order.identifiers
    assert record.chains == (harness.ca.issuer_pem(),) and record.issuer_id == "fake"
    assert record.not_after - record.not_before == datetime.timedelta(days=90)
    assert harness.ra.get_order(order.id) == done


def test_finalize_needs_a_ready_order_of_the_account() -> None:
    harness = Harness.build()
    account, _ = harness.account()
    stranger, _ = harness.account()
    pending = harness.order(account, "pending.example.com")
    key = generate_private_key()
    refused(lambda: harness.ra.finalize(account, pending.id, csr(key, pending.identifiers)), "orderNotReady", 403)
    account2, ready = _ready(harness, "ready.example.com")
    refused(lambda: harness.ra.finalize(stranger, ready.id, csr(key, ready.identifiers)), "unauthorized", 403)
    refused(lambda: harness.ra.finalize(account2, 999_999, csr(key, ready.identifiers)), "malformed", 404)
    harness.ra.finalize(account2, ready.id, csr(key, ready.identifiers))
    refused(lambda: harness.ra.finalize(account2, ready.id, csr(key, ready.identifiers)), "orderNotReady", 403)
    assert harness.ca.issued == 1


def _csr_signed_with_a_broken_signature() -> bytes:
    der = bytearray(make_csr(generate_private_key(), names("example.com")))
    der[-5] ^= 0x55  # inside the signature BIT STRING
    return bytes(der)


def _csr_with_a_stray_uri() -> bytes:
    key = generate_private_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName("example.com"), x509.UniformResourceIdentifier("https://x.test")]),
        critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _csr_with_common_name(common_name: str) -> bytes:
    key = generate_private_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ).add_extension(x509.SubjectAlternativeName([x509.DNSName("example.com")]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: csr(generate_private_key(), names("example.com", "extra.example.com")), "extra.example.com"),
        (lambda: csr(generate_private_key(), names("www.example.com")), "lacks example.com"),
        (lambda: _csr_with_common_name("other.example.com"), "other.example.com"),
        (lambda: b"not a CSR", "cannot be used"),
        (_csr_signed_with_a_broken_signature, "signature"),
        (_csr_with_a_stray_uri, "cannot be used"),
        (lambda: csr(rsa.generate_private_key(65537, 1024), names("example.com")), "not allowed"),  # noqa: S505
        (lambda: csr(ec.generate_private_key(ec.SECP521R1()), names("example.com")), "not allowed"),
    ],
)
def test_bad_csr_leaves_the_order_ready(make: Any, fragment: str) -> None:
    harness = Harness.build()
    account, order = _ready(harness, "example.com")
    before = harness.storage.snapshot()
    error = refused(lambda: harness.ra.finalize(account, order.id, make()), "badCSR")
    assert fragment in error.detail
    assert harness.storage.snapshot() == before and harness.ca.issued == 0


def test_csr_names_both_the_extra_and_the_missing_identifier() -> None:
    harness = Harness.build()
    account, order = _ready(harness, "a.example.com", "b.example.com")
    error = refused(
        lambda: harness.ra.finalize(account, order.id, csr(generate_private_key(), names("a.example.com", "c.test"))),
        "badCSR",
    )
    assert "names c.test" in error.detail and "lacks b.example.com" in error.detail


def test_csr_with_the_account_key_isrefused() -> None:
    harness = Harness.build()
    certificate_key = generate_private_key("ec256")
    account_key = AccountKey(certificate_key)
    account, _ = harness.account(account_key)
    order = harness.validate(account, harness.order(account, "example.com"))
    error = refused(lambda: harness.ra.finalize(account, order.id, csr(certificate_key, order.identifiers)),
                     "badCSR")
    assert "account key" in error.detail


def test_concurrent_finalize_issues_once() -> None:
    harness = Harness.build()
    account, order = _ready(harness, "example.com")
    harness.ca.hold = threading.Event()
    request = csr(generate_private_key(), order.identifiers)
    outcomes: list[Any] = []

    def finalize() -> None:
        try:
            outcomes.append(harness.ra.finalize(account, order.id, request))
        except CAError as err:
            outcomes.append(err)

    threads = [threading.Thread(target=finalize) for _ in range(2)]
    for thread in threads:
        thread.start()
    while len(outcomes) < 1:  # the loser answers at once, while the winner is held inside the CA
        threading.Event().wait(0.01)
    assert harness.storage.orders[order.id].status == OrderStatus.PROCESSING
    harness.ca.hold.set()
    for thread in threads:
        thread.join(10)
    errors = [o for o in outcomes if isinstance(o, CAError)]
    orders = [o for o in outcomes if not isinstance(o, CAError)]
    assert [e.problem_type for e in errors] == ["orderNotReady"] and len(orders) == 1
    assert orders[0].status == OrderStatus.VALID and harness.ca.issued == 1
    assert harness.storage.counts()["certificates"] == 1


def test_issuance_failure_makes_the_order_invalid() -> None:
    harness = Harness.build()
    account, order = _ready(harness, "example.com")
    harness.ca.fail = RuntimeError("HSM on fire")
    error = refused(lambda: harness.ra.finalize(account, order.id, csr(generate_private_key(), order.identifiers)),
                     "serverInternal", 500)
    assert "HSM" not in error.detail  # internals stay in the log
    failed = harness.ra.get_order(order.id)
    assert failed is not None and failed.status == OrderStatus.INVALID
    assert failed.error is not None and failed.error.short_type == "serverInternal"
    assert harness.storage.counts()["certificates"] == 0


def test_a_csr_problem_found_by_the_ca_leaves_the_order_ready() -> None:
    harness = Harness.build()
    account, order = _ready(harness, "example.com")
    harness.ca.fail = CAError("badCSR", "the CA does not like this key")
    refused(lambda: harness.ra.finalize(account, order.id, csr(generate_private_key(), order.identifiers)), "badCSR")
    assert harness.ra.get_order(order.id).status == OrderStatus.READY  # type: ignore[union-attr]
    harness.ca.fail = None
    assert harness.ra.finalize(account, order.id, csr(generate_private_key(), order.identifiers)).status == "valid"


# --- recovery after a crash ---------------------------------------------------------------------------


def test_recover_after_a_crash_in_processing() -> None:
    harness = Harness.build(va_mode="manual")
    account, _ = harness.account()
    certificate = _issue(harness, account)
    crashed_before_issuing = harness.validate(account, harness.order(account, "b.example.com"))
    harness.storage.set_order_status(crashed_before_issuing.id, OrderStatus.PROCESSING)
    crashed_after_storing = harness.storage.orders[certificate.order_id]
    harness.storage.orders[crashed_after_storing.id] = dataclasses.replace(  # stored, not yet marked valid
        crashed_after_storing, status=OrderStatus.PROCESSING, certificate_serial=None)
    pending = harness.order(account, "c.example.com")
    challenge = harness.ra.get_authorization(pending.authorization_ids[0]).challenges[0]  # type: ignore[union-attr]
    harness.ra.answer_challenge(account, challenge.id, {})
    harness.va.waiting.clear()  # the VA's work dies with the process

    recovery = harness.ra.recover()

    assert (recovery.orders_valid, recovery.orders_ready, recovery.challenges_resubmitted) == (1, 1, 1)
    recovered = harness.ra.get_order(certificate.order_id)
    assert recovered is not None and recovered.status == OrderStatus.VALID
    assert recovered.certificate_serial == certificate.serial
    assert harness.ra.get_order(crashed_before_issuing.id).status == OrderStatus.READY  # type: ignore[union-attr]
    assert [r.challenge_id for r, _ in harness.va.waiting] == [challenge.id]
    harness.va.complete()
    assert harness.ra.get_challenge(account, challenge.id).status == ChallengeStatus.VALID
    retried = harness.ra.finalize(account, crashed_before_issuing.id,
                                  csr(generate_private_key(), crashed_before_issuing.identifiers))
    assert retried.status == OrderStatus.VALID
    assert harness.ra.recover().orders_ready == 0


def _issue(harness: Harness, account: AccountRecord) -> CertificateRecord:
    order = harness.validate(account, harness.order(account, "a.example.com"))
    done = harness.ra.finalize(account, order.id, csr(generate_private_key(), order.identifiers))
    assert done.certificate_serial is not None
    certificate = harness.ra.get_certificate(done.certificate_serial)
    assert certificate is not None
    return certificate
