"""SigningCA issuance: leaf profile, issuer choice, validity, and chains that openssl accepts."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca_stub.ca import CAStateError, SigningCA
from ca_stub.ceremony import FAST_KEYS, CeremonyResult, run_ceremony
from ca_stub.contracts import CAError, Profile
from letsencrypt.acme.crypto import generate_private_key, make_csr, split_pem_chain
from letsencrypt.acme.messages import Identifier

OCSP_URL = "http://127.0.0.1:4002/ocsp"
CRL_BASE = "http://127.0.0.1:4002/crl/"
ISSUERS_BASE = "http://127.0.0.1:4002/issuer"
PROFILE = Profile("classic", "90 days", datetime.timedelta(days=90), datetime.timedelta(days=30))
SHORT = Profile("shortlived", "6 days", datetime.timedelta(hours=160), datetime.timedelta(hours=7), common_name=False)
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> CeremonyResult:
    return run_ceremony(tmp_path_factory.mktemp("ca"), keys=FAST_KEYS)


@pytest.fixture(scope="module")
def ca(ceremony: CeremonyResult) -> SigningCA:
    return SigningCA(
        ceremony.data_dir, base_url_for_ocsp=OCSP_URL, crl_base_url=CRL_BASE, ca_issuers_base_url=ISSUERS_BASE
    )


def _issue(ca: SigningCA, key_type: Any, identifiers: list[Identifier], profile: Profile = PROFILE) -> x509.Certificate:
    csr = make_csr(generate_private_key(key_type), identifiers)
    issued = ca.issue(csr, identifiers, profile, None, None)
    return x509.load_der_x509_certificate(issued.der)


def _openssl_verify(tmp_path: Path, root_pem: str, chain_pem: str, leaf: x509.Certificate, *extra: str) -> str:
    (tmp_path / "root.pem").write_text(root_pem)
    (tmp_path / "chain.pem").write_text(chain_pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    run = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", "sslserver", *extra,
         "-CAfile", "root.pem", "-untrusted", "chain.pem", "leaf.pem"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
    )
    return run.stdout + run.stderr


@needs_openssl
@pytest.mark.parametrize("key_type", ["ec256", "ec384", "rsa2048"])
@pytest.mark.parametrize(
    ("identifier", "check"),
    [(Identifier.dns("www.example.test"), ("-verify_hostname", "www.example.test")),
     (Identifier.ip("192.0.2.7"), ("-verify_ip", "192.0.2.7")),
     (Identifier.ip("2001:db8::1"), ("-verify_ip", "2001:db8::1"))],
)
def test_both_chains_verify_with_openssl(
    ca: SigningCA, tmp_path: Path, key_type: Any, identifier: Identifier, check: tuple[str, str]
) -> None:
    csr = make_csr(generate_private_key(key_type), [identifier])
    issued = ca.issue(csr, [identifier], PROFILE, None, None)
    leaf = x509.load_der_x509_certificate(issued.der)
    default_root, alternate_root = ca.roots_pem()
    default_chain, alternate_chain = issued.chains
    assert "leaf.pem: OK" in _openssl_verify(tmp_path, default_root, default_chain, leaf, *check)
    assert "leaf.pem: OK" in _openssl_verify(tmp_path, alternate_root, alternate_chain, leaf, *check)
    # the chains are really different: each leads to its own root only
    assert "leaf.pem: OK" not in _openssl_verify(tmp_path, alternate_root, default_chain, leaf)
    assert "leaf.pem: OK" not in _openssl_verify(tmp_path, default_root, alternate_chain, leaf)


@needs_openssl
def test_management_bundles_verify_with_openssl(ca: SigningCA, tmp_path: Path) -> None:
    """``/roots/N`` and ``/intermediates/N`` (Pebble's management API) verify any leaf of hierarchy N."""
    identifiers = [Identifier.dns("a.example.test"), Identifier.dns("b.example.test")]
    for key_type in ("ec256", "rsa2048"):
        leaf = _issue(ca, key_type, identifiers)
        for root_pem, bundle in zip(ca.roots_pem(), ca.intermediates_pem(), strict=True):
            assert "leaf.pem: OK" in _openssl_verify(tmp_path, root_pem, bundle, leaf)


def test_roots_and_intermediates(ca: SigningCA, ceremony: CeremonyResult) -> None:
    roots = [split_pem_chain(pem) for pem in ca.roots_pem()]
    assert [len(chain) for chain in roots] == [1, 1]
    assert [str(chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) for chain in roots] == [
        "ca_stub Root X1", "ca_stub Root X2"
    ]
    assert ca.roots_pem()[0] == ceremony.root_certificates[0].read_text()
    bundles = [split_pem_chain(pem) for pem in ca.intermediates_pem()]
    for bundle, root in zip(bundles, roots, strict=True):
        names = [str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) for cert in bundle]
        assert names == ["ca_stub E1", "ca_stub R1"]
        for cert in bundle:
            cert.verify_directly_issued_by(root[0])
    assert ca.issuer_ids() == ("e1", "r1")


