"""Property-based fuzzing of ca_stub's WFE with hypothesis: no input yields a 500.

ca_stub runs in this process and the WFE's WSGI application is called directly, so each property
sends a few hundred requests in seconds. After every request: the status is not 500, the answer
carries a ``Replay-Nonce``, every error is an RFC 7807 problem document whose ``status`` is the
HTTP status, and ca_stub logged nothing at ERROR level (the WFE logs "bug: unexpected error" with
the traceback whenever it answers 500).

1. Raw requests: arbitrary methods, paths (real routes, real routes with garbage appended,
   garbage), queries, headers, ``Content-Type``, ``Content-Length`` and bodies (bytes, JSON,
   JWS-shaped objects). Only the unauthenticated resources (directory, nonces, terms, OCSP, CRLs,
   renewal information) may ever answer with a success.
2. Valid JWS envelopes (fresh nonce, right ``url``, a registered account) whose payload is
   arbitrary JSON, or JSON shaped like the endpoint's request with hostile values, sent to every
   signed endpoint (new-account, account, orders, new-order, order, finalize, authz, challenge,
   certificate, revoke-cert, key-change), each against a live resource of the signer.
3. Valid signatures over a fuzzed protected header (``alg``, ``nonce``, ``url``, ``kid``, ``jwk``,
   ``crit``, ...).
4. Signed requests to resource URLs with fuzzed numbers (the fuzzer found that ids past SQLite's
   64-bit integers, or past Python's 4300-digit ``int`` limit, were answered 500).

Strategies use placeholders such as ``"$KID"`` or ``"$CSR"`` for values that exist only once the
CA runs; ``Fuzz.resolve`` fills them in before a request is sent.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from letsencrypt.acme import crypto
from letsencrypt.acme.ari import certificate_id
from letsencrypt.acme.jws import AccountKey, b64encode
from letsencrypt.acme.messages import ERROR_PREFIX, Identifier, format_time

from .ca_stub_inproc import JOSE, POST_AS_GET, PROBLEM, Account, GetSentinel, InProcCA, Reply, running_ca

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAME = "fuzz.example.com"  # alice holds a valid authorization for it: new orders for it are ready at once

# Paths that answer without a signature; anything else must never succeed on random input.
UNAUTHENTICATED = ("/directory", "/acme/new-nonce", "/terms", "/ocsp", "/crl/", "/acme/renewal-info/")


# --- the running CA -----------------------------------------------------------------------------


@dataclasses.dataclass
class Fuzz:
    ca: InProcCA
    alice: Account  # a valid authorization for NAME, a certificate, a valid order
    bob: Account
    certificate: bytes
    valid_order_path: str
    keys: list[AccountKey]  # for newAccount: fresh keys of every type, and alice's
    values: dict[str, Any]  # placeholder -> value
    counter: Iterator[int] = dataclasses.field(default_factory=itertools.count)
    checked: int = 0  # how many ERROR records were already looked at

    def resolve(self, value: Any, overrides: dict[str, Any] | None = None) -> Any:
        """``value`` with every placeholder string replaced by its value (``overrides`` first), recursively."""
        if isinstance(value, str):
            return (overrides or {}).get(value, self.values.get(value, value))
        if isinstance(value, list):
            return [self.resolve(item, overrides) for item in value]
        if isinstance(value, dict):
            return {key: self.resolve(item, overrides) for key, item in value.items()}
        return value

    def check(self, reply: Reply, *, may_succeed: bool = True) -> None:
        """The invariants every answer must keep (see the module docstring)."""
        new_errors = self.ca.errors.messages()[self.checked :]
        self.checked = len(self.ca.errors.records)
        assert new_errors == [], new_errors[0]
        assert reply.status != 500, reply.body[:2000]
        assert reply.header("Replay-Nonce")
        if reply.status >= 400:
            assert reply.header("Content-Type") == PROBLEM, reply
            document = reply.json()
            assert document["type"].startswith(ERROR_PREFIX), document
            assert document["status"] == reply.status, document
        else:
            assert may_succeed, f"success on random input: {reply}"
            assert reply.status in (200, 201, 204), reply

    def fresh_pending_authorization(self) -> tuple[str, dict[str, Any]]:
        """A new pending authorization of alice's (own name): its path and its JSON."""
        order = self.ca.new_order(self.alice, [f"p{next(self.counter)}.{NAME}"])
        path = order.authorization_paths[0]
        return path, self.ca.post(self.alice, path).json()

    def ready_order_path(self) -> str:
        order = self.ca.new_order(self.alice, [NAME])
        assert order.body["status"] == "ready", order.body
        return order.finalize_path


