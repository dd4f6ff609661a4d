"""Account keys, JWK thumbprints and flattened JWS (RFC 7515, RFC 7638, RFC 8037, RFC 8555 §6.2).

Public JWKs (RSA, EC P-256/P-384/P-521, Ed25519), the RS*/ES*/EdDSA signatures and the HS* MACs
are written here on cryptography's primitives, and the flattened JSON serialization ACME uses is
built by hand, so that both the client (signing) and the test CA (parsing and verifying, strictly)
share one implementation. josepy is not imported: it imports ``cryptography.x509`` and ``argparse``,
~40 ms of every run's start, for a few dozen lines. Only reading certbot's ``private_key.json``
(``letsencrypt.storage.accounts``) still uses josepy, imported there on demand.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.errors import JWSError
from letsencrypt.acme.records import record

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import serialization
else:
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")  # its package imports ssh

__all__ = [
    "AccountKey",
    "FlattenedJWS",
    "KeyType",
    "b64decode",
    "b64encode",
    "jwk_thumbprint",
    "public_jwk",
    "public_key_from_jwk",
    "sign_eab",
    "sign_jws",
]

KeyType = Literal["rsa2048", "rsa3072", "rsa4096", "ec256", "ec384", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict base64url: padding, whitespace and the standard alphabet are rejected (RFC 8555 §6.1)."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JWSError(f"not unpadded base64url: {str(text)[:40]!r}")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:  # pragma: no cover - the regex already rules these out
        raise JWSError(f"not base64url: {text[:40]!r}") from err


# --- JWK and JWA (RFC 7517, RFC 7518 §3 and §6, RFC 8037) -------------------------------------

_CURVES: dict[str, tuple[type[ec.EllipticCurve], int, str]] = {  # JWK crv -> curve, coordinate bytes, hash
    "P-256": (ec.SECP256R1, 32, "sha256"),
    "P-384": (ec.SECP384R1, 48, "sha384"),
    "P-521": (ec.SECP521R1, 66, "sha512"),
}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_EC_ALGS = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_RSA_ALGS = {"RS256": "sha256", "RS384": "sha384", "RS512": "sha512"}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


def _uint(value: int, length: int | None = None) -> str:
    """Base64urlUInt (RFC 7518 §2): big-endian, minimal length unless ``length`` is given."""
    return b64encode(value.to_bytes(length or max(1, (value.bit_length() + 7) // 8), "big"))


def _member(jwk: Mapping[str, Any], name: str, length: int | None = None) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise JWSError(f"jwk member {name!r} is missing or not a string", problem_type="badPublicKey")
    raw = b64decode(value)
    if length is not None and len(raw) != length:
        raise JWSError(f"jwk member {name!r} is {len(raw)} bytes, not {length}", problem_type="badPublicKey")
    if not raw:
        raise JWSError(f"jwk member {name!r} is empty", problem_type="badPublicKey")
    return raw


def public_jwk(key: PublicKey | PrivateKey) -> dict[str, str]:
    """The public JWK of a key (RFC 7518 §6.2, §6.3; RFC 8037 §2), as josepy writes it."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey |
                                            ed25519.Ed25519PrivateKey) else key
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)}
    if isinstance(public, ec.EllipticCurvePublicKey):
        crv = _CURVE_NAMES.get(public.curve.name)
        if crv is None:
            raise JWSError(f"unsupported curve {public.curve.name}", problem_type="badPublicKey")
        size = _CURVES[crv][1]
        point = public.public_numbers()
        return {"crv": crv, "kty": "EC", "x": _uint(point.x, size), "y": _uint(point.y, size)}
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64encode(raw)}
    raise JWSError(f"unsupported key type {type(public).__name__}", problem_type="badPublicKey")


def _public_key_of(jwk: Mapping[str, Any]) -> PublicKey:
    kty = jwk.get("kty")
    if kty == "RSA":
        e, n = (int.from_bytes(_member(jwk, name), "big") for name in ("e", "n"))
        return rsa.RSAPublicNumbers(e, n).public_key()
    if kty == "EC":
        curve = _CURVES.get(str(jwk.get("crv")))
        if curve is None:
            raise JWSError(f"unsupported curve {jwk.get('crv')!r}", problem_type="badPublicKey")
        x, y = (int.from_bytes(_member(jwk, name, curve[1]), "big") for name in ("x", "y"))
        return ec.EllipticCurvePublicNumbers(x, y, curve[0]()).public_key()  # ValueError: not on the curve
    if kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise JWSError(f"unsupported OKP curve {jwk.get('crv')!r}", problem_type="badPublicKey")
        return ed25519.Ed25519PublicKey.from_public_bytes(_member(jwk, "x", 32))
    raise JWSError(f"unsupported key type {kty!r}", problem_type="badPublicKey")


