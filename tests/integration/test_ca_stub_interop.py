"""Real clients accept ca_stub: certbot (PyPI, its own virtualenv) and lego (Debian) on loopback.

One ca_stub process serves the module (``run_ca_stub``: every name resolves to 127.0.0.1, the VA
validates on ``ca.http_port`` / ``ca.tls_port``). The clients trust the API through its anchor
(``REQUESTS_CA_BUNDLE`` for certbot, ``LEGO_CA_CERTIFICATES`` for lego), never by turning checks
off. Every chain a client saved is checked with ``openssl verify`` against the ceremony's root;
revocation is checked in the management API and with ``openssl ocsp`` against the responder URL
the certificate names. Each test uses names of its own: the CA reuses valid authorizations.

"A certificate must never be issued for a name whose challenge was not really served": the
clients answer challenges on a port the CA does not validate on, and a protocol-level client
answers challenges it does not (or wrongly) serves; each time the authorization ends invalid,
finalization is refused, and the CA's database holds no certificate for the name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt.acme import challenges, crypto, errors
from letsencrypt.acme.client import AcmeClient, OrderHandle
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import AuthorizationStatus, Challenge, ChallengeType, Identifier, OrderStatus
from letsencrypt.testing import CAStub, run_ca_stub

from ._procs import free_port
from .peers import (
    Certbot,
    Lego,
    assert_does_not_verify,
    assert_verifies,
    authorization_rows,
    common_name,
    dns_names,
    issued_names,
    load_chain,
    ocsp_post,
    openssl_ocsp,
    require_certbot,
    require_lego,
    serial_of,
    webroot_server,
)
from .responders import http01_responder

pytestmark = pytest.mark.integration

DEADLINE = 30.0
ROOT_X1, ROOT_X2 = "ca_stub Root X1", "ca_stub Root X2"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CAStub]:
    with run_ca_stub(tmp_path_factory.mktemp("interop-ca")) as instance:
        yield instance


@pytest.fixture(scope="module")
def certbot(ca: CAStub, tmp_path_factory: pytest.TempPathFactory) -> Certbot:
    """certbot with an account registered at ``ca`` (``certbot register``)."""
    client = Certbot(require_certbot(), ca, tmp_path_factory.mktemp("certbot"))
    result = client.register()
    assert "Account registered" in result.stdout + result.stderr
    return client


@pytest.fixture(scope="module")
def lego(ca: CAStub, tmp_path_factory: pytest.TempPathFactory) -> Lego:
    return Lego(require_lego(), ca, tmp_path_factory.mktemp("lego"))


def assert_nothing_issued(ca: CAStub, name: str) -> None:
    """The CA's database has no certificate for ``name``, and every authorization for it is invalid."""
    assert name not in issued_names(ca.data_dir)
    rows = authorization_rows(ca.data_dir, name)
    assert rows, f"the CA never saw an authorization for {name}"
    assert all(row["status"] == "invalid" for row in rows), rows


# --- certbot ------------------------------------------------------------------------------------


def test_certbot_account_is_on_ca_stub(certbot: Certbot, ca: CAStub) -> None:
    result = certbot.run("show_account")
    assert "Account URL: " + ca.directory_url.removesuffix("/directory") in result.stdout, result.stdout
    assert certbot.email in result.stdout


def test_certbot_standalone_renew_and_revoke(certbot: Certbot, ca: CAStub, tmp_path: Path) -> None:
    names = ["a.example.com", "b.example.com"]
    certbot.certonly("--standalone", "--http-01-port", str(ca.http_port), "--http-01-address", "127.0.0.1",
                     "-d", names[0], "-d", names[1])
    live = certbot.live(names[0])
    first = load_chain(live / "fullchain.pem")
    assert dns_names(first[0]) == set(names)
    assert common_name(first[-1].issuer) == ROOT_X1
    assert_verifies(first, ca.roots_pem(0), tmp_path / "first")
    assert ca.certificate_status(serial_of(first[0]))["Status"] == "Valid"

    # renew reads the standalone options from the renewal configuration, not from the command line
    conf = certbot.renewal_conf(names[0]).read_text()
    assert f"http01_port = {ca.http_port}" in conf and "http01_address = 127.0.0.1" in conf, conf
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew", "--cert-name", names[0])
    renewed = load_chain(live / "fullchain.pem")
    assert serial_of(renewed[0]) != serial_of(first[0])
    assert dns_names(renewed[0]) == set(names)
    assert_verifies(renewed, ca.roots_pem(0), tmp_path / "renewed")
    assert (certbot.config_dir / "archive" / names[0] / "cert2.pem").exists()

    certbot.run("revoke", "--cert-path", str(live / "cert.pem"), "--reason", "keycompromise",
                "--no-delete-after-revoke")
    status = ca.certificate_status(serial_of(renewed[0]))
    assert status["Status"] == "Revoked" and status["Reason"] == 1, status
    assert ca.certificate_status(serial_of(first[0]))["Status"] == "Valid"

    leaf, issuer = renewed[0], renewed[1]
    answer = openssl_ocsp(leaf, issuer, ca.roots_pem(0), tmp_path / "ocsp")
    assert (answer.status, answer.reason) == ("revoked", "keyCompromise"), answer.output
    posted = ocsp_post(leaf, issuer, verify=ca.ca_bundle)
    assert posted.certificate_status.name == "REVOKED"
    assert posted.revocation_reason is not None and posted.revocation_reason.name == "key_compromise"
    assert openssl_ocsp(first[0], first[1], ca.roots_pem(0), tmp_path / "ocsp-first").status == "good"