def _csr(key: Any, names: list[str]) -> str:
    return b64encode(crypto.make_csr(key, [Identifier.parse(name) for name in names]))


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    with running_ca(tmp_path_factory.mktemp("ca_stub-fuzz"), legacy_challenges=True) as ca:
        alice, bob = ca.register(), ca.register()
        valid_order, certificate = ca.issue(alice, [NAME])
        cert = x509.load_der_x509_certificate(certificate)
        weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the CA must refuse it
        ec_key = crypto.generate_private_key("ec256")
        csr_der = crypto.make_csr(ec_key, [Identifier.dns(NAME)])
        alice_private = alice.key.private_key
        now = datetime.datetime.now(datetime.UTC)
        new_key = AccountKey.generate("ec256")
        values: dict[str, Any] = {
            "$KID": alice.kid,
            "$OTHER_KID": bob.kid,
            "$BIG_KID": ca.url("/acme/acct/" + "9" * 25),
            "$JWK": dict(alice.key.jwk),
            "$NEW_JWK": dict(new_key.jwk),
            "$PRIVATE_JWK": {**new_key.jwk, "d": b64encode(b"\x01" * 32)},
            "$CERT": b64encode(certificate),
            "$OLD_CERT": b64encode(certificate),
            "$CERT_PEM": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "$CSR": _csr(ec_key, [NAME]),
            "$CSR_UPPER": _csr(ec_key, [NAME.upper()]),
            "$CSR_WRONG": _csr(ec_key, ["other.example.com"]),
            "$CSR_EXTRA": _csr(ec_key, [NAME, "other.example.com"]),
            "$CSR_WEAK": _csr(weak, [NAME]),
            "$CSR_ACCOUNT_KEY": _csr(alice_private, [NAME]),
            "$CSR_TRUNCATED": b64encode(csr_der[: len(csr_der) // 2]),
            "$ARI": certificate_id(cert),
            "$KEY_CHANGE_URL": ca.url("/acme/key-change"),
            "$SOON": format_time(now + datetime.timedelta(hours=1)),
            "$LATER": format_time(now + datetime.timedelta(days=30)),
            "$PAST": format_time(now - datetime.timedelta(days=3)),
            "$FAR": format_time(now + datetime.timedelta(days=3650)),
        }
        keys = [AccountKey.generate(kind) for kind in ("ec256", "ec384", "ed25519", "rsa2048")] + [alice.key]
        state = Fuzz(ca, alice, bob, certificate, valid_order.path, keys, values)
        state.checked = len(ca.errors.records)
        assert ca.errors.messages() == []
        yield state


# --- strategies --------------------------------------------------------------------------------

MEMBERS = [
    "identifiers", "type", "value", "notBefore", "notAfter", "profile", "replaces", "contact", "status",
    "termsOfServiceAgreed", "onlyReturnExisting", "externalAccountBinding", "csr", "certificate", "reason",
    "account", "oldKey", "protected", "payload", "signature", "kid", "jwk", "url", "alg", "nonce", "path", "s",
    "keyAuthorization", "token", "kty", "crv", "x", "y", "n", "e", "d",
]
PLACEHOLDERS = [
    "$KID", "$OTHER_KID", "$BIG_KID", "$JWK", "$NEW_JWK", "$PRIVATE_JWK", "$CERT", "$OLD_CERT", "$CERT_PEM", "$CSR",
    "$CSR_UPPER", "$CSR_WRONG", "$CSR_EXTRA", "$CSR_WEAK", "$CSR_ACCOUNT_KEY", "$CSR_TRUNCATED", "$ARI",
    "$KEY_CHANGE_URL", "$SOON", "$LATER", "$PAST", "$FAR",
]
WORDS = [
    "dns", "ip", "email", "deactivated", "valid", "revoked", "pending", "ready", "processing", "invalid",
    NAME, "*." + NAME, "127.0.0.1", "::1", "[::1]", "0.0.0.0",  # noqa: S104
    "256.1.1.1", "EXAMPLE.COM", "example", "-a-.com",
    "a" * 64 + ".com", "xn--.com", "*.*.example.com", "http-01", "dns-01", "tls-alpn-01", "simpleHttps", "dvsni",
    "default", "shortlived", "mailto:a@example.com", "mailto:", "tel:+1555", "mailto:a@b@c", "ES256", "RS256",
    "none", "HS256", "", "0000-00-00T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-30T00:00:00Z",
    "1970-01-01T00:00:00+99:00", "AAAA", "=", "aGVsbG8", "\x00", "\u202e", "\ud7ff",
]
INTEGERS = st.integers(min_value=-(2**70), max_value=2**70)
LEAVES = (
    st.none() | st.booleans() | INTEGERS | st.floats() | st.text(max_size=30)
    | st.sampled_from(WORDS) | st.sampled_from(PLACEHOLDERS)
)
KEYS = st.sampled_from(MEMBERS) | st.text(max_size=10)
JSON = st.recursive(
    LEAVES, lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=25,
)
TEXT = st.sampled_from(WORDS) | st.sampled_from(PLACEHOLDERS) | st.text(max_size=30)
VALUE = JSON | TEXT


def _optional(**members: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=members)


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any] = VALUE) -> st.SearchStrategy[Any]:
    """Three times in four a valid value, else a hostile one: payloads get past the shape checks
    often enough to reach the RA, PA, CA and SA behind them."""
    # (not one_of(valid, valid, valid, hostile): one_of flattens nested one_ofs and picks among all
    # their branches, and VALUE alone has a dozen)
    return st.integers(0, 3).flatmap(lambda pick: hostile if pick == 0 else valid)


