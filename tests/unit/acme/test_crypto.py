"""Tests for letsencrypt.acme.crypto: keys, CSRs, PEM chains and preferred-chain selection."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from letsencrypt.acme import crypto
from letsencrypt.acme.errors import ChainNotFound, MessageError
from letsencrypt.acme.messages import Identifier

NOW = datetime.datetime.now(datetime.UTC)


# --- a small PKI, made at test time ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Issuer:
    key: ec.EllipticCurvePrivateKey
    name: x509.Name


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: Issuer,
    *,
    ca: bool,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


def _root(cn: str) -> Issuer:
    return Issuer(ec.generate_private_key(ec.SECP256R1()), _name(cn))


@dataclasses.dataclass(frozen=True)
class TwoPKIs:
    """Root A -> intermediate -> leaf, and root B -> same-named intermediate (same key) -> leaf.

    ``chain_b_long`` also carries root B cross-signed by "Old Root", like ISRG Root X1 under
    DST Root CA X3: its top-most issuer is "Old Root", and "Root B" only issues a middle link.
    """

    leaf: x509.Certificate
    chain_a: str
    chain_b: str
    chain_b_long: str


@pytest.fixture(scope="module")
def pkis() -> TwoPKIs:
    root_a, root_b, old_root = _root("Root A"), _root("Root B"), _root("Old Root")
    intermediate = Issuer(ec.generate_private_key(ec.SECP256R1()), _name("Shared Intermediate"))
    inter_a = _issue(intermediate.name, intermediate.key.public_key(), root_a, ca=True)
    inter_b = _issue(intermediate.name, intermediate.key.public_key(), root_b, ca=True)
    cross_b = _issue(root_b.name, root_b.key.public_key(), old_root, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _issue(
        _name("example.com"),
        leaf_key.public_key(),
        intermediate,
        ca=False,
        sans=[x509.DNSName("example.com"), x509.IPAddress(ipaddress.ip_address("192.0.2.1"))],
    )
    return TwoPKIs(
        leaf=leaf,
        chain_a=crypto.pem_of([leaf, inter_a]),
        chain_b=crypto.pem_of([leaf, inter_b]),
        chain_b_long=crypto.pem_of([leaf, inter_b, cross_b]),
    )


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "display"),
    [("rsa2048", "RSA 2048"), ("rsa3072", "RSA 3072"), ("ec256", "ECDSA P-256"), ("ec384", "ECDSA P-384")],
)
def test_generate_private_key_and_display_name(key_type: crypto.CertKeyType, display: str) -> None:
    key = crypto.generate_private_key(key_type)
    assert crypto.key_type_of(key) == display
    assert crypto.key_type_of(key.public_key()) == display


def test_generate_rejects_unknown_key_type() -> None:
    with pytest.raises(ValueError, match="ed25519"):
        crypto.generate_private_key("ed25519")  # type: ignore[arg-type]


def test_key_type_of_ed25519_for_display() -> None:
    assert crypto.key_type_of(ed25519.Ed25519PrivateKey.generate()) == "Ed25519"


def test_private_key_pem_round_trip() -> None:
    key = crypto.generate_private_key("ec384")
    pem = crypto.private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = crypto.load_private_key(pem.decode("ascii"))
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.private_numbers()


def test_load_private_key_reads_pkcs1_rsa() -> None:
    key = rsa.generate_private_key(65537, 2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert crypto.key_type_of(crypto.load_private_key(pem)) == "RSA 2048"


def test_load_private_key_errors() -> None:
    with pytest.raises(MessageError, match="not a PEM private key"):
        crypto.load_private_key(b"garbage")
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(MessageError, match="RSA or ECDSA, not Ed25519"):
        crypto.load_private_key(ed_pem)
    encrypted = crypto.generate_private_key("ec256").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(MessageError, match="encrypted"):
        crypto.load_private_key(encrypted)


# --- CSRs ------------------------------------------------------------------------------------


def test_csr_with_dns_ipv4_ipv6_round_trips() -> None:
    key = crypto.generate_private_key("ec256")
    identifiers = [
        Identifier.dns("Example.COM"),
        Identifier.ip("192.0.2.1"),
        Identifier.ip("2001:DB8:0:0::1"),
        Identifier.dns("www.example.com"),
        Identifier.dns("example.com"),  # a repeat is dropped
    ]
    der = crypto.make_csr(key, identifiers)
    assert crypto.csr_identifiers(der) == (
        Identifier("dns", "example.com"),
        Identifier("dns", "www.example.com"),
        Identifier("ip", "192.0.2.1"),
        Identifier("ip", "2001:db8::1"),
    )
    csr = x509.load_der_x509_csr(der)
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.com"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.1"),
        ipaddress.ip_address("2001:db8::1"),
    ]
    assert crypto.csr_signature_valid(der)
    pem = csr.public_bytes(serialization.Encoding.PEM)
    assert crypto.csr_identifiers(pem.decode("ascii")) == crypto.csr_identifiers(der)


def test_csr_with_long_first_name_has_no_cn() -> None:
    long_name = "a" * 60 + ".example.com"
    assert len(long_name) > 64
    der = crypto.make_csr(crypto.generate_private_key("rsa2048"), [Identifier.dns(long_name)])
    csr = x509.load_der_x509_csr(der)
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    assert crypto.csr_identifiers(der) == (Identifier("dns", long_name),)


def test_csr_for_ip_only_has_no_cn() -> None:
    der = crypto.make_csr(crypto.generate_private_key("ec256"), [Identifier.ip("198.51.100.7")])
    assert x509.load_der_x509_csr(der).subject == x509.Name([])
    assert crypto.csr_identifiers(der) == (Identifier("ip", "198.51.100.7"),)


def test_csr_must_staple_and_p384_hash() -> None:
    der = crypto.make_csr(crypto.generate_private_key("ec384"), [Identifier.dns("a.test")], must_staple=True)
    csr = x509.load_der_x509_csr(der)
    feature = csr.extensions.get_extension_for_class(x509.TLSFeature).value
    assert list(feature) == [x509.TLSFeatureType.status_request]
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA384)


def test_make_csr_rejects_no_identifiers() -> None:
    with pytest.raises(ValueError, match="at least one identifier"):
        crypto.make_csr(crypto.generate_private_key("ec256"), [])


def test_tampered_csr_fails_signature_check() -> None:
    der = crypto.make_csr(crypto.generate_private_key("ec256"), [Identifier.dns("example.com")])
    tampered = der.replace(b"example.com", b"exbmple.com")
    assert tampered != der
    assert not crypto.csr_signature_valid(tampered)
    assert crypto.csr_signature_valid(der)


def test_csr_cn_only_counts() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name("Only.CN.test")).sign(key, hashes.SHA256())
    assert crypto.csr_identifiers(csr) == (Identifier("dns", "only.cn.test"),)


def test_csr_with_email_san_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("a.test"), x509.RFC822Name("me@a.test")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(MessageError, match="unsupported subjectAltName"):
        crypto.csr_identifiers(csr)


def test_unparseable_csr_is_a_message_error() -> None:
    with pytest.raises(MessageError, match="not a certificate signing request"):
        crypto.csr_identifiers(b"\x30\x03junk")
    with pytest.raises(MessageError):
        crypto.csr_signature_valid("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")


# --- PEM chains ------------------------------------------------------------------------------


def test_split_pem_chain_round_trip(pkis: TwoPKIs) -> None:
    certs = crypto.split_pem_chain("leading text\n" + pkis.chain_b_long + "\ntrailing\n")
    assert len(certs) == 3
    assert certs[0] == pkis.leaf
    assert crypto.pem_of(certs) == pkis.chain_b_long


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no certificate"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "holds no certificate"),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n", r"certificate 1 .* has no"),
        ("-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n", r"certificate 1 .* parsed"),
    ],
)
def test_split_pem_chain_errors(text: str, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        crypto.split_pem_chain(text)


def test_split_pem_chain_names_the_broken_certificate(pkis: TwoPKIs) -> None:
    truncated = pkis.chain_a.rsplit("-----END CERTIFICATE-----", 1)[0]  # second block loses its END line
    with pytest.raises(MessageError, match="certificate 2 "):
        crypto.split_pem_chain(truncated)
    first_end = pkis.chain_a.index("-----END CERTIFICATE-----")
    missing_end = pkis.chain_a[:first_end] + pkis.chain_a[first_end + len("-----END CERTIFICATE-----") :]
    with pytest.raises(MessageError, match=r"certificate 1 .* has no"):
        crypto.split_pem_chain(missing_end)


def test_certificate_chain_properties(pkis: TwoPKIs) -> None:
    chain = crypto.CertificateChain(pkis.chain_b_long)
    assert chain.leaf == pkis.leaf
    assert len(chain.intermediates) == 2
    assert chain.top_issuer_name == "Old Root"
    assert chain.issuer_names == ("Shared Intermediate", "Root B", "Old Root")
    assert chain.leaf_pem + chain.chain_pem == pkis.chain_b_long
    assert crypto.CertificateChain.from_certificates(chain.certificates) == chain
    with pytest.raises(MessageError):
        crypto.CertificateChain("no certificates here")


# --- preferred chain -------------------------------------------------------------------------


def test_select_chain_by_top_issuer(pkis: TwoPKIs) -> None:
    chains = [pkis.chain_a, pkis.chain_b]
    assert crypto.select_chain(chains, "Root B") == pkis.chain_b
    assert crypto.select_chain(chains, "Root A") == pkis.chain_a
    assert crypto.select_chain(list(reversed(chains)), "Root A") == pkis.chain_a


def test_select_chain_default_when_no_match(pkis: TwoPKIs) -> None:
    chains = [pkis.chain_a, pkis.chain_b]
    assert crypto.select_chain(chains, None) == pkis.chain_a
    assert crypto.select_chain(chains, "Nobody") == pkis.chain_a
    assert crypto.select_chain(chains, "root b") == pkis.chain_a  # exact, case-sensitive, like certbot


def test_select_chain_second_pass_matches_any_issuer(pkis: TwoPKIs) -> None:
    chains = [pkis.chain_a, pkis.chain_b_long]
    assert crypto.select_chain(chains, "Old Root") == pkis.chain_b_long
    assert crypto.select_chain(chains, "Root B") == pkis.chain_b_long  # a middle link's issuer
    # the top-most issuer wins over a middle link found earlier in the list
    assert crypto.select_chain([pkis.chain_b_long, pkis.chain_b], "Root B") == pkis.chain_b


def test_select_chain_strict_raises_listing_issuers(pkis: TwoPKIs) -> None:
    chains = [pkis.chain_a, pkis.chain_b]
    assert crypto.select_chain(chains, "Root B", strict=True) == pkis.chain_b
    assert crypto.select_chain(chains, None, strict=True) == pkis.chain_a
    with pytest.raises(ChainNotFound, match=r"'Nobody'.*'Root A', 'Root B'"):
        crypto.select_chain(chains, "Nobody", strict=True)


def test_select_chain_needs_a_chain() -> None:
    with pytest.raises(ValueError, match="default chain"):
        crypto.select_chain([], "Root A")


# --- certificate facts -----------------------------------------------------------------------


def test_certificate_names_and_validity(pkis: TwoPKIs) -> None:
    assert crypto.certificate_names(pkis.leaf) == (Identifier("dns", "example.com"), Identifier("ip", "192.0.2.1"))
    assert crypto.not_before(pkis.leaf).tzinfo == datetime.UTC
    assert crypto.not_after(pkis.leaf) - crypto.not_before(pkis.leaf) == datetime.timedelta(days=90, hours=1)
    root_only = crypto.split_pem_chain(pkis.chain_a)[1]
    assert crypto.certificate_names(root_only) == ()
