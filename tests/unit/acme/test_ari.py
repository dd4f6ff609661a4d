"""Tests for letsencrypt.acme.ari: RFC 9773 certificate identifiers, renewal timing, Retry-After."""

from __future__ import annotations

import datetime
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from letsencrypt.acme import ari
from letsencrypt.acme.errors import MessageError
from letsencrypt.acme.messages import RenewalInfo

# RFC 9773 §4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4 (C8, not C9:
# "...4ByNQ" decodes to ...01:C8:D4), serial 00:87:65:43:21.
RFC_AKI = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
RFC_CERT_ID = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def _certificate(serial: int, aki: x509.AuthorityKeyIdentifier | None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.test")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=7))
    )
    if aki is not None:
        builder = builder.add_extension(aki, critical=False)
    return builder.sign(key, hashes.SHA256())


def test_rfc_9773_example_certificate_id() -> None:
    cert = _certificate(0x87654321, x509.AuthorityKeyIdentifier(RFC_AKI, None, None))
    assert ari.certificate_id(cert) == RFC_CERT_ID
    assert ari.certificate_id_from_parts(RFC_AKI, 0x87654321) == RFC_CERT_ID


def test_serial_with_high_bit_keeps_leading_zero() -> None:
    cert_id = ari.certificate_id_from_parts(b"\x01", 0x80)
    assert ari.parse_certificate_id(cert_id) == (b"\x01", 0x80)
    assert cert_id.split(".")[1] == "AIA"  # 00 80


def test_serial_without_high_bit_has_no_leading_zero() -> None:
    assert ari.certificate_id_from_parts(b"\x01", 0x7F).split(".")[1] == "fw"  # 7f
    assert ari.certificate_id_from_parts(b"\x01", 0x1234).split(".")[1] == "EjQ"  # 12 34


def test_certificate_without_aki_is_an_error() -> None:
    with pytest.raises(MessageError, match="no authority key identifier"):
        ari.certificate_id(_certificate(5, None))
    issuer_only = x509.AuthorityKeyIdentifier(None, [x509.DNSName("ca.test")], 7)
    with pytest.raises(MessageError, match="no keyIdentifier"):
        ari.certificate_id(_certificate(5, issuer_only))
    with pytest.raises(MessageError):
        ari.certificate_id_from_parts(b"", 5)


def test_parse_certificate_id_round_trip_and_errors() -> None:
    assert ari.parse_certificate_id(RFC_CERT_ID) == (RFC_AKI, 0x87654321)
    for bad in ["", "nodot", ".AIdlQyE", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.", "aYhb=.AIdlQyE", "aYhba4dG.AAAB"]:
        with pytest.raises(MessageError):
            ari.parse_certificate_id(bad)


def test_renewal_info_url() -> None:
    assert ari.renewal_info_url("https://ca.test/renewal-info/", "a.b") == "https://ca.test/renewal-info/a.b"
    assert ari.renewal_info_url("https://ca.test/renewal-info", "a.b") == "https://ca.test/renewal-info/a.b"


def test_choose_renewal_time_is_within_window_and_seedable() -> None:
    start = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    info = RenewalInfo(start, start + datetime.timedelta(days=2))
    rng = random.Random(1234)
    chosen = [ari.choose_renewal_time(info, rng=rng) for _ in range(200)]
    assert all(info.start <= when < info.end for when in chosen)
    assert len(set(chosen)) > 100  # spread over the window, not one point
    assert min(chosen) < start + datetime.timedelta(hours=6)
    assert max(chosen) > info.end - datetime.timedelta(hours=6)
    again = random.Random(1234)
    assert ari.choose_renewal_time(info, rng=again) == chosen[0]
    assert info.start <= ari.choose_renewal_time(info) < info.end


def test_clamp_retry_after() -> None:
    assert ari.clamp_retry_after(None) == 6 * 3600
    assert ari.clamp_retry_after(float("nan")) == 6 * 3600
    assert ari.clamp_retry_after(0) == 60
    assert ari.clamp_retry_after(3600) == 3600
    assert ari.clamp_retry_after(10 * 86400) == 86400
    assert ari.clamp_retry_after(5, minimum=1, maximum=10) == 5
    assert ari.clamp_retry_after(None, default=1, minimum=2, maximum=10) == 2
    with pytest.raises(ValueError, match="minimum"):
        ari.clamp_retry_after(5, minimum=10, maximum=1)


def test_parse_retry_after_delay_seconds() -> None:
    assert ari.parse_retry_after("120") == 120.0
    assert ari.parse_retry_after(" 0 ") == 0.0
    assert ari.parse_retry_after("-30") == 0.0


def test_parse_retry_after_http_date() -> None:
    now = datetime.datetime(2015, 10, 21, 7, 0, 0, tzinfo=datetime.UTC)
    assert ari.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 28 * 60
    assert ari.parse_retry_after("Wed, 21 Oct 2015 06:00:00 GMT", now=now) == 0.0  # in the past
    naive_now = now.replace(tzinfo=None)
    assert ari.parse_retry_after("Wed, 21 Oct 2015 07:00:10 -0000", now=naive_now) == 10.0


@pytest.mark.parametrize("value", [None, "", "soon", "1.5", "Mon, 99 Foo 2015", "12 apples"])
def test_parse_retry_after_garbage(value: str | None) -> None:
    assert ari.parse_retry_after(value) is None
