"""Hostile input against ca_stub's WFE: every bad request gets the right problem and changes nothing.

ca_stub runs in this process (``ca_stub_inproc``); requests go straight to its WSGI application,
and a few of them over real HTTPS too. Every refusal must be

- the RFC 8555 problem type and HTTP status the case names, as an RFC 7807 document
  (``Content-Type: application/problem+json``, the same status inside);
- answered with a fresh ``Replay-Nonce`` (RFC 8555 §6.5: also on errors), which works;
- without effect: the SQLite database, dumped through a read-only connection before and after,
  is identical, and ca_stub logged no error.

Requests are built with ``letsencrypt.acme.jws`` and then tampered with as plain dicts.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import io
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from letsencrypt.acme import crypto
from letsencrypt.acme.jws import AccountKey, b64encode, sign_eab
from letsencrypt.acme.messages import ERROR_PREFIX, Identifier

from .ca_stub_inproc import JOSE, PROBLEM, Account, InProcCA, OrderInfo, Reply, running_ca

pytestmark = pytest.mark.integration

NEW_ORDER = "/acme/new-order"
ORDER_PAYLOAD = {"identifiers": [{"type": "dns", "value": "hostile.example.com"}]}
MAX_BODY = 64 * 1024


@dataclasses.dataclass(frozen=True)
class World:
    """One CA with: alice (a valid and a ready order for alice.example.com, and the certificate of
    the valid one), bob (an account without authorizations) and gone (a deactivated account)."""

    ca: InProcCA
    alice: Account
    bob: Account
    gone: Account
    valid_order: OrderInfo
    certificate: bytes  # DER
    ready_order: OrderInfo


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_ca(tmp_path_factory.mktemp("ca_stub-hostile")) as ca:
        alice, bob, gone = ca.register(), ca.register(), ca.register()
        valid_order, certificate = ca.issue(alice, ["alice.example.com"])
        ready_order = ca.new_order(alice, ["alice.example.com"])  # the valid authorization is reused
        assert ready_order.body["status"] == "ready"
        assert ca.post(gone, gone.kid.removeprefix(ca.base_url), {"status": "deactivated"}).status == 200
        assert ca.errors.messages() == []
        yield World(ca, alice, bob, gone, valid_order, certificate, ready_order)


def assert_problem(reply: Reply, problem_type: str, status: int, detail: str = "") -> dict[str, Any]:
    """``reply`` is problem ``problem_type`` with HTTP ``status``, a fresh nonce, and ``detail`` in its text."""
    assert reply.status == status, reply.body.decode(errors="replace")
    assert reply.header("Content-Type") == PROBLEM
    assert reply.header("Replay-Nonce")
    document = reply.json()
    assert document["type"] == ERROR_PREFIX + problem_type, document
    assert document["status"] == status
    assert detail.lower() in document["detail"].lower(), document
    return dict(document)


# --- tampering helpers --------------------------------------------------------------------------


def padded(data: bytes) -> str:
    """base64url *with* its ``=`` padding (``data`` is chosen so that there is some)."""
    assert len(data) % 3, "no padding would be needed"
    return base64.urlsafe_b64encode(data).decode()


def standard(data: bytes) -> str:
    """The standard base64 alphabet ("+", "/"), unpadded (``data`` is chosen so that they appear)."""
    text = base64.b64encode(data).decode().rstrip("=")
    assert "+" in text or "/" in text, "no character outside base64url"
    return text


def _fill_to_pad(obj: dict[str, Any]) -> bytes:
    """``obj`` as JSON with a filler member sized so that its base64 needs padding."""
    for size in range(3):
        data = json.dumps({**obj, "filler": "x" * size}).encode()
        if len(data) % 3:
            return data
    raise AssertionError("unreachable")


def encoded_jws(
    ca: InProcCA, who: Account, path: str, payload: dict[str, Any], *,
    protected_enc: Callable[[bytes], str] = b64encode, payload_enc: Callable[[bytes], str] = b64encode,
    signature_enc: Callable[[bytes], str] = b64encode, fill: Callable[[dict[str, Any]], bytes] = _fill_to_pad,
) -> dict[str, str]:
    """A JWS signed by ``who`` over fields encoded with the given encoders (as a sloppy client would)."""
    header = {"alg": who.key.alg, "nonce": ca.nonce(), "url": ca.url(path), "kid": who.kid}
    protected, body = protected_enc(fill(header)), payload_enc(fill(payload))
    for _ in range(100):  # ECDSA signatures are random: find one whose encoding shows the flaw
        signature = who.key.sign(f"{protected}.{body}".encode())
        try:
            return {"protected": protected, "payload": body, "signature": signature_enc(signature)}
        except AssertionError:
            continue
    raise AssertionError("no signature with the wanted encoding")


def _fill_to_std(obj: dict[str, Any]) -> bytes:
    """JSON with a member of "?" characters: three of them in a row encode to "Pz8/" in any alignment."""
    return json.dumps({**obj, "filler": "?????"}).encode()


def raw_jws(header: dict[str, Any], payload: bytes, sign: Callable[[bytes], bytes]) -> dict[str, str]:
    protected = b64encode(json.dumps(header).encode())
    encoded = b64encode(payload)
    return {"protected": protected, "payload": encoded,
            "signature": b64encode(sign(f"{protected}.{encoded}".encode()))}


def private_jwk(key: AccountKey) -> dict[str, Any]:
    """The account key's JWK with its private member ``d`` (EC) added."""
    assert isinstance(key.private_key, ec.EllipticCurvePrivateKey)
    d = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    return {**key.jwk, "d": b64encode(d)}