DNS_NAMES = st.sampled_from([
    NAME, "x." + NAME, "*." + NAME, "EXAMPLE.com", "example.com.", "a..b.com", "xn--bcher-kva.example",
    "-bad-.example.com", "a" * 64 + ".com", "localhost", "com", "*.com", "a.*.example.com", "ex_ample.com",
]) | st.from_regex(r"\A(\*\.)?[a-z0-9-]{1,12}(\.[a-z0-9-]{1,12}){1,3}\Z")
IP_TEXTS = st.ip_addresses().map(str) | st.sampled_from(
    ["127.0.0.1", "::1", "[::1]", "010.0.0.1", "1.2.3", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4/32"]
)
IDENTIFIER = mostly(
    st.fixed_dictionaries({"type": st.just("dns"), "value": DNS_NAMES})
    | st.fixed_dictionaries({"type": st.just("ip"), "value": IP_TEXTS}),
    st.fixed_dictionaries({"type": TEXT | VALUE, "value": TEXT | VALUE}) | JSON,
)
TIMES = st.sampled_from(["$SOON", "$PAST", "$LATER", "$FAR"]) | st.datetimes(
    timezones=st.just(datetime.UTC)).map(format_time)
CONTACTS = st.sampled_from([
    "mailto:a@example.com", "MAILTO:A@EXAMPLE.COM", "mailto:a@b", "mailto:a@b.com?subject=x",
    "mailto:a@b.com,c@d.com", "mailto:%40@x.com", "tel:+15555550100", "mailto:", "mailto:@example.com",
    "mailto:a@-b.com", "mailto:a@b.123",
]) | st.emails().map("mailto:".__add__) | st.text(max_size=30).map("mailto:".__add__)
B64 = st.binary(max_size=70).map(b64encode)
JWK_SHAPED = st.fixed_dictionaries(
    {"kty": st.sampled_from(["EC", "RSA", "OKP", "oct", "ec"]) | VALUE},
    optional={"crv": st.sampled_from(["P-256", "P-384", "P-521", "Ed25519", "X25519", "secp256k1"]) | VALUE,
              "x": B64 | VALUE, "y": B64 | VALUE, "n": B64 | VALUE, "e": st.sampled_from(["AQAB", "Aw", "AA", ""]),
              "d": B64, "k": B64},
)
CHALLENGE_TYPES = st.sampled_from(["http-01", "dns-01", "tls-alpn-01", "simpleHttps", "dvsni"])
SHAPED: dict[str, st.SearchStrategy[Any]] = {
    "new-account": st.fixed_dictionaries(
        {"termsOfServiceAgreed": mostly(st.just(True))},
        optional={
            "contact": mostly(st.lists(mostly(CONTACTS), max_size=3)),
            "onlyReturnExisting": mostly(st.booleans()),
            "externalAccountBinding": mostly(st.fixed_dictionaries(
                {"protected": TEXT, "payload": TEXT, "signature": TEXT})),
        },
    ),
    "account": _optional(
        contact=mostly(st.lists(mostly(CONTACTS), max_size=3)),
        status=mostly(st.just("deactivated")),
        termsOfServiceAgreed=mostly(st.booleans()),
    ),
    "new-order": st.fixed_dictionaries(
        {"identifiers": mostly(st.lists(IDENTIFIER, min_size=1, max_size=4))},
        optional={
            "notBefore": mostly(TIMES), "notAfter": mostly(TIMES),
            "profile": mostly(st.sampled_from(["default", "shortlived"])), "replaces": mostly(st.just("$ARI")),
        },
    ),
    "finalize": st.fixed_dictionaries(
        {"csr": mostly(st.sampled_from([p for p in PLACEHOLDERS if p.startswith("$CSR")] + ["$CERT"]))}
    ),
    "authz": st.fixed_dictionaries({"status": mostly(st.just("deactivated"))}),
    "challenge": st.just({}) | _optional(
        type=mostly(CHALLENGE_TYPES),
        path=mostly(st.from_regex(r"\A[A-Za-z0-9_-]{0,30}\Z")),
        s=mostly(st.binary(min_size=31, max_size=33).map(b64encode)),
        keyAuthorization=VALUE,
    ),
    "revoke-cert": st.fixed_dictionaries(
        {"certificate": mostly(st.sampled_from(["$CERT", "$OLD_CERT", "$CSR", "$CERT_PEM"]))},
        optional={"reason": mostly(st.sampled_from([0, 1, 3, 4, 5, 9]) | st.integers(-1, 11))},
    ),
    # the inner JWS is built in the test (_inner_key_change); this is the hostile rest
    "key-change": _optional(protected=TEXT, payload=TEXT, signature=TEXT),
}
SIGNED_ENDPOINTS = [
    "new-account", "account", "orders", "new-order", "order", "finalize", "authz", "challenge", "cert",
    "revoke-cert", "key-change",
]


# --- 1. raw requests -----------------------------------------------------------------------------


def _routes(fuzz: Fuzz) -> list[str]:
    serial = format(crypto_serial(fuzz.certificate), "x")
    issuer = next(iter(fuzz.ca.server.ca.issuer_ids()))
    return [
        "/directory", "/acme/new-nonce", "/acme/new-account", fuzz.alice.kid.removeprefix(fuzz.ca.base_url),
        "/acme/acct/1/orders", "/acme/new-order", fuzz.valid_order_path, fuzz.valid_order_path + "/finalize",
        "/acme/authz/1", "/acme/chall/1", f"/acme/cert/{serial}", f"/acme/cert/{serial}/1", "/acme/revoke-cert",
        "/acme/key-change", f"/acme/renewal-info/{fuzz.values['$ARI']}", "/terms", "/ocsp", "/ocsp/MAA",
        f"/crl/{issuer}", "/crl/x", "/", "", "/acme/", "/acme/order/", "/acme/cert/", "//directory",
    ]


def crypto_serial(der: bytes) -> int:
    return x509.load_der_x509_certificate(der).serial_number


METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "post", ""]) | st.text(
    max_size=8
)
CONTENT_TYPES = st.none() | st.sampled_from(
    [JOSE, JOSE + "; charset=utf-8", "APPLICATION/JOSE+JSON", "application/json", "application/ocsp-request",
     "text/plain", "", ";", "application/jose+json;;;"]
) | st.text(max_size=40)
LENGTHS = st.none() | st.sampled_from(["", "-1", "0", "abc", "99999999999999999999", " 5 ", "1e3", "0x10", "+3"]) \
    | st.integers(-10, 70_000).map(str)
