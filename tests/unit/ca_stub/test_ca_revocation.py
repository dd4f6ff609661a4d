"""SigningCA's OCSP responses (RFC 6960) and CRLs (RFC 5280 §5), checked with cryptography and openssl."""

from __future__ import annotations

import dataclasses
import datetime
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from ca_stub.ca import SigningCA
from ca_stub.ceremony import FAST_KEYS, CeremonyResult, run_ceremony
from ca_stub.contracts import CAError, CertificateRecord, Profile
from letsencrypt.acme.crypto import generate_private_key, make_csr, split_pem_chain
from letsencrypt.acme.messages import Identifier

PROFILE = Profile("classic", "90 days", datetime.timedelta(days=90), datetime.timedelta(days=30))
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
REVOKED_AT = NOW - datetime.timedelta(hours=1)
CERT_ID_HASH = hashes.SHA1()  # noqa: S303 - what OCSP clients send (RFC 5019 §2.1.1), not a security use
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> CeremonyResult:
    return run_ceremony(tmp_path_factory.mktemp("ca"), keys=FAST_KEYS)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ca(ceremony: CeremonyResult, clock: Clock) -> SigningCA:
    return SigningCA(
        ceremony.data_dir, base_url_for_ocsp="http://127.0.0.1:1/ocsp", crl_base_url="http://127.0.0.1:1/crl",
        clock=clock,
    )


def _record(ca: SigningCA, key_type: Any = "ec256", *, reason: int | None = None) -> CertificateRecord:
    identifiers = (Identifier.dns("example.test"),)
    issued = ca.issue(make_csr(generate_private_key(key_type), identifiers), identifiers, PROFILE, None, None)
    return CertificateRecord(
        serial=issued.serial, account_id=1, order_id=1, der=issued.der, chains=issued.chains,
        identifiers=identifiers, not_before=issued.not_before, not_after=issued.not_after,
        issuer_id=issued.issuer_id, ari_id="unused",
        revoked_at=REVOKED_AT if reason is not None else None, revocation_reason=reason,
    )


def _leaf(record: CertificateRecord) -> x509.Certificate:
    return x509.load_der_x509_certificate(record.der)


def _issuer(record: CertificateRecord) -> x509.Certificate:
    return split_pem_chain(record.chains[0])[0]


