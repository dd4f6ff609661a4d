"""Wire messages (letsencrypt/acme/messages.py) against the RFC examples.

The JSON documents below are written out from RFC 8555 (§6.7.1, §7.1.1-§7.1.4, §7.3, §7.4, §7.6),
RFC 8737 §3, RFC 8738 and RFC 9773 §4.2. Where the RFC elides a value ("MIIEDTCCAvegAwIBAgIRAP8...")
the test keeps the printed prefix, which is valid base64url on its own.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from letsencrypt.acme import messages as m
from letsencrypt.acme.errors import MessageError

UTC = datetime.UTC

# --- RFC examples ------------------------------------------------------------------------------

# RFC 8555 §7.1.1
RFC_DIRECTORY: dict[str, Any] = {
    "newNonce": "https://example.com/acme/new-nonce",
    "newAccount": "https://example.com/acme/new-account",
    "newOrder": "https://example.com/acme/new-order",
    "newAuthz": "https://example.com/acme/new-authz",
    "revokeCert": "https://example.com/acme/revoke-cert",
    "keyChange": "https://example.com/acme/key-change",
    "meta": {
        "termsOfService": "https://example.com/acme/terms/2017-5-30",
        "website": "https://www.example.com/",
        "caaIdentities": ["example.com"],
        "externalAccountRequired": False,
    },
}

# RFC 8555 §7.1.2
RFC_ACCOUNT: dict[str, Any] = {
    "status": "valid",
    "contact": ["mailto:cert-admin@example.org", "mailto:admin@example.org"],
    "termsOfServiceAgreed": True,
    "orders": "https://example.com/acme/orders/rzGoeA",
}

# RFC 8555 §7.1.2.1
RFC_ORDERS_LIST: dict[str, Any] = {
    "orders": [
        "https://example.com/acme/order/TOlocE8rfgo",
        "https://example.com/acme/order/4E16bbL5iSw",
        "https://example.com/acme/order/neBHYLfw0mg",
    ]
}

# RFC 8555 §7.1.3
RFC_ORDER: dict[str, Any] = {
    "status": "valid",
    "expires": "2016-01-20T14:09:07.99Z",
    "identifiers": [
        {"type": "dns", "value": "www.example.org"},
        {"type": "dns", "value": "example.org"},
    ],
    "notBefore": "2016-01-01T00:00:00Z",
    "notAfter": "2016-01-08T00:00:00Z",
    "authorizations": [
        "https://example.com/acme/authz/PAniVnsZcis",
        "https://example.com/acme/authz/r4HqLzrSrpI",
    ],
    "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
    "certificate": "https://example.com/acme/cert/mAt3xBGaobw",
}

# RFC 8555 §7.1.4
RFC_AUTHORIZATION: dict[str, Any] = {
    "status": "valid",
    "expires": "2015-03-01T14:09:07.99Z",
    "identifier": {"type": "dns", "value": "www.example.org"},
    "challenges": [
        {
            "url": "https://example.com/acme/chall/prV_B7yEyA4",
            "type": "http-01",
            "status": "valid",
            "token": "DGyRejmCefe7v4NfDGDKfA",
            "validated": "2014-12-01T12:05:58.16Z",
        }
    ],
    "wildcard": False,
}

# RFC 8555 §8.3 / §8.4 and RFC 8737 §3 (the challenge objects §7.1.5 describes)
RFC_HTTP01: dict[str, Any] = {
    "type": "http-01",
    "url": "https://example.com/acme/chall/prV_B7yEyA4",
    "status": "pending",
    "token": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
}
RFC_DNS01: dict[str, Any] = {
    "type": "dns-01",
    "url": "https://example.com/acme/chall/Rg5dV14Gh1Q",
    "status": "pending",
    "token": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
}
RFC_TLS_ALPN01: dict[str, Any] = {
    "type": "tls-alpn-01",
    "url": "https://example.com/acme/chall/prV_B7yEyA4",
    "status": "pending",
    "token": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
}

# RFC 8555 §7.3 request and response
RFC_NEW_ACCOUNT: dict[str, Any] = {
    "termsOfServiceAgreed": True,
    "contact": ["mailto:cert-admin@example.org", "mailto:admin@example.org"],
}
RFC_NEW_ACCOUNT_RESPONSE: dict[str, Any] = {
    "status": "valid",
    "contact": ["mailto:cert-admin@example.org", "mailto:admin@example.org"],
    "orders": "https://example.com/acme/acct/evOfKhNU60wg/orders",
}
# RFC 8555 §7.3.1
RFC_ONLY_RETURN_EXISTING: dict[str, Any] = {"onlyReturnExisting": True}
# RFC 8555 §7.3.4 (the RFC shows placeholders for the kid, the JWK and the MAC)
RFC_NEW_ACCOUNT_EAB: dict[str, Any] = {
    "contact": ["mailto:cert-admin@example.org", "mailto:admin@example.org"],
    "termsOfServiceAgreed": True,
    "externalAccountBinding": {
        "protected": "eyJhbGciOiJIUzI1NiJ9",
        "payload": "e30",
        "signature": "5TWiqIYQfIDfALQvx9C2mg8JGPxl5bI4",
    },
}
# RFC 8555 §7.3.2, §7.3.3, §7.3.6
RFC_ACCOUNT_UPDATE: dict[str, Any] = {"contact": ["mailto:certificates@example.org", "mailto:admin@example.org"]}
RFC_AGREE_TO_TERMS: dict[str, Any] = {"termsOfServiceAgreed": True}
RFC_DEACTIVATE: dict[str, Any] = {"status": "deactivated"}
# RFC 8555 §7.3.5 inner payload (the RFC writes "oldKey": /* old key */)
RFC_KEY_CHANGE: dict[str, Any] = {
    "account": "https://example.com/acme/acct/evOfKhNU60wg",
    "oldKey": {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    },
}

# RFC 8555 §7.4 request, response, finalize payload (CSR elided in the RFC, prefix kept)
RFC_NEW_ORDER: dict[str, Any] = {
    "identifiers": [
        {"type": "dns", "value": "www.example.org"},
        {"type": "dns", "value": "example.org"},
    ],
    "notBefore": "2016-01-01T00:04:00+04:00",
    "notAfter": "2016-01-08T00:04:00+04:00",
}
RFC_NEW_ORDER_RESPONSE: dict[str, Any] = {
    "status": "pending",
    "expires": "2016-01-05T14:09:07.99Z",
    "notBefore": "2016-01-01T00:00:00Z",
    "notAfter": "2016-01-08T00:00:00Z",
    "identifiers": [
        {"type": "dns", "value": "www.example.org"},
        {"type": "dns", "value": "example.org"},
    ],
    "authorizations": [
        "https://example.com/acme/authz/PAniVnsZcis",
        "https://example.com/acme/authz/r4HqLzrSrpI",
    ],
    "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
}
RFC_FINALIZE: dict[str, Any] = {"csr": "MIIBPTCBxAIBADBFMQ"}

# RFC 8555 §7.6 (certificate elided in the RFC, prefix kept)
RFC_REVOCATION: dict[str, Any] = {"certificate": "MIIEDTCCAvegAwIBAgIRAP8", "reason": 4}

# RFC 8555 §6.7.1
RFC_PROBLEM_WITH_SUBPROBLEMS: dict[str, Any] = {
    "type": "urn:ietf:params:acme:error:malformed",
    "detail": "Some of the identifiers requested were rejected",
    "subproblems": [
        {
            "type": "urn:ietf:params:acme:error:malformed",
            "detail": 'Invalid underscore in DNS name "_example.org"',
            "identifier": {"type": "dns", "value": "_example.org"},
        },
        {
            "type": "urn:ietf:params:acme:error:rejectedIdentifier",
            "detail": 'This CA will not issue for "example.net"',
            "identifier": {"type": "dns", "value": "example.net"},
        },
    ],
}

# RFC 9773 §4.2
RFC_RENEWAL_INFO: dict[str, Any] = {
    "suggestedWindow": {"start": "2025-01-02T04:00:00Z", "end": "2025-01-03T04:00:00Z"},
    "explanationURL": "https://acme.example.com/docs/ari",
}

# RFC 8738 §3
RFC_IP_IDENTIFIER_V4: dict[str, Any] = {"type": "ip", "value": "192.0.2.1"}
RFC_IP_IDENTIFIER_V6: dict[str, Any] = {"type": "ip", "value": "2001:db8::1"}


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if key not in keys}


# (class, RFC document, what to_json writes back). The writer leaves out members that only
# restate a default (``false``), and writes times in UTC with "Z".
RFC_ROUND_TRIPS: list[tuple[type[Any], dict[str, Any], dict[str, Any]]] = [
    (m.Directory, RFC_DIRECTORY, {**RFC_DIRECTORY, "meta": _without(RFC_DIRECTORY["meta"], "externalAccountRequired")}),
    (m.DirectoryMeta, RFC_DIRECTORY["meta"], _without(RFC_DIRECTORY["meta"], "externalAccountRequired")),
    (m.Account, RFC_ACCOUNT, RFC_ACCOUNT),
    (m.Account, RFC_NEW_ACCOUNT_RESPONSE, RFC_NEW_ACCOUNT_RESPONSE),
    (m.OrdersList, RFC_ORDERS_LIST, RFC_ORDERS_LIST),
    (m.Order, RFC_ORDER, RFC_ORDER),
    (m.Order, RFC_NEW_ORDER_RESPONSE, RFC_NEW_ORDER_RESPONSE),
    (m.Authorization, RFC_AUTHORIZATION, _without(RFC_AUTHORIZATION, "wildcard")),
    (m.Challenge, RFC_HTTP01, RFC_HTTP01),
    (m.Challenge, RFC_DNS01, RFC_DNS01),
    (m.Challenge, RFC_TLS_ALPN01, RFC_TLS_ALPN01),
    (m.Challenge, RFC_AUTHORIZATION["challenges"][0], RFC_AUTHORIZATION["challenges"][0]),
    (m.NewAccountRequest, RFC_NEW_ACCOUNT, RFC_NEW_ACCOUNT),
    (m.NewAccountRequest, RFC_ONLY_RETURN_EXISTING, RFC_ONLY_RETURN_EXISTING),
    (m.NewAccountRequest, RFC_NEW_ACCOUNT_EAB, RFC_NEW_ACCOUNT_EAB),
    (m.AccountUpdate, RFC_ACCOUNT_UPDATE, RFC_ACCOUNT_UPDATE),
    (m.AccountUpdate, RFC_AGREE_TO_TERMS, RFC_AGREE_TO_TERMS),
    (m.AccountUpdate, RFC_DEACTIVATE, RFC_DEACTIVATE),
    (m.KeyChangeRequest, RFC_KEY_CHANGE, RFC_KEY_CHANGE),
    (
        m.NewOrderRequest,
        RFC_NEW_ORDER,
        {**RFC_NEW_ORDER, "notBefore": "2015-12-31T20:04:00Z", "notAfter": "2016-01-07T20:04:00Z"},
    ),
    (m.FinalizeRequest, RFC_FINALIZE, RFC_FINALIZE),
    (m.RevocationRequest, RFC_REVOCATION, RFC_REVOCATION),
    (m.Problem, RFC_PROBLEM_WITH_SUBPROBLEMS, RFC_PROBLEM_WITH_SUBPROBLEMS),
    (m.RenewalInfo, RFC_RENEWAL_INFO, RFC_RENEWAL_INFO),
    (m.Identifier, RFC_IP_IDENTIFIER_V4, RFC_IP_IDENTIFIER_V4),
    (m.Identifier, RFC_IP_IDENTIFIER_V6, RFC_IP_IDENTIFIER_V6),
]

MESSAGE_CLASSES: list[type[Any]] = [
    m.Identifier,
    m.Problem,
    m.DirectoryMeta,
    m.Directory,
    m.NewAccountRequest,
    m.Account,
    m.AccountUpdate,
    m.NewOrderRequest,
    m.Order,
    m.Challenge,
    m.Authorization,
    m.FinalizeRequest,
    m.RevocationRequest,
    m.KeyChangeRequest,
    m.OrdersList,
    m.RenewalInfo,
]


def _case_id(case: tuple[type[Any], dict[str, Any], dict[str, Any]]) -> str:
    return case[0].__name__


@pytest.mark.parametrize("case", RFC_ROUND_TRIPS, ids=_case_id)
def test_rfc_example_writes_back_its_fields(case: tuple[type[Any], dict[str, Any], dict[str, Any]]) -> None:
    cls, document, expected = case
    parsed = cls.from_json(copy.deepcopy(document))
    assert parsed.to_json() == expected
    # and what we wrote reads back as the same object, also through real JSON text
    assert cls.from_json(json.loads(json.dumps(parsed.to_json()))) == parsed


@pytest.mark.parametrize("case", RFC_ROUND_TRIPS, ids=_case_id)
def test_rfc_example_tolerates_unknown_fields(case: tuple[type[Any], dict[str, Any], dict[str, Any]]) -> None:
    cls, document, _ = case
    decorated = {**document, "x-vendor-extension": {"nested": [1, 2.5, None]}, "resource": "new-reg"}
    assert cls.from_json(decorated) == cls.from_json(document)
    assert "x-vendor-extension" not in cls.from_json(decorated).to_json()


# --- round trips of objects built in Python ------------------------------------------------------

T0 = datetime.datetime(2025, 1, 2, 4, 0, tzinfo=UTC)
T1 = datetime.datetime(2025, 1, 3, 4, 0, 0, 500000, tzinfo=UTC)
BAD_NONCE = m.Problem.acme("badNonce", "stale nonce", 400)

BUILT: list[Any] = [
    m.Identifier.dns("Example.COM."),
    m.Identifier.ip("2001:DB8::0:1"),
    m.Problem(),
    BAD_NONCE,
    m.Problem(
        type=m.ERROR_PREFIX + "badSignatureAlgorithm",
        detail="no RS512",
        status=400,
        title="Bad signature algorithm",
        instance="https://example.com/problems/1",
        identifier=m.Identifier.dns("example.org"),
        subproblems=(BAD_NONCE, m.Problem.acme("caa", "CAA forbids", identifier=m.Identifier.dns("a.example"))),
        algorithms=("ES256", "EdDSA"),
    ),
    m.DirectoryMeta(),
    m.DirectoryMeta(
        terms_of_service="https://example.com/tos",
        website="https://example.com/",
        caa_identities=("example.com", "example.net"),
        external_account_required=True,
        profiles={"classic": "90-day certificates", "shortlived": "https://example.com/docs/shortlived"},
    ),
    m.Directory("https://a/nonce", "https://a/acct", "https://a/order", "https://a/revoke", "https://a/kc"),
    m.Directory(
        "https://a/nonce",
        "https://a/acct",
        "https://a/order",
        "https://a/revoke",
        "https://a/kc",
        new_authz="https://a/authz",
        renewal_info="https://a/ari",
        meta=m.DirectoryMeta(profiles={"classic": "default"}),
    ),
    m.NewAccountRequest(),
    m.NewAccountRequest(
        contact=("mailto:a@example.org",),
        terms_of_service_agreed=False,
        only_return_existing=True,
        external_account_binding={"protected": "e30", "payload": "e30", "signature": "AAAA"},
    ),
    m.Account(m.AccountStatus.VALID),
    m.Account(
        m.AccountStatus.REVOKED,
        contact=("mailto:a@example.org",),
        terms_of_service_agreed=True,
        orders="https://a/orders",
        external_account_binding={"protected": "e30", "payload": "e30", "signature": "AAAA"},
    ),
    m.AccountUpdate(),
    m.AccountUpdate(contact=()),
    m.AccountUpdate(contact=("mailto:b@example.org",), status=m.AccountStatus.DEACTIVATED,
                    terms_of_service_agreed=True),
    m.NewOrderRequest(identifiers=(m.Identifier.dns("example.org"),)),
    m.NewOrderRequest(
        identifiers=(m.Identifier.dns("example.org"), m.Identifier.ip("192.0.2.1")),
        not_before=T0,
        not_after=T1,
        profile="shortlived",
        replaces="aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
    ),
    m.Order(m.OrderStatus.PENDING, (m.Identifier.dns("example.org"),), ("https://a/authz/1",), "https://a/fin"),
    m.Order(
        m.OrderStatus.INVALID,
        (m.Identifier.dns("example.org"),),
        ("https://a/authz/1",),
        "https://a/fin",
        expires=T0,
        not_before=T0,
        not_after=T1,
        error=BAD_NONCE,
        certificate="https://a/cert",
        profile="classic",
        replaces="aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
    ),
    m.Challenge("http-01", "https://a/chall/1", m.ChallengeStatus.PENDING, token="tok"),
    m.Challenge("dns-account-01", "https://a/chall/2", m.ChallengeStatus.INVALID, validated=T1, error=BAD_NONCE),
    m.Challenge("dvsni", "https://a/chall/3", m.ChallengeStatus.PENDING, r="cmFuZG9t", nonce="0" * 32),
    m.Authorization(m.Identifier.dns("example.org"), m.AuthorizationStatus.PENDING, ()),
    m.Authorization(
        m.Identifier.dns("example.org"),
        m.AuthorizationStatus.VALID,
        (m.Challenge("dns-01", "https://a/c", m.ChallengeStatus.VALID, token="t", validated=T0),),
        expires=T1,
        wildcard=True,
        combinations=((0,), (0, 1)),
    ),
    m.FinalizeRequest(b"\x30\x82\x01\x00 not really DER"),
    m.RevocationRequest(b"\x30\x82", reason=0),
    m.RevocationRequest(b"\xff\xfe\xfd"),
    m.KeyChangeRequest(
        "https://a/acct/1", {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    ),
    m.OrdersList(()),
    m.OrdersList(("https://a/order/1", "https://a/order/2")),
    m.RenewalInfo(T0, T1),
    m.RenewalInfo(T0, T1, explanation_url="https://a/docs/ari"),
]


def test_every_message_class_is_built_above() -> None:
    assert {type(message) for message in BUILT} == set(MESSAGE_CLASSES)


@pytest.mark.parametrize("message", BUILT, ids=lambda message: type(message).__name__)
def test_round_trip(message: Any) -> None:
    document = message.to_json()
    assert type(message).from_json(document) == message
    assert type(message).from_json(json.loads(json.dumps(document))) == message


def test_writer_leaves_unset_optional_members_out() -> None:
    order = m.Order(m.OrderStatus.READY, (m.Identifier.dns("example.org"),), ("https://a/z",), "https://a/f")
    assert order.to_json() == {
        "status": "ready",
        "identifiers": [{"type": "dns", "value": "example.org"}],
        "authorizations": ["https://a/z"],
        "finalize": "https://a/f",
    }
    assert m.NewAccountRequest().to_json() == {}
    assert m.AccountUpdate().to_json() == {}
    assert m.RevocationRequest(b"\x01").to_json() == {"certificate": "AQ"}


def test_account_update_distinguishes_no_contact_change_from_removing_all_contacts() -> None:
    assert "contact" not in m.AccountUpdate().to_json()
    assert m.AccountUpdate(contact=()).to_json() == {"contact": []}
    assert m.AccountUpdate.from_json({}).contact is None
    assert m.AccountUpdate.from_json({"contact": []}).contact == ()


def test_deactivation_request() -> None:
    update = m.AccountUpdate.from_json(RFC_DEACTIVATE)
    assert update.status is m.AccountStatus.DEACTIVATED
    assert update.contact is None


def test_new_account_with_eab_keeps_the_jws_as_is() -> None:
    request = m.NewAccountRequest.from_json(RFC_NEW_ACCOUNT_EAB)
    assert request.external_account_binding == RFC_NEW_ACCOUNT_EAB["externalAccountBinding"]
    assert request.terms_of_service_agreed is True
    assert request.only_return_existing is False


def test_new_order_times_keep_the_instant() -> None:
    request = m.NewOrderRequest.from_json(RFC_NEW_ORDER)
    assert request.not_before == datetime.datetime(2015, 12, 31, 20, 4, tzinfo=UTC)
    assert request.not_before is not None and request.not_before.utcoffset() == datetime.timedelta(hours=4)
    assert request.identifiers == (m.Identifier("dns", "www.example.org"), m.Identifier("dns", "example.org"))


def test_rfc_order_fields() -> None:
    order = m.Order.from_json(RFC_ORDER)
    assert order.status is m.OrderStatus.VALID
    assert order.expires == datetime.datetime(2016, 1, 20, 14, 9, 7, 990000, tzinfo=UTC)
    assert order.certificate == "https://example.com/acme/cert/mAt3xBGaobw"
    assert order.error is None


def test_rfc_authorization_fields() -> None:
    authorization = m.Authorization.from_json(RFC_AUTHORIZATION)
    assert authorization.wildcard is False
    (challenge,) = authorization.challenges
    assert challenge.type is m.ChallengeType.HTTP_01
    assert challenge.status is m.ChallengeStatus.VALID
    assert challenge.validated == datetime.datetime(2014, 12, 1, 12, 5, 58, 160000, tzinfo=UTC)


def test_rfc_revocation_and_finalize_decode_base64url() -> None:
    assert m.RevocationRequest.from_json(RFC_REVOCATION).reason == 4
    assert m.RevocationRequest.from_json(RFC_REVOCATION).certificate[:4] == b"\x30\x82\x04\x0d"
    assert m.FinalizeRequest.from_json(RFC_FINALIZE).csr[:2] == b"\x30\x82"


def test_rfc_renewal_info_fields() -> None:
    info = m.RenewalInfo.from_json(RFC_RENEWAL_INFO)
    assert info.start == datetime.datetime(2025, 1, 2, 4, tzinfo=UTC)
    assert info.end == datetime.datetime(2025, 1, 3, 4, tzinfo=UTC)
    assert info.explanation_url == "https://acme.example.com/docs/ari"


@pytest.mark.parametrize(
    "window",
    [
        {"start": "2025-01-03T04:00:00Z", "end": "2025-01-02T04:00:00Z"},
        {"start": "2025-01-02T04:00:00Z", "end": "2025-01-02T04:00:00Z"},
        # the same instant written with two offsets is still an empty window
        {"start": "2025-01-02T04:00:00Z", "end": "2025-01-02T06:00:00+02:00"},
    ],
)
def test_renewal_info_window_must_not_be_empty(window: dict[str, str]) -> None:
    with pytest.raises(MessageError):
        m.RenewalInfo.from_json({"suggestedWindow": window})


# --- directory ------------------------------------------------------------------------------------


def test_directory_without_meta() -> None:
    document = _without(RFC_DIRECTORY, "meta", "newAuthz")
    directory = m.Directory.from_json(document)
    assert directory.meta == m.DirectoryMeta()
    assert directory.new_authz is None
    assert directory.renewal_info is None
    assert directory.to_json() == document
    assert m.Directory.from_json({**document, "meta": None}).meta == m.DirectoryMeta()


def test_directory_with_renewal_info_profiles_and_eab() -> None:
    document = {
        **_without(RFC_DIRECTORY, "meta"),
        "renewalInfo": "https://example.com/acme/renewal-info",
        "meta": {
            "externalAccountRequired": True,
            "profiles": {"classic": "The same profile you're accustomed to", "shortlived": "https://x/sl"},
        },
    }
    directory = m.Directory.from_json(document)
    assert directory.renewal_info == "https://example.com/acme/renewal-info"
    assert directory.meta.external_account_required is True
    assert directory.meta.profiles == {
        "classic": "The same profile you're accustomed to",
        "shortlived": "https://x/sl",
    }
    assert directory.meta.terms_of_service is None
    assert directory.to_json() == document


@pytest.mark.parametrize(
    "meta",
    [
        {"profiles": ["classic"]},
        {"profiles": "classic"},
        {"externalAccountRequired": "yes"},
        {"externalAccountRequired": 1},
        {"caaIdentities": "example.com"},
        {"caaIdentities": [1]},
        {"termsOfService": 5},
    ],
)
def test_directory_meta_mistyped(meta: dict[str, Any]) -> None:
    with pytest.raises(MessageError):
        m.DirectoryMeta.from_json(meta)
    with pytest.raises(MessageError):
        m.Directory.from_json({**RFC_DIRECTORY, "meta": meta})


def test_directory_meta_defaults() -> None:
    meta = m.DirectoryMeta.from_json({})
    assert meta.external_account_required is False
    assert meta.profiles == {}
    assert meta.caa_identities == ()
    assert meta.to_json() == {}


# --- tolerant reading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "document", "enum"),
    [
        (m.Account, {**RFC_ACCOUNT, "status": "suspended"}, m.AccountStatus),
        (m.Order, {**RFC_ORDER, "status": "archived"}, m.OrderStatus),
        (m.Authorization, {**RFC_AUTHORIZATION, "status": "frozen"}, m.AuthorizationStatus),
        (m.Challenge, {**RFC_HTTP01, "status": "queued"}, m.ChallengeStatus),
        (m.AccountUpdate, {"status": "paused"}, m.AccountStatus),
        (m.Account, _without(RFC_ACCOUNT, "status"), m.AccountStatus),
        (m.Order, {**RFC_ORDER, "status": 7}, m.OrderStatus),
        (m.Order, {**RFC_ORDER, "status": ["valid"]}, m.OrderStatus),
        (m.Authorization, {**RFC_AUTHORIZATION, "status": {"x": 1}}, m.AuthorizationStatus),
    ],
)
def test_unknown_status_becomes_unknown(cls: type[Any], document: dict[str, Any], enum: type[Any]) -> None:
    parsed = cls.from_json(document)
    assert parsed.status is enum.UNKNOWN


@pytest.mark.parametrize("type_name", ["dns-account-01", "dns-persist-01", "onion-csr-01", "HTTP-01"])
def test_unknown_challenge_type_is_kept(type_name: str) -> None:
    challenge = m.Challenge.from_json({**RFC_DNS01, "type": type_name})
    assert challenge.type_name == type_name
    assert challenge.type is m.ChallengeType.UNKNOWN
    assert challenge.to_json()["type"] == type_name
    authorization = m.Authorization.from_json({**RFC_AUTHORIZATION, "challenges": [{**RFC_DNS01, "type": type_name}]})
    assert authorization.challenges[0].type_name == type_name


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (RFC_HTTP01, m.ChallengeType.HTTP_01),
        (RFC_DNS01, m.ChallengeType.DNS_01),
        (RFC_TLS_ALPN01, m.ChallengeType.TLS_ALPN_01),
    ],
)
def test_known_challenge_types(document: dict[str, Any], expected: m.ChallengeType) -> None:
    assert m.Challenge.from_json(document).type is expected


def test_legacy_challenges_with_uri_and_dvsni_fields() -> None:
    dvsni = m.Challenge.from_json(
        {"type": "dvsni", "uri": "https://a/chall/9", "r": "cmFuZG9t", "nonce": "a" * 32}
    )
    assert dvsni.type is m.ChallengeType.DVSNI
    assert dvsni.url == "https://a/chall/9"
    assert dvsni.status is m.ChallengeStatus.PENDING  # 2015 challenges carried no status
    assert (dvsni.r, dvsni.nonce) == ("cmFuZG9t", "a" * 32)
    simple = m.Challenge.from_json({"type": "simpleHttps", "uri": "https://a/chall/8", "token": "t+k"})
    assert simple.type is m.ChallengeType.SIMPLE_HTTPS
    authorization = m.Authorization.from_json(
        {**RFC_AUTHORIZATION, "combinations": [[0], [0, 1], "junk", [1, "x"]]}
    )
    assert authorization.combinations == ((0,), (0, 1))


def test_problem_is_read_tolerantly() -> None:
    problem = m.Problem.from_json({"status": "400", "detail": None})
    assert problem == m.Problem()
    assert m.Problem.from_json({"status": True}).status is None
    assert m.Problem.from_json({"detail": 42}).detail == "42"


# --- problems -------------------------------------------------------------------------------------------


def test_problem_with_subproblems() -> None:
    problem = m.Problem.from_json(RFC_PROBLEM_WITH_SUBPROBLEMS)
    assert problem.short_type == "malformed"
    assert problem.identifier is None
    assert [sub.short_type for sub in problem.subproblems] == ["malformed", "rejectedIdentifier"]
    assert [sub.identifier for sub in problem.subproblems] == [
        m.Identifier("dns", "_example.org"),
        m.Identifier("dns", "example.net"),
    ]
    assert problem.subproblems[1].detail == 'This CA will not issue for "example.net"'


@pytest.mark.parametrize(
    ("type_uri", "short"),
    [
        ("urn:ietf:params:acme:error:badNonce", "badNonce"),
        ("urn:acme:error:badNonce", "badNonce"),
        ("urn:acme:error:unauthorized", "unauthorized"),
        ("urn:ietf:params:acme:error:alreadyReplaced", "alreadyReplaced"),
        ("about:blank", "about:blank"),
        ("https://example.com/problems/quota", "https://example.com/problems/quota"),
    ],
)
def test_problem_short_type(type_uri: str, short: str) -> None:
    assert m.Problem(type=type_uri).short_type == short
    assert m.Problem.from_json({"type": type_uri}).short_type == short


def test_problem_acme_constructor_and_algorithms() -> None:
    problem = m.Problem.acme("badSignatureAlgorithm", "use ES256", 400, algorithms=("ES256", "EdDSA"))
    assert problem.type == "urn:ietf:params:acme:error:badSignatureAlgorithm"
    assert problem.to_json() == {
        "type": "urn:ietf:params:acme:error:badSignatureAlgorithm",
        "detail": "use ES256",
        "status": 400,
        "algorithms": ["ES256", "EdDSA"],
    }


# --- identifiers (RFC 8738) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2001:DB8::0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("  192.0.2.1 ", "192.0.2.1"),
        ("::1", "::1"),
    ],
)
def test_ip_identifier_is_canonical(text: str, value: str) -> None:
    assert m.Identifier.ip(text) == m.Identifier("ip", value)
    assert m.Identifier.parse(text) == m.Identifier("ip", value)
    assert m.Identifier.from_json(m.Identifier.ip(text).to_json()) == m.Identifier("ip", value)


@pytest.mark.parametrize("text", ["example.com", "192.0.2.256", "2001:db8::g", ""])
def test_ip_identifier_rejects_non_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        m.Identifier.ip(text)


def test_dns_identifier_and_parse() -> None:
    assert m.Identifier.dns(" WWW.Example.ORG. ") == m.Identifier("dns", "www.example.org")
    assert m.Identifier.parse("*.Example.org") == m.Identifier("dns", "*.example.org")
    assert str(m.Identifier.dns("example.org")) == "example.org"
    assert m.identifiers_of(["example.org", "192.0.2.1", "2001:DB8::1"]) == (
        m.Identifier("dns", "example.org"),
        m.Identifier("ip", "192.0.2.1"),
        m.Identifier("ip", "2001:db8::1"),
    )


# --- time ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-01-20T14:09:07.99999999Z", datetime.datetime(2016, 1, 20, 14, 9, 7, 999999, tzinfo=UTC)),
        ("2016-01-20T14:09:07.123456789Z", datetime.datetime(2016, 1, 20, 14, 9, 7, 123456, tzinfo=UTC)),
        ("2016-01-20T14:09:07.99Z", datetime.datetime(2016, 1, 20, 14, 9, 7, 990000, tzinfo=UTC)),
        ("2016-01-20T14:09:07.9Z", datetime.datetime(2016, 1, 20, 14, 9, 7, 900000, tzinfo=UTC)),
        ("2016-01-20T14:09:07Z", datetime.datetime(2016, 1, 20, 14, 9, 7, tzinfo=UTC)),
        ("2016-01-20t14:09:07z", datetime.datetime(2016, 1, 20, 14, 9, 7, tzinfo=UTC)),
        ("2016-01-20 14:09:07Z", datetime.datetime(2016, 1, 20, 14, 9, 7, tzinfo=UTC)),
        ("2016-01-01T00:04:00+04:00", datetime.datetime(2015, 12, 31, 20, 4, tzinfo=UTC)),
        ("2016-01-01T00:00:00-05:30", datetime.datetime(2016, 1, 1, 5, 30, tzinfo=UTC)),
        ("2016-01-01T00:00:00+00:00", datetime.datetime(2016, 1, 1, tzinfo=UTC)),
        ("2016-01-01T00:00:00-00:00", datetime.datetime(2016, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime.datetime) -> None:
    parsed = m.parse_time(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_parse_time_keeps_the_offset() -> None:
    assert m.parse_time("2016-01-01T00:04:00+04:00").utcoffset() == datetime.timedelta(hours=4)
    assert m.parse_time("2016-01-01T00:00:00-05:30").utcoffset() == -datetime.timedelta(hours=5, minutes=30)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "yesterday",
        "2016-01-01",
        "2016-01-01T00:00:00",  # no zone: RFC 3339 requires one
        "2016-01-01T00:00Z",
        "2016-01-01T00:00:00.Z",
        "2016-01-01T00:00:00+0400",
        "2016-01-01T00:00:00 UTC",
        "1452816000",
        "2016-13-01T00:00:00Z",
        "2016-02-30T00:00:00Z",
        "2016-01-01T24:00:00Z",
        "2016-01-01T00:60:00Z",
        "2016-01-01T00:00:00+24:00",
        "2016-01-01T00:00:00+99:00",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: could never be written back
        "9999-12-31T23:59:59-01:00",
        "\uff12016-01-01T00:00:00Z",  # a fullwidth digit
        "\u0662\u0660\u0661\u0666-01-01T00:00:00Z",  # Arabic-Indic digits
        None,
        1452816000,
        ["2016-01-01T00:00:00Z"],
    ],
)
def test_parse_time_rejects_garbage(garbage: Any) -> None:
    with pytest.raises(MessageError):
        m.parse_time(garbage)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime.datetime(2016, 1, 1), "2016-01-01T00:00:00Z"),
        (datetime.datetime(2016, 1, 20, 14, 9, 7, 990000), "2016-01-20T14:09:07.99Z"),
        (datetime.datetime(2016, 1, 20, 14, 9, 7, 1, tzinfo=UTC), "2016-01-20T14:09:07.000001Z"),
        (datetime.datetime(2016, 1, 1, 0, 4, tzinfo=datetime.timezone(datetime.timedelta(hours=4))),
         "2015-12-31T20:04:00Z"),
        (datetime.datetime(2016, 1, 1, tzinfo=datetime.timezone(-datetime.timedelta(hours=5, minutes=30))),
         "2016-01-01T05:30:00Z"),
        (datetime.datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
    ],
)
def test_format_time(value: datetime.datetime, text: str) -> None:
    assert m.format_time(value) == text


@given(
    st.datetimes(
        min_value=datetime.datetime(1, 1, 2),
        max_value=datetime.datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, datetime.timezone(datetime.timedelta(hours=14)), datetime.timezone(-datetime.timedelta(hours=12))]
        ),
    )
)
def test_format_then_parse_is_identity(value: datetime.datetime) -> None:
    assert m.parse_time(m.format_time(value)) == value


# --- required fields: missing or mistyped is a MessageError --------------------------------------------

REQUIRED_MEMBERS: list[tuple[type[Any], dict[str, Any], str]] = [
    (m.Identifier, RFC_IP_IDENTIFIER_V4, "type"),
    (m.Identifier, RFC_IP_IDENTIFIER_V4, "value"),
    *[(m.Directory, RFC_DIRECTORY, key) for key in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange")],
    (m.Order, RFC_ORDER, "finalize"),
    (m.Challenge, RFC_HTTP01, "type"),
    (m.Challenge, RFC_HTTP01, "url"),
    (m.Authorization, RFC_AUTHORIZATION, "identifier"),
    (m.FinalizeRequest, RFC_FINALIZE, "csr"),
    (m.RevocationRequest, RFC_REVOCATION, "certificate"),
    (m.KeyChangeRequest, RFC_KEY_CHANGE, "account"),
    (m.KeyChangeRequest, RFC_KEY_CHANGE, "oldKey"),
    (m.RenewalInfo, RFC_RENEWAL_INFO, "suggestedWindow"),
]


@pytest.mark.parametrize(("cls", "document", "key"), REQUIRED_MEMBERS, ids=lambda v: getattr(v, "__name__", None))
def test_missing_required_member(cls: type[Any], document: dict[str, Any], key: str) -> None:
    with pytest.raises(MessageError):
        cls.from_json(_without(document, key))
    with pytest.raises(MessageError):
        cls.from_json({**document, key: None})


@pytest.mark.parametrize("key", ["start", "end"])
def test_renewal_window_needs_start_and_end(key: str) -> None:
    window = _without(RFC_RENEWAL_INFO["suggestedWindow"], key)
    with pytest.raises(MessageError):
        m.RenewalInfo.from_json({"suggestedWindow": window})


MISTYPED: list[tuple[type[Any], dict[str, Any], str, Any]] = [
    (m.Identifier, RFC_IP_IDENTIFIER_V4, "value", 3232235521),
    (m.Identifier, RFC_IP_IDENTIFIER_V4, "type", ["ip"]),
    (m.Directory, RFC_DIRECTORY, "newNonce", {"url": "x"}),
    (m.Directory, RFC_DIRECTORY, "renewalInfo", 5),
    (m.Directory, RFC_DIRECTORY, "meta", "none"),
    (m.NewAccountRequest, RFC_NEW_ACCOUNT, "contact", "mailto:a@example.org"),
    (m.NewAccountRequest, RFC_NEW_ACCOUNT, "contact", [1]),
    (m.NewAccountRequest, RFC_NEW_ACCOUNT, "termsOfServiceAgreed", "true"),
    (m.NewAccountRequest, RFC_NEW_ACCOUNT, "onlyReturnExisting", 1),
    (m.NewAccountRequest, RFC_NEW_ACCOUNT, "externalAccountBinding", "e30.e30.AAAA"),
    (m.Account, RFC_ACCOUNT, "contact", {"email": "a@example.org"}),
    (m.Account, RFC_ACCOUNT, "termsOfServiceAgreed", "yes"),
    (m.Account, RFC_ACCOUNT, "orders", ["https://a"]),
    (m.AccountUpdate, RFC_ACCOUNT_UPDATE, "contact", "mailto:a@example.org"),
    (m.AccountUpdate, RFC_AGREE_TO_TERMS, "termsOfServiceAgreed", 1),
    (m.NewOrderRequest, RFC_NEW_ORDER, "identifiers", {"type": "dns", "value": "example.org"}),
    (m.NewOrderRequest, RFC_NEW_ORDER, "identifiers", ["example.org"]),
    (m.NewOrderRequest, RFC_NEW_ORDER, "notBefore", 1451606400),
    (m.NewOrderRequest, RFC_NEW_ORDER, "notAfter", "next week"),
    (m.NewOrderRequest, RFC_NEW_ORDER, "profile", {"name": "classic"}),
    (m.NewOrderRequest, RFC_NEW_ORDER, "replaces", 5),
    (m.Order, RFC_ORDER, "identifiers", [{"type": "dns"}]),
    (m.Order, RFC_ORDER, "authorizations", "https://a/authz"),
    (m.Order, RFC_ORDER, "finalize", 1),
    (m.Order, RFC_ORDER, "expires", "2016-01-20"),
    (m.Order, RFC_ORDER, "error", "badCSR"),
    (m.Order, RFC_ORDER, "certificate", True),
    (m.Challenge, RFC_HTTP01, "token", 12345),
    (m.Challenge, RFC_HTTP01, "validated", "now"),
    (m.Challenge, RFC_HTTP01, "error", ["malformed"]),
    (m.Authorization, RFC_AUTHORIZATION, "identifier", "www.example.org"),
    (m.Authorization, RFC_AUTHORIZATION, "challenges", {"http-01": {}}),
    (m.Authorization, RFC_AUTHORIZATION, "challenges", [None]),
    (m.Authorization, RFC_AUTHORIZATION, "wildcard", "false"),
    (m.Authorization, RFC_AUTHORIZATION, "expires", 0),
    (m.FinalizeRequest, RFC_FINALIZE, "csr", b"\x30\x82"),
    (m.FinalizeRequest, RFC_FINALIZE, "csr", "MIIBPTCBxAIBADBFMQ=="),  # padded
    (m.FinalizeRequest, RFC_FINALIZE, "csr", "MIIB+TCB/AIBADBFMQ"),  # standard alphabet
    (m.FinalizeRequest, RFC_FINALIZE, "csr", "MIIBPTCBx"),  # impossible length
    (m.RevocationRequest, RFC_REVOCATION, "certificate", "MIIEDTCCAvegAwIBAgIRAP8..."),  # as printed
    (m.RevocationRequest, RFC_REVOCATION, "reason", "4"),
    (m.RevocationRequest, RFC_REVOCATION, "reason", True),
    (m.RevocationRequest, RFC_REVOCATION, "reason", 4.0),
    (m.KeyChangeRequest, RFC_KEY_CHANGE, "oldKey", "eyJrdHkiOiJFQyJ9"),
    (m.KeyChangeRequest, RFC_KEY_CHANGE, "account", ["https://a"]),
    (m.OrdersList, RFC_ORDERS_LIST, "orders", "https://a/order/1"),
    (m.OrdersList, RFC_ORDERS_LIST, "orders", [{"url": "https://a/order/1"}]),
    (m.Problem, RFC_PROBLEM_WITH_SUBPROBLEMS, "type", 403),
    (m.Problem, RFC_PROBLEM_WITH_SUBPROBLEMS, "subproblems", {"type": "x"}),
    (m.Problem, RFC_PROBLEM_WITH_SUBPROBLEMS, "subproblems", ["malformed"]),
    (m.Problem, RFC_PROBLEM_WITH_SUBPROBLEMS, "identifier", "example.org"),
    (m.Problem, RFC_PROBLEM_WITH_SUBPROBLEMS, "algorithms", "ES256"),
    (m.RenewalInfo, RFC_RENEWAL_INFO, "suggestedWindow", ["2025-01-02T04:00:00Z", "2025-01-03T04:00:00Z"]),
    (m.RenewalInfo, RFC_RENEWAL_INFO, "suggestedWindow", {"start": 1735790400, "end": 1735876800}),
    (m.RenewalInfo, RFC_RENEWAL_INFO, "explanationURL", 404),
]


@pytest.mark.parametrize(
    ("cls", "document", "key", "bad"),
    MISTYPED,
    ids=[f"{cls.__name__}-{key}-{index}" for index, (cls, _, key, _) in enumerate(MISTYPED)],
)
def test_mistyped_member(cls: type[Any], document: dict[str, Any], key: str, bad: Any) -> None:
    with pytest.raises(MessageError):
        cls.from_json({**document, key: bad})


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("not_an_object", [None, [], "{}", 5, True, 1.5])
def test_top_level_must_be_an_object(cls: type[Any], not_an_object: Any) -> None:
    with pytest.raises(MessageError):
        cls.from_json(not_an_object)


# --- property: any JSON value is read or refused with MessageError, never another exception ----------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=15,
)

# Strings shaped like what the messages carry, so that mutations reach the value parsers too:
# base64url-ish text (padding, standard alphabet, impossible lengths) and RFC 3339-ish timestamps
# (month 13, hour 25, offsets past a day, non-ASCII digits).
stringy = st.text(alphabet="Aa0_-+/=. :TZ", max_size=24) | st.from_regex(
    r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", fullmatch=True
)

_DELETE = object()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return None if new is _DELETE else new
    document = copy.deepcopy(document)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if new is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return document


def _read_or_refuse(cls: type[Any], value: Any) -> None:
    """``from_json`` returns or raises MessageError; what it returns is written and read back unchanged."""
    try:
        parsed = cls.from_json(value)
    except MessageError:
        return
    written = parsed.to_json()
    json.dumps(written)
    assert cls.from_json(written) == parsed


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=60)
@given(value=json_values)
def test_arbitrary_json_is_read_or_refused(cls: type[Any], value: Any) -> None:
    _read_or_refuse(cls, value)


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=60)
@given(value=st.dictionaries(st.sampled_from(sorted({
    key for _, document, _ in RFC_ROUND_TRIPS for path in _paths(document) for key in path if isinstance(key, str)
} | {"uri", "r", "nonce", "profile", "replaces", "renewalInfo", "profiles", "algorithms", "combinations"})),
    json_values, max_size=8))
def test_objects_with_known_member_names_are_read_or_refused(cls: type[Any], value: dict[str, Any]) -> None:
    _read_or_refuse(cls, value)


@pytest.mark.parametrize("case", RFC_ROUND_TRIPS, ids=_case_id)
@settings(max_examples=40)
@given(data=st.data())
def test_mutated_rfc_examples_are_read_or_refused(
    case: tuple[type[Any], dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    cls, document, _ = case
    path = data.draw(st.sampled_from(list(_paths(document))), label="path")
    new = data.draw(st.just(_DELETE) | json_values | stringy, label="replacement")
    _read_or_refuse(cls, _replace(document, path, new))