JWS_SHAPED = st.fixed_dictionaries(
    {}, optional={"protected": VALUE, "payload": VALUE, "signature": VALUE, "header": VALUE, "signatures": VALUE}
)
BODIES = (
    st.binary(max_size=1000)
    | JSON.map(lambda value: json.dumps(value).encode())
    | JWS_SHAPED.map(lambda value: json.dumps(value).encode())
    | st.integers(0, 30_000).map(lambda depth: b"[" * depth + b"]" * depth)
)
HEADERS = st.dictionaries(
    st.sampled_from(["Accept", "Accept-Language", "Host", "User-Agent", "Transfer-Encoding", "Content-Encoding"])
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
    st.text(max_size=40),
    max_size=4,
)


@FUZZ
@given(data=st.data(), method=METHODS, content_type=CONTENT_TYPES, length=LENGTHS, body=BODIES, headers=HEADERS,
       query=st.text(max_size=20))
def test_raw_requests_never_fail_with_500(
    fuzz: Fuzz, data: st.DataObject, method: str, content_type: str | None, length: str | None, body: bytes,
    headers: dict[str, str], query: str,
) -> None:
    routes = _routes(fuzz)
    path = data.draw(
        st.sampled_from(routes)
        | st.tuples(st.sampled_from(routes), st.text(max_size=20)).map("".join)
        | st.text(max_size=40).map(lambda text: "/" + text),
        label="path",
    )
    reply = fuzz.ca.call(method, path, body, content_type=content_type, content_length=length, headers=headers,
                         query=query)
    fuzz.check(reply, may_succeed=path.startswith(UNAUTHENTICATED) or path == "/acme/new-nonce")