def _request(
    record: CertificateRecord, algorithm: hashes.HashAlgorithm = CERT_ID_HASH, nonce: bytes | None = None
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(_leaf(record), _issuer(record), algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def _verify_signature(public_key: Any, signature: bytes, data: bytes) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


def _answer(ca: SigningCA, request: bytes, *records: CertificateRecord) -> ocsp.OCSPResponse:
    by_serial = {record.serial: record for record in records}
    return ocsp.load_der_ocsp_response(ca.ocsp_response(request, by_serial.get))


# --- OCSP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec256", "rsa2048"])
def test_ocsp_good(ca: SigningCA, key_type: Any) -> None:
    record = _record(ca, key_type)
    response = _answer(ca, _request(record), record)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == _leaf(record).serial_number
    assert response.this_update_utc == NOW
    assert response.next_update_utc is not None
    assert datetime.timedelta(hours=1) <= response.next_update_utc - NOW <= datetime.timedelta(hours=12)
    issuer = _issuer(record)
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    _verify_signature(issuer.public_key(), response.signature, response.tbs_response_bytes)


def test_ocsp_revoked_with_reason(ca: SigningCA) -> None:
    record = _record(ca, "rsa2048", reason=1)
    response = _answer(ca, _request(record), record)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == REVOKED_AT
    assert response.revocation_reason == x509.ReasonFlags.key_compromise
    _verify_signature(_issuer(record).public_key(), response.signature, response.tbs_response_bytes)


def test_ocsp_revoked_unspecified_has_no_reason(ca: SigningCA) -> None:
    record = _record(ca, reason=0)
    response = _answer(ca, _request(record), record)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is None


def test_ocsp_unknown_serial(ca: SigningCA) -> None:
    record = _record(ca)
    response = _answer(ca, _request(record))  # the store does not know it
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    _verify_signature(_issuer(record).public_key(), response.signature, response.tbs_response_bytes)


def test_ocsp_record_of_other_issuer_is_unknown(ca: SigningCA) -> None:
    ecdsa, rsa_record = _record(ca, "ec256"), _record(ca, "rsa2048")
    misfiled = dataclasses.replace(rsa_record, serial=ecdsa.serial)  # same serial, but R1 issued it
    response = _answer(ca, _request(ecdsa), misfiled)
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


@pytest.mark.parametrize("request_der", [b"", b"garbage", b"\x30\x03\x02\x01\x01"])
def test_ocsp_malformed(ca: SigningCA, request_der: bytes) -> None:
    response = ocsp.load_der_ocsp_response(ca.ocsp_response(request_der, lambda serial: None))
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_foreign_issuer_is_unauthorized(ca: SigningCA, tmp_path: Path) -> None:
    other = SigningCA(run_ceremony(tmp_path, keys=FAST_KEYS).data_dir, base_url_for_ocsp=None, crl_base_url=None)
    foreign = _record(other)
    response = _answer(ca, _request(foreign), foreign)
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    size = (length.bit_length() + 7) // 8
    encoded = bytes([length]) if length < 128 else bytes([0x80 | size]) + length.to_bytes(size, "big")  # DER: minimal
    return bytes([tag]) + encoded + content


def _der_content(data: bytes) -> bytes:
    if data[1] < 128:
        return data[2 : 2 + data[1]]
    size = data[1] & 0x7F
    return data[2 + size : 2 + size + int.from_bytes(data[2 : 2 + size], "big")]


def test_ocsp_several_cert_ids_are_unauthorized(ca: SigningCA) -> None:
    """RFC 6960 allows a list of CertIDs; this responder answers one (as clients send) and says so."""
    record = _record(ca)
    single = _der_content(_der_content(_der_content(_request(record))))  # OCSPRequest.tbsRequest.requestList
    double = _der(0x30, _der(0x30, _der(0x30, single + single)))
    response = _answer(ca, double, record)
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize("algorithm", [hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
def test_ocsp_other_cert_id_hashes(ca: SigningCA, algorithm: hashes.HashAlgorithm) -> None:
    record = _record(ca)
    response = _answer(ca, _request(record, algorithm), record)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.hash_algorithm.name == algorithm.name


def test_ocsp_alternate_chain_issuer_is_the_same_issuer(ca: SigningCA) -> None:
    """A client holding the alternate chain asks about the X2-signed intermediate: same name and key."""
    record = _record(ca)
    alternate_issuer = split_pem_chain(record.chains[1])[0]
    request = ocsp.OCSPRequestBuilder().add_certificate(_leaf(record), alternate_issuer, CERT_ID_HASH).build()
    response = _answer(ca, request.public_bytes(Encoding.DER), record)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_ocsp_nonce_is_echoed(ca: SigningCA) -> None:
    record = _record(ca)
    response = _answer(ca, _request(record, nonce=b"0123456789abcdef"), record)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    plain = _answer(ca, _request(record), record)
    with pytest.raises(x509.ExtensionNotFound):
        plain.extensions.get_extension_for_class(x509.OCSPNonce)


def _openssl(tmp_path: Path, *args: str) -> str:
    run = subprocess.run(["openssl", *args], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    return run.stdout + run.stderr


@needs_openssl
@pytest.mark.parametrize(("reason", "expected"), [(None, "leaf.pem: good"), (4, "leaf.pem: revoked")])
def test_openssl_accepts_ocsp_response(
    ca: SigningCA, ceremony: CeremonyResult, tmp_path: Path, reason: int | None, expected: str
) -> None:
    record = _record(ca, reason=reason)
    (tmp_path / "resp.der").write_bytes(ca.ocsp_response(_request(record), {record.serial: record}.get))
    (tmp_path / "leaf.pem").write_bytes(_leaf(record).public_bytes(Encoding.PEM))
    (tmp_path / "issuer.pem").write_text(record.chains[0])
    shutil.copy(ceremony.root_certificates[0], tmp_path / "root.pem")
    output = _openssl(tmp_path, "ocsp", "-respin", "resp.der", "-issuer", "issuer.pem", "-cert", "leaf.pem",
                      "-CAfile", "root.pem", "-verify_other", "issuer.pem", "-no_nonce")
    assert "Response verify OK" in output, output
    assert expected in output, output
    if reason is not None:
        assert "Reason: superseded" in output, output


# --- CRL ----------------------------------------------------------------------------------------


def test_crl_lists_revoked_with_reasons(ca: SigningCA) -> None:
    revoked = [_record(ca, reason=1), _record(ca, reason=0), _record(ca, reason=5)]
    good = _record(ca)
    other_issuer = _record(ca, "rsa2048", reason=4)
    crl = x509.load_der_x509_crl(ca.crl("e1", [*revoked, good, other_issuer]))

    issuer = _issuer(revoked[0])
    public_key = issuer.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(public_key)
    assert crl.issuer == issuer.subject
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc is not None and crl.next_update_utc > NOW
    entries = {entry.serial_number: entry for entry in crl}
    assert set(entries) == {_leaf(record).serial_number for record in revoked}
    reasons: dict[int | None, x509.ReasonFlags | None] = {}
    for record in revoked:
        entry = entries[_leaf(record).serial_number]
        assert entry.revocation_date_utc == REVOKED_AT
        try:
            reasons[record.revocation_reason] = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reasons[record.revocation_reason] = None
    assert reasons == {1: x509.ReasonFlags.key_compromise, 0: None, 5: x509.ReasonFlags.cessation_of_operation}
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    point = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert point.critical and point.value.only_contains_user_certs
    assert [name.value for name in point.value.full_name or []] == ["http://127.0.0.1:1/crl/e1"]


def test_crl_number_increases(ca: SigningCA, clock: Clock) -> None:
    numbers = []
    for _ in range(3):
        crl = x509.load_der_x509_crl(ca.crl("r1", []))
        numbers.append(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
        clock.now += datetime.timedelta(milliseconds=1)
    assert numbers == sorted(numbers) and len(set(numbers)) == 3


def test_crl_of_unknown_issuer(ca: SigningCA) -> None:
    with pytest.raises(CAError) as caught:
        ca.crl("x1", [])  # a root: its key is offline and it has no CRL here
    assert caught.value.problem_type == "malformed" and caught.value.status == 404


@needs_openssl
def test_openssl_verifies_crl(ca: SigningCA, ceremony: CeremonyResult, tmp_path: Path) -> None:
    record = _record(ca, "rsa2048", reason=9)
    (tmp_path / "crl.der").write_bytes(ca.crl("r1", [record]))
    (tmp_path / "ca.pem").write_text(record.chains[0] + ceremony.root_certificates[0].read_text())
    output = _openssl(tmp_path, "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-verify", "-text",
                      "-noout")
    assert "verify OK" in output, output
    assert f"Serial Number: {record.serial.upper()}" in output, output
    assert "Privilege Withdrawn" in output, output


@needs_openssl
def test_openssl_crl_check_rejects_revoked_leaf(ca: SigningCA, ceremony: CeremonyResult, tmp_path: Path) -> None:
    """``openssl verify -crl_check`` with our CRL: the revoked leaf fails, a good one passes."""
    revoked, good = _record(ca, reason=1), _record(ca)
    crl_pem = x509.load_der_x509_crl(ca.crl("e1", [revoked, good])).public_bytes(Encoding.PEM)
    (tmp_path / "crl.pem").write_bytes(crl_pem)
    (tmp_path / "chain.pem").write_text(revoked.chains[0])
    shutil.copy(ceremony.root_certificates[0], tmp_path / "root.pem")
    for name, record in (("revoked.pem", revoked), ("good.pem", good)):
        (tmp_path / name).write_bytes(_leaf(record).public_bytes(Encoding.PEM))
    verify = ("verify", "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "root.pem", "-untrusted", "chain.pem")
    assert "good.pem: OK" in _openssl(tmp_path, *verify, "good.pem")
    assert "certificate revoked" in _openssl(tmp_path, *verify, "revoked.pem")

