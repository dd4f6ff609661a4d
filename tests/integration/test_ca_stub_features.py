"""ca_stub's features beyond the protocol suite that runs against Pebble and ca_stub alike.

Every test drives a real ``ca-stub serve`` process over HTTPS with the protocol library
(``letsencrypt.acme``) and in-test challenge responders on the CA's validation ports; nothing of
ca_stub is imported. The shared ``ca_stub_server`` fixture (5 % bad nonces, challtestsrv as DNS)
serves every test that needs no special flag; the others get their own instance, on a copy of a
data directory made once per module (key ceremony, schema and API certificate: the slow part of a
first start).

Covered: the 2015 draft's ``simpleHttps`` and ``dvsni`` (``--legacy-challenges``), IP and
wildcard identifiers, profiles, renewal information and ``replaces``, terms-of-service changes,
revocation seen through OCSP (POST and GET) and the CRL, alternate chains, persistence across a
restart, Pebble's knobs (bad-nonce rate, validation delay, authorization reuse), Pebble's
management API, external account binding and the block list.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from letsencrypt.acme import challenges, crypto, errors
from letsencrypt.acme.ari import certificate_id
from letsencrypt.acme.client import (
    AcmeClient,
    AuthorizationHandle,
    CertificateDownload,
    ExternalAccountBinding,
    OrderHandle,
)
from letsencrypt.acme.jws import AccountKey, sign_jws
from letsencrypt.acme.messages import (
    AuthorizationStatus,
    Challenge,
    ChallengeType,
    Identifier,
    OrderStatus,
)
from letsencrypt.testing import CAStub, run_ca_stub

from ._procs import make_tls_identity, require_binary, skip_or_fail
from .pebble_harness import Pebble
from .responders import http_responder, tls_responder

pytestmark = pytest.mark.integration

LOOPBACK = "127.0.0.1"
DEADLINE = 30.0  # seconds, for each wait on an authorization or an order
TIMEOUT = 10.0  # seconds, for each plain HTTP request
Server = CAStub | Pebble


# --- instances ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory after the key ceremony and one clean start and stop: no account, no order.

    Every fresh instance copies it, which saves it the ceremony, the schema and the API certificate.
    """
    workdir = tmp_path_factory.mktemp("ceremony")
    with run_ca_stub(workdir) as ca:
        pass
    return ca.data_dir


@contextlib.contextmanager
def fresh_ca(ceremony: Path, workdir: Path, *args: str) -> Iterator[CAStub]:
    """A ca_stub of its own on ``workdir/ca`` (seeded with the ceremony the first time), with ``args``."""
    data_dir = workdir / "ca"
    if not data_dir.exists():
        shutil.copytree(ceremony, data_dir)
    with run_ca_stub(workdir, data_dir=data_dir, extra_args=args) as ca:
        yield ca


@pytest.fixture(scope="module")
def legacy_ca(ceremony: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CAStub]:
    """ca_stub offering the 2015 draft's challenges and refusing ``blocked.example``."""
    workdir = tmp_path_factory.mktemp("legacy_ca")
    with fresh_ca(ceremony, workdir, "--legacy-challenges", "--block", "blocked.example") as ca:
        yield ca


# --- challenge responders ----------------------------------------------------------------------


