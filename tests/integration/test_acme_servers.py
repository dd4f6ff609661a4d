"""The protocol library against a real Pebble and against ca_stub: every client operation, no mocks.

Both run with 5 % bad-nonce rejection on, so every test here also exercises the bounded
``badNonce`` retry. Challenges are served by real listeners: a small HTTP server for http-01,
a TLS server negotiating ``acme-tls/1`` for tls-alpn-01, and challtestsrv's DNS for dns-01.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from letsencrypt.acme import challenges, crypto, errors
from letsencrypt.acme.client import AcmeClient, ExternalAccountBinding, OrderHandle
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import (
    AccountStatus,
    AuthorizationStatus,
    ChallengeType,
    Identifier,
    OrderStatus,
)

from .pebble_harness import Pebble
from .responders import http01_responder, tls_alpn01_responder

pytestmark = pytest.mark.integration

DEADLINE = 60.0


# --- challenge responders -------------------------------------------------------------------


# --- helpers ----------------------------------------------------------------------------------


def make_client(pebble: Pebble, key: AccountKey | None = None) -> AcmeClient:
    return AcmeClient(pebble.directory_url, key or AccountKey.generate("ec256"), verify=pebble.ca_bundle)


def registered(pebble: Pebble, key_type: str = "ec256") -> AcmeClient:
    client = make_client(pebble, AccountKey.generate(key_type))  # type: ignore[arg-type]
    client.register(contact=["mailto:admin@example.com"], terms_of_service_agreed=True)
    return client


def solve_order(client: AcmeClient, order: OrderHandle, pebble: Pebble, kind: ChallengeType, tmp: Path) -> None:
    """Answer one challenge of ``kind`` per pending authorization of the order and wait for each."""
    authorizations = [a for a in client.authorizations(order) if a.authorization.status == AuthorizationStatus.PENDING]
    picks = []
    for handle in authorizations:
        challenge = next(c for c in handle.authorization.challenges if c.type == kind)
        picks.append((handle, challenge, challenges.key_authorization(challenge.token or "", client.key)))
    deadline = time.monotonic() + DEADLINE
    responder: contextlib.AbstractContextManager[object]
    if kind == ChallengeType.HTTP_01:
        bodies = {challenges.http01_path(c.token or ""): challenges.http01_body(ka) for _, c, ka in picks}
        responder = http01_responder(pebble.http_port, bodies)
    elif kind == ChallengeType.TLS_ALPN_01:
        certs = {
            challenges.tls_alpn01_sni(h.authorization.identifier): challenges.tls_alpn01_certificate(
                h.authorization.identifier, ka
            )
            for h, _, ka in picks
        }
        responder = tls_alpn01_responder(pebble.tls_port, certs, tmp)
    else:
        for handle, _, ka in picks:
            record = challenges.dns01_record_name(handle.authorization.identifier.value)
            pebble.set_txt(record, challenges.dns01_txt_value(ka))
        responder = contextlib.nullcontext()
    with responder:
        for _, challenge, _ in picks:
            client.answer_challenge(challenge)
        for handle, _, _ in picks:
            done = client.wait_for_authorization(handle.url, deadline=deadline)
            assert done.authorization.status == AuthorizationStatus.VALID


def issue(client: AcmeClient, pebble: Pebble, names: list[str], kind: ChallengeType, tmp: Path):
    identifiers = [Identifier.parse(name) for name in names]
    order = client.new_order(identifiers)
    assert order.order.status == OrderStatus.PENDING
    solve_order(client, order, pebble, kind, tmp)
    deadline = time.monotonic() + DEADLINE
    order = client.wait_for_order(order.url, deadline=deadline)
    key = crypto.generate_private_key("ec256")
    order = client.finalize(order, crypto.make_csr(key, identifiers), deadline=deadline)
    assert order.order.status == OrderStatus.VALID
    return client.download_certificate(order), key


def openssl_verify(chain_pem: str, root_pem: str, tmp: Path) -> None:
    certs = crypto.split_pem_chain(chain_pem)
    (tmp / "root.pem").write_text(root_pem)
    (tmp / "leaf.pem").write_bytes(certs[0].public_bytes(serialization.Encoding.PEM))
    (tmp / "untrusted.pem").write_text(crypto.pem_of(certs[1:]))
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", tmp / "root.pem", "-untrusted", tmp / "untrusted.pem", tmp / "leaf.pem"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["rsa2048", "ec256", "ec384"])
def test_register_read_update(acme_server: Pebble, key_type: str) -> None:
    client = make_client(acme_server, AccountKey.generate(key_type))  # type: ignore[arg-type]
    assert client.directory.meta.terms_of_service
    created = client.register(contact=["mailto:a@example.com"], terms_of_service_agreed=True)
    assert created.created and created.account.status == AccountStatus.VALID
    again = client.register(terms_of_service_agreed=True)
    assert not again.created and again.url == created.url
    found = make_client(acme_server, client.key).find_account()
    assert found.url == created.url
    updated = client.update_account(contact=["mailto:b@example.com"])
    assert updated.account.contact == ("mailto:b@example.com",)
    assert client.get_account().account.contact == ("mailto:b@example.com",)


def test_find_account_without_one(acme_server: Pebble) -> None:
    with pytest.raises(errors.AccountDoesNotExist) as caught:
        make_client(acme_server).find_account()
    assert caught.value.status == 400


def test_http01_two_names_verified_chain_and_revoke_by_account(acme_server: Pebble, tmp_path: Path) -> None:
    client = registered(acme_server)
    download, _ = issue(client, acme_server, ["a.example.com", "b.example.com"], ChallengeType.HTTP_01, tmp_path)
    leaf = crypto.split_pem_chain(download.default)[0]
    assert {i.value for i in crypto.certificate_names(leaf)} == {"a.example.com", "b.example.com"}
    openssl_verify(download.default, acme_server.roots_pem(), tmp_path)
    client.revoke(leaf, reason=4)
    with pytest.raises(errors.ProblemError) as caught:
        client.revoke(leaf, reason=4)
    assert caught.value.problem.short_type == "alreadyRevoked"


def test_tls_alpn01_and_revoke_by_certificate_key(acme_server: Pebble, tmp_path: Path) -> None:
    client = registered(acme_server)
    download, key = issue(client, acme_server, ["alpn.example.com"], ChallengeType.TLS_ALPN_01, tmp_path)
    leaf = crypto.split_pem_chain(download.default)[0]
    openssl_verify(download.default, acme_server.roots_pem(), tmp_path)
    stranger = make_client(acme_server)  # no account: the certificate key signs with jwk
    stranger.revoke(leaf, reason=1, certificate_key=key)
    with pytest.raises(errors.ProblemError) as caught:
        client.revoke(leaf)
    assert caught.value.problem.short_type == "alreadyRevoked"


def test_dns01_and_ip_identifier_via_http01(acme_server: Pebble, tmp_path: Path) -> None:
    client = registered(acme_server, "rsa2048")
    download, _ = issue(client, acme_server, ["dns.example.com"], ChallengeType.DNS_01, tmp_path)
    openssl_verify(download.default, acme_server.roots_pem(), tmp_path)
    download, _ = issue(client, acme_server, ["127.0.0.1"], ChallengeType.HTTP_01, tmp_path)
    leaf = crypto.split_pem_chain(download.default)[0]
    assert crypto.certificate_names(leaf) == (Identifier.ip("127.0.0.1"),)


def test_key_rollover_orders_list_and_deactivate(acme_server: Pebble, tmp_path: Path) -> None:
    client = registered(acme_server)
    old_key = client.key
    order = client.new_order([Identifier.dns("roll.example.com")])
    new_key = AccountKey.generate("ec384")
    client.change_key(new_key)
    assert client.key is new_key
    assert make_client(acme_server, new_key).find_account().url == client.account_url
    with pytest.raises(errors.AccountDoesNotExist):
        make_client(acme_server, old_key).find_account()
    assert order.url in list(client.list_orders())
    # authorization deactivation, then account deactivation
    authz = client.authorizations(order)[0]
    assert client.deactivate_authorization(authz.url).authorization.status == AuthorizationStatus.DEACTIVATED
    assert client.deactivate_account().account.status == AccountStatus.DEACTIVATED
    with pytest.raises(errors.ProblemError) as caught:
        client.get_account()
    assert caught.value.problem.short_type == "unauthorized"


def test_orders_list_follows_next_links(acme_server: Pebble) -> None:
    client = registered(acme_server)
    urls = {client.new_order([Identifier.dns(f"page{i}.example.com")]).url for i in range(7)}
    assert urls <= set(client.list_orders())  # Pebble pages orders three at a time


def test_failed_challenge_is_a_typed_error(acme_server: Pebble) -> None:
    client = registered(acme_server)
    order = client.new_order([Identifier.dns("nothing-listens.example.com")])
    authz = client.authorizations(order)[0]
    challenge = next(c for c in authz.authorization.challenges if c.type == ChallengeType.HTTP_01)
    client.answer_challenge(challenge)
    with pytest.raises(errors.ResourceFailed) as caught:
        client.wait_for_authorization(authz.url, deadline=time.monotonic() + DEADLINE)
    assert caught.value.problem is not None and caught.value.problem.short_type == "connection"
    assert "nothing-listens.example.com" in str(caught.value)


def test_finalize_with_wrong_names_is_bad_csr(acme_server: Pebble, tmp_path: Path) -> None:
    client = registered(acme_server)
    identifiers = [Identifier.dns("csr.example.com")]
    order = client.new_order(identifiers)
    solve_order(client, order, acme_server, ChallengeType.HTTP_01, tmp_path)
    order = client.wait_for_order(order.url, deadline=time.monotonic() + DEADLINE)
    csr = crypto.make_csr(crypto.generate_private_key("ec256"), [Identifier.dns("other.example.com")])
    with pytest.raises(errors.ProblemError) as caught:
        client.finalize(order, csr, deadline=time.monotonic() + DEADLINE)
    assert caught.value.problem.short_type in ("badCSR", "unauthorized")


def test_external_account_binding(eab_acme_server: Pebble) -> None:
    client = make_client(eab_acme_server)
    assert client.directory.meta.external_account_required
    with pytest.raises(errors.ProblemError) as caught:
        client.register(terms_of_service_agreed=True)
    assert caught.value.problem.short_type == "externalAccountRequired"
    kid, hmac_key = next(iter(eab_acme_server.eab_keys.items()))
    binding = ExternalAccountBinding.from_base64url(kid, hmac_key)
    assert client.register(terms_of_service_agreed=True, external_account_binding=binding).created
    wrong = ExternalAccountBinding.from_base64url(kid, "A" * 64)
    with pytest.raises(errors.ProblemError):
        make_client(eab_acme_server).register(terms_of_service_agreed=True, external_account_binding=wrong)


@pytest.mark.parametrize("env_bundle", [True, False])
def test_trust_anchor_wins_over_environment(
    acme_server: Pebble, monkeypatch: pytest.MonkeyPatch, env_bundle: bool
) -> None:
    """REQUESTS_CA_BUNDLE and friends must not replace the CA's own trust anchor, set or unset."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        if env_bundle:
            monkeypatch.setenv(name, "/etc/ssl/certs/ca-certificates.crt")
        else:
            monkeypatch.delenv(name, raising=False)
    assert make_client(acme_server).directory.new_order.startswith("https://127.0.0.1")


def test_untrusted_server_is_a_network_error(acme_server: Pebble) -> None:
    client = AcmeClient(acme_server.directory_url, AccountKey.generate(), verify=True)
    with pytest.raises(errors.NetworkError) as caught:
        client.directory  # noqa: B018
    assert acme_server.directory_url in str(caught.value)


def test_many_signed_requests_survive_bad_nonces(acme_server: Pebble) -> None:
    """60 signed requests at Pebble's 5 % bad-nonce rate: some are rejected, none fail."""
    client = registered(acme_server)
    for _ in range(60):
        client.get_account()