def _sign(alg: str, key: PrivateKey, data: bytes) -> bytes:
    if alg in _EC_ALGS and isinstance(key, ec.EllipticCurvePrivateKey):
        _curve, size, digest = _CURVES[_EC_ALGS[alg]]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(_HASHES[digest]())))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # RFC 7518 §3.4: R || S, each full length
    if alg in _RSA_ALGS and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), _HASHES[_RSA_ALGS[alg]]())
    if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise JWSError(f"cannot sign {alg} with a {type(key).__name__}")


def _verify(alg: str, key: PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        if alg in _EC_ALGS and isinstance(key, ec.EllipticCurvePublicKey):
            _curve, size, digest = _CURVES[_EC_ALGS[alg]]
            if len(signature) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
            key.verify(der, data, ec.ECDSA(_HASHES[digest]()))
        elif alg in _RSA_ALGS and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[_RSA_ALGS[alg]]())
        elif alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


# --- thumbprints and public keys -------------------------------------------------------------

_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK, base64url (43 characters)."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise JWSError(f"unsupported key type {jwk.get('kty')!r}", problem_type="badPublicKey")
    try:
        canonical = {name: jwk[name] for name in members}
    except KeyError as err:
        raise JWSError(f"JWK lacks the member {err}", problem_type="badPublicKey") from err
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64encode(hashlib.sha256(text.encode("utf-8")).digest())


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Decode a public JWK; private members are refused (a JWS header must never carry them)."""
    if not isinstance(jwk, Mapping):
        raise JWSError("jwk is not a JSON object")
    if "d" in jwk or "p" in jwk:
        raise JWSError("jwk carries private key material", problem_type="badPublicKey")
    try:
        return _public_key_of(jwk)
    except JWSError as err:
        raise JWSError(f"unusable jwk: {err}", problem_type="badPublicKey") from err
    except (ValueError, TypeError, OverflowError) as err:  # cryptography: not a point on the curve, bad sizes
        raise JWSError(f"unusable jwk: {err}", problem_type="badPublicKey") from err


def _alg_for(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": "ES256", "secp384r1": "ES384"}
        if key.curve.name not in curves:
            raise JWSError(f"unsupported curve {key.curve.name}", problem_type="badPublicKey")
        return curves[key.curve.name]
    return "EdDSA"


# --- account keys -----------------------------------------------------------------------------


@record(eq=False)
class AccountKey:
    """A private key that signs ACME requests; the algorithm follows from the key."""

    private_key: PrivateKey
    alg: str = dataclasses.field(init=False)
    jwk: Mapping[str, Any] = dataclasses.field(init=False)
    thumbprint: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        public = self.private_key.public_key()
        jwk = public_jwk(public)
        object.__setattr__(self, "alg", _alg_for(public))
        object.__setattr__(self, "jwk", jwk)
        object.__setattr__(self, "thumbprint", jwk_thumbprint(jwk))

    @classmethod
    def generate(cls, key_type: KeyType = "ec256") -> AccountKey:
        if key_type.startswith("rsa"):
            return cls(rsa.generate_private_key(65537, int(key_type[3:])))
        if key_type == "ec256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if key_type == "ec384":
            return cls(ec.generate_private_key(ec.SECP384R1()))
        if key_type == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        raise ValueError(f"unknown key type {key_type!r}")

    @classmethod
    def from_pem(cls, data: bytes) -> AccountKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as err:
            raise JWSError(f"not a PEM private key: {err}") from err
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise JWSError(f"unsupported account key type {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def sign(self, data: bytes) -> bytes:
        """A JWS signature over ``data`` (raw r||s for ECDSA, as RFC 7518 §3.4 requires)."""
        return _sign(self.alg, self.private_key, data)

    def __repr__(self) -> str:  # never print key material
        return f"AccountKey({self.alg}, thumbprint={self.thumbprint})"


def sign_jws(
    key: AccountKey,
    payload: bytes | None,
    *,
    url: str,
    nonce: str | None,
    kid: str | None = None,
) -> dict[str, str]:
    """A flattened JWS (RFC 8555 §6.2). ``payload=None`` is POST-as-GET (empty payload, §6.3).

    With ``kid`` the header names the account URL; without it the public key goes in ``jwk``
    (``newAccount``, revocation by certificate key, and the inner JWS of ``keyChange``).
    ``nonce=None`` leaves the nonce out (only the inner ``keyChange`` JWS does that).
    """
    header: dict[str, Any] = {"alg": key.alg, "url": url}
    if nonce is not None:
        header["nonce"] = nonce
    if kid is not None:
        header["kid"] = kid
    else:
        header["jwk"] = dict(key.jwk)
    protected = b64encode(json.dumps(header, separators=(",", ":")).encode())
    encoded_payload = "" if payload is None else b64encode(payload)
    signature = key.sign(f"{protected}.{encoded_payload}".encode("ascii"))
    return {"protected": protected, "payload": encoded_payload, "signature": b64encode(signature)}


_HMAC_ALGS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def sign_eab(
    account_jwk: Mapping[str, Any], *, kid: str, hmac_key: bytes, url: str, alg: str = "HS256"
) -> dict[str, str]:
    """The ``externalAccountBinding`` JWS of RFC 8555 §7.3.4: MAC over the account's public JWK."""
    if alg not in _HMAC_ALGS:
        raise ValueError(f"EAB algorithm must be one of {sorted(_HMAC_ALGS)}, not {alg!r}")
    protected = b64encode(json.dumps({"alg": alg, "kid": kid, "url": url}, separators=(",", ":")).encode())
    payload = b64encode(json.dumps(dict(account_jwk), separators=(",", ":")).encode())
    mac = hmac.new(hmac_key, f"{protected}.{payload}".encode("ascii"), _HMAC_ALGS[alg]).digest()
    return {"protected": protected, "payload": payload, "signature": b64encode(mac)}


