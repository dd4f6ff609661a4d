"""The serving CA's key material: the manifest, intermediate keys and certificates, root certificates.

Root private keys are never opened: the manifest does not even name them (the ceremony keeps them
offline). Everything is checked when loaded, so a broken data directory fails at start-up with a
message naming the file, not at the first issuance: every chain certificate carries its issuer's
subject and key, and each chain ends at a certificate its root signed.

Imports: stdlib, cryptography, ``ca_stub.contracts``, ``letsencrypt.acme``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from ca_stub.contracts import CA_MANIFEST_NAME, CAManifest, ManifestIssuer
from letsencrypt.acme.crypto import CertPrivateKey, load_private_key, pem_of, split_pem_chain
from letsencrypt.acme.errors import MessageError

__all__ = ["CAStateError", "Issuer", "KeyMaterial", "key_bits", "load_key_material"]


class CAStateError(Exception):
    """The data directory holds no usable CA: no manifest (run the ceremony), or a broken file."""


def key_bits(public_key: PublicKeyTypes) -> bytes:
    """The subjectPublicKey BIT STRING contents (RFC 5280 §4.1.2.7), what OCSP's issuerKeyHash hashes."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    raise TypeError(f"issuer keys are RSA or ECDSA, not {type(public_key).__name__}")


@dataclasses.dataclass(frozen=True, slots=True)
class Issuer:
    """One intermediate: its key, its certificate in the default hierarchy, and every chain's PEM."""

    id: str
    name: str
    key: CertPrivateKey
    certificate: x509.Certificate  # the default hierarchy's; all chains share its subject and key
    chains_pem: tuple[str, ...]  # one per root, default first; the issuer's own certificate first
    subject_key_id: bytes

    def matches_hashes(self, algorithm: hashes.HashAlgorithm, name_hash: bytes, key_hash: bytes) -> bool:
        """Whether an OCSP CertID's issuer hashes (RFC 6960 §4.1.1) name this issuer."""
        name_digest = hashes.Hash(algorithm)
        name_digest.update(self.certificate.subject.public_bytes())
        key_digest = hashes.Hash(algorithm)
        key_digest.update(key_bits(self.certificate.public_key()))
        return name_digest.finalize() == name_hash and key_digest.finalize() == key_hash

    def signs_for(self, public_key: PublicKeyTypes) -> bool:
        """Whether this issuer signs leaves with ``public_key``'s algorithm (RSA leaf, RSA issuer)."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            return isinstance(public_key, rsa.RSAPublicKey)
        return isinstance(public_key, ec.EllipticCurvePublicKey)


@dataclasses.dataclass(frozen=True, slots=True)
class KeyMaterial:
    issuers: tuple[Issuer, ...]
    roots: tuple[x509.Certificate, ...]  # default first


def load_key_material(data_dir: Path) -> KeyMaterial:
    """Read ``ca.json`` and what it names; ``CAStateError`` saying what is missing or wrong."""
    manifest_path = data_dir / CA_MANIFEST_NAME
    try:
        manifest = CAManifest.from_json(json.loads(manifest_path.read_text()))
    except FileNotFoundError as err:
        raise CAStateError(f"{manifest_path} does not exist: run the key ceremony (ca-stub ceremony) first") from err
    except (OSError, ValueError) as err:
        raise CAStateError(f"cannot read the CA manifest {manifest_path}: {err}") from err
    roots = tuple(_read_certificates(data_dir, root.certificate)[0] for root in manifest.roots)
    issuers = tuple(_load_issuer(data_dir, entry, roots) for entry in manifest.issuers)
    if not issuers:
        raise CAStateError(f"the CA manifest {manifest_path} names no issuer")
    return KeyMaterial(issuers=issuers, roots=roots)


def _load_issuer(data_dir: Path, entry: ManifestIssuer, roots: tuple[x509.Certificate, ...]) -> Issuer:
    try:
        key = load_private_key((data_dir / entry.key).read_bytes())
    except (OSError, MessageError) as err:
        raise CAStateError(f"cannot load the key of issuer {entry.id!r} from {data_dir / entry.key}: {err}") from err
    chains = [[cert for path in chain for cert in _read_certificates(data_dir, path)] for chain in entry.chains]
    if not all(chains):
        raise CAStateError(f"issuer {entry.id!r}: the CA manifest lists an empty chain")
    expected = _spki(key.public_key())
    for chain, root in zip(chains, roots, strict=True):
        if _spki(chain[0].public_key()) != expected or chain[0].subject != chains[0][0].subject:
            raise CAStateError(f"issuer {entry.id!r}: a chain certificate does not carry the issuer's key and name")
        try:
            chain[-1].verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as err:
            raise CAStateError(
                f"issuer {entry.id!r}: the chain does not lead to root {root.subject.rfc4514_string()}: {err!r}"
            ) from err
    certificate = chains[0][0]
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return Issuer(
        id=entry.id, name=entry.name, key=key, certificate=certificate,
        chains_pem=tuple(pem_of(chain) for chain in chains), subject_key_id=ski,
    )


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _read_certificates(data_dir: Path, relative: str) -> list[x509.Certificate]:
    path = data_dir / relative
    try:
        return split_pem_chain(path.read_text())
    except (OSError, MessageError) as err:
        raise CAStateError(f"cannot read certificate file {path}: {err}") from err