# --- 2. valid envelopes, arbitrary payloads ---------------------------------------------------------


def _payload_strategy(endpoint: str) -> st.SearchStrategy[Any]:
    shaped = SHAPED.get(endpoint)
    if shaped is None:  # a POST-as-GET resource: anything but "" is wrong
        return st.just(POST_AS_GET) | JSON
    # one in six arbitrary JSON, one in six POST-as-GET, else shaped like the endpoint's request
    return st.integers(0, 5).flatmap(lambda pick: JSON if pick == 0 else st.just(POST_AS_GET) if pick == 1 else shaped)


PAYLOADS = {endpoint: _payload_strategy(endpoint) for endpoint in SIGNED_ENDPOINTS}


def _send_signed(fuzz: Fuzz, data: st.DataObject, endpoint: str, payload: Any) -> Reply:
    """``payload`` to ``endpoint`` in a valid JWS, against a live resource of the signer."""
    ca, alice = fuzz.ca, fuzz.alice
    overrides: dict[str, Any] = {}
    if endpoint == "revoke-cert":  # a fresh certificate each time, revocable by alice, bob or its own key
        certificate_key = crypto.generate_private_key("ec256")
        _, der = ca.issue(alice, [NAME], key=certificate_key)
        overrides["$CERT"] = b64encode(der)
    if endpoint == "key-change":  # may roll the key over: a fresh account each time
        account = ca.register()
        if data.draw(st.integers(0, 3), label="hostile outer payload") > 0:
            return ca.post(account, "/acme/key-change", _inner_key_change(fuzz, data, account))
    if not isinstance(payload, GetSentinel):
        payload = fuzz.resolve(payload, overrides)
    if endpoint == "key-change":
        return ca.post(account, "/acme/key-change", payload)
    if endpoint == "new-account":
        key = data.draw(st.sampled_from(fuzz.keys), label="key")
        return ca.post_jwk(key, "/acme/new-account", payload)
    if endpoint == "account":  # may deactivate it: a fresh account each time
        account = ca.register()
        return ca.post(account, account.kid.removeprefix(ca.base_url), payload)
    if endpoint == "orders":
        return ca.post(alice, alice.kid.removeprefix(ca.base_url) + "/orders", payload)
    if endpoint == "order":
        return ca.post(alice, fuzz.valid_order_path, payload)
    if endpoint == "cert":
        return ca.post(alice, f"/acme/cert/{format(crypto_serial(fuzz.certificate), 'x')}", payload)
    if endpoint == "finalize":
        return ca.post(alice, fuzz.ready_order_path(), payload)
    if endpoint == "authz":
        path, _ = fuzz.fresh_pending_authorization()
        return ca.post(alice, path, payload)
    if endpoint == "challenge":
        _, authorization = fuzz.fresh_pending_authorization()
        challenge = data.draw(st.sampled_from(authorization["challenges"]), label="challenge")
        return ca.post(alice, "/acme/" + challenge["url"].split("/acme/", 1)[1], payload)
    if endpoint == "revoke-cert":
        signer = data.draw(st.sampled_from(["alice", "bob", "certificate key"]), label="revoked by")
        if signer == "certificate key":
            return ca.post_jwk(AccountKey(certificate_key), "/acme/revoke-cert", payload)
        return ca.post(alice if signer == "alice" else fuzz.bob, "/acme/revoke-cert", payload)
    assert endpoint == "new-order"
    return ca.post(alice, "/acme/new-order", payload)


