"""The four files of a lineage version, checked before anything is written.

One certificate (the leaf alone: certbot's ``cert.pem``), a chain that parses (or none), and a key
that matches the certificate, so that no version on disk can pair a certificate with a wrong key.

Imports: the standard library, cryptography, ``letsencrypt.acme`` and ``letsencrypt.errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from letsencrypt.acme import MessageError, crypto
from letsencrypt.acme._lazy import lazy_module
from letsencrypt.errors import StorageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import serialization
else:
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")  # its package imports ssh

__all__ = ["material"]


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("ascii") if isinstance(data, str) else data


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def material(cert_pem: str | bytes, chain_pem: str | bytes, key_pem: bytes) -> dict[str, bytes]:
    """The four archive files, checked: one certificate, a parseable chain, a key matching the certificate.

    The certificates are read as DER frames (``crypto.split_pem_der``), not through
    ``cryptography.x509``: storing a new certificate is then done without importing it.
    """
    cert_text = _as_bytes(cert_pem).decode("ascii", "replace")
    chain_text = _as_bytes(chain_pem).decode("ascii", "replace")
    try:
        leaf = crypto.split_pem_der(cert_text)
        if len(leaf) != 1:
            raise MessageError(f"cert_pem must hold the certificate alone, it holds {len(leaf)}")
        chain = crypto.split_pem_der(chain_text) if chain_text.strip() else []
        key = crypto.load_private_key(key_pem)
    except MessageError as err:
        raise StorageError(f"refusing to store the certificate: {err}") from err
    if crypto.certificate_facts(leaf[0]).spki != _spki(key.public_key()):
        raise StorageError("refusing to store the certificate: it does not match the private key")
    cert_bytes = crypto.pem_of_der(leaf).encode("ascii")
    chain_bytes = crypto.pem_of_der(chain).encode("ascii")
    return {"cert": cert_bytes, "chain": chain_bytes, "fullchain": cert_bytes + chain_bytes, "privkey": key_pem}
