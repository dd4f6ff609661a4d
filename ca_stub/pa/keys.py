"""Which public keys the CA accepts: certificate keys from CSRs, and account keys from JWKs.

Like Boulder's ``goodkey`` package: RSA with the usual exponent 65537 and an odd modulus, and
the NIST curves browsers support. Certificate keys (RFC 8555 §7.4, the CSR of a finalize
request) are refused with ``badCSR``; account keys (RFC 8555 §7.3, §7.3.5) with
``badPublicKey``. P-521 is refused, as Let's Encrypt does. Ed25519 is fine for an account
(RFC 8037 signatures) but not for a certificate, which browsers could not use.

Imports: stdlib, cryptography, ``letsencrypt.acme.jws`` and ``ca_stub.contracts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ca_stub.contracts import CAError
from letsencrypt.acme.errors import JWSError
from letsencrypt.acme.jws import public_key_from_jwk

__all__ = [
    "ACCOUNT_RSA_RANGE",
    "CERTIFICATE_RSA_SIZES",
    "CURVES",
    "check_account_key",
    "check_certificate_key",
]

CERTIFICATE_RSA_SIZES = frozenset({2048, 3072, 4096})
ACCOUNT_RSA_RANGE = (2048, 4096)
CURVES = frozenset({"secp256r1", "secp384r1"})  # P-256, P-384
_RSA_EXPONENT = 65537


def _rsa_problem(key: rsa.RSAPublicKey, allowed: str, size_ok: bool) -> str | None:
    numbers = key.public_numbers()
    if not size_ok:
        return f"RSA key of {key.key_size} bits is not allowed; use {allowed} bits"
    if numbers.e != _RSA_EXPONENT:
        return f"RSA public exponent {numbers.e} is not allowed; use {_RSA_EXPONENT}"
    if numbers.n % 2 == 0:
        return "RSA modulus is even"
    return None


def _ec_problem(key: ec.EllipticCurvePublicKey) -> str | None:
    if key.curve.name not in CURVES:
        return f"ECDSA curve {key.curve.name} is not allowed; use P-256 or P-384"
    return None


def check_certificate_key(public_key: Any) -> None:
    """Raise ``CAError(badCSR)`` unless ``public_key`` may be certified (RSA 2048/3072/4096, P-256, P-384)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        problem = _rsa_problem(public_key, "2048, 3072 or 4096", public_key.key_size in CERTIFICATE_RSA_SIZES)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        problem = _ec_problem(public_key)
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        problem = "Ed25519 keys cannot be certified; use RSA (2048-4096 bits) or ECDSA (P-256, P-384)"
    else:
        problem = f"{type(public_key).__name__} keys are not allowed; use RSA (2048-4096 bits) or ECDSA (P-256, P-384)"
    if problem is not None:
        raise CAError("badCSR", f"CSR key: {problem}")


def check_account_key(jwk: Mapping[str, Any]) -> None:
    """Raise ``CAError(badPublicKey)`` unless the JWK is an acceptable account key.

    RSA of 2048 to 4096 bits, ECDSA P-256 or P-384, or Ed25519 (RFC 8037).
    """
    try:
        key = public_key_from_jwk(jwk)
    except JWSError as err:
        raise CAError("badPublicKey", f"account key: {err}") from err
    if isinstance(key, rsa.RSAPublicKey):
        low, high = ACCOUNT_RSA_RANGE
        problem = _rsa_problem(key, f"{low} to {high}", low <= key.key_size <= high)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        problem = _ec_problem(key)
    else:  # Ed25519: the only other kind public_key_from_jwk returns
        problem = None
    if problem is not None:
        raise CAError("badPublicKey", f"account key: {problem}")