def inner_key_change(
    ca: InProcCA, signer: AccountKey, jwk: dict[str, Any], account_url: str, old_jwk: dict[str, Any]
) -> dict[str, str]:
    """The inner JWS of a keyChange (RFC 8555 §7.3.5): ``jwk`` in the header, signed by ``signer``."""
    header = {"alg": signer.alg, "jwk": jwk, "url": ca.url("/acme/key-change")}
    payload = json.dumps({"account": account_url, "oldKey": old_jwk}).encode()
    return raw_jws(header, payload, signer.sign)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --- the table of hostile requests ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[World], Reply]
    problem: str
    status: int
    detail: str = ""


def _post_body(path: str, body: bytes) -> Callable[[World], Reply]:
    return lambda w: w.ca.call("POST", path, body)


def _rs512(w: World) -> Reply:
    rsa_key = rsa.generate_private_key(65537, 2048)
    public = AccountKey(rsa_key).jwk
    header = {"alg": "RS512", "nonce": w.ca.nonce(), "url": w.ca.url("/acme/new-account"), "jwk": dict(public)}
    jws = raw_jws(header, json.dumps({"termsOfServiceAgreed": True}).encode(),
                  lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA512()))
    return w.ca.send("/acme/new-account", jws)


def _hs256(w: World) -> Reply:
    """The classic confusion: an HMAC keyed with the account's public key material."""
    secret = json.dumps(dict(w.alice.key.jwk)).encode()
    header = {"alg": "HS256", "nonce": w.ca.nonce(), "url": w.ca.url(NEW_ORDER), "kid": w.alice.kid}
    jws = raw_jws(header, json.dumps(ORDER_PAYLOAD).encode(),
                  lambda data: hmac.new(secret, data, hashlib.sha256).digest())
    return w.ca.send(NEW_ORDER, jws)


def _alg_none(w: World) -> Reply:
    header = {"alg": "none", "nonce": w.ca.nonce(), "url": w.ca.url(NEW_ORDER), "kid": w.alice.kid}
    return w.ca.send(NEW_ORDER, raw_jws(header, json.dumps(ORDER_PAYLOAD).encode(), lambda data: b""))


def _key_change(inner: Callable[[World, AccountKey], dict[str, str]]) -> Callable[[World], Reply]:
    def send(w: World) -> Reply:
        new_key = AccountKey.generate("ec256")
        return w.ca.post(w.bob, "/acme/key-change", inner(w, new_key))

    return send