def ipv6_loopback_usable() -> str | None:
    """``None`` when ``::1`` can be bound, else why not."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError as err:
        return f"::1 is not bindable here: {err}"
    return None


# --- protocol helpers --------------------------------------------------------------------------


def client_for(ca: Server, key: AccountKey | None = None, **options: Any) -> AcmeClient:
    return AcmeClient(ca.directory_url, key or AccountKey.generate("ec256"), verify=ca.ca_bundle, **options)


def registered(ca: Server, **options: Any) -> AcmeClient:
    client = client_for(ca, **options)
    assert client.register(contact=["mailto:admin@example.com"], terms_of_service_agreed=True).created
    return client


def challenge_of(handle: AuthorizationHandle, kind: ChallengeType) -> Challenge:
    found = [c for c in handle.authorization.challenges if c.type == kind]
    assert found, f"{handle.authorization.identifier} offers no {kind}: {handle.authorization.challenges}"
    return found[0]


def deadline() -> float:
    return time.monotonic() + DEADLINE


def solve(
    client: AcmeClient, ca: Server, order: OrderHandle, kind: ChallengeType, tmp: Path, *, host: str = LOOPBACK,
) -> list[AuthorizationHandle]:
    """Serve and answer one ``kind`` challenge per pending authorization; wait until each is valid."""
    pending = [h for h in client.authorizations(order) if h.authorization.status == AuthorizationStatus.PENDING]
    picks = [(h, challenge_of(h, kind)) for h in pending]
    authorizations = {h.url: challenges.key_authorization(c.token or "", client.key) for h, c in picks}
    responder: contextlib.AbstractContextManager[Any]
    if kind == ChallengeType.HTTP_01:
        bodies = {challenges.http01_path(c.token or ""): challenges.http01_body(authorizations[h.url])
                  for h, c in picks}
        responder = http_responder(host, ca.http_port, bodies)
    elif kind == ChallengeType.TLS_ALPN_01:
        certs = {
            challenges.tls_alpn01_sni(h.authorization.identifier):
                challenges.tls_alpn01_certificate(h.authorization.identifier, authorizations[h.url])
            for h, _ in picks
        }
        responder = tls_responder(host, ca.tls_port, certs, tmp, alpn=challenges.ACME_TLS_ALPN_PROTOCOL)
    elif kind == ChallengeType.DNS_01:
        assert isinstance(ca, Pebble), "dns-01 needs challtestsrv (the ca_stub_server fixture)"
        for h, _ in picks:
            ca.set_txt(challenges.dns01_record_name(h.authorization.identifier.value),
                       challenges.dns01_txt_value(authorizations[h.url]))
        responder = contextlib.nullcontext()
    else:
        raise AssertionError(f"solve() does not serve {kind}")
    with responder:
        for _, challenge in picks:
            client.answer_challenge(challenge)
        return [client.wait_for_authorization(h.url, deadline=deadline()) for h, _ in picks]


def finish(client: AcmeClient, order: OrderHandle) -> tuple[CertificateDownload, OrderHandle]:
    """Wait for ``ready``, finalize with a fresh P-256 key and download every chain."""
    ready = client.wait_for_order(order.url, deadline=deadline())
    csr = crypto.make_csr(crypto.generate_private_key("ec256"), ready.order.identifiers)
    done = client.finalize(ready, csr, deadline=deadline())
    assert done.order.status == OrderStatus.VALID
    return client.download_certificate(done), done


def issue(
    client: AcmeClient, ca: Server, names: Sequence[str], kind: ChallengeType, tmp: Path, *,
    host: str = LOOPBACK, **order_options: Any,
) -> tuple[CertificateDownload, OrderHandle]:
    order = client.new_order([Identifier.parse(name) for name in names], **order_options)
    solve(client, ca, order, kind, tmp, host=host)
    return finish(client, order)


def leaf_and_issuer(chain_pem: str) -> tuple[x509.Certificate, x509.Certificate]:
    certs = crypto.split_pem_chain(chain_pem)
    return certs[0], certs[1]


def openssl_verifies(chain_pem: str, root_pem: str, tmp: Path) -> tuple[bool, str]:
    """Whether ``openssl verify`` accepts the chain's leaf with ``root_pem`` as the only trust anchor."""
    certs = crypto.split_pem_chain(chain_pem)
    (tmp / "root.pem").write_text(root_pem)
    (tmp / "leaf.pem").write_text(crypto.pem_of(certs[:1]))
    (tmp / "untrusted.pem").write_text(crypto.pem_of(certs[1:]))
    result = subprocess.run(
        [require_binary("openssl", "openssl"), "verify", "-CAfile", tmp / "root.pem",
         "-untrusted", tmp / "untrusted.pem", tmp / "leaf.pem"],
        capture_output=True, text=True, check=False, timeout=30,
    )
    return result.returncode == 0, result.stdout + result.stderr


def path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def moved(url: str, ca: Server) -> str:
    """``url`` on the API of ``ca`` (a restarted ca_stub listens on another port)."""
    return urllib.parse.urlsplit(url)._replace(netloc=urllib.parse.urlsplit(ca.directory_url).netloc).geturl()


def signed_post(client: AcmeClient, ca: Server, url: str, payload: Mapping[str, Any]) -> requests.Response:
    """One signed POST straight over HTTP, retried on badNonce only: the CA's raw answer."""
    assert client.account_url is not None
    for _ in range(20):
        head = requests.head(client.directory.new_nonce, verify=ca.ca_bundle, timeout=TIMEOUT)
        jws = sign_jws(client.key, json.dumps(payload).encode(), url=url, nonce=head.headers["Replay-Nonce"],
                       kid=client.account_url)
        response = requests.post(url, data=json.dumps(jws), headers={"Content-Type": "application/jose+json"},
                                 verify=ca.ca_bundle, timeout=TIMEOUT)
        if response.status_code != 400 or response.json().get("type") != "urn:ietf:params:acme:error:badNonce":
            return response
    raise AssertionError(f"20 badNonce answers in a row from {url}")