INNER_PAYLOAD = mostly(
    st.fixed_dictionaries({"account": mostly(st.just("$KID"), st.just("$OTHER_KID") | VALUE),
                           "oldKey": mostly(st.just("$JWK"), st.sampled_from(["$NEW_JWK", "$PRIVATE_JWK"]) | VALUE)}),
    JSON,
)
INNER_HEADER = _optional(alg=VALUE, jwk=st.sampled_from(["$JWK", "$PRIVATE_JWK"]) | JWK_SHAPED | VALUE, url=VALUE,
                         kid=VALUE, nonce=VALUE)


def _inner_key_change(fuzz: Fuzz, data: st.DataObject, account: Account) -> dict[str, str]:
    """An inner keyChange JWS (RFC 8555 §7.3.5), mostly valid: a new key, the right url, account and
    oldKey; sometimes signed by the old key, with hostile header members or a hostile payload."""
    new_key = AccountKey.generate(data.draw(st.sampled_from(["ec256", "ed25519"]), label="new key type"))
    signer = data.draw(st.sampled_from([new_key, new_key, new_key, account.key]), label="inner signer")
    overrides = {"$KID": account.kid, "$JWK": dict(account.key.jwk), "$NEW_JWK": dict(new_key.jwk)}
    header: dict[str, Any] = {"alg": signer.alg, "jwk": dict(new_key.jwk), "url": fuzz.values["$KEY_CHANGE_URL"]}
    if data.draw(st.integers(0, 3), label="hostile header") == 0:
        header.update(fuzz.resolve(data.draw(INNER_HEADER, label="inner header"), overrides))
    inner = fuzz.resolve(data.draw(INNER_PAYLOAD, label="inner payload"), overrides)
    protected = b64encode(json.dumps(header).encode())
    encoded = b64encode(json.dumps(inner).encode())
    return {"protected": protected, "payload": encoded,
            "signature": b64encode(signer.sign(f"{protected}.{encoded}".encode()))}


@pytest.mark.parametrize("endpoint", SIGNED_ENDPOINTS)
def test_signed_requests_with_arbitrary_payloads_never_fail_with_500(fuzz: Fuzz, endpoint: str) -> None:
    @settings(FUZZ, max_examples=200)
    @given(data=st.data(), payload=PAYLOADS[endpoint])
    def run(data: st.DataObject, payload: Any) -> None:
        fuzz.check(_send_signed(fuzz, data, endpoint, payload))

    run()


