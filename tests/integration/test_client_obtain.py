"""End to end: the ``letsencrypt`` commands a user types, as subprocesses, against ca_stub and Pebble.

Each authenticator obtains a certificate (standalone http-01 and tls-alpn-01, webroot with two
roots, manual dns-01 and http-01 through hook scripts); the lineage it leaves is checked with
``openssl verify`` against the CA's root, and its renewal configuration must hold what renewing
needs. Then ``renew`` (not due, forced with hooks, dry run, with only the saved plugin options,
one lineage failing), expanding names, the flags ``-n`` asks for, EAB, changed terms, the CA trust
anchor, and the lock.

The two CAs here are started for this module with authorization reuse off (Pebble's
``PEBBLE_AUTHZREUSE=0``, ca_stub's ``--authorization-reuse 0``), so every renewal really solves its
challenges again: that is what proves the saved plugin options work. A third ca_stub speaks the
legacy challenges; the terms test edits its terms (accounts registered after that agree to the new
ones, so the legacy test does not care which runs first).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from integration._procs import require_binary
from integration.ca_stub_harness import start_ca_stub
from integration.client_harness import ClientRunner, describe, lineage_version, served_roots
from integration.pebble_harness import CHALLTESTSRV, EAB_KEYS, PEBBLE, Pebble, start_pebble
from letsencrypt.paths import Paths
from letsencrypt.storage.lock import ConfigLock
from letsencrypt.testing import CAStub, run_ca_stub

A, B = "a.example.com", "b.example.com"


# --- CAs ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fresh_pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """Pebble that never reuses an authorization, so renewals solve challenges again."""
    require_binary(PEBBLE, "pebble")
    require_binary(CHALLTESTSRV, "pebble")
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:  # start_pebble passes os.environ to Pebble
            patch.setenv("PEBBLE_AUTHZREUSE", "0")
            pebble = stack.enter_context(start_pebble(tmp_path_factory.mktemp("client-pebble")))
        yield pebble


@pytest.fixture(scope="session")
def fresh_ca_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """ca_stub (5 % bad nonces, challtestsrv as DNS) that never reuses an authorization."""
    require_binary(CHALLTESTSRV, "pebble")
    with start_ca_stub(tmp_path_factory.mktemp("client-ca_stub"),
                       extra_args=("--authorization-reuse", "0")) as instance:
        yield instance


@pytest.fixture(scope="session")
def legacy_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CAStub]:
    """ca_stub offering the 2015 draft's dvsni and simpleHttps too; the terms test edits its terms."""
    with run_ca_stub(tmp_path_factory.mktemp("client-legacy"), extra_args=["--legacy-challenges"]) as instance:
        yield instance


@pytest.fixture(params=["pebble", "ca_stub"])
def ca(request: pytest.FixtureRequest) -> Pebble:
    server: Pebble = request.getfixturevalue("fresh_pebble" if request.param == "pebble" else "fresh_ca_stub")
    return server


@pytest.fixture
def client(tmp_path: Path, ca: Pebble) -> ClientRunner:
    return ClientRunner(tmp_path, ca)


def ok(result: object) -> None:
    assert getattr(result, "returncode", None) == 0, describe(result)  # type: ignore[arg-type]


def standalone(runner: ClientRunner, *names: str, extra: tuple[str, ...] = ()) -> list[str]:
    """certonly --standalone http-01 arguments for ``names`` on the CA's http-01 port."""
    args = ["certonly", "--standalone", "--http-01-port", str(runner.ca.http_port), "--http-01-address", "127.0.0.1"]
    for name in names:
        args += ["-d", name]
    return [*args, *extra]


def script(path: Path, body: str) -> str:
    """An executable Python script at ``path``; returns the shell command that runs it."""
    path.write_text(f"#!{sys.executable}\nimport json, os, sys, urllib.request\n{body}")
    path.chmod(0o755)
    return shlex.quote(str(path))