def _csr_for(names: list[str]) -> bytes:
    return crypto.make_csr(crypto.generate_private_key("ec256"), [Identifier.parse(name) for name in names])


def _with(jws: dict[str, str], **members: Any) -> bytes:
    return json.dumps({**jws, **members}).encode()


CASES = [
    # --- the body is not a flattened JWS
    Case("malformed-json", _post_body(NEW_ORDER, b'{"protected": "eyJhbGciOi'), "malformed", 400, "not JSON"),
    Case("json-array", _post_body(NEW_ORDER, b"[]"), "malformed", 400, "not a JSON object"),
    Case("json-string", _post_body(NEW_ORDER, b'"a JWS"'), "malformed", 400, "not a JSON object"),
    Case("json-number", _post_body(NEW_ORDER, b"42"), "malformed", 400, "not a JSON object"),
    Case("json-null", _post_body(NEW_ORDER, b"null"), "malformed", 400, "not a JSON object"),
    Case("not-utf8", _post_body(NEW_ORDER, b"\xff\xfe{}"), "malformed", 400, "not JSON"),
    Case("empty-body", _post_body(NEW_ORDER, b""), "malformed", 400, "not JSON"),
    Case("deeply-nested-body", _post_body(NEW_ORDER, nested(20_000)), "malformed", 400, "not JSON"),
    Case("jws-lacks-signature", _post_body(NEW_ORDER, b'{"protected": "e30", "payload": ""}'), "malformed", 400,
         "lacks signature"),
    Case("general-serialization",
         lambda w: w.ca.send(NEW_ORDER, _with(w.ca.jws(w.alice.key, NEW_ORDER, ORDER_PAYLOAD, kid=w.alice.kid),
                                              signatures=[])),
         "malformed", 400, "flattened"),
    Case("unprotected-header",
         lambda w: w.ca.send(NEW_ORDER, _with(w.ca.jws(w.alice.key, NEW_ORDER, ORDER_PAYLOAD, kid=w.alice.kid),
                                              header={"kid": w.alice.kid})),
         "malformed", 400, "unprotected"),
    Case("protected-not-object",
         lambda w: w.ca.send(NEW_ORDER, {"protected": b64encode(b"[1]"), "payload": "", "signature": ""}),
         "malformed", 400, "not a JSON object"),
    Case("deeply-nested-protected",
         lambda w: w.ca.send(NEW_ORDER, {"protected": b64encode(nested(20_000)), "payload": "", "signature": ""}),
         "malformed", 400, "not JSON"),
    Case("fields-not-strings",
         lambda w: w.ca.send(NEW_ORDER, {"protected": {"alg": "ES256"}, "payload": 1, "signature": None}),
         "malformed", 400, "base64url"),
    Case("crit-header", lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, extra={"crit": ["b64"], "b64": False}),
         "malformed", 400, "not supported"),
    # --- base64url exactly (RFC 8555 §6.1: no padding, no standard alphabet)
    Case("padded-protected", lambda w: w.ca.send(NEW_ORDER, encoded_jws(w.ca, w.alice, NEW_ORDER, ORDER_PAYLOAD,
                                                                        protected_enc=padded)),
         "malformed", 400, "base64url"),
    Case("padded-payload", lambda w: w.ca.send(NEW_ORDER, encoded_jws(w.ca, w.alice, NEW_ORDER, ORDER_PAYLOAD,
                                                                      payload_enc=padded)),
         "malformed", 400, "base64url"),
    Case("padded-signature", lambda w: w.ca.send(NEW_ORDER, encoded_jws(w.ca, w.alice, NEW_ORDER, ORDER_PAYLOAD,
                                                                        signature_enc=padded)),
         "malformed", 400, "base64url"),
    Case("standard-alphabet-protected",
         lambda w: w.ca.send(NEW_ORDER, encoded_jws(w.ca, w.alice, NEW_ORDER, ORDER_PAYLOAD, protected_enc=standard,
                                                    fill=_fill_to_std)),
         "malformed", 400, "base64url"),
    Case("standard-alphabet-payload",
         lambda w: w.ca.send(NEW_ORDER, encoded_jws(w.ca, w.alice, NEW_ORDER, ORDER_PAYLOAD, payload_enc=standard,
                                                    fill=_fill_to_std)),
         "malformed", 400, "base64url"),
    Case("standard-alphabet-signature",
         lambda w: w.ca.send(NEW_ORDER, encoded_jws(w.ca, w.alice, NEW_ORDER, ORDER_PAYLOAD, signature_enc=standard,
                                                    fill=_fill_to_std)),
         "malformed", 400, "base64url"),
    # --- the signed payload
    Case("payload-not-json", lambda w: w.ca.post(w.alice, NEW_ORDER, b"{identifiers"), "malformed", 400, "not JSON"),
    Case("payload-deeply-nested", lambda w: w.ca.post(w.alice, NEW_ORDER, nested(20_000)), "malformed", 400,
         "not JSON"),
    Case("payload-not-object", lambda w: w.ca.post(w.alice, NEW_ORDER, ["dns", "example.com"]), "malformed", 400,
         "not a JSON object"),
    # --- nonces (RFC 8555 §6.5)
    Case("foreign-nonce", lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, nonce=b64encode(b"\x00" * 16)),
         "badNonce", 400, "unknown"),
    Case("missing-nonce", lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, extra={"nonce": None}),
         "badNonce", 400, "no nonce"),
    Case("nonce-not-string", lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, extra={"nonce": 12345}),
         "badNonce", 400),
    # --- the url header (RFC 8555 §6.4)
    Case("url-of-another-endpoint",
         lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, url=w.ca.url("/acme/revoke-cert")),
         "unauthorized", 403, "not the request URL"),
    Case("url-of-another-host",
         lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, url="https://ca.example.net/acme/new-order"),
         "unauthorized", 403, "not the request URL"),
    Case("url-missing", lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, extra={"url": None}),
         "unauthorized", 403, "not the request URL"),
    # --- algorithms (RFC 8555 §6.2)
    Case("alg-none", _alg_none, "badSignatureAlgorithm", 400, "not accepted"),
    Case("alg-HS256", _hs256, "badSignatureAlgorithm", 400, "not accepted"),
    Case("alg-RS512", _rs512, "badSignatureAlgorithm", 400, "not accepted"),
    Case("alg-not-the-keys", lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, extra={"alg": "ES384"}),
         "badSignatureAlgorithm", 400, "does not match"),
    # --- jwk xor kid
    Case("both-jwk-and-kid",
         lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, extra={"jwk": dict(w.alice.key.jwk)}),
         "malformed", 400, "exactly one"),
    Case("neither-jwk-nor-kid", lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, extra={"kid": None}),
         "malformed", 400, "exactly one"),
    Case("jwk-where-kid-is-needed", lambda w: w.ca.post_jwk(w.alice.key, NEW_ORDER, ORDER_PAYLOAD),
         "malformed", 400, "needs a kid"),
    Case("kid-on-new-account",
         lambda w: w.ca.post(w.alice, "/acme/new-account", {"termsOfServiceAgreed": True}),
         "malformed", 400, "needs a jwk"),
    # --- accounts
    Case("kid-of-unknown-account",
         lambda w: w.ca.post(Account(w.alice.key, w.ca.url("/acme/acct/424242")), NEW_ORDER, ORDER_PAYLOAD),
         "accountDoesNotExist", 400, "no account"),
    Case("kid-of-another-ca",
         lambda w: w.ca.post(Account(w.alice.key, "https://ca.example.net/acme/acct/1"), NEW_ORDER, ORDER_PAYLOAD),
         "accountDoesNotExist", 400, "no account"),
    Case("kid-too-large-for-the-database",
         lambda w: w.ca.post(Account(w.alice.key, w.ca.url("/acme/acct/" + "9" * 30)), NEW_ORDER, ORDER_PAYLOAD),
         "accountDoesNotExist", 400, "no account"),
    Case("kid-not-a-string", lambda w: w.ca.post(w.alice, NEW_ORDER, ORDER_PAYLOAD, extra={"kid": 1}),
         "accountDoesNotExist", 400),
    Case("deactivated-account", lambda w: w.ca.post(w.gone, NEW_ORDER, ORDER_PAYLOAD), "unauthorized", 401,
         "deactivated"),
    Case("deactivated-account-new-account",
         lambda w: w.ca.post_jwk(w.gone.key, "/acme/new-account", {"termsOfServiceAgreed": True}),
         "unauthorized", 401, "deactivated"),
    # --- keys and signatures
    Case("signed-by-the-wrong-key",
         lambda w: w.ca.post(Account(AccountKey.generate("ec256"), w.alice.kid), NEW_ORDER, ORDER_PAYLOAD),
         "malformed", 400, "signature is invalid"),
    Case("signature-of-another-request",
         lambda w: w.ca.send(NEW_ORDER, {
             **w.ca.jws(w.alice.key, NEW_ORDER, ORDER_PAYLOAD, kid=w.alice.kid),
             "signature": w.ca.jws(w.alice.key, NEW_ORDER, {"identifiers": []}, kid=w.alice.kid)["signature"],
         }),
         "malformed", 400, "signature is invalid"),
    Case("jwk-with-private-members", lambda w: _private_jwk_request(w), "badPublicKey", 400, "private"),
    Case("jwk-unusable",
         lambda w: w.ca.post_jwk(w.alice.key, "/acme/new-account", {"termsOfServiceAgreed": True},
                                 extra={"jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}}),
         "badPublicKey", 400),
    Case("jwk-symmetric",
         lambda w: w.ca.post_jwk(w.alice.key, "/acme/new-account", {"termsOfServiceAgreed": True},
                                 extra={"jwk": {"kty": "oct", "k": b64encode(b"secret")}}),
         "badPublicKey", 400),
    # --- HTTP level
    Case("wrong-content-type",
         lambda w: w.ca.send(NEW_ORDER, w.ca.jws(w.alice.key, NEW_ORDER, ORDER_PAYLOAD, kid=w.alice.kid),
                             content_type="application/json"),
         "malformed", 415, "Content-Type"),
    Case("no-content-type",
         lambda w: w.ca.send(NEW_ORDER, w.ca.jws(w.alice.key, NEW_ORDER, ORDER_PAYLOAD, kid=w.alice.kid),
                             content_type=None),
         "malformed", 415, "Content-Type"),
    Case("content-length-not-a-number",
         lambda w: w.ca.call("POST", NEW_ORDER, b"{}", content_length="twelve"), "malformed", 400, "Content-Length"),
    Case("get-on-post-only", lambda w: w.ca.call("GET", NEW_ORDER, content_type=None), "malformed", 405,
         "POST-as-GET"),
    Case("get-on-an-order", lambda w: w.ca.call("GET", w.valid_order.path, content_type=None), "malformed", 405),
    Case("delete-on-the-directory", lambda w: w.ca.call("DELETE", "/directory", content_type=None), "malformed", 405),
    Case("unknown-path", lambda w: w.ca.call("POST", "/acme/nothing-here", b"{}"), "malformed", 404,
         "no resource"),
    Case("unknown-path-get", lambda w: w.ca.call("GET", "/", content_type=None), "malformed", 404, "no resource"),
    Case("order-number-too-large", lambda w: w.ca.post(w.alice, "/acme/order/" + "9" * 5000), "malformed", 404,
         "no resource"),
    Case("order-number-past-int64", lambda w: w.ca.post(w.alice, "/acme/order/99999999999999999999"), "malformed",
         404, "no resource"),
    Case("order-number-in-arabic-digits", lambda w: w.ca.post(w.alice, "/acme/order/\u0661"), "malformed", 404,
         "no resource"),
    Case("alternate-chain-number-too-large",
         lambda w: w.ca.post(w.alice, "/acme/cert/abc/" + "9" * 5000), "malformed", 404, "no resource"),
    Case("no-such-order", lambda w: w.ca.post(w.alice, "/acme/order/999999"), "malformed", 404, "no order"),
    # --- orders (RFC 8555 §7.4)
    Case("unsupported-identifier-type",
         lambda w: w.ca.post(w.alice, NEW_ORDER, {"identifiers": [{"type": "email", "value": "a@example.com"}]}),
         "unsupportedIdentifier", 400, "not supported"),
    Case("no-identifiers", lambda w: w.ca.post(w.alice, NEW_ORDER, {"identifiers": []}), "malformed", 400,
         "at least one"),
    Case("order-of-another-account", lambda w: w.ca.post(w.bob, w.valid_order.path), "unauthorized", 403,
         "another account"),
    Case("post-as-get-with-a-payload", lambda w: w.ca.post(w.alice, w.valid_order.path, {}), "malformed", 400,
         "POST-as-GET"),
    Case("post-as-get-with-a-payload-to-the-orders-list",
         lambda w: w.ca.post(w.alice, w.alice.kid.removeprefix(w.ca.base_url) + "/orders", {}), "malformed", 400,
         "POST-as-GET"),
    Case("post-as-get-with-a-payload-to-a-certificate",
         lambda w: w.ca.post(w.alice, "/acme/" + w.valid_order.body["certificate"].split("/acme/", 1)[1], {}),
         "malformed", 400, "POST-as-GET"),
    Case("post-as-get-with-null-payload", lambda w: w.ca.post(w.alice, w.valid_order.path, None), "malformed", 400,
         "POST-as-GET"),
    Case("second-finalize",
         lambda w: w.ca.finalize(w.alice, w.valid_order, _csr_for(["alice.example.com"])),
         "orderNotReady", 403, "valid, not ready"),
    Case("finalize-another-accounts-order",
         lambda w: w.ca.finalize(w.bob, w.ready_order, _csr_for(["alice.example.com"])),
         "unauthorized", 403, "another account"),
    Case("finalize-csr-not-base64url",
         lambda w: w.ca.post(w.alice, w.ready_order.finalize_path, {"csr": "MIIB+/=="}), "malformed", 400,
         "base64url"),
    Case("finalize-csr-garbage",
         lambda w: w.ca.finalize(w.alice, w.ready_order, b"\x30\x03\x02\x01\x00"), "badCSR", 400, "cannot be used"),
    # --- revocation (RFC 8555 §7.6)
    Case("revoke-someone-elses-certificate",
         lambda w: w.ca.post(w.bob, "/acme/revoke-cert", {"certificate": b64encode(w.certificate)}),
         "unauthorized", 403, "did not order this certificate"),
    Case("revoke-signed-by-another-key",
         lambda w: w.ca.post_jwk(AccountKey.generate("ec256"), "/acme/revoke-cert",
                                 {"certificate": b64encode(w.certificate)}),
         "unauthorized", 403, "certificate's key"),
    Case("revoke-with-a-bad-reason",
         lambda w: w.ca.post(w.alice, "/acme/revoke-cert", {"certificate": b64encode(w.certificate), "reason": 7}),
         "badRevocationReason", 400),
    Case("revoke-a-certificate-not-ours",
         lambda w: w.ca.post(w.alice, "/acme/revoke-cert", {"certificate": b64encode(b"\x30\x00")}),
         "malformed", 400, "cannot be parsed"),
    # --- key rollover (RFC 8555 §7.3.5)
    Case("key-change-inner-signed-by-the-old-key",
         _key_change(lambda w, new: inner_key_change(w.ca, w.bob.key, dict(new.jwk), w.bob.kid, dict(w.bob.key.jwk))),
         "malformed", 400, "signature is invalid"),
    Case("key-change-to-the-old-key",
         _key_change(lambda w, new: inner_key_change(w.ca, w.bob.key, dict(w.bob.key.jwk), w.bob.kid,
                                                     dict(w.bob.key.jwk))),
         "malformed", 409, "already belongs"),
    Case("key-change-names-another-account",
         _key_change(lambda w, new: inner_key_change(w.ca, new, dict(new.jwk), w.alice.kid, dict(w.bob.key.jwk))),
         "malformed", 400, "another account"),
    Case("key-change-wrong-old-key",
         _key_change(lambda w, new: inner_key_change(w.ca, new, dict(new.jwk), w.bob.kid, dict(w.alice.key.jwk))),
         "malformed", 400, "oldKey"),
    Case("key-change-inner-with-kid",
         _key_change(lambda w, new: raw_jws({"alg": new.alg, "kid": w.bob.kid, "url": w.ca.url("/acme/key-change")},
                                            b"{}", new.sign)),
         "malformed", 400, "jwk and no kid"),
    Case("key-change-inner-alg-none",
         _key_change(lambda w, new: raw_jws({"alg": "none", "jwk": dict(new.jwk),
                                             "url": w.ca.url("/acme/key-change")}, b"{}", lambda data: b"")),
         "badSignatureAlgorithm", 400),
    Case("key-change-inner-not-an-object",
         lambda w: w.ca.post(w.bob, "/acme/key-change", ["protected", "payload"]), "malformed", 400),
]


def _private_jwk_request(w: World) -> Reply:
    key = AccountKey.generate("ec256")
    return w.ca.post_jwk(key, "/acme/new-account", {"termsOfServiceAgreed": True}, extra={"jwk": private_jwk(key)})


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request_is_refused_and_changes_nothing(world: World, case: Case) -> None:
    with world.ca.unchanged():
        reply = case.send(world)
    document = assert_problem(reply, case.problem, case.status, case.detail)
    if case.problem == "badSignatureAlgorithm":  # RFC 8555 §6.2: the problem MUST list the algorithms
        assert "ES256" in document["algorithms"] and "none" not in document["algorithms"]


def test_error_nonce_is_fresh_and_usable(world: World) -> None:
    """The nonce of a badNonce answer is what a client retries with (RFC 8555 §6.5)."""
    reply = world.ca.post(world.alice, world.valid_order.path, nonce="bm90LWlzc3VlZA")
    assert_problem(reply, "badNonce", 400)
    retry = world.ca.post(world.alice, world.valid_order.path, nonce=reply.header("Replay-Nonce"))
    assert retry.status == 200, retry


def test_replayed_nonce_is_refused(world: World) -> None:
    """The exact same signed newOrder twice: the first is served, the replay changes nothing."""
    jws = world.ca.jws(world.alice.key, NEW_ORDER, {"identifiers": [{"type": "dns", "value": "replay.example.com"}]},
                       kid=world.alice.kid)
    first = world.ca.send(NEW_ORDER, jws)
    assert first.status == 201, first
    with world.ca.unchanged():
        replay = world.ca.send(NEW_ORDER, jws)
    assert_problem(replay, "badNonce", 400, "used already")


def test_csr_for_names_not_in_the_order_is_bad_csr_and_the_order_stays_ready(world: World) -> None:
    ca = world.ca
    for names in (["alice.example.com", "mallory.example.com"], ["mallory.example.com"], []):
        with ca.unchanged():
            reply = ca.finalize(world.alice, world.ready_order, _csr_for(names) if names else _csr_for_no_names())
        assert_problem(reply, "badCSR", 400, "exactly the order's identifiers")
        assert ca.read_order(world.alice, world.ready_order).body["status"] == "ready"


def _csr_for_no_names() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no names")])
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


class CountingStream(io.RawIOBase):
    """A ``wsgi.input`` that would yield ``size`` bytes and counts what the application reads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.read_bytes if n < 0 else min(n, self.size - self.read_bytes)
        self.read_bytes += n
        return b"x" * n

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@pytest.mark.parametrize("size", [MAX_BODY + 1, 10 * 1024 * 1024])
def test_oversized_body_is_refused_unread(world: World, size: int) -> None:
    stream = CountingStream(size)
    with world.ca.unchanged():
        reply = world.ca.call_environ(world.ca.environ("POST", NEW_ORDER, stream=stream, content_length=str(size)))
    assert_problem(reply, "malformed", 413, "limit")
    assert stream.read_bytes == 0


def test_body_at_the_limit_is_read(world: World) -> None:
    """Exactly 64 KiB is still read (and refused for what it is, not for its size)."""
    body = json.dumps({"pad": "x" * (MAX_BODY - 20)}).encode().ljust(MAX_BODY)
    assert len(body) == MAX_BODY
    with world.ca.unchanged():
        reply = world.ca.call("POST", NEW_ORDER, body)
    assert_problem(reply, "malformed", 400, "lacks")


# --- over real HTTPS --------------------------------------------------------------------------


def _https(world: World, method: str, path: str, body: bytes = b"", content_type: str = JOSE) -> requests.Response:
    return requests.request(method, world.ca.url(path), data=body, headers={"Content-Type": content_type},
                            verify=str(world.ca.api_root), timeout=10)


def _assert_http_problem(response: requests.Response, problem: str, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["Replay-Nonce"]
    assert response.json()["type"] == ERROR_PREFIX + problem


def test_over_https(world: World) -> None:
    ca = world.ca
    with ca.unchanged():
        _assert_http_problem(_https(world, "POST", NEW_ORDER, b'{"protected": '), "malformed", 400)
        _assert_http_problem(_https(world, "POST", NEW_ORDER, nested(20_000)), "malformed", 400)
        _assert_http_problem(_https(world, "GET", NEW_ORDER), "malformed", 405)
        _assert_http_problem(_https(world, "POST", "/acme/nothing-here", b"{}"), "malformed", 404)
        signed = json.dumps(ca.jws(world.alice.key, NEW_ORDER, ORDER_PAYLOAD, kid=world.alice.kid)).encode()
        _assert_http_problem(_https(world, "POST", NEW_ORDER, signed, content_type="application/json"),
                             "malformed", 415)
        foreign = ca.jws(world.alice.key, NEW_ORDER, ORDER_PAYLOAD, kid=world.alice.kid, nonce="Zm9yZWlnbg")
        _assert_http_problem(_https(world, "POST", NEW_ORDER, json.dumps(foreign).encode()), "badNonce", 400)


def test_replayed_nonce_over_https(world: World) -> None:
    ca = world.ca
    path = world.valid_order.path
    signed = json.dumps(ca.jws(world.alice.key, path, kid=world.alice.kid)).encode()
    assert _https(world, "POST", path, signed).status_code == 200
    with ca.unchanged():
        _assert_http_problem(_https(world, "POST", path, signed), "badNonce", 400)


def test_oversized_body_over_https_is_answered_before_it_is_sent(world: World) -> None:
    """A client announcing 10 MiB gets 413 after sending only its headers and a few bytes."""
    ca = world.ca
    host, port = ca.base_url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca.api_root))
    request = (
        f"POST {NEW_ORDER} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {JOSE}\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    ).encode() + b"{" * 100
    with ca.unchanged():
        with socket.create_connection((host, int(port)), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(request)
            started = time.monotonic()
            answer = b""
            while b"\r\n\r\n" not in answer and time.monotonic() - started < 10:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"application/problem+json" in answer


# --- regressions of bugs the fuzzer found -------------------------------------------------------


def test_management_api_index_too_large_is_404(world: World) -> None:
    response = world.ca.server.management_api.handle("GET", "/roots/" + "9" * 5000)
    assert response.status == 404


def test_deeply_nested_external_account_binding(tmp_path: Path) -> None:
    """The EAB payload is parsed as JSON too; nesting past the recursion limit is malformed, not 500."""
    hmac_key = b"k" * 32
    with running_ca(tmp_path, eab_keys={"kid-1": hmac_key}, eab_required=True) as ca:
        key = AccountKey.generate("ec256")
        eab = sign_eab(key.jwk, kid="kid-1", hmac_key=hmac_key, url=ca.url("/acme/new-account"))
        protected = eab["protected"]
        payload = b64encode(nested(5_000))  # far past the recursion limit, within the body limit
        mac = hmac.new(hmac_key, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
        eab = {"protected": protected, "payload": payload, "signature": b64encode(mac)}
        with ca.unchanged():
            reply = ca.post_jwk(key, "/acme/new-account", {"termsOfServiceAgreed": True,
                                                             "externalAccountBinding": eab})
        assert_problem(reply, "malformed", 400, "externalAccountBinding")