# --- 3. valid signatures over a fuzzed protected header -----------------------------------------

HEADER_MEMBERS: dict[str, st.SearchStrategy[Any]] = {
    "alg": st.sampled_from(["ES256", "ES384", "RS256", "EdDSA", "none", "HS256", "RS512", "es256"]) | VALUE,
    "nonce": st.sampled_from(["", "$KID"]) | st.binary(max_size=20).map(b64encode) | VALUE,
    "url": st.sampled_from(["$KEY_CHANGE_URL", "$KID"]) | VALUE,
    "kid": st.sampled_from(["$KID", "$OTHER_KID", "$BIG_KID"]) | VALUE,
    "jwk": st.sampled_from(["$JWK", "$NEW_JWK", "$PRIVATE_JWK"]) | JWK_SHAPED | VALUE,
    "crit": VALUE, "b64": VALUE, "typ": VALUE, "cty": VALUE, "x5c": VALUE, "jku": VALUE,
}


@FUZZ
@given(data=st.data(), endpoint=st.sampled_from(SIGNED_ENDPOINTS),
       members=st.lists(st.sampled_from(sorted(HEADER_MEMBERS)), min_size=1, max_size=3, unique=True),
       drop=st.sets(st.sampled_from(["alg", "nonce", "url", "kid"]), max_size=1))
def test_fuzzed_protected_headers_never_fail_with_500(
    fuzz: Fuzz, data: st.DataObject, endpoint: str, members: list[str], drop: set[str],
) -> None:
    ca = fuzz.ca
    paths = {"new-account": "/acme/new-account", "new-order": "/acme/new-order", "revoke-cert": "/acme/revoke-cert",
             "key-change": "/acme/key-change", "account": fuzz.alice.kid.removeprefix(ca.base_url)}
    path = paths.get(endpoint, fuzz.valid_order_path)
    header: dict[str, Any] = {"alg": fuzz.alice.key.alg, "nonce": ca.nonce(), "url": ca.url(path),
                              "kid": fuzz.alice.kid}
    for name in drop:
        header.pop(name)
    for name in members:
        header[name] = fuzz.resolve(data.draw(HEADER_MEMBERS[name], label=name))
    payload = data.draw(JSON | st.just(POST_AS_GET), label="payload")
    encoded = "" if payload is POST_AS_GET else b64encode(json.dumps(fuzz.resolve(payload)).encode())
    protected = b64encode(json.dumps(header).encode())
    jws = {"protected": protected, "payload": encoded,
           "signature": b64encode(fuzz.alice.key.sign(f"{protected}.{encoded}".encode()))}
    fuzz.check(ca.send(path, jws))


# --- 4. resource URLs with fuzzed numbers --------------------------------------------------------

NUMBERS = (
    st.integers(min_value=0, max_value=2**80).map(str)
    | st.text(alphabet="0123456789", min_size=1, max_size=30)
    | st.integers(4290, 4400).map(lambda digits: "9" * digits)
    | st.text(alphabet="\u0660\u0661\u06f1\u0967\uff11", min_size=1, max_size=3)  # other scripts' digits
)
TEMPLATES = [
    "/acme/acct/{}", "/acme/acct/{}/orders", "/acme/order/{}", "/acme/order/{}/finalize", "/acme/authz/{}",
    "/acme/chall/{}", "/acme/cert/{}", "/acme/cert/abc/{}",
]


@FUZZ
@given(template=st.sampled_from(TEMPLATES), number=NUMBERS, payload=st.just(POST_AS_GET) | st.just({}),
       page=st.none() | NUMBERS)
def test_resource_numbers_never_fail_with_500(
    fuzz: Fuzz, template: str, number: str, payload: Any, page: str | None,
) -> None:
    path = template.format(number) + (f"?page={page}" if page is not None else "")
    reply = fuzz.ca.post(fuzz.alice, path, payload)
    fuzz.check(reply)
