"""Account keys, JWK thumbprints and flattened JWS (RFC 7515, RFC 7638, RFC 8037, RFC 8555 §6.2).

josepy provides the JWK classes and the RS256/ES256/ES384/HS* algorithms; this module adds the
Ed25519 pieces josepy lacks (``OKP`` keys and ``EdDSA``, RFC 8037) by registering them with
josepy, and builds the flattened JSON serialization ACME uses by hand, so that both the client
(signing) and the test CA (parsing and verifying, strictly) share one implementation.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from josepy.errors import DeserializationError, UnrecognizedTypeError
from josepy.jwa import JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from letsencrypt.acme.errors import JWSError

__all__ = [
    "AccountKey",
    "FlattenedJWS",
    "KeyType",
    "b64decode",
    "b64encode",
    "jwk_thumbprint",
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


# --- Ed25519 for josepy (RFC 8037) -----------------------------------------------------------


class _EdDSA(JWASignature):
    """The ``EdDSA`` JWS algorithm, Ed25519 only."""

    def sign(self, key: Any, msg: bytes) -> bytes:
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key.sign(msg)

    def verify(self, key: Any, msg: bytes, sig: bytes) -> bool:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            return False
        try:
            key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


EdDSA = JWASignature.register(_EdDSA("EdDSA"))


@JWK.register
class JWKOKP(JWK):
    """Octet key pair JWK (RFC 8037 §2), Ed25519 public or private key."""

    typ = "OKP"
    cryptography_key_types = (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)
    required = ("crv", "kty", "x")
    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        super().__init__(key=key)

    def public_key(self) -> JWKOKP:
        key = self.key.public_key() if isinstance(self.key, ed25519.Ed25519PrivateKey) else self.key
        return JWKOKP(key=key)

    def fields_to_partial_json(self) -> dict[str, Any]:
        public = self.key.public_key() if isinstance(self.key, ed25519.Ed25519PrivateKey) else self.key
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out = {"crv": "Ed25519", "x": b64encode(raw)}
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            out["d"] = b64encode(
                self.key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            )
        return out

    @classmethod
    def fields_from_json(cls, jobj: Mapping[str, Any]) -> JWKOKP:
        if jobj.get("crv") != "Ed25519":
            raise DeserializationError(f"unsupported OKP curve {jobj.get('crv')!r}")
        try:
            if "d" in jobj:
                return cls(key=ed25519.Ed25519PrivateKey.from_private_bytes(b64decode(jobj["d"])))
            return cls(key=ed25519.Ed25519PublicKey.from_public_bytes(b64decode(jobj["x"])))
        except (JWSError, ValueError, KeyError) as err:
            raise DeserializationError(f"bad OKP key: {err}") from err


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
        key: Any = JWK.from_json(dict(jwk)).key  # type: ignore[attr-defined]  # subclasses set .key
        key = getattr(key, "_wrapped", key)  # josepy wraps RSA/EC keys in ComparableKey
    # josepy lets KeyError (missing member) and AttributeError (non-string member) escape
    except (DeserializationError, UnrecognizedTypeError, ValueError, TypeError, KeyError,
            AttributeError) as err:
        raise JWSError(f"unusable jwk: {err}", problem_type="badPublicKey") from err
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise JWSError("jwk is not a public key", problem_type="badPublicKey")  # pragma: no cover


def _alg_for(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": "ES256", "secp384r1": "ES384"}
        if key.curve.name not in curves:
            raise JWSError(f"unsupported curve {key.curve.name}", problem_type="badPublicKey")
        return curves[key.curve.name]
    return "EdDSA"


def _public_jwk(key: PublicKey) -> dict[str, Any]:
    if isinstance(key, ed25519.Ed25519PublicKey):
        jwk: JWK = JWKOKP(key=key)
    elif isinstance(key, rsa.RSAPublicKey):
        jwk = JWKRSA(key=key)
    else:
        jwk = JWKEC(key=key)
    out: dict[str, Any] = jwk.to_json()
    return out


# --- account keys -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class AccountKey:
    """A private key that signs ACME requests; the algorithm follows from the key."""

    private_key: PrivateKey
    alg: str = dataclasses.field(init=False)
    jwk: Mapping[str, Any] = dataclasses.field(init=False)
    thumbprint: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        public = self.private_key.public_key()
        jwk = _public_jwk(public)
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
        algorithm = JWASignature.from_json(self.alg)
        signature: bytes = algorithm.sign(self.private_key, data)
        return signature

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


@dataclasses.dataclass(frozen=True, slots=True)
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
        algorithm = JWASignature.from_json(self.alg)
        signing_input = f"{self.protected_b64}.{self.payload_b64}".encode("ascii")
        try:
            valid = algorithm.verify(key, signing_input, self.signature)
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