@pytest.mark.parametrize(("key_type", "issuer_id", "issuer_cn"), [("ec256", "e1", "ca_stub E1"),
                                                                   ("ec384", "e1", "ca_stub E1"),
                                                                   ("rsa2048", "r1", "ca_stub R1")])
def test_issuer_follows_key_type(ca: SigningCA, key_type: Any, issuer_id: str, issuer_cn: str) -> None:
    identifiers = [Identifier.dns("example.test")]
    issued = ca.issue(make_csr(generate_private_key(key_type), identifiers), identifiers, PROFILE, None, None)
    leaf = x509.load_der_x509_certificate(issued.der)
    assert issued.issuer_id == issuer_id
    assert leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == issuer_cn
    for chain in issued.chains:
        leaf.verify_directly_issued_by(split_pem_chain(chain)[0])
    assert leaf.signature_hash_algorithm is not None and leaf.signature_hash_algorithm.name == "sha256"
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert usage.value.key_encipherment is key_type.startswith("rsa")


def test_leaf_profile(ca: SigningCA) -> None:
    identifiers = [Identifier.dns("www.example.test"), Identifier.dns("example.test"), Identifier.ip("192.0.2.1")]
    key = generate_private_key("ec256")
    issued = ca.issue(make_csr(key, identifiers), identifiers, PROFILE, None, None)
    leaf = x509.load_der_x509_certificate(issued.der)

    assert leaf.public_key() == key.public_key()
    assert leaf.subject.rfc4514_string() == "CN=www.example.test"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical
    assert list(san.value) == [x509.DNSName("www.example.test"), x509.DNSName("example.test"),
                               x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    issuer = split_pem_chain(issued.chains[0])[0]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (AuthorityInformationAccessOID.OCSP, OCSP_URL),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{ISSUERS_BASE}/e1"),
    ]
    crl = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [name.value for point in crl for name in point.full_name or []] == ["http://127.0.0.1:4002/crl/e1"]
    assert ca.issuer_certificate_der("e1") == issuer.public_bytes(Encoding.DER)

    serial = leaf.serial_number
    assert issued.serial == format(serial, "x") == f"{serial:032x}"
    assert 1 << 126 <= serial < 1 << 127  # positive, 16 DER octets, never a leading zero digit
    assert issued.not_before == leaf.not_valid_before_utc and issued.not_after == leaf.not_valid_after_utc
    assert issued.not_after - issued.not_before == PROFILE.validity


def test_serials_are_unique(ca: SigningCA) -> None:
    identifiers = [Identifier.dns("example.test")]
    csr = make_csr(generate_private_key("ec256"), identifiers)
    serials = {ca.issue(csr, identifiers, PROFILE, None, None).serial for _ in range(20)}
    assert len(serials) == 20


def test_no_urls_configured(ceremony: CeremonyResult) -> None:
    bare = SigningCA(ceremony.data_dir, base_url_for_ocsp=None, crl_base_url=None)
    leaf = _issue(bare, "ec256", [Identifier.dns("example.test")])
    for extension in (x509.AuthorityInformationAccess, x509.CRLDistributionPoints):
        with pytest.raises(x509.ExtensionNotFound):
            leaf.extensions.get_extension_for_class(extension)