def test_certbot_webroot_rsa(certbot: Certbot, ca: CAStub, tmp_path: Path) -> None:
    webroot = tmp_path / "www"
    webroot.mkdir()
    name = "webroot.example.com"
    with webroot_server(ca.http_port, webroot) as served:
        certbot.certonly("--webroot", "-w", str(webroot), "-d", name, "--key-type", "rsa", "--rsa-key-size", "2048")
    assert any(path.startswith("/.well-known/acme-challenge/") for path in served), served
    chain = load_chain(certbot.live(name) / "fullchain.pem")
    assert dns_names(chain[0]) == {name}
    assert common_name(chain[0].issuer) == "ca_stub R1"  # RSA leaves come from the RSA intermediate
    assert_verifies(chain, ca.roots_pem(0), tmp_path / "verify")


def test_certbot_preferred_chain_gets_the_alternate_hierarchy(certbot: Certbot, ca: CAStub, tmp_path: Path) -> None:
    name = "x2.example.com"
    certbot.certonly("--standalone", "--http-01-port", str(ca.http_port), "--http-01-address", "127.0.0.1",
                     "-d", name, "--preferred-chain", ROOT_X2)
    chain = load_chain(certbot.live(name) / "fullchain.pem")
    assert common_name(chain[-1].issuer) == ROOT_X2
    assert_verifies(chain, ca.roots_pem(1), tmp_path / "x2")
    assert_does_not_verify(chain, ca.roots_pem(0), tmp_path / "x1")