def dns_hooks(folder: Path, challtestsrv_url: str, log: Path) -> tuple[str, str]:
    """certbot-style dns-01 auth and cleanup hooks publishing through challtestsrv."""
    post = ("def post(path, body):\n"
            f"    request = urllib.request.Request({challtestsrv_url!r} + path, data=json.dumps(body).encode(),"
            " method='POST')\n"
            "    urllib.request.urlopen(request, timeout=10).read()\n"
            "host = '_acme-challenge.' + os.environ['CERTBOT_DOMAIN'] + '.'\n"
            f"log = open({str(log)!r}, 'a')\n")
    auth = script(folder / "dns-auth.py",
                  post + "post('/set-txt', {'host': host, 'value': os.environ['CERTBOT_VALIDATION']})\n"
                  "log.write('auth ' + os.environ['CERTBOT_DOMAIN'] + '\\n')\n")
    cleanup = script(folder / "dns-cleanup.py", post + "post('/clear-txt', {'host': host})\n"
                     "log.write('cleanup ' + os.environ['CERTBOT_DOMAIN'] + '\\n')\n")
    return auth, cleanup


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# --- each authenticator ---------------------------------------------------------------------------------


def test_standalone_http01(client: ClientRunner) -> None:
    # -X importtime's report (stderr) shows a new certificate is had without cryptography.x509 (the
    # CSR and the checks of what the CA sent are DER in letsencrypt.acme._der): 25-45 ms of every run
    result = client.run(*standalone(client, A, B), env={"PYTHONPROFILEIMPORTTIME": "1"})
    ok(result)
    imported = {line.rsplit("|", 1)[-1].strip()
                for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "letsencrypt.acme.client" in imported and "cryptography.x509" not in imported
    client.check_lineage(A, [A, B])
    config = client.renewal_config(A)
    assert (config.authenticator, config.http01_port, config.http01_address) == (
        "standalone", client.ca.http_port, "127.0.0.1")


def test_standalone_tls_alpn01(client: ClientRunner) -> None:
    ok(client.run("certonly", "--standalone", "--preferred-challenges", "tls-alpn-01",
                  "--https-port", str(client.ca.tls_port), "-d", A))
    client.check_lineage(A, [A])
    config = client.renewal_config(A)
    assert (config.authenticator, config.https_port, config.preferred_challenges) == (
        "standalone", client.ca.tls_port, ("tls-alpn-01",))


def test_webroot_two_roots(client: ClientRunner, tmp_path: Path) -> None:
    roots = {A: tmp_path / "www-a", B: tmp_path / "www-b"}
    for root in roots.values():
        root.mkdir()
    with served_roots(client.ca.http_port, roots) as server:
        ok(client.run("certonly", "--webroot", "-w", str(roots[A]), "-d", A, "-w", str(roots[B]), "-d", B))
    client.check_lineage(A, [A, B])
    assert {host for host, path in server.requests if path.startswith("/.well-known/acme-challenge/")} == {A, B}
    for root in roots.values():
        assert list(root.iterdir()) == [], f"the webroot plugin left {list(root.rglob('*'))}"
    config = client.renewal_config(A)
    assert config.authenticator == "webroot"
    assert dict(config.webroot_map) == {A: str(roots[A]), B: str(roots[B])}


def test_manual_dns01_hooks(client: ClientRunner, ca: Pebble, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    auth, cleanup = dns_hooks(tmp_path, ca.challtestsrv_url, log)
    ok(client.run("certonly", "--manual", "--preferred-challenges", "dns", "--manual-auth-hook", auth,
                  "--manual-cleanup-hook", cleanup, "-d", A, "-d", B))
    client.check_lineage(A, [A, B])
    assert sorted(log_lines(log)) == [f"auth {A}", f"auth {B}", f"cleanup {A}", f"cleanup {B}"]
    config = client.renewal_config(A)
    assert config.authenticator == "manual"
    assert config.preferred_challenges == ("dns-01",)
    assert dict(config.plugin_options["manual"]) == {"auth-hook": auth, "cleanup-hook": cleanup}


def test_manual_http01_hooks(client: ClientRunner, tmp_path: Path) -> None:
    served = tmp_path / "served"
    challenge_dir = served / ".well-known" / "acme-challenge"
    challenge_dir.mkdir(parents=True)
    auth = script(tmp_path / "http-auth.py",
                  f"open(os.path.join({str(challenge_dir)!r}, os.environ['CERTBOT_TOKEN']), 'w')"
                  ".write(os.environ['CERTBOT_VALIDATION'])\n")
    cleanup = script(tmp_path / "http-cleanup.py",
                     f"os.remove(os.path.join({str(challenge_dir)!r}, os.environ['CERTBOT_TOKEN']))\n")
    with served_roots(client.ca.http_port, {"*": served}) as server:
        ok(client.run("certonly", "--manual", "--preferred-challenges", "http-01", "--manual-auth-hook", auth,
                      "--manual-cleanup-hook", cleanup, "-d", A))
    client.check_lineage(A, [A])
    assert any(host == A for host, _ in server.requests)
    assert list(challenge_dir.iterdir()) == []
    config = client.renewal_config(A)
    assert config.authenticator == "manual"
    assert dict(config.plugin_options["manual"]) == {"auth-hook": auth, "cleanup-hook": cleanup}


def test_key_types(client: ClientRunner) -> None:
    ok(client.run(*standalone(client, A, extra=("--key-type", "rsa", "--rsa-key-size", "3072"))))
    key = client.check_lineage(A).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072
    config = client.renewal_config(A)
    assert (config.key_type, config.rsa_key_size) == ("rsa", 3072)

    ok(client.run(*standalone(client, B, extra=("--elliptic-curve", "secp384r1"))))
    key = client.check_lineage(B).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    assert client.renewal_config(B).elliptic_curve == "secp384r1"


@pytest.mark.parametrize("challenge", ["dvsni", "simpleHttps"])
def test_legacy_challenges(legacy_ca: CAStub, tmp_path: Path, challenge: str) -> None:
    client = ClientRunner(tmp_path, legacy_ca)
    result = client.run("certonly", "--standalone", "--preferred-challenges", challenge,
                        "--https-port", str(legacy_ca.tls_port), "-d", A, "-v")
    ok(result)
    assert f"{A} ({challenge})" in result.stderr  # -v shows which challenge was solved
    client.check_lineage(A, [A])


# --- renew ----------------------------------------------------------------------------------------------


def test_renew_not_due(client: ClientRunner) -> None:
    ok(client.run(*standalone(client, A)))
    before = (client.live(A) / "cert.pem").read_bytes()
    result = client.run("renew")
    ok(result)
    assert "Not due" in result.stdout
    assert (client.live(A) / "cert.pem").read_bytes() == before


def test_renew_forced_runs_hooks_once(client: ClientRunner, tmp_path: Path) -> None:
    ok(client.run(*standalone(client, A)))
    ok(client.run(*standalone(client, B)))
    log = tmp_path / "hooks.log"
    for kind in ("pre", "deploy", "post"):
        folder = client.config_dir / "renewal-hooks" / kind
        folder.mkdir(parents=True, exist_ok=True)
        hook = folder / "10-log"
        hook.write_text(f'#!/bin/sh\necho "dir-{kind} $RENEWED_LINEAGE|$RENEWED_DOMAINS" >> {shlex.quote(str(log))}\n')
        hook.chmod(0o755)
    quoted = shlex.quote(str(log))
    result = client.run("renew", "--force-renewal", "--pre-hook", f"echo pre >> {quoted}",
                        "--deploy-hook", f'echo "deploy $RENEWED_LINEAGE|$RENEWED_DOMAINS" >> {quoted}',
                        "--post-hook", f'echo "post $RENEWED_DOMAINS" >> {quoted}')
    ok(result)
    for name in (A, B):
        client.check_lineage(name, [name])
        assert lineage_version(client.live(name)) == 2
        assert {f"cert{n}.pem" for n in (1, 2)} <= client.archive_files(name)
    lines = log_lines(log)
    assert sorted(line for line in lines if "pre" in line.split()[0]) == ["dir-pre |", "pre"]
    deploys = sorted(line for line in lines if line.startswith(("deploy", "dir-deploy")))
    assert deploys == sorted(f"{kind} {client.live(name)}|{name}" for kind in ("deploy", "dir-deploy")
                             for name in (A, B))
    posts = [line for line in lines if line.startswith(("post", "dir-post"))]
    assert len(posts) == 2, lines
    for line in posts:
        assert set(line.split(" ", 1)[1].strip("|").split()) == {A, B}, line
    assert lines.index("pre") < min(lines.index(line) for line in deploys) < lines.index(posts[0])


def test_renew_dry_run_touches_nothing(client: ClientRunner) -> None:
    ok(client.run(*standalone(client, A)))
    archive = client.archive_files(A)
    live = {kind: (client.live(A) / f"{kind}.pem").read_bytes() for kind in ("cert", "privkey")}
    result = client.run("renew", "--dry-run")
    ok(result)
    assert "dry run" in result.stdout
    assert client.archive_files(A) == archive
    assert {kind: (client.live(A) / f"{kind}.pem").read_bytes() for kind in ("cert", "privkey")} == live
    assert lineage_version(client.live(A)) == 1


# Pebble reuses a valid authorization now and then even with PEBBLE_AUTHZREUSE=0: it keeps one when
# rand.Intn(100) > percent is false, i.e. 1 % of the time (wfe.go). A renewal that must have solved a
# challenge is therefore tried again (at most twice more) when the CA let it skip the challenge.
REUSE_RETRIES = 2


def test_renew_with_saved_plugin_options_and_a_failing_lineage(client: ClientRunner, ca: Pebble,
                                                               tmp_path: Path) -> None:
    """Renewal uses only what was saved (webroot map, manual hooks, ports); one failure spares the other."""
    webroot = tmp_path / "www"
    webroot.mkdir()
    log = tmp_path / "dns.log"
    auth, cleanup = dns_hooks(tmp_path, ca.challtestsrv_url, log)
    with served_roots(ca.http_port, {A: webroot}) as server:
        ok(client.run("certonly", "--webroot", "-w", str(webroot), "-d", A))
        ok(client.run("certonly", "--manual", "--preferred-challenges", "dns", "--manual-auth-hook", auth,
                      "--manual-cleanup-hook", cleanup, "-d", B))
        renewals = 0
        for _ in range(1 + REUSE_RETRIES):
            served_before, hooks_before = len(server.requests), len(log_lines(log))
            ok(client.run("renew", "--force-renewal"))
            renewals += 1
            if len(server.requests) > served_before and len(log_lines(log)) > hooks_before:
                break  # both lineages solved their challenge from what was saved
        assert len(server.requests) > served_before, "the renewal did not answer http-01 from the saved webroot"
        assert log_lines(log)[hooks_before:] == [f"auth {B}", f"cleanup {B}"], "the saved manual hooks did not run"
    assert set(log_lines(log)) == {f"auth {B}", f"cleanup {B}"}
    for name in (A, B):
        client.check_lineage(name, [name])
        assert lineage_version(client.live(name)) == 1 + renewals

    for _ in range(1 + REUSE_RETRIES):  # nothing serves the webroot any more
        result = client.run("renew", "--force-renewal")
        renewals += 1
        if result.returncode != 0:
            break
    assert result.returncode != 0, describe(result)
    assert A in result.stderr and f"renewing {B}" not in result.stderr, describe(result)
    assert lineage_version(client.live(A)) == renewals
    assert lineage_version(client.live(B)) == 1 + renewals
    client.check_lineage(A, [A])
    client.check_lineage(B, [B])


# --- choosing the lineage, and what -n needs --------------------------------------------------------------


def test_expand_needs_the_flag_and_keeps_the_lineage(client: ClientRunner) -> None:
    ok(client.run(*standalone(client, A)))
    refused = client.run(*standalone(client, A, B))
    assert refused.returncode != 0, describe(refused)
    assert "--expand" in refused.stderr, describe(refused)
    sibling = f"{A}-0001"
    assert not client.live(sibling).exists() and not client.renewal_conf_path(sibling).exists()
    ok(client.run(*standalone(client, A, B, extra=("--expand",))))
    client.check_lineage(A, [A, B])
    assert lineage_version(client.live(A)) == 2
    assert sorted(path.name for path in (client.config_dir / "renewal").iterdir()) == [f"{A}.conf"]


def test_non_interactive_names_missing_flags(client: ClientRunner) -> None:
    no_email = client.run(*standalone(client, A), email=None)
    assert no_email.returncode != 0, describe(no_email)
    assert "-m" in no_email.stderr and "--register-unsafely-without-email" in no_email.stderr, describe(no_email)
    no_tos = client.run(*standalone(client, A), agree=False)
    assert no_tos.returncode != 0, describe(no_tos)
    assert "--agree-tos" in no_tos.stderr, describe(no_tos)
    assert not client.live(A).exists()


@pytest.mark.parametrize("with_kid", [False, True], ids=["without-eab", "with-eab"])
def test_external_account_binding(eab_acme_server: Pebble, tmp_path: Path, with_kid: bool) -> None:
    client = ClientRunner(tmp_path, eab_acme_server)
    kid, key = next(iter(EAB_KEYS.items()))
    eab = ("--eab-kid", kid, "--eab-hmac-key", key) if with_kid else ()
    result = client.run(*standalone(client, A, extra=eab))
    if with_kid:
        ok(result)
        client.check_lineage(A, [A])
    else:
        assert result.returncode != 0, describe(result)
        assert "--eab-kid" in result.stderr, describe(result)


def test_changed_terms_need_agreement(legacy_ca: CAStub, tmp_path: Path) -> None:
    client = ClientRunner(tmp_path, legacy_ca)
    terms_url = requests.get(legacy_ca.directory_url, verify=legacy_ca.ca_bundle, timeout=10).json()["meta"][
        "termsOfService"]
    ok(client.run("certonly", "--standalone", "--http-01-port", str(legacy_ca.http_port), "-d", A))
    terms = legacy_ca.data_dir / "terms.txt"
    terms.write_text(terms.read_text() + "\nAmended: a new paragraph.\n")
    args = ("certonly", "--standalone", "--http-01-port", str(legacy_ca.http_port), "-d", B)
    refused = client.run(*args, agree=False)
    assert refused.returncode != 0, describe(refused)
    assert terms_url in refused.stderr and "--agree-tos" in refused.stderr, describe(refused)
    ok(client.run(*args))
    client.check_lineage(B, [B])


def test_ca_bundle_from_flag_or_environment(tmp_path: Path, fresh_ca_stub: Pebble) -> None:
    """--server-ca-bundle wins over REQUESTS_CA_BUNDLE; without the flag the variable is used.

    Client-side only (how requests picks its trust anchors), so one CA is enough.
    """
    client = ClientRunner(tmp_path, fresh_ca_stub)
    ok(client.run(*standalone(client, "one.example.com"), env={"REQUESTS_CA_BUNDLE": certifi.where()}))
    ok(client.run(*standalone(client, "two.example.com"), env={"REQUESTS_CA_BUNDLE": None}))
    ok(client.run(*standalone(client, "three.example.com"), bundle=False,
                  env={"REQUESTS_CA_BUNDLE": client.ca.ca_bundle}))
    for name in ("one.example.com", "two.example.com", "three.example.com"):
        client.check_lineage(name, [name])


def test_lock_names_the_holder(tmp_path: Path, fresh_ca_stub: Pebble) -> None:
    client = ClientRunner(tmp_path, fresh_ca_stub)
    lock = Paths(client.config_dir, client.work_dir, client.logs_dir).lock_file
    with ConfigLock(lock):
        result = client.run(*standalone(client, A))
    assert result.returncode != 0, describe(result)
    assert str(os.getpid()) in result.stderr, describe(result)
    assert not client.live(A).exists()
