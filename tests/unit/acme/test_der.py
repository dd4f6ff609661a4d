"""``letsencrypt.acme._der`` and the DER paths of ``crypto``: the CSR ``make_csr`` writes and the certificate
frame ``certificate_facts`` reads, each checked against ``cryptography.x509``."""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from letsencrypt.acme import _der, crypto
from letsencrypt.acme.errors import MessageError
from letsencrypt.acme.messages import Identifier

UTC = datetime.UTC
KEYS = {
    "ec256": ec.generate_private_key(ec.SECP256R1()),
    "ec384": ec.generate_private_key(ec.SECP384R1()),
    "rsa2048": rsa.generate_private_key(65537, 2048),
}
NAME_SETS = {
    "one": ["a.example.com"],
    "duplicates": ["a.example.com", "b.example.com", "a.example.com"],
    "ips only": ["192.0.2.1", "2001:db8::1"],
    "mixed": ["192.0.2.1", "www.example.com"],
    "long first": ["x" * 63 + ".example.com", "c.example.com"],
    "hundred": [f"n{i}.example.com" for i in range(100)],
}


def _builder_csr(
    key: crypto.CertPrivateKey, identifiers: list[Identifier], must_staple: bool
) -> x509.CertificateSigningRequest:
    """The CSR cryptography's builder makes for the same request (what make_csr did before)."""
    unique = list(dict.fromkeys(identifiers))
    names: list[x509.GeneralName] = [
        x509.DNSName(i.value) if i.type == "dns" else x509.IPAddress(ipaddress.ip_address(i.value)) for i in unique
    ]
    dns = [i.value for i in unique if i.type == "dns"]
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, dns[0])] if dns and len(dns[0]) <= 64 else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if must_staple:
        builder = builder.add_extension(x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False)
    p384 = isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384
    digest = hashes.SHA384() if p384 else hashes.SHA256()
    return builder.sign(key, digest)


@pytest.mark.parametrize("must_staple", [False, True])
@pytest.mark.parametrize("names", list(NAME_SETS.values()), ids=list(NAME_SETS))
@pytest.mark.parametrize("key_type", list(KEYS))
def test_make_csr_writes_what_cryptography_writes(key_type: str, names: list[str], must_staple: bool) -> None:
    key = KEYS[key_type]
    identifiers = [Identifier.parse(name) for name in names]
    der = crypto.make_csr(key, identifiers, must_staple=must_staple)
    ours = x509.load_der_x509_csr(der)
    theirs = _builder_csr(key, identifiers, must_staple)
    assert ours.tbs_certrequest_bytes == theirs.tbs_certrequest_bytes
    assert ours.signature_algorithm_oid == theirs.signature_algorithm_oid
    assert ours.is_signature_valid
    # the algorithm identifier is encoded the same way too (RSA with its NULL parameters)
    theirs_der = theirs.public_bytes(serialization.Encoding.DER)
    ours_outer = _der.children(der, *_der.read(der)[1:])
    theirs_outer = _der.children(theirs_der, *_der.read(theirs_der)[1:])
    assert der[ours_outer[0][2]:ours_outer[1][2]] == theirs_der[theirs_outer[0][2]:theirs_outer[1][2]]
    assert sorted(i.value for i in crypto.csr_identifiers(der)) == sorted(set(names))


def _certificate(
    key: crypto.CertPrivateKey, not_before: datetime.datetime, not_after: datetime.datetime
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facts.example")])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("facts.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )


VALIDITIES = [
    (datetime.datetime(2026, 11, 27, 0, 0, 0, tzinfo=UTC), datetime.datetime(2027, 2, 25, 23, 59, 59, tzinfo=UTC)),
    (datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime.datetime(2049, 12, 31, tzinfo=UTC)),
    (datetime.datetime(2049, 1, 1, tzinfo=UTC), datetime.datetime(2051, 6, 1, 8, 9, 10, tzinfo=UTC)),  # GeneralizedTime
]


@pytest.mark.parametrize(("not_before", "not_after"), VALIDITIES)
@pytest.mark.parametrize("key_type", ["ec256", "rsa2048"])
def test_certificate_facts_and_pem_agree_with_cryptography(
    key_type: str, not_before: datetime.datetime, not_after: datetime.datetime
) -> None:
    certificate = _certificate(KEYS[key_type], not_before, not_after)
    der = certificate.public_bytes(serialization.Encoding.DER)
    facts = crypto.certificate_facts(der)
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert facts.spki == spki
    assert (facts.not_before, facts.not_after) == (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    assert crypto.pem_of_der([der, der]) == pem + pem == crypto.pem_of([certificate, certificate])
    assert crypto.split_pem_der(f"leaf\n{pem}between\n{pem.replace(chr(10), chr(13) + chr(10))}") == [der, der]


@pytest.mark.parametrize(("text", "message"), [
    ("", "holds no certificate"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n", "has no '-----END CERTIFICATE-----' line"),
    ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "certificate 1 of the PEM chain cannot be"),
    ("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", "cannot be parsed"),  # an empty SEQUENCE
])
def test_split_pem_der_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        crypto.split_pem_der(text)


def test_a_csr_in_a_certificate_block_is_refused() -> None:
    csr = crypto.make_csr(KEYS["ec256"], [Identifier.parse("a.example")])
    text = "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(csr).decode() + "\n-----END CERTIFICATE-----\n"
    with pytest.raises(MessageError, match="cannot be parsed"):
        crypto.split_pem_der(text)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "truncated"),
    (b"\x30", "truncated"),
    (b"\x30\x05\x02\x01", "truncated"),
    (b"\x30\x80\x00\x00", "indefinite"),
    (b"\x30\x81\x05\x02\x01\x00\x05\x00", "shortest form"),
    (b"\x1f\x01\x00", "multi-byte tags"),
])
def test_the_reader_refuses_what_is_not_der(data: bytes, message: str) -> None:
    with pytest.raises(_der.DERError, match=message):
        _der.read(data)


def test_writer_lengths_and_values() -> None:
    assert _der.encode(0x04, b"x" * 127)[:2] == b"\x04\x7f"
    assert _der.encode(0x04, b"x" * 128)[:3] == b"\x04\x81\x80"
    assert _der.encode(0x04, b"x" * 300)[:4] == b"\x04\x82\x01\x2c"
    assert _der.integer(0) == b"\x02\x01\x00" and _der.integer(128) == b"\x02\x02\x00\x80"
    assert _der.oid("1.2.840.113549.1.9.14") == bytes.fromhex("06092a864886f70d01090e")
    assert _der.set_of(b"\x02\x01\x02", b"\x02\x01\x01") == b"\x31\x06\x02\x01\x01\x02\x01\x02"
    with pytest.raises(ValueError):
        _der.oid("3.1")
    with pytest.raises(ValueError):
        _der.integer(-1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_certificate_facts_of_any_bytes_is_a_value_error_or_facts(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        crypto.certificate_facts(data)


_SAMPLE = _certificate(KEYS["ec256"], *VALIDITIES[0]).public_bytes(serialization.Encoding.DER)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_certificate_facts_of_a_damaged_certificate_never_crashes(data: st.DataObject) -> None:
    der = bytearray(_SAMPLE)
    for _ in range(data.draw(st.integers(1, 4))):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(der)))
    with contextlib.suppress(ValueError):
        crypto.certificate_facts(bytes(der[:cut]))