# --- parsing and verifying (the server side) -------------------------------------------------


@record
class FlattenedJWS:
    """A parsed flattened JWS; nothing is trusted until ``verify`` returns."""

    protected_b64: str
    payload_b64: str
    signature: bytes
    header: Mapping[str, Any]
    payload: bytes

    ALLOWED_ALGS: ClassVar[frozenset[str]] = frozenset({"RS256", "ES256", "ES384", "EdDSA"})

    @classmethod
    def parse(cls, body: bytes | str | Mapping[str, Any]) -> FlattenedJWS:
        """Parse strictly: one signature, protected header only, base64url without padding."""
        obj: Any = body
        if isinstance(body, bytes | str):
            try:
                obj = json.loads(body)
            # RecursionError: nesting deeper than the interpreter's limit ("[[[[...", hostile input)
            except (ValueError, UnicodeDecodeError, RecursionError) as err:
                raise JWSError(f"request body is not JSON: {err}") from err
        if not isinstance(obj, Mapping):
            raise JWSError("request body is not a JSON object")
        if "signatures" in obj:
            raise JWSError("only the flattened JWS serialization with one signature is allowed")
        if "header" in obj:
            raise JWSError("unprotected JWS headers are not allowed")
        missing = {"protected", "payload", "signature"} - set(obj)
        if missing:
            raise JWSError(f"JWS lacks {', '.join(sorted(missing))}")
        protected_b64, payload_b64, signature_b64 = obj["protected"], obj["payload"], obj["signature"]
        try:
            header = json.loads(b64decode(protected_b64))
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise JWSError(f"protected header is not JSON: {err}") from err
        if not isinstance(header, dict):
            raise JWSError("protected header is not a JSON object")
        if header.get("b64") is False or "crit" in header:
            raise JWSError("unencoded payloads and critical header extensions are not supported")
        return cls(protected_b64, payload_b64, b64decode(signature_b64), header, b64decode(payload_b64))

    @property
    def alg(self) -> str:
        return str(self.header.get("alg"))

    def check_alg(self) -> None:
        if self.alg not in self.ALLOWED_ALGS:
            raise JWSError(
                f"signature algorithm {self.alg!r} is not accepted; use one of {sorted(self.ALLOWED_ALGS)}",
                problem_type="badSignatureAlgorithm",
            )

    def verify(self, key: PublicKey) -> None:
        """Check the algorithm matches the key and the signature verifies; raise ``JWSError`` if not."""
        self.check_alg()
        if _alg_for(key) != self.alg:
            raise JWSError(
                f"algorithm {self.alg} does not match the key ({_alg_for(key)})",
                problem_type="badSignatureAlgorithm",
            )
        signing_input = f"{self.protected_b64}.{self.payload_b64}".encode("ascii")
        try:
            valid = _verify(self.alg, key, signing_input, self.signature)
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise JWSError("JWS signature is invalid")

    def verify_mac(self, hmac_key: bytes) -> None:
        """Verify an HMAC-signed JWS (External Account Binding, RFC 8555 §7.3.4)."""
        digest = _HMAC_ALGS.get(self.alg)
        if digest is None:
            raise JWSError(
                f"EAB algorithm {self.alg!r} is not one of {sorted(_HMAC_ALGS)}",
                problem_type="badSignatureAlgorithm",
            )
        expected = hmac.new(hmac_key, f"{self.protected_b64}.{self.payload_b64}".encode(), digest).digest()
        if not hmac.compare_digest(expected, self.signature):
            raise JWSError("external account binding MAC is invalid", problem_type="unauthorized")

    def json_payload(self) -> Any:
        """The payload as JSON; ``None`` for POST-as-GET (empty payload)."""
        if self.payload_b64 == "":
            return None
        try:
            return json.loads(self.payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise JWSError(f"payload is not JSON: {err}") from err