def test_certbot_challenge_on_the_wrong_port_gets_no_certificate(certbot: Certbot, ca: CAStub) -> None:
    name = "unserved-certbot.example.com"
    elsewhere = free_port()  # certbot really serves the challenge, but not where the CA looks
    result = certbot.certonly("--standalone", "--http-01-port", str(elsewhere), "--http-01-address", "127.0.0.1",
                              "-d", name, check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    assert not certbot.live(name).exists()
    assert_nothing_issued(ca, name)
    (row,) = authorization_rows(ca.data_dir, name)
    (failed,) = [c for c in row["challenges"] if c["status"] == "invalid"]
    assert failed["type"] == "http-01" and str(ca.http_port) in failed["error"]["detail"], failed


# --- lego ---------------------------------------------------------------------------------------


def test_lego_http01_renew_and_revoke(lego: Lego, ca: CAStub, tmp_path: Path) -> None:
    name = "c.example.com"
    http = ("--domains", name, "--http", "--http.port", f"127.0.0.1:{ca.http_port}")
    lego.run(*http, "run")
    first = load_chain(lego.crt(name))
    assert dns_names(first[0]) == {name}
    assert_verifies(first, ca.roots_pem(0), tmp_path / "first")

    lego.run(*http, "renew", "--days", "999", "--no-random-sleep")
    renewed = load_chain(lego.crt(name))
    assert serial_of(renewed[0]) != serial_of(first[0])
    assert_verifies(renewed, ca.roots_pem(0), tmp_path / "renewed")
    assert ca.certificate_status(serial_of(renewed[0]))["Status"] == "Valid"

    lego.run("--domains", name, "revoke", "--reason", "4")
    status = ca.certificate_status(serial_of(renewed[0]))
    assert status["Status"] == "Revoked" and status["Reason"] == 4, status
    assert openssl_ocsp(renewed[0], renewed[1], ca.roots_pem(0), tmp_path / "ocsp").status == "revoked"


def test_lego_tls_alpn01_and_alternate_chain(lego: Lego, ca: CAStub, tmp_path: Path) -> None:
    name = "alpn.example.com"
    tls = ("--domains", name, "--tls", "--tls.port", f"127.0.0.1:{ca.tls_port}")
    result = lego.run(*tls, "run")
    assert "TLS-ALPN-01" in result.stderr, result.stderr
    rows = authorization_rows(ca.data_dir, name)
    assert [c["type"] for row in rows for c in row["challenges"] if c["status"] == "valid"] == ["tls-alpn-01"]
    chain = load_chain(lego.crt(name))
    assert dns_names(chain[0]) == {name}
    assert_verifies(chain, ca.roots_pem(0), tmp_path / "x1")

    lego.run(*tls, "run", "--preferred-chain", ROOT_X2)  # the valid authorization is reused
    alternate = load_chain(lego.crt(name))
    assert common_name(alternate[-1].issuer) == ROOT_X2
    assert_verifies(alternate, ca.roots_pem(1), tmp_path / "x2")
    assert_does_not_verify(alternate, ca.roots_pem(0), tmp_path / "x2-under-x1")


def test_lego_challenge_on_the_wrong_port_gets_no_certificate(lego: Lego, ca: CAStub) -> None:
    name = "unserved-lego.example.com"
    result = lego.run("--domains", name, "--http", "--http.port", f"127.0.0.1:{free_port()}", "run", check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    assert not lego.crt(name).exists()
    assert_nothing_issued(ca, name)


# --- the protocol, without a client's help ------------------------------------------------------


def _registered(ca: CAStub) -> AcmeClient:
    client = AcmeClient(ca.directory_url, AccountKey.generate("ec256"), verify=ca.ca_bundle)
    client.register(contact=["mailto:proto@example.com"], terms_of_service_agreed=True)
    return client


def _http01(client: AcmeClient, order: OrderHandle) -> tuple[str, Challenge]:
    (handle,) = client.authorizations(order)
    challenge = next(c for c in handle.authorization.challenges if c.type == ChallengeType.HTTP_01)
    return handle.url, challenge


def _finalize_refused(client: AcmeClient, order: OrderHandle, name: str) -> None:
    csr = crypto.make_csr(crypto.generate_private_key("ec256"), [Identifier.parse(name)])
    with pytest.raises(errors.ProblemError) as caught:
        client.finalize(order, csr, deadline=time.monotonic() + DEADLINE)
    assert caught.value.problem.short_type == "orderNotReady", caught.value
    assert caught.value.status == 403


def test_finalize_before_any_challenge_is_refused(ca: CAStub) -> None:
    client = _registered(ca)
    name = "early.example.com"
    order = client.new_order([Identifier.parse(name)])
    _finalize_refused(client, order, name)
    assert client.get_order(order.url).order.status == OrderStatus.PENDING
    assert name not in issued_names(ca.data_dir)


def test_answered_but_unserved_challenge_is_invalid_and_finalize_refused(ca: CAStub) -> None:
    client = _registered(ca)
    name = "unserved-proto.example.com"
    order = client.new_order([Identifier.parse(name)])
    authz_url, challenge = _http01(client, order)
    client.answer_challenge(challenge)  # "ready", with nothing listening on ca.http_port
    with pytest.raises(errors.ResourceFailed) as caught:
        client.wait_for_authorization(authz_url, deadline=time.monotonic() + DEADLINE)
    assert caught.value.problem is not None and caught.value.problem.short_type == "connection", caught.value
    assert client.get_authorization(authz_url).authorization.status == AuthorizationStatus.INVALID
    assert client.get_order(order.url).order.status == OrderStatus.INVALID
    _finalize_refused(client, order, name)
    assert_nothing_issued(ca, name)


def test_challenge_served_for_another_account_key_is_invalid(ca: CAStub) -> None:
    client = _registered(ca)
    name = "wrong-key.example.com"
    order = client.new_order([Identifier.parse(name)])
    authz_url, challenge = _http01(client, order)
    token = challenge.token or ""
    impostor = challenges.key_authorization(token, AccountKey.generate("ec256"))
    with http01_responder(ca.http_port, {challenges.http01_path(token): challenges.http01_body(impostor)}):
        client.answer_challenge(challenge)
        with pytest.raises(errors.ResourceFailed) as caught:
            client.wait_for_authorization(authz_url, deadline=time.monotonic() + DEADLINE)
    problem = caught.value.problem
    assert problem is not None and problem.short_type in ("incorrectResponse", "unauthorized"), caught.value
    _finalize_refused(client, order, name)
    assert_nothing_issued(ca, name)
