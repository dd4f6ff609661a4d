"""Certificate-side helpers shared by the client and the test CA.

Certificate keys, CSRs (RFC 2986, RFC 8555 §7.4, IP SANs per RFC 8738 §3), PEM chains as the
certificate URL serves them (``application/pem-certificate-chain``, RFC 8555 §7.4.2, leaf first)
and certbot-style ``--preferred-chain`` selection among the alternate chains (RFC 8555 §7.4.2,
``Link: rel="alternate"``). Account keys and JWS live in ``letsencrypt.acme.jws``.

Every parse failure of outside input raises ``MessageError``; misuse by the caller (an unknown
key type, a CSR without identifiers) raises ``ValueError``. Imports: stdlib, cryptography and
``letsencrypt.acme`` only; nothing here touches the disk.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from letsencrypt.acme import _der
from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.errors import ChainNotFound, MessageError
from letsencrypt.acme.messages import Identifier
from letsencrypt.acme.records import record

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
else:
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")  # its package imports ssh
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

__all__ = [
    "CertKeyType",
    "CertPrivateKey",
    "CertificateChain",
    "CertificateFacts",
    "certificate_facts",
    "certificate_names",
    "csr_identifiers",
    "csr_signature_valid",
    "generate_private_key",
    "key_type_of",
    "load_csr",
    "load_private_key",
    "make_csr",
    "not_after",
    "not_before",
    "pem_of",
    "pem_of_der",
    "private_key_to_pem",
    "select_chain",
    "split_pem_chain",
    "split_pem_der",
]

CertKeyType = Literal["rsa2048", "rsa3072", "rsa4096", "ec256", "ec384"]
CertPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_CURVES: dict[str, ec.EllipticCurve] = {"ec256": ec.SECP256R1(), "ec384": ec.SECP384R1()}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_MAX_CN_LENGTH = 64  # ub-common-name, RFC 5280 appendix A.1
_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"
_OID_COMMON_NAME = "2.5.4.3"
_OID_SUBJECT_ALT_NAME = "2.5.29.17"
_OID_TLS_FEATURE = "1.3.6.1.5.5.7.1.24"
_OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
_OID_ECDSA_WITH = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3"}
_OID_RSA_WITH = {"sha256": "1.2.840.113549.1.1.11", "sha384": "1.2.840.113549.1.1.12"}


# --- keys ----------------------------------------------------------------------------------


def generate_private_key(key_type: CertKeyType = "ec256") -> CertPrivateKey:
    """A fresh certificate key: RSA with e=65537, or ECDSA on P-256 / P-384."""
    if key_type in ("rsa2048", "rsa3072", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type])
    raise ValueError(f"unknown certificate key type {key_type!r}; expected one of {get_args(CertKeyType)}")


def key_type_of(key: PrivateKeyTypes | PublicKeyTypes) -> str:
    """A display name such as ``RSA 2048`` or ``ECDSA P-256`` for a private or public key."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"ECDSA {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def private_key_to_pem(key: CertPrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM (``BEGIN PRIVATE KEY``), the form web servers and certbot read."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes | str) -> CertPrivateKey:
    """An unencrypted PEM certificate key (PKCS#8, PKCS#1 or SEC1); RSA or ECDSA only."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as err:  # cryptography says "password was not given but private key is encrypted"
        raise MessageError(f"the private key is encrypted; give an unencrypted key: {err}") from err
    except (ValueError, UnsupportedAlgorithm) as err:
        raise MessageError(f"not a PEM private key: {err}") from err
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise MessageError(f"a certificate key must be RSA or ECDSA, not {key_type_of(key)}")
    return key


# --- certificate signing requests ----------------------------------------------------------


def make_csr(private_key: CertPrivateKey, identifiers: Sequence[Identifier], *, must_staple: bool = False) -> bytes:
    """A DER CSR naming ``identifiers`` for the finalize request (RFC 8555 §7.4).

    Every identifier goes into the subjectAltName: ``dns`` as dNSName, ``ip`` as iPAddress
    (RFC 8738 §3). The subject CN is the first DNS name when it fits the 64-character limit of
    RFC 5280, else the subject is empty. ``must_staple`` adds the TLS Feature extension with
    ``status_request`` (RFC 7633). Duplicates are dropped, order is kept.

    Written as DER here (RFC 2986; the same bytes ``cryptography.x509``'s builder writes, which
    the tests check), signed with the key: a run then needs no ``cryptography.x509`` at all.
    """
    unique = list(dict.fromkeys(identifiers))
    if not unique:
        raise ValueError("a CSR needs at least one identifier")
    names: list[bytes] = []
    for identifier in unique:
        if identifier.type == "dns":
            names.append(_der.context(2, identifier.value.encode("ascii"), constructed=False))  # dNSName
        elif identifier.type == "ip":
            packed = ipaddress.ip_address(identifier.value).packed
            names.append(_der.context(7, packed, constructed=False))  # iPAddress
        else:
            raise ValueError(f"cannot put identifier type {identifier.type!r} into a CSR")
    dns_names = [identifier.value for identifier in unique if identifier.type == "dns"]
    subject = b""
    if dns_names and len(dns_names[0]) <= _MAX_CN_LENGTH:
        subject = _der.set_of(_der.sequence(_der.oid(_OID_COMMON_NAME), _der.utf8_string(dns_names[0])))
    extensions = [_der.sequence(_der.oid(_OID_SUBJECT_ALT_NAME), _der.octet_string(_der.sequence(*names)))]
    if must_staple:
        status_request = _der.sequence(_der.integer(5))
        extensions.append(_der.sequence(_der.oid(_OID_TLS_FEATURE), _der.octet_string(status_request)))
    spki = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attributes = _der.sequence(_der.oid(_OID_EXTENSION_REQUEST), _der.set_of(_der.sequence(*extensions)))
    info = _der.sequence(_der.integer(0), _der.sequence(subject), spki, _der.context(0, attributes, constructed=True))
    digest = _hash_for(private_key)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        signature = private_key.sign(info, ec.ECDSA(digest))
        algorithm = _der.sequence(_der.oid(_OID_ECDSA_WITH[digest.name]))
    else:
        signature = private_key.sign(info, padding.PKCS1v15(), digest)
        algorithm = _der.sequence(_der.oid(_OID_RSA_WITH[digest.name]), _der.encode(_der.NULL, b""))
    return _der.sequence(info, algorithm, _der.bit_string(signature))


def _hash_for(key: CertPrivateKey) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def load_csr(csr: bytes | str | x509.CertificateSigningRequest) -> x509.CertificateSigningRequest:
    """A CSR from DER or PEM (an already parsed one is returned as is); ``MessageError`` if neither."""
    if isinstance(csr, x509.CertificateSigningRequest):
        return csr
    data = csr.encode("ascii", "replace") if isinstance(csr, str) else csr
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as err:
        raise MessageError(f"not a certificate signing request: {err}") from err


def csr_identifiers(csr: bytes | str | x509.CertificateSigningRequest) -> tuple[Identifier, ...]:
    """The identifiers a CSR names, from its subjectAltName and subject CN (RFC 8555 §7.4).

    Lowercased and canonical (``Identifier.dns`` / ``Identifier.ip``), deduplicated and sorted
    by (type, value), so that a CA compares it with the order's identifiers directly. A CN that
    reads as an IP address becomes an ``ip`` identifier. ``MessageError`` for a CSR that cannot be
    parsed or that carries a subjectAltName other than dNSName or iPAddress (e-mail, URI, ...),
    which no ACME order can authorize.
    """
    request = load_csr(csr)
    found: set[Identifier] = set()
    common_names = request.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    except ValueError as err:  # duplicate or malformed extensions
        raise MessageError(f"CSR extensions cannot be parsed: {err}") from err
    for attribute in common_names:
        value = attribute.value
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if text.strip():
            found.add(Identifier.parse(text))
    for name in san:
        found.add(_identifier_of(name, "CSR"))
    return tuple(sorted(found, key=lambda identifier: (identifier.type, identifier.value)))


def _identifier_of(name: x509.GeneralName, where: str) -> Identifier:
    if isinstance(name, x509.DNSName):
        return Identifier.dns(name.value)
    if isinstance(name, x509.IPAddress):
        address = name.value
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return Identifier.ip(str(address))
    raise MessageError(f"{where} names an unsupported subjectAltName: {name!r}")


def csr_signature_valid(csr: bytes | str | x509.CertificateSigningRequest) -> bool:
    """Whether the CSR is signed by the key it carries (RFC 2986 §3, proof of possession).

    ``MessageError`` when the CSR cannot be parsed at all.
    """
    try:
        return load_csr(csr).is_signature_valid
    except UnsupportedAlgorithm:
        return False


# --- certificates and chains ---------------------------------------------------------------


def split_pem_chain(text: str) -> list[x509.Certificate]:
    """The certificates of a PEM chain in order (leaf first, RFC 8555 §7.4.2).

    Text between blocks is ignored. ``MessageError`` naming the problem when there is no
    certificate, when a ``BEGIN CERTIFICATE`` has no ``END`` line, or when a block is not a
    certificate.
    """
    certificates: list[x509.Certificate] = []
    for number, der in enumerate(split_pem_der(text), start=1):
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as err:
            raise MessageError(f"certificate {number} of the PEM chain cannot be parsed: {err}") from err
    return certificates


def split_pem_der(text: str) -> list[bytes]:
    """The DER of each certificate of a PEM chain, in order, each checked to be framed as a certificate.

    ``split_pem_chain`` without ``cryptography.x509``: the same errors for a missing ``END`` line, no
    certificate, or a block whose base64 or DER frame is not a certificate's (``certificate_facts``).
    What lies inside the frame (extensions, names) is not checked here.
    """
    blocks: list[bytes] = []
    position = 0
    while (start := text.find(_BEGIN, position)) != -1:
        number = len(blocks) + 1
        end = text.find(_END, start)
        next_begin = text.find(_BEGIN, start + len(_BEGIN))
        if end == -1 or (next_begin != -1 and next_begin < end):
            raise MessageError(f"certificate {number} of the PEM chain has no '{_END}' line")
        body = "".join(text[start + len(_BEGIN):end].split())
        try:
            der = base64.b64decode(body, validate=True)
            certificate_facts(der)
        except (binascii.Error, ValueError) as err:
            raise MessageError(f"certificate {number} of the PEM chain cannot be parsed: {err}") from err
        blocks.append(der)
        position = end + len(_END)
    if not blocks:
        raise MessageError(f"the PEM chain holds no certificate (no '{_BEGIN}' line)")
    return blocks


def pem_of(certificates: Iterable[x509.Certificate]) -> str:
    """The PEM text of ``certificates``, concatenated in the order given."""
    return pem_of_der(cert.public_bytes(serialization.Encoding.DER) for cert in certificates)


def pem_of_der(certificates: Iterable[bytes]) -> str:
    """The PEM text of DER certificates, as ``pem_of`` writes it (64 base64 characters a line)."""
    out = []
    for der in certificates:
        encoded = base64.b64encode(der).decode("ascii")
        lines = "\n".join(encoded[i:i + 64] for i in range(0, len(encoded), 64))
        out.append(f"{_BEGIN}\n{lines}\n{_END}\n")
    return "".join(out)


@record
class CertificateFacts:
    """What a run reads of the certificate it got, from the DER: the key it certifies and its validity."""

    spki: bytes  # the subjectPublicKeyInfo, DER
    not_before: datetime.datetime
    not_after: datetime.datetime


def certificate_facts(der: bytes) -> CertificateFacts:
    """Read ``der`` as a Certificate (RFC 5280 §4.1) far enough for ``CertificateFacts``; ``ValueError`` if not one.

    The frame is checked: one SEQUENCE filling the bytes, of tbsCertificate, signatureAlgorithm
    and a BIT STRING; a tbsCertificate of [0] version (optional), serial, algorithm, issuer,
    validity (two times), subject and subjectPublicKeyInfo.
    """
    tag, start, end = _der.read(der)
    if tag != _der.SEQUENCE or end != len(der):
        raise _der.DERError("not one DER SEQUENCE")
    outer = _der.children(der, start, end)
    if [item[0] for item in outer] != [_der.SEQUENCE, _der.SEQUENCE, _der.BIT_STRING]:
        raise _der.DERError("not a certificate: it is not tbsCertificate, algorithm, signature")
    tbs = _der.children(der, outer[0][1], outer[0][2])
    if tbs and tbs[0][0] == 0xA0:  # [0] EXPLICIT version
        tbs = tbs[1:]
    if len(tbs) < 6 or [item[0] for item in tbs[:6]] != [
        _der.INTEGER, _der.SEQUENCE, _der.SEQUENCE, _der.SEQUENCE, _der.SEQUENCE, _der.SEQUENCE,
    ]:
        raise _der.DERError("not a certificate: tbsCertificate lacks serial, issuer, validity, subject or key")
    validity = _der.children(der, tbs[3][1], tbs[3][2])
    if len(validity) != 2:
        raise _der.DERError("not a certificate: the validity is not two times")
    not_before, not_after = (_der.time_value(kind, der[first:last]) for kind, first, last in validity)
    spki_start = tbs[4][2]  # TLVs follow each other: the key's starts where the subject's ends
    return CertificateFacts(der[spki_start:tbs[5][2]], not_before, not_after)


def _common_name(name: x509.Name) -> str | None:
    attributes = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@record
class CertificateChain:
    """A downloaded chain (RFC 8555 §7.4.2): leaf first, then the intermediates.

    ``pem`` is kept as served; ``certificates`` is parsed from it on construction, so a
    ``CertificateChain`` always holds at least one valid certificate (``MessageError`` otherwise).
    """

    pem: str
    certificates: tuple[x509.Certificate, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "certificates", tuple(split_pem_chain(self.pem)))

    @classmethod
    def from_certificates(cls, certificates: Iterable[x509.Certificate]) -> CertificateChain:
        return cls(pem_of(certificates))

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.certificates[1:]

    @property
    def leaf_pem(self) -> str:
        """The leaf alone: certbot's ``cert.pem``."""
        return pem_of(self.certificates[:1])

    @property
    def chain_pem(self) -> str:
        """The intermediates alone: certbot's ``chain.pem`` (empty when the CA sent none)."""
        return pem_of(self.intermediates)

    @property
    def top_issuer_name(self) -> str | None:
        """The issuer CN of the top-most certificate: what ``--preferred-chain`` matches first."""
        return _common_name(self.certificates[-1].issuer)

    @property
    def issuer_names(self) -> tuple[str, ...]:
        """The issuer CN of every certificate that has one, leaf first."""
        names = (_common_name(cert.issuer) for cert in self.certificates)
        return tuple(name for name in names if name is not None)


def select_chain(chains: Sequence[str], preferred_issuer: str | None, *, strict: bool = False) -> str:
    """The chain to install among the default and alternate chains (RFC 8555 §7.4.2).

    certbot's ``--preferred-chain`` semantics: the first chain whose top-most certificate's
    issuer CN equals ``preferred_issuer`` (exact, case-sensitive); failing that, the first chain
    in which any certificate's issuer CN equals it; failing that, ``chains[0]``, the default
    chain. With ``strict``, no match raises ``ChainNotFound`` listing the issuers offered
    instead. ``MessageError`` if a chain cannot be parsed; ``ValueError`` if ``chains`` is empty.
    """
    if not chains:
        raise ValueError("select_chain needs at least the default chain")
    if preferred_issuer is None:
        return chains[0]
    parsed = [CertificateChain(pem) for pem in chains]
    for chain in parsed:
        if chain.top_issuer_name == preferred_issuer:
            return chain.pem
    for chain in parsed:
        if preferred_issuer in chain.issuer_names:
            return chain.pem
    if strict:
        offered = dict.fromkeys(repr(chain.top_issuer_name) for chain in parsed)
        raise ChainNotFound(
            f"no chain is issued by {preferred_issuer!r}; the CA offered chains whose top issuers are "
            f"{', '.join(offered)} (the first is the default)"
        )
    return chains[0]


def certificate_names(cert: x509.Certificate) -> tuple[Identifier, ...]:
    """The dNSName and iPAddress subjectAltNames of ``cert``, in certificate order, without repeats.

    Other name types are skipped (this is for display and renewal, not for policy).
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    found: dict[Identifier, None] = {}
    for name in san:
        if isinstance(name, x509.DNSName | x509.IPAddress):
            try:
                found[_identifier_of(name, "certificate")] = None
            except (MessageError, ValueError):
                continue
    return tuple(found)


def not_before(cert: x509.Certificate) -> datetime.datetime:
    """The start of the validity period, as an aware UTC datetime (RFC 5280 §4.1.2.5)."""
    return cert.not_valid_before_utc


def not_after(cert: x509.Certificate) -> datetime.datetime:
    """The end of the validity period, as an aware UTC datetime (RFC 5280 §4.1.2.5)."""
    return cert.not_valid_after_utc