# --- legacy challenges (--legacy-challenges) ------------------------------------------------------


def test_legacy_authorization_offers_simple_https_and_dvsni_with_combinations(legacy_ca: CAStub) -> None:
    client = registered(legacy_ca)
    order = client.new_order([Identifier.dns("offers.example.com")])
    authorization = client.authorizations(order)[0].authorization
    types = [c.type_name for c in authorization.challenges]
    assert {"simpleHttps", "dvsni", "http-01", "dns-01", "tls-alpn-01"} == set(types)
    # the 2015 draft: any single challenge suffices, listed as one-element combinations
    assert authorization.combinations == tuple((i,) for i in range(len(types)))
    dvsni = next(c for c in authorization.challenges if c.type == ChallengeType.DVSNI)
    assert dvsni.r and dvsni.nonce
    simple = next(c for c in authorization.challenges if c.type == ChallengeType.SIMPLE_HTTPS)
    assert simple.token
    # never for a wildcard: only dns-01 proves one
    wildcard = client.authorizations(client.new_order([Identifier.dns("*.offers.example.com")]))[0]
    assert [c.type_name for c in wildcard.authorization.challenges] == ["dns-01"]
    assert wildcard.authorization.combinations == ()


def test_simple_https_issues(legacy_ca: CAStub, tmp_path: Path) -> None:
    client = registered(legacy_ca)
    order = client.new_order([Identifier.dns("simple.example.com")])
    handle = client.authorizations(order)[0]
    challenge = challenge_of(handle, ChallengeType.SIMPLE_HTTPS)
    solution = challenges.simple_https_solution(challenge.token or "")
    identity = make_tls_identity(tmp_path, ["simple.example.com"], prefix="simple")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(identity.cert, identity.key)
    with http_responder(LOOPBACK, legacy_ca.tls_port, {solution.url_path: solution.body}, tls=context):
        client.answer_challenge(challenge, solution.response_payload())
        done = client.wait_for_authorization(handle.url, deadline=deadline())
    assert challenge_of(done, ChallengeType.SIMPLE_HTTPS).status == "valid"
    download, _ = finish(client, order)
    leaf, _ = leaf_and_issuer(download.default)
    assert crypto.certificate_names(leaf) == (Identifier.dns("simple.example.com"),)
    ok, output = openssl_verifies(download.default, legacy_ca.roots_pem(0), tmp_path)
    assert ok, output


def test_simple_https_with_wrong_body_is_invalid(legacy_ca: CAStub, tmp_path: Path) -> None:
    client = registered(legacy_ca)
    order = client.new_order([Identifier.dns("simple-wrong.example.com")])
    handle = client.authorizations(order)[0]
    challenge = challenge_of(handle, ChallengeType.SIMPLE_HTTPS)
    solution = challenges.simple_https_solution(challenge.token or "")
    identity = make_tls_identity(tmp_path, ["simple-wrong.example.com"], prefix="simple")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(identity.cert, identity.key)
    with http_responder(LOOPBACK, legacy_ca.tls_port, {solution.url_path: b"not the token"}, tls=context):
        client.answer_challenge(challenge, solution.response_payload())
        with pytest.raises(errors.ResourceFailed) as caught:
            client.wait_for_authorization(handle.url, deadline=deadline())
    assert caught.value.problem is not None
    assert caught.value.problem.short_type == "incorrectResponse"
    assert "not the token" in caught.value.problem.detail and solution.path in caught.value.problem.detail
    assert client.get_order(order.url).order.status == OrderStatus.INVALID


def test_dvsni_issues(legacy_ca: CAStub, tmp_path: Path) -> None:
    client = registered(legacy_ca)
    order = client.new_order([Identifier.dns("dvsni.example.com")])
    handle = client.authorizations(order)[0]
    challenge = challenge_of(handle, ChallengeType.DVSNI)
    solution = challenges.dvsni_solution(challenge.r or "", challenge.nonce or "", "dvsni.example.com", client.key)
    assert solution.sni == f"{challenge.nonce}.acme.invalid"
    certs = {solution.sni: solution.challenge_certificate}
    with tls_responder(LOOPBACK, legacy_ca.tls_port, certs, tmp_path, alpn=None) as seen:
        client.answer_challenge(challenge, solution.response_payload())
        client.wait_for_authorization(handle.url, deadline=deadline())
    assert solution.sni in seen  # the validator asked for N.acme.invalid
    download, _ = finish(client, order)
    leaf, _ = leaf_and_issuer(download.default)
    assert crypto.certificate_names(leaf) == (Identifier.dns("dvsni.example.com"),)
    ok, output = openssl_verifies(download.default, legacy_ca.roots_pem(0), tmp_path)
    assert ok, output