def test_common_name_rules(ca: SigningCA) -> None:
    long_name = "a" * 60 + ".example.test"
    leaf = _issue(ca, "ec256", [Identifier.dns(long_name), Identifier.dns("short.example.test")])
    assert len(leaf.subject) == 0  # the first DNS name does not fit 64 characters: no CN at all
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical  # RFC 5280 §4.2.1.6
    ip_only = _issue(ca, "ec256", [Identifier.ip("192.0.2.9")])
    assert len(ip_only.subject) == 0
    no_cn = _issue(ca, "ec256", [Identifier.dns("example.test")], SHORT)
    assert len(no_cn.subject) == 0
    assert no_cn.not_valid_after_utc - no_cn.not_valid_before_utc == SHORT.validity


def test_sans_are_the_identifiers_not_the_csr(ca: SigningCA) -> None:
    """The RA decides the names; the CA certifies exactly those, whatever else the CSR says."""
    csr = make_csr(generate_private_key("ec256"), [Identifier.dns("example.test"), Identifier.dns("extra.test")])
    issued = ca.issue(csr, [Identifier.dns("example.test")], PROFILE, None, None)
    leaf = x509.load_der_x509_certificate(issued.der)
    assert list(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == [
        x509.DNSName("example.test")
    ]


def test_must_staple_is_carried_over(ca: SigningCA) -> None:
    identifiers = [Identifier.dns("example.test")]
    csr = make_csr(generate_private_key("ec256"), identifiers, must_staple=True)
    leaf = x509.load_der_x509_certificate(ca.issue(csr, identifiers, PROFILE, None, None).der)
    assert list(leaf.extensions.get_extension_for_class(x509.TLSFeature).value) == [
        x509.TLSFeatureType.status_request
    ]


NOW = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture
def clocked_ca(ceremony: CeremonyResult) -> SigningCA:
    return SigningCA(ceremony.data_dir, base_url_for_ocsp=None, crl_base_url=None, clock=lambda: NOW)


def _window(
    ca: SigningCA, not_before: datetime.datetime | None, not_after: datetime.datetime | None
) -> x509.Certificate:
    identifiers = [Identifier.dns("example.test")]
    csr = make_csr(generate_private_key("ec256"), identifiers)
    return x509.load_der_x509_certificate(ca.issue(csr, identifiers, PROFILE, not_before, not_after).der)


def test_validity_defaults(clocked_ca: SigningCA) -> None:
    leaf = _window(clocked_ca, None, None)
    assert leaf.not_valid_before_utc == NOW - datetime.timedelta(minutes=1)
    assert leaf.not_valid_after_utc == leaf.not_valid_before_utc + PROFILE.validity


def test_requested_validity_is_honoured(clocked_ca: SigningCA) -> None:
    start, end = NOW + datetime.timedelta(hours=1), NOW + datetime.timedelta(days=10)
    leaf = _window(clocked_ca, start, end)
    assert (leaf.not_valid_before_utc, leaf.not_valid_after_utc) == (start, end)
    only_end = _window(clocked_ca, None, end)
    assert only_end.not_valid_after_utc == end
    only_start = _window(clocked_ca, start, None)
    assert only_start.not_valid_after_utc == start + PROFILE.validity


@pytest.mark.parametrize(
    ("not_before", "not_after", "message"),
    [
        (NOW, NOW + datetime.timedelta(days=91), "exceeds"),
        (NOW + datetime.timedelta(days=2), NOW + datetime.timedelta(days=1), "later than"),
        (NOW - datetime.timedelta(days=3), NOW - datetime.timedelta(days=2), "already passed"),
        (NOW - datetime.timedelta(days=2), NOW + datetime.timedelta(days=2), "in the past"),
    ],
)
def test_validity_outside_profile_is_malformed(
    clocked_ca: SigningCA, not_before: datetime.datetime, not_after: datetime.datetime, message: str
) -> None:
    with pytest.raises(CAError, match=message) as caught:
        _window(clocked_ca, not_before, not_after)
    assert caught.value.problem_type == "malformed"


def _tampered_csr() -> bytes:
    csr = bytearray(make_csr(generate_private_key("ec256"), [Identifier.dns("example.test")]))
    csr[-5] ^= 0x55  # inside the signature
    return bytes(csr)


@pytest.mark.parametrize(
    ("csr", "message"),
    [
        (b"not a csr", "cannot be parsed"),
        (_tampered_csr(), "signature"),
    ],
)
def test_bad_csr(ca: SigningCA, csr: bytes, message: str) -> None:
    with pytest.raises(CAError, match=message) as caught:
        ca.issue(csr, [Identifier.dns("example.test")], PROFILE, None, None)
    assert caught.value.problem_type == "badCSR"


def test_csr_with_unsupported_key(ca: SigningCA) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.test")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, None)
    with pytest.raises(CAError, match="Ed25519") as caught:
        ca.issue(csr.public_bytes(Encoding.DER), [Identifier.dns("example.test")], PROFILE, None, None)
    assert caught.value.problem_type == "badCSR"


def test_empty_identifiers_are_refused(ca: SigningCA) -> None:
    csr = make_csr(generate_private_key("ec256"), [Identifier.dns("example.test")])
    with pytest.raises(CAError) as caught:
        ca.issue(csr, [], PROFILE, None, None)
    assert caught.value.problem_type == "malformed"


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(CAStateError, match="run the key ceremony"):
        SigningCA(tmp_path, base_url_for_ocsp=None, crl_base_url=None)


def test_swapped_intermediate_key_is_detected(tmp_path: Path) -> None:
    run_ceremony(tmp_path, keys=FAST_KEYS)
    (tmp_path / "issuers/e1.key.pem").write_bytes((tmp_path / "issuers/r1.key.pem").read_bytes())
    with pytest.raises(CAStateError, match="issuer 'e1'"):
        SigningCA(tmp_path, base_url_for_ocsp=None, crl_base_url=None)


def _issue_once(ca: SigningCA) -> None:
    leaf = _issue(ca, "rsa2048", [Identifier.dns("example.test")])
    ocsp_request = b"\x30\x00"
    assert ca.ocsp_response(ocsp_request, lambda serial: None)
    assert ca.crl("r1", [])
    assert leaf.serial_number > 0


def test_root_keys_are_never_read(tmp_path: Path) -> None:
    """SigningCA works with the offline directory gone, and opens no file below it while it exists."""
    result = run_ceremony(tmp_path / "data", keys=FAST_KEYS)
    offline = result.offline_dir.resolve()
    opened: list[str] = []
    recording = True

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if recording and event == "open" and isinstance(args[0], str | bytes | Path):
            opened.append(str(Path(str(args[0] if not isinstance(args[0], bytes) else args[0].decode())).resolve()))

    sys.addaudithook(audit)  # cannot be removed: ``recording`` turns it off at the end
    try:
        ca = SigningCA(result.data_dir, base_url_for_ocsp=OCSP_URL, crl_base_url=CRL_BASE)
        _issue_once(ca)
    finally:
        recording = False
    assert any(path.endswith("e1.key.pem") for path in opened), "the audit hook saw no key being read"
    assert not [path for path in opened if path.startswith(str(offline))]

    shutil.rmtree(result.offline_dir)  # chmod 000 would not stop root, who runs these tests in CI
    _issue_once(SigningCA(result.data_dir, base_url_for_ocsp=OCSP_URL, crl_base_url=CRL_BASE))


def test_unreadable_offline_dir(tmp_path: Path) -> None:
    result = run_ceremony(tmp_path, keys=FAST_KEYS)
    result.offline_dir.chmod(0)
    try:
        _issue_once(SigningCA(tmp_path, base_url_for_ocsp=None, crl_base_url=None))
    finally:
        result.offline_dir.chmod(0o700)


def test_leaf_signature_verifies_with_intermediate_key(ca: SigningCA) -> None:
    for key_type in ("ec256", "rsa2048"):
        identifiers = [Identifier.dns("example.test")]
        issued = ca.issue(make_csr(generate_private_key(key_type), identifiers), identifiers, PROFILE, None, None)
        leaf = x509.load_der_x509_certificate(issued.der)
        public_key = split_pem_chain(issued.chains[0])[0].public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            public_key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
