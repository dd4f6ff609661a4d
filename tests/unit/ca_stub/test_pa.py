"""ca_stub.pa: identifier rules, challenge offers, profiles and key checks."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from ca_stub.contracts import CAError, PolicyAuthority, Profile
from ca_stub.pa import DEFAULT, DEFAULT_PROFILES, MAX_IDENTIFIERS, SHORTLIVED, Policy
from letsencrypt.acme.jws import AccountKey, public_jwk
from letsencrypt.acme.messages import Identifier

UNSPECIFIED = ".".join("0" * 4)  # 0.0.0.0, spelled so that no linter takes it for a bind address


def dns(value: str) -> Identifier:
    return Identifier("dns", value)


def ip(value: str) -> Identifier:
    return Identifier("ip", value)


def refusal(policy: Policy, *identifiers: Identifier, profile: Profile = DEFAULT) -> CAError:
    with pytest.raises(CAError) as caught:
        policy.check_identifiers(list(identifiers), profile)
    assert caught.value.status == 400
    return caught.value


def test_conforms_to_the_contract() -> None:
    policy: PolicyAuthority = Policy()
    assert policy.profile(None) is DEFAULT


@pytest.mark.parametrize(
    "value",
    [
        "example.com",
        "a.b.example.com",
        "xn--bcher-kva.example",
        "a-b.example.com",
        "1.example.com",
        "*.example.com",
        "x" * 63 + ".example.com",
        ".".join(["a" * 61] * 4),  # 247 characters
    ],
)
def test_good_dns_names_pass(value: str) -> None:
    Policy().check_identifiers([dns(value)], DEFAULT)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("Example.com", "upper-case"),
        ("example.com.", "trailing dot"),
        (" example.com", "printable ASCII"),
        ("exämple.com", "IDNA"),
        ("localhost", "fewer than two labels"),
        ("a..example.com", "empty label"),
        ("-a.example.com", "letters, digits"),
        ("a-.example.com", "letters, digits"),
        ("a_b.example.com", "letters, digits"),
        ("x" * 64 + ".example.com", "longer than 63"),
        (".".join(["a" * 63] * 4), "longer than 253"),
        ("ab--c.example.com", "reserved form"),
        ("xn--zz-zzzzzzzzzz.example.com", "punycode"),
        ("a.*.example.com", "wildcard"),
        ("*example.com", "wildcard"),
        ("*.*.example.com", "wildcard"),
        ("*.com", "fewer than two labels"),
        ("192.0.2.1", "IP address"),
        ("::1", "IP address"),
        ("example.123", "all-numeric"),
    ],
)
def test_bad_dns_names_are_malformed(value: str, reason: str) -> None:
    error = refusal(Policy(), dns(value))
    assert error.problem_type == "malformed"
    (sub,) = error.subproblems
    assert sub.identifier == dns(value)
    assert sub.short_type == "malformed"
    assert reason in sub.detail


@pytest.mark.parametrize("value", ["127.0.0.1", "127.1.2.3", "::1", "192.0.2.7", "10.1.2.3", "2001:db8::1"])
def test_good_ip_addresses_pass(value: str) -> None:
    Policy().check_identifiers([ip(value)], DEFAULT)


@pytest.mark.parametrize(
    ("value", "problem_type", "reason"),
    [
        ("example.com", "malformed", "not an IPv4 or IPv6"),
        ("2001:DB8::1", "malformed", "canonical"),
        ("2001:db8:0:0::1", "malformed", "canonical"),
        ("[::1]", "malformed", "not an IPv4"),
        ("fe80::1%eth0", "malformed", "zone"),
        ("::ffff:192.0.2.1", "malformed", "IPv4-mapped"),
        (UNSPECIFIED, "rejectedIdentifier", "unspecified"),
        ("::", "rejectedIdentifier", "unspecified"),
        ("224.0.0.1", "rejectedIdentifier", "multicast"),
        ("169.254.1.1", "rejectedIdentifier", "link-local"),
        ("fe80::1", "rejectedIdentifier", "link-local"),
        ("255.255.255.255", "rejectedIdentifier", "reserved"),
    ],
)
def test_bad_ip_addresses(value: str, problem_type: str, reason: str) -> None:
    error = refusal(Policy(), ip(value))
    assert error.problem_type == problem_type
    (sub,) = error.subproblems
    assert sub.identifier == ip(value) and sub.short_type == problem_type and reason in sub.detail


def test_block_list_covers_names_subdomains_and_wildcards() -> None:
    policy = Policy(block_list=["example.net", "Bad.Example.ORG.", "192.0.2.0/24", "2001:db8::5"])
    for value in ("example.net", "a.example.net", "*.example.net", "x.y.bad.example.org"):
        error = refusal(policy, dns(value))
        assert error.problem_type == "rejectedIdentifier"
        assert "example" in error.subproblems[0].detail
    for value in ("192.0.2.99", "2001:db8::5"):
        assert refusal(policy, ip(value)).problem_type == "rejectedIdentifier"
    policy.check_identifiers([dns("notexample.net"), dns("example.org"), ip("192.0.3.1"), ip("2001:db8::6")], DEFAULT)


def test_unknown_identifier_types_are_unsupported() -> None:
    error = refusal(Policy(), Identifier("email", "someone@example.com"))
    assert error.problem_type == "unsupportedIdentifier"
    assert error.subproblems[0].identifier == Identifier("email", "someone@example.com")


def test_one_subproblem_per_bad_identifier_and_compound_when_mixed() -> None:
    policy = Policy(block_list=["blocked.example"])
    error = refusal(
        policy, dns("ok.example.com"), dns("Bad.example.com"), dns("blocked.example"), ip(UNSPECIFIED), ip("127.0.0.1")
    )
    assert error.problem_type == "compound"
    expected = [dns("Bad.example.com"), dns("blocked.example"), ip(UNSPECIFIED)]
    assert [sub.identifier for sub in error.subproblems] == expected
    assert [sub.short_type for sub in error.subproblems] == ["malformed", "rejectedIdentifier", "rejectedIdentifier"]
    assert "3 identifiers" in error.detail
    problem = error.problem()
    assert problem.status == 400 and len(problem.subproblems) == 3

    same = refusal(policy, dns("a.blocked.example"), dns("b.blocked.example"))
    assert same.problem_type == "rejectedIdentifier" and len(same.subproblems) == 2


def test_order_size_limits() -> None:
    policy = Policy()
    policy.check_identifiers([dns(f"n{i}.example.com") for i in range(MAX_IDENTIFIERS)], DEFAULT)
    assert refusal(policy, *[dns(f"n{i}.example.com") for i in range(MAX_IDENTIFIERS + 1)]).problem_type == "malformed"
    assert refusal(policy).problem_type == "malformed"


def test_profile_identifier_types() -> None:
    dns_only = Profile(
        "dnsonly", "DNS names only", datetime.timedelta(days=1), datetime.timedelta(0), frozenset({"dns"})
    )
    policy = Policy(profiles={"dnsonly": dns_only}, default_profile="dnsonly")
    policy.check_identifiers([dns("example.com")], dns_only)
    error = refusal(policy, dns("example.com"), ip("127.0.0.1"), profile=dns_only)
    assert error.problem_type == "rejectedIdentifier"
    (sub,) = error.subproblems
    assert sub.identifier == ip("127.0.0.1") and "dnsonly" in sub.detail


def test_challenge_offers() -> None:
    modern, legacy = Policy(), Policy(legacy_challenges=True)
    assert modern.challenge_types(dns("example.com"), False) == ("http-01", "dns-01", "tls-alpn-01")
    assert legacy.challenge_types(dns("example.com"), False) == (
        "http-01", "dns-01", "tls-alpn-01", "simpleHttps", "dvsni",
    )
    for policy in (modern, legacy):
        assert policy.challenge_types(dns("example.com"), True) == ("dns-01",)
        assert policy.challenge_types(dns("*.example.com"), True) == ("dns-01",)
    assert modern.challenge_types(ip("127.0.0.1"), False) == ("http-01", "tls-alpn-01")
    assert legacy.challenge_types(ip("::1"), False) == ("http-01", "tls-alpn-01", "simpleHttps", "dvsni")


def test_profiles() -> None:
    policy = Policy()
    assert set(policy.profiles()) == {"default", "shortlived"}
    assert policy.profile(None) is DEFAULT and policy.profile("default") is DEFAULT
    assert policy.profile("shortlived") is SHORTLIVED
    assert DEFAULT.validity == datetime.timedelta(days=90) and DEFAULT.common_name
    assert DEFAULT.authorization_reuse == datetime.timedelta(days=30)
    assert SHORTLIVED.validity == datetime.timedelta(hours=160) and not SHORTLIVED.common_name
    assert SHORTLIVED.authorization_reuse == datetime.timedelta(hours=7)
    assert DEFAULT.identifier_types == SHORTLIVED.identifier_types == frozenset({"dns", "ip"})
    with pytest.raises(CAError) as caught:
        policy.profile("classic")
    assert caught.value.problem_type == "invalidProfile" and "shortlived" in caught.value.detail
    assert Policy(default_profile="shortlived").profile(None) is SHORTLIVED
    with pytest.raises(ValueError, match="default profile"):
        Policy(profiles={"default": DEFAULT}, default_profile="shortlived")
    with pytest.raises(ValueError, match="named"):
        Policy(profiles={"other": DEFAULT}, default_profile="other")
    assert dict(DEFAULT_PROFILES) == {"default": DEFAULT, "shortlived": SHORTLIVED}


def key_pem(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _rsa(bits: int, exponent: int = 65537) -> rsa.RSAPublicKey:
    return rsa.generate_private_key(exponent, bits).public_key()


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {
        "rsa1024": _rsa(1024),
        "rsa2048": _rsa(2048),
        "rsa2560": _rsa(2560),
        "rsa3072": _rsa(3072),
        "rsa4096": _rsa(4096),
        "rsa2048e3": _rsa(2048, 3),
        "p256": ec.generate_private_key(ec.SECP256R1()).public_key(),
        "p384": ec.generate_private_key(ec.SECP384R1()).public_key(),
        "p521": ec.generate_private_key(ec.SECP521R1()).public_key(),
        "ed25519": ed25519.Ed25519PrivateKey.generate().public_key(),
    }


@pytest.mark.parametrize(("name", "allowed"), [
    ("rsa2048", True), ("rsa3072", True), ("rsa4096", True), ("p256", True), ("p384", True),
    ("rsa1024", False), ("rsa2560", False), ("rsa2048e3", False), ("p521", False), ("ed25519", False),
])
def test_certificate_keys(keys: dict[str, Any], name: str, allowed: bool) -> None:
    if allowed:
        Policy().allowed_key(keys[name])
        return
    with pytest.raises(CAError) as caught:
        Policy().allowed_key(keys[name])
    assert caught.value.problem_type == "badCSR"


def test_other_certificate_key_kinds_are_refused() -> None:
    for key in (ed448.Ed448PrivateKey.generate().public_key(), dsa.generate_private_key(2048).public_key()):
        with pytest.raises(CAError, match="not allowed") as caught:
            Policy().allowed_key(key)
        assert caught.value.problem_type == "badCSR"


@pytest.mark.parametrize(("name", "allowed"), [
    ("rsa2048", True), ("rsa2560", True), ("rsa4096", True), ("p256", True), ("p384", True), ("ed25519", True),
    ("rsa1024", False), ("rsa2048e3", False), ("p521", False),
])
def test_account_keys(keys: dict[str, Any], name: str, allowed: bool) -> None:
    key = keys[name]
    jwk = public_jwk(key)
    if allowed:
        Policy().allowed_account_key(jwk)
        return
    with pytest.raises(CAError) as caught:
        Policy().allowed_account_key(jwk)
    assert caught.value.problem_type == "badPublicKey"


def test_unusable_account_jwks_are_bad_public_keys() -> None:
    private_jwk = dict(AccountKey.generate("ec256").jwk, d="AAAA")
    for jwk in ({"kty": "oct", "k": "AAAA"}, {"kty": "EC", "crv": "P-256"}, private_jwk):
        with pytest.raises(CAError) as caught:
            Policy().allowed_account_key(jwk)
        assert caught.value.problem_type == "badPublicKey"