def test_dvsni_with_a_certificate_not_of_the_account_key_is_invalid(legacy_ca: CAStub, tmp_path: Path) -> None:
    client = registered(legacy_ca)
    order = client.new_order([Identifier.dns("dvsni-foreign.example.com")])
    handle = client.authorizations(order)[0]
    challenge = challenge_of(handle, ChallengeType.DVSNI)
    # the right names (domain and Z for our s), but self-signed by another key
    stranger = AccountKey.generate("ec256")
    solution = challenges.dvsni_solution(challenge.r or "", challenge.nonce or "", "dvsni-foreign.example.com",
                                         stranger)
    with tls_responder(LOOPBACK, legacy_ca.tls_port, {solution.sni: solution.challenge_certificate}, tmp_path,
                       alpn=None):
        client.answer_challenge(challenge, solution.response_payload())
        with pytest.raises(errors.ResourceFailed) as caught:
            client.wait_for_authorization(handle.url, deadline=deadline())
    assert caught.value.problem is not None and caught.value.problem.short_type == "unauthorized"
    assert "account key" in caught.value.problem.detail


def test_without_the_flag_no_legacy_challenge_is_offered(ca_stub_server: Pebble) -> None:
    client = registered(ca_stub_server)
    order = client.new_order([Identifier.dns("modern-only.example.com"), Identifier.ip("127.0.0.1")])
    for handle in client.authorizations(order):
        types = {c.type_name for c in handle.authorization.challenges}
        assert not types & {"simpleHttps", "dvsni"}, types
        assert handle.authorization.combinations == ()


# --- identifiers: IP addresses and wildcards ------------------------------------------------------


@pytest.mark.parametrize("kind", [ChallengeType.HTTP_01, ChallengeType.TLS_ALPN_01], ids=str)
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_ip_identifier(ca_stub_server: Pebble, tmp_path: Path, address: str, kind: ChallengeType) -> None:
    if ":" in address and (reason := ipv6_loopback_usable()) is not None:
        skip_or_fail(reason)
    client = registered(ca_stub_server)
    order = client.new_order([Identifier.ip(address)])
    offered = {c.type_name for c in client.authorizations(order)[0].authorization.challenges}
    assert offered == {"http-01", "tls-alpn-01"}  # RFC 8738 §7: no dns-01 for an IP
    solve(client, ca_stub_server, order, kind, tmp_path, host=address)
    download, _ = finish(client, order)
    leaf, _ = leaf_and_issuer(download.default)
    assert crypto.certificate_names(leaf) == (Identifier.ip(address),)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == []


def test_wildcard_gets_only_dns01_and_is_issued(ca_stub_server: Pebble, tmp_path: Path) -> None:
    client = registered(ca_stub_server)
    order = client.new_order([Identifier.dns("*.example.com")])
    handle = client.authorizations(order)[0]
    assert handle.authorization.wildcard
    assert handle.authorization.identifier == Identifier.dns("example.com")
    assert [c.type_name for c in handle.authorization.challenges] == ["dns-01"]
    solve(client, ca_stub_server, order, ChallengeType.DNS_01, tmp_path)
    download, _ = finish(client, order)
    leaf, _ = leaf_and_issuer(download.default)
    assert crypto.certificate_names(leaf) == (Identifier.dns("*.example.com"),)


# --- profiles -------------------------------------------------------------------------------------


