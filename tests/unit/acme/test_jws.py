"""JWS, JWK thumbprints and account keys (letsencrypt/acme/jws.py).

Published vectors: RFC 7638 §3.1 (RSA thumbprint), RFC 8037 appendix A (Ed25519 key, thumbprint
and signature), RFC 7515 appendix A.2 (RS256). Everything else signs with keys made at test time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa, utils, x25519
from hypothesis import given, settings
from hypothesis import strategies as st
from josepy.jwa import JWASignature
from josepy.jwk import JWKEC, JWKRSA

from letsencrypt.acme import jws
from letsencrypt.acme.errors import JWSError

KEY_TYPES = ["rsa2048", "ec256", "ec384", "ed25519"]
EXPECTED_ALG = {"rsa2048": "RS256", "ec256": "ES256", "ec384": "ES384", "ed25519": "EdDSA"}
SIGNATURE_LENGTH = {"rsa2048": 256, "ec256": 64, "ec384": 96, "ed25519": 64}

URL = "https://example.com/acme/new-order"
NONCE = "6S8IqOGY7eL2lsGoTZYifg"
KID = "https://example.com/acme/acct/evOfKhNU60wg"


@pytest.fixture(scope="module")
def keys() -> dict[str, jws.AccountKey]:
    return {key_type: jws.AccountKey.generate(key_type) for key_type in KEY_TYPES}  # type: ignore[arg-type]


@pytest.fixture(params=KEY_TYPES)
def key(request: pytest.FixtureRequest, keys: dict[str, jws.AccountKey]) -> jws.AccountKey:
    return keys[request.param]


def _by_hand(members: dict[str, str]) -> str:
    """RFC 7638 §3: required members, sorted, no whitespace, SHA-256, base64url without padding."""
    text = "{" + ",".join(f'"{name}":"{members[name]}"' for name in sorted(members)) + "}"
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode().rstrip("=")


def _header(body: dict[str, str]) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(jws.b64decode(body["protected"]))
    return header


# --- base64url -------------------------------------------------------------------------------------


def test_b64_is_urlsafe_and_unpadded() -> None:
    assert jws.b64encode(b"\xfb\xff") == "-_8"
    assert jws.b64decode("-_8") == b"\xfb\xff"
    assert jws.b64encode(b"") == ""
    assert jws.b64decode("") == b""


@pytest.mark.parametrize("text", ["-_8=", "AA==", "AAA=", "+_8", "-/8", "A", "AAAAA", "AA AA", "AA\nAA", "AA.AA", "é"])
def test_b64decode_is_strict(text: str) -> None:
    with pytest.raises(JWSError):
        jws.b64decode(text)


@pytest.mark.parametrize("not_text", [b"AAAA", None, 5, ["AAAA"]])
def test_b64decode_wants_text(not_text: Any) -> None:
    with pytest.raises(JWSError):
        jws.b64decode(not_text)


@given(st.binary(max_size=200))
def test_b64_round_trip(data: bytes) -> None:
    text = jws.b64encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert jws.b64decode(text) == data


# --- thumbprints (RFC 7638) --------------------------------------------------------------------------

# RFC 7638 §3.1 (the RSA key of RFC 7517 appendix A.1)
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
    "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgd"
    "AZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur"
    "-kEgU8awapJzKnqDKgw"
)
RFC7638_JWK = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 8037 appendix A.1 (private and public Ed25519 key) and A.3 (its thumbprint)
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_rfc7638_thumbprint() -> None:
    assert len(jws.b64decode(RFC7638_N)) == 256  # a 2048-bit modulus: the vector was copied whole
    assert jws.jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    assert _by_hand({"e": "AQAB", "kty": "RSA", "n": RFC7638_N}) == RFC7638_THUMBPRINT


@pytest.mark.parametrize(
    "variant",
    [
        {"n": RFC7638_N, "e": "AQAB", "kty": "RSA"},
        {"e": "AQAB", "kty": "RSA", "n": RFC7638_N},
        {"kid": "other", "use": "sig", "alg": "RS512", "kty": "RSA", "e": "AQAB", "n": RFC7638_N},
        {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "key_ops": ["verify"], "x5t": "abc", "ext": True},
    ],
)
def test_thumbprint_ignores_member_order_and_optional_members(variant: dict[str, Any]) -> None:
    assert jws.jwk_thumbprint(variant) == RFC7638_THUMBPRINT


def test_rfc8037_ed25519_thumbprint() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert jws.jwk_thumbprint(jwk) == RFC8037_THUMBPRINT
    assert _by_hand({"crv": "Ed25519", "kty": "OKP", "x": RFC8037_X}) == RFC8037_THUMBPRINT
    # the private member "d" is not one of the required members either
    assert jws.jwk_thumbprint({**jwk, "d": RFC8037_D, "kid": "k"}) == RFC8037_THUMBPRINT


@pytest.mark.parametrize("key_type", ["ec256", "ec384"])
def test_ec_thumbprint_uses_crv_kty_x_y(keys: dict[str, jws.AccountKey], key_type: str) -> None:
    key = keys[key_type]
    jwk = dict(key.jwk)
    assert jwk["kty"] == "EC"
    assert jwk["crv"] == {"ec256": "P-256", "ec384": "P-384"}[key_type]
    expected = _by_hand({"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]})
    assert key.thumbprint == expected
    assert jws.jwk_thumbprint({**jwk, "kid": "x", "alg": key.alg, "use": "sig"}) == expected
    assert jws.jwk_thumbprint(dict(reversed(list(jwk.items())))) == expected


def test_okp_thumbprint_uses_crv_kty_x(keys: dict[str, jws.AccountKey]) -> None:
    key = keys["ed25519"]
    jwk = dict(key.jwk)
    assert set(jwk) == {"kty", "crv", "x"}
    expected = _by_hand({"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]})
    assert key.thumbprint == expected
    assert jws.jwk_thumbprint({**jwk, "use": "sig", "alg": "EdDSA"}) == expected


def test_rsa_account_key_thumbprint_by_hand(keys: dict[str, jws.AccountKey]) -> None:
    key = keys["rsa2048"]
    jwk = dict(key.jwk)
    assert jwk["e"] == "AQAB"
    assert len(jws.b64decode(jwk["n"])) == 256  # no sign byte in front of the modulus (RFC 7518 §6.3.1.1)
    assert key.thumbprint == _by_hand({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]})


@pytest.mark.parametrize(
    "jwk",
    [
        {},
        {"kty": "oct", "k": "AAAA"},
        {"kty": "RSA", "n": RFC7638_N},
        {"kty": "EC", "crv": "P-256", "x": "AA"},
        {"kty": "OKP", "x": RFC8037_X},
        {"kty": ["RSA"]},
    ],
)
def test_thumbprint_of_unusable_jwk(jwk: dict[str, Any]) -> None:
    with pytest.raises(JWSError) as info:
        jws.jwk_thumbprint(jwk)
    assert info.value.problem_type == "badPublicKey"


# --- RFC 8037 A.4: Ed25519 signature -----------------------------------------------------------------

RFC8037_PROTECTED = "eyJhbGciOiJFZERTQSJ9"
RFC8037_PAYLOAD = "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"


def test_rfc8037_ed25519_signature() -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(jws.b64decode(RFC8037_D))
    key = jws.AccountKey(private)
    assert key.alg == "EdDSA"
    assert key.jwk == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert key.thumbprint == RFC8037_THUMBPRINT
    # Ed25519 is deterministic: the same key and input give the published signature
    signature = key.sign(f"{RFC8037_PROTECTED}.{RFC8037_PAYLOAD}".encode())
    assert jws.b64encode(signature) == RFC8037_SIGNATURE

    parsed = jws.FlattenedJWS.parse(
        {"protected": RFC8037_PROTECTED, "payload": RFC8037_PAYLOAD, "signature": RFC8037_SIGNATURE}
    )
    assert parsed.header == {"alg": "EdDSA"}
    assert parsed.payload == b"Example of Ed25519 signing"
    parsed.verify(jws.public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}))


def test_okp_jwk_and_eddsa() -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(jws.b64decode(RFC8037_D))
    assert jws.public_jwk(private) == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    key = jws.AccountKey(private)
    signature = key.sign(b"Example of Ed25519 signing")
    public = jws.public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
    assert jws._verify("EdDSA", public, b"Example of Ed25519 signing", signature)
    assert not jws._verify("EdDSA", public, b"Example of Ed25519 signinG", signature)
    assert not jws._verify("EdDSA", ec.generate_private_key(ec.SECP256R1()).public_key(), b"x", signature)


@pytest.mark.parametrize("key_type", ["rsa2048", "ec256", "ec384"])
def test_jwks_and_signatures_agree_with_josepy(key_type: jws.KeyType) -> None:
    """josepy (which certbot uses) writes the same public JWK and accepts our signatures, and we accept its."""
    key = jws.AccountKey.generate(key_type)
    theirs = (JWKRSA if key_type.startswith("rsa") else JWKEC)(key=key.private_key)
    assert key.jwk == theirs.public_key().to_json()
    algorithm = JWASignature.from_json(key.alg)
    message = b"protected.payload"
    assert algorithm.verify(key.public_key(), message, key.sign(message))
    assert jws._verify(key.alg, key.public_key(), message, algorithm.sign(key.private_key, message))
    assert jws.public_key_from_jwk(theirs.public_key().to_json()).public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize(("jwk", "fragment"), [
    ({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, "not 32"),
    ({"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43}, "unusable jwk"),  # not a point on the curve
    ({"kty": "EC", "crv": "P-192", "x": "AAAA", "y": "AAAA"}, "unsupported curve"),
    ({"kty": "RSA", "n": 5, "e": "AQAB"}, "not a string"),
    ({"kty": "RSA", "e": "AQAB"}, "missing"),
    ({"kty": "RSA", "n": "", "e": "AQAB"}, "empty"),
    ({"kty": "OKP", "crv": "X25519", "x": RFC8037_X}, "unsupported OKP curve"),
    ({"kty": "oct", "k": "AAAA"}, "unsupported key type"),
])
def test_public_key_from_jwk_refuses_bad_members(jwk: dict[str, Any], fragment: str) -> None:
    with pytest.raises(JWSError, match=fragment) as info:
        jws.public_key_from_jwk(jwk)
    assert info.value.problem_type == "badPublicKey"


def test_es256_signatures_of_the_wrong_length_are_refused() -> None:
    key = jws.AccountKey.generate("ec256")
    signature = key.sign(b"m")
    assert len(signature) == 64
    assert jws._verify("ES256", key.public_key(), b"m", signature)
    assert not jws._verify("ES256", key.public_key(), b"m", signature + b"\0")
    assert not jws._verify("ES256", key.public_key(), b"m", signature[:63])
    assert not jws._verify("ES384", key.public_key(), b"m", signature)


# --- RFC 7515 A.2: RS256 -----------------------------------------------------------------------------

RFC7515_N = (
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZ"
    "S-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2"
    "R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcD"
    "TW9gb54h4FRWyuXpoQ"
)
RFC7515_JWS = {
    "protected": "eyJhbGciOiJSUzI1NiJ9",
    "payload": "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    "signature": (
        "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdb"
        "F9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383"
        "LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWy"
        "wlVmtVrBp0igcN_IoypGlUPQGe77Rw"
    ),
}


def _rfc7515_public_key() -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(e=65537, n=int.from_bytes(jws.b64decode(RFC7515_N), "big")).public_key()


def test_rfc7515_rs256_example_verifies() -> None:
    parsed = jws.FlattenedJWS.parse(json.dumps(RFC7515_JWS))
    assert parsed.header == {"alg": "RS256"}
    assert parsed.json_payload() == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
    parsed.verify(_rfc7515_public_key())
    # the same key read from its JWK
    parsed.verify(jws.public_key_from_jwk({"kty": "RSA", "n": RFC7515_N, "e": "AQAB"}))


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("payload", jws.b64encode(b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":false}')),
        ("protected", jws.b64encode(b'{"alg":"RS256","kid":"x"}')),
        ("signature", "dC4" + RFC7515_JWS["signature"][3:]),
    ],
)
def test_rfc7515_example_tampered(member: str, value: str) -> None:
    tampered = {**RFC7515_JWS, member: value}
    with pytest.raises(JWSError):
        jws.FlattenedJWS.parse(tampered).verify(_rfc7515_public_key())


# --- signing and verifying our own requests -----------------------------------------------------------


@pytest.mark.parametrize("kid", [None, KID])
def test_sign_jws_round_trip(key: jws.AccountKey, kid: str | None) -> None:
    payload = {"identifiers": [{"type": "dns", "value": "example.org"}]}
    body = jws.sign_jws(key, json.dumps(payload).encode(), url=URL, nonce=NONCE, kid=kid)
    assert set(body) == {"protected", "payload", "signature"}
    parsed = jws.FlattenedJWS.parse(json.dumps(body).encode())
    header = dict(parsed.header)
    assert header["alg"] == key.alg
    assert header["url"] == URL
    assert header["nonce"] == NONCE
    assert ("jwk" in header) != ("kid" in header)  # exactly one of them (RFC 8555 §6.2)
    if kid is None:
        assert set(header) == {"alg", "url", "nonce", "jwk"}
        assert header["jwk"] == key.jwk
        assert "d" not in header["jwk"]
        assert jws.jwk_thumbprint(header["jwk"]) == key.thumbprint
        parsed.verify(jws.public_key_from_jwk(header["jwk"]))
    else:
        assert set(header) == {"alg", "url", "nonce", "kid"}
        assert header["kid"] == KID
    parsed.verify(key.public_key())
    assert parsed.json_payload() == payload


def test_key_types_and_algorithms(keys: dict[str, jws.AccountKey]) -> None:
    for key_type, key in keys.items():
        assert key.alg == EXPECTED_ALG[key_type]
        assert len(key.thumbprint) == 43


def test_post_as_get_payload_is_empty(key: jws.AccountKey) -> None:
    body = jws.sign_jws(key, None, url=URL, nonce=NONCE, kid=KID)
    assert body["payload"] == ""
    parsed = jws.FlattenedJWS.parse(body)
    parsed.verify(key.public_key())
    assert parsed.payload == b""
    assert parsed.json_payload() is None


def test_empty_object_payload_is_not_post_as_get(key: jws.AccountKey) -> None:
    parsed = jws.FlattenedJWS.parse(jws.sign_jws(key, b"{}", url=URL, nonce=NONCE, kid=KID))
    assert parsed.payload_b64 == "e30"
    assert parsed.json_payload() == {}


def test_non_json_payload_is_refused_by_json_payload(key: jws.AccountKey) -> None:
    parsed = jws.FlattenedJWS.parse(jws.sign_jws(key, b"\xff not json", url=URL, nonce=NONCE, kid=KID))
    parsed.verify(key.public_key())
    with pytest.raises(JWSError):
        parsed.json_payload()


def test_inner_key_change_jws_has_no_nonce(key: jws.AccountKey) -> None:
    body = jws.sign_jws(key, b'{"account":"x"}', url=URL, nonce=None)
    assert set(_header(body)) == {"alg", "url", "jwk"}
    jws.FlattenedJWS.parse(body).verify(key.public_key())


def test_signature_lengths(keys: dict[str, jws.AccountKey]) -> None:
    for key_type, key in keys.items():
        body = jws.sign_jws(key, b"{}", url=URL, nonce=NONCE)
        assert len(jws.b64decode(body["signature"])) == SIGNATURE_LENGTH[key_type], key_type


@pytest.mark.parametrize(
    ("key_type", "size", "digest"), [("ec256", 32, hashes.SHA256()), ("ec384", 48, hashes.SHA384())]
)
def test_ecdsa_signature_is_raw_r_and_s(
    keys: dict[str, jws.AccountKey], key_type: str, size: int, digest: hashes.HashAlgorithm
) -> None:
    """RFC 7518 §3.4: R and S as fixed-width big-endian octets, not DER."""
    key = keys[key_type]
    body = jws.sign_jws(key, b"{}", url=URL, nonce=NONCE)
    raw = jws.b64decode(body["signature"])
    assert len(raw) == 2 * size
    r, s = int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    der = utils.encode_dss_signature(r, s)
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, f"{body['protected']}.{body['payload']}".encode(), ec.ECDSA(digest))


@pytest.mark.parametrize("what", ["payload", "signature", "protected", "truncated", "extended", "zeros"])
def test_tampered_jws_fails(key: jws.AccountKey, what: str) -> None:
    body = jws.sign_jws(key, b'{"status":"deactivated"}', url=URL, nonce=NONCE, kid=KID)
    signature = jws.b64decode(body["signature"])
    if what == "payload":
        body["payload"] = jws.b64encode(b'{"status":"valid"}')
    elif what == "protected":
        body["protected"] = jws.b64encode(json.dumps({**_header(body), "url": URL + "x"}).encode())
    elif what == "signature":
        body["signature"] = jws.b64encode(signature[:-1] + bytes([signature[-1] ^ 1]))
    elif what == "truncated":
        body["signature"] = jws.b64encode(signature[:-1])
    elif what == "extended":
        body["signature"] = jws.b64encode(signature + b"\x00")
    else:
        body["signature"] = jws.b64encode(bytes(len(signature)))
    parsed = jws.FlattenedJWS.parse(body)
    with pytest.raises(JWSError, match="invalid"):
        parsed.verify(key.public_key())


def test_verify_with_another_key_of_the_same_type_fails(key: jws.AccountKey) -> None:
    other = jws.AccountKey.generate(
        {"RS256": "rsa2048", "ES256": "ec256", "ES384": "ec384", "EdDSA": "ed25519"}[key.alg]  # type: ignore[arg-type]
    )
    assert other.alg == key.alg
    parsed = jws.FlattenedJWS.parse(jws.sign_jws(key, b"{}", url=URL, nonce=NONCE, kid=KID))
    with pytest.raises(JWSError):
        parsed.verify(other.public_key())


@pytest.mark.parametrize(("signer", "verifier"), [(a, b) for a in KEY_TYPES for b in KEY_TYPES if a != b])
def test_verify_with_a_key_of_a_different_type_fails(
    keys: dict[str, jws.AccountKey], signer: str, verifier: str
) -> None:
    parsed = jws.FlattenedJWS.parse(jws.sign_jws(keys[signer], b"{}", url=URL, nonce=NONCE, kid=KID))
    with pytest.raises(JWSError) as info:
        parsed.verify(keys[verifier].public_key())
    assert info.value.problem_type == "badSignatureAlgorithm"


def test_header_alg_that_lies_about_the_key(keys: dict[str, jws.AccountKey]) -> None:
    """A JWS whose header says ES384 but which an ES256 key signed is refused before any maths."""
    key = keys["ec256"]
    protected = jws.b64encode(json.dumps({"alg": "ES384", "url": URL, "nonce": NONCE, "kid": KID}).encode())
    signature = key.sign(f"{protected}.e30".encode())
    parsed = jws.FlattenedJWS.parse({"protected": protected, "payload": "e30", "signature": jws.b64encode(signature)})
    with pytest.raises(JWSError) as info:
        parsed.verify(key.public_key())
    assert info.value.problem_type == "badSignatureAlgorithm"


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512", "PS256", "ES512", "Ed25519", "", None, 256])
def test_check_alg_rejects(keys: dict[str, jws.AccountKey], alg: Any) -> None:
    header: dict[str, Any] = {"url": URL, "nonce": NONCE, "kid": KID}
    if alg is not None:
        header["alg"] = alg
    protected = jws.b64encode(json.dumps(header).encode())
    signature = "" if alg == "none" else jws.b64encode(keys["rsa2048"].sign(f"{protected}.e30".encode()))
    parsed = jws.FlattenedJWS.parse({"protected": protected, "payload": "e30", "signature": signature})
    with pytest.raises(JWSError) as info:
        parsed.check_alg()
    assert info.value.problem_type == "badSignatureAlgorithm"
    with pytest.raises(JWSError) as info:
        parsed.verify(keys["rsa2048"].public_key())
    assert info.value.problem_type == "badSignatureAlgorithm"


@pytest.mark.parametrize("alg", sorted(jws.FlattenedJWS.ALLOWED_ALGS))
def test_check_alg_accepts(alg: str) -> None:
    protected = jws.b64encode(json.dumps({"alg": alg}).encode())
    jws.FlattenedJWS.parse({"protected": protected, "payload": "", "signature": ""}).check_alg()


# --- strict parsing --------------------------------------------------------------------------------------


@pytest.fixture
def good_body(keys: dict[str, jws.AccountKey]) -> dict[str, str]:
    # an ES256 signature is 64 bytes: 86 base64url characters, so "==" would be its padding
    return jws.sign_jws(keys["ec256"], b'{"a":1}', url=URL, nonce=NONCE, kid=KID)


def test_good_body_parses_from_bytes_text_and_mapping(
    good_body: dict[str, str], keys: dict[str, jws.AccountKey]
) -> None:
    for form in (good_body, json.dumps(good_body), json.dumps(good_body).encode()):
        parsed = jws.FlattenedJWS.parse(form)
        parsed.verify(keys["ec256"].public_key())
        assert parsed.alg == "ES256"


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
@pytest.mark.parametrize("padding", ["=", "=="])
def test_parse_rejects_padding(good_body: dict[str, str], member: str, padding: str) -> None:
    with pytest.raises(JWSError):
        jws.FlattenedJWS.parse({**good_body, member: good_body[member] + padding})


def test_parse_rejects_the_padded_form_of_a_real_signature(good_body: dict[str, str]) -> None:
    padded = base64.urlsafe_b64encode(jws.b64decode(good_body["signature"])).decode()
    assert padded.endswith("==")
    with pytest.raises(JWSError):
        jws.FlattenedJWS.parse({**good_body, "signature": padded})


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
@pytest.mark.parametrize("char", ["+", "/"])
def test_parse_rejects_standard_alphabet(good_body: dict[str, str], member: str, char: str) -> None:
    with pytest.raises(JWSError):
        jws.FlattenedJWS.parse({**good_body, member: char + good_body[member][1:]})


def test_parse_rejects_standard_base64_of_the_same_bytes(keys: dict[str, jws.AccountKey]) -> None:
    body = jws.sign_jws(keys["ec256"], b"\xfb\xff\xfb\xff", url=URL, nonce=NONCE)
    assert body["payload"] == "-__7_w"
    jws.FlattenedJWS.parse(body).verify(keys["ec256"].public_key())
    for standard in ("+//7/w", "+//7/w=="):
        with pytest.raises(JWSError):
            jws.FlattenedJWS.parse({**body, "payload": standard})


@pytest.mark.parametrize("body", [b"not json", "{", b"\xff\xfe\x00", "", b"{'protected': 'e30'}"])
def test_parse_rejects_non_json(body: bytes | str) -> None:
    with pytest.raises(JWSError, match="not JSON"):
        jws.FlattenedJWS.parse(body)


@pytest.mark.parametrize("body", ["[]", "5", '"e30.e30.AA"', "null", "true", [], ["e30", "e30", "AA"], 5, None])
def test_parse_rejects_non_objects(body: Any) -> None:
    with pytest.raises(JWSError, match="not a JSON object"):
        jws.FlattenedJWS.parse(body)


def test_parse_rejects_general_serialization(good_body: dict[str, str]) -> None:
    general = {
        "payload": good_body["payload"],
        "signatures": [{"protected": good_body["protected"], "signature": good_body["signature"]}],
    }
    with pytest.raises(JWSError, match="flattened"):
        jws.FlattenedJWS.parse(general)
    with pytest.raises(JWSError, match="flattened"):
        jws.FlattenedJWS.parse({**good_body, "signatures": []})


def test_parse_rejects_unprotected_header(good_body: dict[str, str]) -> None:
    with pytest.raises(JWSError, match="unprotected"):
        jws.FlattenedJWS.parse({**good_body, "header": {"kid": KID}})
    with pytest.raises(JWSError, match="unprotected"):
        jws.FlattenedJWS.parse({**good_body, "header": {}})


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
def test_parse_rejects_missing_members(good_body: dict[str, str], member: str) -> None:
    incomplete = {name: value for name, value in good_body.items() if name != member}
    with pytest.raises(JWSError, match=member):
        jws.FlattenedJWS.parse(incomplete)


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
@pytest.mark.parametrize("value", [None, 5, ["e30"], {"alg": "ES256"}, b"e30"])
def test_parse_rejects_members_that_are_not_strings(good_body: dict[str, str], member: str, value: Any) -> None:
    with pytest.raises(JWSError):
        jws.FlattenedJWS.parse({**good_body, member: value})


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "ES256", "b64": False, "crit": ["b64"], "url": URL, "nonce": NONCE, "kid": KID},
        {"alg": "ES256", "b64": False, "url": URL, "nonce": NONCE, "kid": KID},
        {"alg": "ES256", "crit": ["exp"], "exp": 1, "url": URL, "nonce": NONCE, "kid": KID},
    ],
)
def test_parse_rejects_unencoded_payload_and_crit(keys: dict[str, jws.AccountKey], header: dict[str, Any]) -> None:
    protected = jws.b64encode(json.dumps(header).encode())
    signature = jws.b64encode(keys["ec256"].sign(f"{protected}.{{}}".encode()))
    with pytest.raises(JWSError, match=r"unencoded|critical"):
        jws.FlattenedJWS.parse({"protected": protected, "payload": "{}", "signature": signature})
    with pytest.raises(JWSError):
        jws.FlattenedJWS.parse({"protected": protected, "payload": "e30", "signature": signature})


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'"ES256"', b"\xff\xfe", b""])
def test_parse_rejects_protected_header_that_is_not_an_object(good_body: dict[str, str], raw: bytes) -> None:
    with pytest.raises(JWSError, match="protected header"):
        jws.FlattenedJWS.parse({**good_body, "protected": jws.b64encode(raw)})


# --- public keys from JWKs ---------------------------------------------------------------------------------


def test_public_key_from_jwk_round_trip(key: jws.AccountKey) -> None:
    public = jws.public_key_from_jwk(key.jwk)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert public.public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _private_jwk(key: jws.AccountKey) -> dict[str, Any]:
    private = key.private_key
    if isinstance(private, ed25519.Ed25519PrivateKey):
        raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        out: dict[str, Any] = {**jws.public_jwk(private), "d": jws.b64encode(raw)}
    elif isinstance(private, rsa.RSAPrivateKey):
        out = JWKRSA(key=private).to_json()
    else:
        out = JWKEC(key=private).to_json()
    return out


def test_public_key_from_jwk_refuses_private_keys(key: jws.AccountKey) -> None:
    private_jwk = _private_jwk(key)
    assert "d" in private_jwk
    with pytest.raises(JWSError) as info:
        jws.public_key_from_jwk(private_jwk)
    assert info.value.problem_type == "badPublicKey"


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": RFC7515_N, "e": "AQAB", "p": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D},
        {},
        {"kty": "foo"},
        {"kty": 5},
        {"kty": None},
        {"kty": ["RSA"]},
        {"kty": "RSA"},
        {"kty": "RSA", "n": RFC7515_N},
        {"kty": "RSA", "n": 5, "e": "AQAB"},
        {"kty": "RSA", "n": RFC7515_N, "e": None},
        {"kty": "RSA", "n": "", "e": ""},
        {"kty": "RSA", "n": "AA", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": [], "y": {}},
        {"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": 5, "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256"},
        {"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43},  # not a point on the curve
        {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": 5},
        {"kty": "OKP", "crv": "X25519", "x": RFC8037_X},
        {"kty": "OKP", "crv": "Ed448", "x": RFC8037_X},
        {"kty": "oct", "k": "AAAA"},
    ],
)
def test_public_key_from_jwk_rejects_garbage(jwk: dict[str, Any]) -> None:
    with pytest.raises(JWSError) as info:
        jws.public_key_from_jwk(jwk)
    assert info.value.problem_type == "badPublicKey"


@pytest.mark.parametrize("not_a_mapping", [None, "eyJrdHkiOiJSU0EifQ", ["RSA"], 5])
def test_public_key_from_jwk_wants_an_object(not_a_mapping: Any) -> None:
    with pytest.raises(JWSError):
        jws.public_key_from_jwk(not_a_mapping)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
b64ish = st.text(alphabet="AZaz09_-+/=", max_size=90)


@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {"kty": st.sampled_from(["RSA", "EC", "OKP", "oct", "RSA-OAEP", ""]) | json_values},
        optional={
            name: b64ish | json_values | st.sampled_from(["P-256", "P-384", "P-521", "Ed25519", "X25519", "AQAB"])
            for name in ("n", "e", "crv", "x", "y", "k", "d", "alg", "use")
        },
    )
)
def test_public_key_from_arbitrary_jwk_returns_or_raises_jws_error(jwk: dict[str, Any]) -> None:
    try:
        key = jws.public_key_from_jwk(jwk)
    except JWSError:
        return
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)


@settings(max_examples=300)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={name: b64ish | json_values for name in ("protected", "payload", "signature", "header")},
        ),
        st.binary(max_size=40),
    )
)
def test_parse_of_arbitrary_input_returns_or_raises_jws_error(body: Any) -> None:
    try:
        parsed = jws.FlattenedJWS.parse(body)
    except JWSError:
        return
    assert isinstance(parsed.header, dict)
    with pytest.raises(JWSError):
        parsed.verify(ed25519.Ed25519PrivateKey.generate().public_key())


# --- external account binding (RFC 8555 §7.3.4) -----------------------------------------------------------

EAB_URL = "https://example.com/acme/new-account"
EAB_KID = "kid-1"
HMAC_KEY = bytes(range(32))


@pytest.mark.parametrize(("alg", "digest", "length"), [
    ("HS256", hashlib.sha256, 32),
    ("HS384", hashlib.sha384, 48),
    ("HS512", hashlib.sha512, 64),
])
def test_sign_eab(key: jws.AccountKey, alg: str, digest: Any, length: int) -> None:
    body = jws.sign_eab(key.jwk, kid=EAB_KID, hmac_key=HMAC_KEY, url=EAB_URL, alg=alg)
    parsed = jws.FlattenedJWS.parse(body)
    assert parsed.header == {"alg": alg, "kid": EAB_KID, "url": EAB_URL}  # and no nonce
    assert parsed.json_payload() == key.jwk  # the account's public key, the same as the outer jwk
    assert len(parsed.signature) == length
    expected = hmac.new(HMAC_KEY, f"{body['protected']}.{body['payload']}".encode(), digest).digest()
    assert parsed.signature == expected
    parsed.verify_mac(HMAC_KEY)

    with pytest.raises(JWSError) as info:
        parsed.verify_mac(HMAC_KEY[::-1])
    assert info.value.problem_type == "unauthorized"
    # a MAC is never an acceptable signature on an ACME request
    with pytest.raises(JWSError) as info:
        parsed.verify(key.public_key())
    assert info.value.problem_type == "badSignatureAlgorithm"


def test_eab_default_alg_is_hs256(keys: dict[str, jws.AccountKey]) -> None:
    body = jws.sign_eab(keys["ec256"].jwk, kid=EAB_KID, hmac_key=HMAC_KEY, url=EAB_URL)
    assert _header(body)["alg"] == "HS256"


@pytest.mark.parametrize("what", ["payload", "protected", "signature"])
def test_tampered_eab_fails(keys: dict[str, jws.AccountKey], what: str) -> None:
    body = jws.sign_eab(keys["ec256"].jwk, kid=EAB_KID, hmac_key=HMAC_KEY, url=EAB_URL)
    if what == "payload":
        body["payload"] = jws.b64encode(json.dumps(dict(keys["ed25519"].jwk)).encode())
    elif what == "protected":
        body["protected"] = jws.b64encode(json.dumps({"alg": "HS256", "kid": "kid-2", "url": EAB_URL}).encode())
    else:
        body["signature"] = jws.b64encode(bytes(32))
    with pytest.raises(JWSError):
        jws.FlattenedJWS.parse(body).verify_mac(HMAC_KEY)


@pytest.mark.parametrize("alg", ["HS1", "RS256", "none", "hs256", ""])
def test_sign_eab_unknown_alg(keys: dict[str, jws.AccountKey], alg: str) -> None:
    with pytest.raises(ValueError, match="EAB algorithm"):
        jws.sign_eab(keys["ec256"].jwk, kid=EAB_KID, hmac_key=HMAC_KEY, url=EAB_URL, alg=alg)


def test_verify_mac_refuses_asymmetric_algorithms(keys: dict[str, jws.AccountKey]) -> None:
    parsed = jws.FlattenedJWS.parse(jws.sign_jws(keys["ec256"], b"{}", url=EAB_URL, nonce=NONCE))
    with pytest.raises(JWSError) as info:
        parsed.verify_mac(HMAC_KEY)
    assert info.value.problem_type == "badSignatureAlgorithm"


# --- account keys -------------------------------------------------------------------------------------------


def test_pem_round_trip_keeps_thumbprint(key: jws.AccountKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = jws.AccountKey.from_pem(pem)
    assert again.thumbprint == key.thumbprint
    assert again.alg == key.alg
    assert again.jwk == key.jwk
    # and it signs what the original verifies
    jws.FlattenedJWS.parse(jws.sign_jws(again, b"{}", url=URL, nonce=NONCE)).verify(key.public_key())


def test_from_pem_reads_traditional_formats() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert jws.AccountKey.from_pem(pem).thumbprint == jws.AccountKey(private).thumbprint


def _pem(private: Any) -> bytes:
    pem: bytes = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


@pytest.mark.parametrize(
    "make_pem",
    [
        lambda: b"",
        lambda: b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
        lambda: ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        lambda: _pem(x25519.X25519PrivateKey.generate()),
        lambda: _pem(dsa.generate_private_key(2048)),
        lambda: _pem(ec.generate_private_key(ec.SECP521R1())),
        lambda: ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
    ],
    ids=["empty", "garbage", "public-key", "x25519", "dsa", "p521", "encrypted"],
)
def test_from_pem_rejects(make_pem: Any) -> None:
    with pytest.raises(JWSError):
        jws.AccountKey.from_pem(make_pem())


def test_generate_unknown_key_type() -> None:
    with pytest.raises(ValueError, match="unknown key type"):
        jws.AccountKey.generate("dsa1024")  # type: ignore[arg-type]


def test_repr_has_no_key_material(key: jws.AccountKey) -> None:
    text = repr(key)
    assert text == f"AccountKey({key.alg}, thumbprint={key.thumbprint})"
    assert str(key) == text
    pem_body = b"".join(key.to_pem().splitlines()[1:-1]).decode()
    assert pem_body[:16] not in text
    private = _private_jwk(key)
    assert private["d"] not in text
    assert "private" not in text.lower()


def test_account_key_is_immutable_and_compared_by_identity(keys: dict[str, jws.AccountKey]) -> None:
    key = keys["ec256"]
    with pytest.raises(AttributeError):
        key.alg = "none"  # type: ignore[misc]
    assert key == key
    assert key != jws.AccountKey(key.private_key)  # eq=False: no comparison of private keys