def test_profiles_shortlived_and_unknown(ca_stub_server: Pebble, tmp_path: Path) -> None:
    client = registered(ca_stub_server)
    assert {"default", "shortlived"} <= set(client.directory.meta.profiles)
    download, order = issue(client, ca_stub_server, ["short.example.com"], ChallengeType.HTTP_01, tmp_path,
                            profile="shortlived")
    assert order.order.profile == "shortlived"
    leaf, _ = leaf_and_issuer(download.default)
    lifetime = crypto.not_after(leaf) - crypto.not_before(leaf)
    assert abs(lifetime - datetime.timedelta(hours=160)) <= datetime.timedelta(minutes=5), lifetime
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    # the default profile, for contrast: 90 days, with a common name
    download, order = issue(client, ca_stub_server, ["long.example.com"], ChallengeType.HTTP_01, tmp_path)
    leaf, _ = leaf_and_issuer(download.default)
    lifetime = crypto.not_after(leaf) - crypto.not_before(leaf)
    assert abs(lifetime - datetime.timedelta(days=90)) <= datetime.timedelta(minutes=5), lifetime
    assert [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["long.example.com"]
    with pytest.raises(errors.ProblemError) as caught:
        client.new_order([Identifier.dns("nope.example.com")], profile="no-such-profile")
    assert caught.value.problem.short_type == "invalidProfile"
    assert "shortlived" in caught.value.detail


# --- renewal information (RFC 9773) ----------------------------------------------------------------


def test_renewal_info_and_replaces(ca_stub_server: Pebble, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = registered(ca_stub_server)
    names = ["ari.example.com"]
    download, _ = issue(client, ca_stub_server, names, ChallengeType.HTTP_01, tmp_path)
    leaf, _ = leaf_and_issuer(download.default)
    info = client.renewal_info(leaf)
    assert info is not None
    window = info.info.start, info.info.end
    assert crypto.not_before(leaf) < window[0] < window[1] < crypto.not_after(leaf)
    assert info.retry_after is not None and info.retry_after > 0

    cert_id = certificate_id(leaf)
    successor = client.new_order([Identifier.dns(n) for n in names], replaces=cert_id)
    assert successor.order.replaces == cert_id
    # a second successor: the raw answer is alreadyReplaced (409) ...
    raw = signed_post(client, ca_stub_server, client.directory.new_order,
                      {"identifiers": [{"type": "dns", "value": names[0]}], "replaces": cert_id})
    assert raw.status_code == 409, raw.text
    assert raw.headers["Content-Type"].startswith("application/problem+json")
    assert raw.json()["type"] == "urn:ietf:params:acme:error:alreadyReplaced"
    # ... and the client asks again without replaces, and still gets an order
    with caplog.at_level(logging.WARNING, logger="letsencrypt.acme.client"):
        retried = client.new_order([Identifier.dns(n) for n in names], replaces=cert_id)
    assert retried.order.replaces is None and retried.url != successor.url
    assert any("refused replaces" in r.getMessage() for r in caplog.records)


def test_a_failed_replacement_does_not_block_the_next(ca_stub_server: Pebble, tmp_path: Path) -> None:
    client = registered(ca_stub_server)
    names = [Identifier.dns("ari-again.example.com")]
    download, _ = issue(client, ca_stub_server, ["ari-again.example.com"], ChallengeType.HTTP_01, tmp_path)
    cert_id = certificate_id(leaf_and_issuer(download.default)[0])
    failed = client.new_order(names, replaces=cert_id)
    assert failed.order.replaces == cert_id
    client.deactivate_authorization(failed.order.authorizations[0])  # the renewal gives up ...
    assert client.get_order(failed.url).order.status == OrderStatus.INVALID
    retried = client.new_order(names, replaces=cert_id)  # ... and the next one may replace the certificate
    assert retried.order.replaces == cert_id and retried.url != failed.url


def test_renewal_window_of_a_revoked_certificate_is_past(ca_stub_server: Pebble, tmp_path: Path) -> None:
    client = registered(ca_stub_server)
    download, _ = issue(client, ca_stub_server, ["ari-revoked.example.com"], ChallengeType.HTTP_01, tmp_path)
    leaf, _ = leaf_and_issuer(download.default)
    client.revoke(leaf, reason=4)
    info = client.renewal_info(leaf)
    assert info is not None
    now = datetime.datetime.now(datetime.UTC)
    assert info.info.start < info.info.end <= now


# --- terms of service -----------------------------------------------------------------------------


def test_changed_terms_require_agreement_again(ceremony: Path, tmp_path: Path) -> None:
    with fresh_ca(ceremony, tmp_path / "terms") as ca:
        client = registered(ca)
        terms_url = client.directory.meta.terms_of_service
        assert terms_url is not None
        terms_file = ca.data_dir / "terms.txt"
        served = requests.get(terms_url, verify=ca.ca_bundle, timeout=TIMEOUT)
        assert served.status_code == 200 and served.text == terms_file.read_text()
        client.new_order([Identifier.dns("terms.example.com")])

        terms_file.write_text(terms_file.read_text() + "\nRevised: certificates now come with a free pony.\n")
        assert "pony" in requests.get(terms_url, verify=ca.ca_bundle, timeout=TIMEOUT).text
        with pytest.raises(errors.UserActionRequired) as caught:
            client.new_order([Identifier.dns("terms.example.com")])
        assert caught.value.status == 403
        assert caught.value.problem.short_type == "userActionRequired"
        assert caught.value.terms_of_service == terms_url
        raw = signed_post(client, ca, client.directory.new_order,
                          {"identifiers": [{"type": "dns", "value": "terms.example.com"}]})
        assert raw.status_code == 403 and f'<{terms_url}>;rel="terms-of-service"' in raw.headers["Link"].replace(
            " ", "")

        client.update_account(terms_of_service_agreed=True)
        order = client.new_order([Identifier.dns("terms.example.com")])
        assert order.order.status == OrderStatus.PENDING


# --- revocation in OCSP and the CRL --------------------------------------------------------------


def _check_signature(issuer: x509.Certificate, signature: bytes, data: bytes, algorithm: Any) -> None:
    key = issuer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, data, padding.PKCS1v15(), algorithm)


def ocsp_url(leaf: x509.Certificate) -> str:
    access = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return next(str(d.access_location.value) for d in access if d.access_method == AuthorityInformationAccessOID.OCSP)


def ocsp_answer(leaf: x509.Certificate, issuer: x509.Certificate, ca: Server, method: str) -> ocsp.OCSPResponse:
    """Ask the responder named in the leaf's AIA, by POST or GET (RFC 6960 A.1); check the signature."""
    url = ocsp_url(leaf)
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()  # noqa: S303
    der = request.public_bytes(serialization.Encoding.DER)
    if method == "POST":
        response = requests.post(url, data=der, headers={"Content-Type": "application/ocsp-request"},
                                 verify=ca.ca_bundle, timeout=TIMEOUT)
    else:
        encoded = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
        response = requests.get(url.rstrip("/") + "/" + encoded, verify=ca.ca_bundle, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.serial_number == leaf.serial_number
    _check_signature(issuer, answer.signature, answer.tbs_response_bytes, answer.signature_hash_algorithm)
    return answer


def crl_entry(leaf: x509.Certificate, issuer: x509.Certificate, ca: Server) -> x509.RevokedCertificate | None:
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = next(str(name.value) for point in points for name in point.full_name or ())
    response = requests.get(url, verify=ca.ca_bundle, timeout=TIMEOUT)
    assert response.status_code == 200
    crl = x509.load_der_x509_crl(response.content)
    issuer_key = issuer.public_key()
    assert isinstance(issuer_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    assert crl.issuer == issuer.subject and crl.is_signature_valid(issuer_key)
    return crl.get_revoked_certificate_by_serial_number(leaf.serial_number)


def test_revocation_shows_in_ocsp_and_crl(ca_stub_server: Pebble, tmp_path: Path) -> None:
    client = registered(ca_stub_server)
    download, _ = issue(client, ca_stub_server, ["ocsp.example.com"], ChallengeType.HTTP_01, tmp_path)
    leaf, issuer = leaf_and_issuer(download.default)
    for method in ("POST", "GET"):
        assert ocsp_answer(leaf, issuer, ca_stub_server, method).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert crl_entry(leaf, issuer, ca_stub_server) is None

    client.revoke(leaf, reason=1)
    for method in ("POST", "GET"):
        answer = ocsp_answer(leaf, issuer, ca_stub_server, method)
        assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED, method
        assert answer.revocation_reason == x509.ReasonFlags.key_compromise, method
        assert answer.revocation_time_utc is not None
    entry = crl_entry(leaf, issuer, ca_stub_server)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    # and what openssl's own OCSP client makes of it (POST, response signature checked up to the root)
    for name, cert in (("leaf.pem", leaf), ("issuer.pem", issuer)):
        (tmp_path / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "root.pem").write_text(ca_stub_server.roots_pem(0))
    result = subprocess.run(
        [require_binary("openssl", "openssl"), "ocsp", "-issuer", tmp_path / "issuer.pem",
         "-cert", tmp_path / "leaf.pem", "-url", ocsp_url(leaf), "-CAfile", tmp_path / "root.pem",
         "-verify_other", tmp_path / "issuer.pem"],
        capture_output=True, text=True, check=False, timeout=30,
        env={**os.environ, "SSL_CERT_FILE": ca_stub_server.ca_bundle},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Response verify OK" in output, output
    assert "leaf.pem: revoked" in output and "keyCompromise" in output, output


# --- alternate chains -----------------------------------------------------------------------------


def test_alternate_chain_leads_to_root_x2(ca_stub_server: Pebble, tmp_path: Path) -> None:
    client = registered(ca_stub_server)
    download, _ = issue(client, ca_stub_server, ["chains.example.com"], ChallengeType.HTTP_01, tmp_path)
    assert len(download.chains) == 2
    x1, x2 = ca_stub_server.roots_pem(0), ca_stub_server.roots_pem(1)
    chosen = download.select("ca_stub Root X2")
    assert chosen == download.alternates[0]
    assert openssl_verifies(chosen, x2, tmp_path)[0]
    assert not openssl_verifies(chosen, x1, tmp_path)[0]
    # and the default chain the other way round
    assert download.select(None) == download.default
    assert openssl_verifies(download.default, x1, tmp_path)[0]
    assert not openssl_verifies(download.default, x2, tmp_path)[0]
    leaves = {crypto.split_pem_chain(chain)[0] for chain in download.chains}
    assert len(leaves) == 1  # one certificate, two ways to trust it


# --- persistence ----------------------------------------------------------------------------------


def test_restart_on_the_same_data_directory_keeps_everything(ceremony: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "persist"
    key = AccountKey.generate("ec256")
    with fresh_ca(ceremony, workdir) as ca:
        client = client_for(ca, key)
        account = client.register(terms_of_service_agreed=True)
        download, order = issue(client, ca, ["persist.example.com"], ChallengeType.HTTP_01, tmp_path)
        roots = (ca.roots_pem(0), ca.roots_pem(1))
        serial = format(crypto.split_pem_chain(download.default)[0].serial_number, "x")
    with fresh_ca(ceremony, workdir) as ca:
        client = client_for(ca, key)
        found = client.find_account()
        assert path_of(found.url) == path_of(account.url)
        again = client.get_order(moved(order.url, ca))
        assert again.order.status == OrderStatus.VALID
        assert again.order.identifiers == (Identifier.dns("persist.example.com"),)
        assert again.order.certificate is not None
        assert path_of(again.order.certificate) == path_of(order.order.certificate or "")
        downloaded = client.download_certificate(again)
        assert downloaded.default == download.default and downloaded.alternates == download.alternates
        assert (ca.roots_pem(0), ca.roots_pem(1)) == roots
        assert ca.certificate_status(serial)["Status"] == "Valid"
        client.new_order([Identifier.dns("persist.example.com")])  # and the account goes on


# --- Pebble's knobs -------------------------------------------------------------------------------


def test_half_the_nonces_rejected_and_the_client_still_succeeds(
    ceremony: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_ca(ceremony, tmp_path / "nonces", "--bad-nonce-rate", "50") as ca:
        with caplog.at_level(logging.DEBUG, logger="letsencrypt.acme.client"):
            client = registered(ca, bad_nonce_retries=40)  # 2^-41 per request to fail
            download, _ = issue(client, ca, ["nonces.example.com"], ChallengeType.HTTP_01, tmp_path)
            for _ in range(30):
                client.get_account()
        retries = [r for r in caplog.records if r.getMessage().startswith("badNonce from")]
        # some 40 signed requests at 50 %: about 40 retries; 5 or fewer has probability ~1e-8
        assert len(retries) > 5, f"only {len(retries)} badNonce answers at a 50 % rate"
        assert openssl_verifies(download.default, ca.roots_pem(0), tmp_path)[0]


def test_validation_delay(ceremony: Path, tmp_path: Path) -> None:
    names = [f"delay{i}.example.com" for i in range(8)]
    with fresh_ca(ceremony, tmp_path / "delay", "--validation-delay", "0.5") as ca:
        client = registered(ca)
        order = client.new_order([Identifier.dns(n) for n in names])
        handles = client.authorizations(order)
        picks = [(h, challenge_of(h, ChallengeType.HTTP_01)) for h in handles]
        bodies = {challenges.http01_path(c.token or ""):
                  challenges.http01_body(challenges.key_authorization(c.token or "", client.key)) for _, c in picks}
        answered: dict[str, datetime.datetime] = {}
        with http_responder(LOOPBACK, ca.http_port, bodies):
            for handle, challenge in picks:
                answered[handle.url] = datetime.datetime.now(datetime.UTC)
                client.answer_challenge(challenge)
            done = [client.wait_for_authorization(h.url, deadline=deadline()) for h, _ in picks]
    delays = []
    for handle in done:
        validated = challenge_of(handle, ChallengeType.HTTP_01).validated
        assert validated is not None
        delays.append((validated - answered[handle.url]).total_seconds())
    # each validation waits uniform(0, 0.5) s: all eight under 0.1 s has probability 0.2^8 < 3e-6
    assert max(delays) >= 0.1, delays
    assert all(0 <= d < 5 for d in delays), delays


def test_authorization_reuse_0_gives_fresh_authorizations(ceremony: Path, tmp_path: Path) -> None:
    with fresh_ca(ceremony, tmp_path / "reuse0", "--authorization-reuse", "0") as ca:
        client = registered(ca)
        first = client.new_order([Identifier.dns("reuse0.example.com")])
        solve(client, ca, first, ChallengeType.HTTP_01, tmp_path)
        assert client.wait_for_order(first.url, deadline=deadline()).order.status == OrderStatus.READY
        second = client.new_order([Identifier.dns("reuse0.example.com")])
        assert second.order.status == OrderStatus.PENDING
        assert set(second.order.authorizations).isdisjoint(first.order.authorizations)
        assert client.authorizations(second)[0].authorization.status == AuthorizationStatus.PENDING


def test_authorization_reuse_100_reuses_valid_authorizations(ca_stub_server: Pebble, tmp_path: Path) -> None:
    client = registered(ca_stub_server)  # the shared instance runs with the default, 100 %
    first = client.new_order([Identifier.dns("reuse100.example.com")])
    solve(client, ca_stub_server, first, ChallengeType.HTTP_01, tmp_path)
    second = client.new_order([Identifier.dns("reuse100.example.com")])
    assert second.order.authorizations == first.order.authorizations
    assert client.authorizations(second)[0].authorization.status == AuthorizationStatus.VALID
    assert second.order.status == OrderStatus.READY  # straight away: nothing left to validate


# --- Pebble's management API ---------------------------------------------------------------------


def test_pebble_management_api(ca_stub_server: Pebble, tmp_path: Path) -> None:
    root = x509.load_pem_x509_certificate(ca_stub_server.roots_pem(0).encode())
    intermediate = x509.load_pem_x509_certificate(ca_stub_server.intermediates_pem(0).encode())
    assert root.subject == root.issuer
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ca_stub Root X1"
    assert intermediate.issuer == root.subject
    intermediate.verify_directly_issued_by(root)

    client = registered(ca_stub_server)
    download, _ = issue(client, ca_stub_server, ["status.example.com"], ChallengeType.HTTP_01, tmp_path)
    leaf, _ = leaf_and_issuer(download.default)
    serial = format(leaf.serial_number, "x")

    def status() -> dict[str, Any]:
        response = requests.get(f"{ca_stub_server.management_url}/cert-status-by-serial/{serial}",
                                verify=ca_stub_server.ca_bundle, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        answer: dict[str, Any] = response.json()
        return answer

    valid = status()
    assert valid["Status"] == "Valid"
    assert x509.load_pem_x509_certificate(valid["Certificate"].encode()) == leaf
    client.revoke(leaf, reason=4)
    revoked = status()
    assert revoked["Status"] == "Revoked" and revoked["Reason"] == 4 and revoked["RevokedAt"]


# --- external account binding and the block list ------------------------------------------------


def test_external_account_binding(eab_ca_stub: Pebble) -> None:
    kid, hmac_key = next(iter(eab_ca_stub.eab_keys.items()))
    client = client_for(eab_ca_stub)
    assert client.directory.meta.external_account_required
    with pytest.raises(errors.ProblemError) as caught:
        client.register(terms_of_service_agreed=True)
    assert caught.value.problem.short_type == "externalAccountRequired"
    wrong = ExternalAccountBinding.from_base64url(kid, base64.urlsafe_b64encode(b"\x01" * 48).decode())
    with pytest.raises(errors.ProblemError) as caught:
        client.register(terms_of_service_agreed=True, external_account_binding=wrong)
    assert caught.value.problem.short_type == "unauthorized"
    binding = ExternalAccountBinding.from_base64url(kid, hmac_key)
    assert client.register(terms_of_service_agreed=True, external_account_binding=binding).created
    assert client.get_account().account.status == "valid"


def test_blocked_names_are_rejected_identifiers(legacy_ca: CAStub) -> None:
    client = registered(legacy_ca)
    with pytest.raises(errors.ProblemError) as caught:
        client.new_order([Identifier.dns("sub.blocked.example"), Identifier.dns("fine.example.com")])
    assert caught.value.problem.short_type == "rejectedIdentifier"
    assert [s.identifier for s in caught.value.subproblems] == [Identifier.dns("sub.blocked.example")]
    assert caught.value.subproblems[0].short_type == "rejectedIdentifier"
    assert "sub.blocked.example" in str(caught.value)
    # a name that merely ends in the same letters is not under the blocked domain
    assert client.new_order([Identifier.dns("notblocked.example")]).order.status == OrderStatus.PENDING
