"""The Apache authenticator's temporary configuration: where the include goes, what it serves, undone exactly.

``perform`` also reloads Apache and waits until every challenge is served; that part runs against a
real apache2 in ``tests/integration/test_apache_plugin.py``. Here the plan is applied as
``perform`` applies it and rolled back as ``cleanup`` does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from apache_unit_root import add_site, context, make_root, state

from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import Challenge, Identifier
from letsencrypt.plugin_api import ChallengeSetupError, ChallengeTask
from plugins.apache.authenticator import ApacheAuthenticator, _Plan
from plugins.apache.server import ApacheSite

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


def _task(kind: str, domain: str, **fields: str) -> ChallengeTask:
    challenge = Challenge.from_json({"type": kind, "url": "https://ca.example/chall/1", "status": "pending",
                                     "token": TOKEN, **fields})
    return ChallengeTask(Identifier("dns", domain), challenge, f"{TOKEN}.thumbprint", AccountKey.generate("ec256"))


def _authenticator(tmp_path: Path, root: Path, **ports: int) -> ApacheAuthenticator:
    ctx = context(tmp_path, root, **ports)
    site = ApacheSite.shared(ctx)
    site.prepare()
    return ApacheAuthenticator(site, ctx)


def _apply(authenticator: ApacheAuthenticator, tasks: list[ChallengeTask]) -> _Plan:
    plan = _Plan()
    for task in tasks:
        authenticator._provision(task, plan)
    authenticator._checkpoint = authenticator.site.apply(
        "challenges", lambda transaction, tree: authenticator._apply(transaction, tree, plan), temporary=True,
        scratch=True)
    return plan


REDIRECTING = """\
    <VirtualHost *:80>
        ServerName a.example
        RewriteEngine on
        RewriteRule ^ https://elsewhere.example/ [R=302,L]
    </VirtualHost>
    """


def test_http01_include_goes_first_in_the_vhost_apache_picks_and_is_undone(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "mods-enabled" / "rewrite.load").symlink_to("../mods-available/rewrite.load")
    site = add_site(root, "a.conf", REDIRECTING)
    add_site(root, "b.conf", "<VirtualHost *:80>\n    ServerName b.example\n</VirtualHost>\n")
    before = state(root)
    authenticator = _authenticator(tmp_path, root)
    plan = _apply(authenticator, [_task("http-01", "a.example"), _task("http-01", "b.example")])
    folder = tmp_path / "work" / "apache-challenges"
    assert (folder / TOKEN).read_bytes() == f"{TOKEN}.thumbprint".encode()
    assert site.read_text().splitlines()[1] == f"    Include {folder}/challenge-rewrite.conf", \
        "first in the vhost, before its own rewrite"
    rule = next(line for line in (folder / "challenge-rewrite.conf").read_text().splitlines() if "RewriteRule" in line)
    assert re.search(rule.split()[1], f"/.well-known/acme-challenge/{TOKEN}")
    assert f"Include {folder}/challenge.conf" in (root / "sites-available" / "b.conf").read_text()
    assert plan.responses == [{}, {}]
    assert (folder / TOKEN).stat().st_mode & 0o777 == 0o644 and folder.stat().st_mode & 0o777 == 0o755, \
        "Apache's children (www-data) read them"

    authenticator.cleanup([])
    assert state(root) == before
    assert not folder.exists()


def test_http01_for_a_name_no_vhost_claims_goes_to_the_default_vhost(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    first = add_site(root, "000-default.conf", "<VirtualHost *:80>\n    DocumentRoot /var/www\n</VirtualHost>\n")
    authenticator = _authenticator(tmp_path, root)
    _apply(authenticator, [_task("http-01", "unknown.example")])
    assert "Include" in first.read_text()
    authenticator.cleanup([])


def test_http01_on_a_port_apache_does_not_listen_on_is_refused_before_any_change(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    add_site(root, "a.conf", "<VirtualHost *:80>\n    ServerName a.example\n</VirtualHost>\n")
    before = state(root)
    authenticator = _authenticator(tmp_path, root, http_port=8081)
    with pytest.raises(ChallengeSetupError, match="does not listen on port 8081"):
        _apply(authenticator, [_task("http-01", "a.example")])
    assert state(root) == before


def test_dvsni_gets_a_temporary_tls_vhost_with_mod_ssl_and_private_keys(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    add_site(root, "a.conf", "<VirtualHost *:80>\n    ServerName a.example\n</VirtualHost>\n")
    before = state(root)
    authenticator = _authenticator(tmp_path, root)
    nonce = "a" * 32
    r = "Ru0AqtCNjV2dBOSAR0W7cVpSJ5SwVe-dfa3_UsRwjdM"
    plan = _apply(authenticator, [_task("dvsni", "a.example", r=r, nonce=nonce)])
    folder = tmp_path / "work" / "apache-challenges"
    vhost = (folder / "tls-1.conf").read_text()
    assert f"ServerName {nonce}.acme.invalid" in vhost and "<VirtualHost *:443>" in vhost
    assert (folder / "tls-1.key").stat().st_mode & 0o777 == 0o600
    assert f"Include {folder}/tls-1.conf" in (root / "apache2.conf").read_text()
    assert (root / "mods-enabled" / "ssl.load").is_symlink()
    assert "Listen" not in (root / "apache2.conf").read_text(), "ports.conf's <IfModule ssl_module> Listen 443 serves"
    assert set(plan.responses[0]) == {"type", "s"}
    authenticator.cleanup([])
    assert state(root) == before


def test_supported_challenges(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    authenticator = _authenticator(tmp_path, root)
    assert authenticator.supported_challenges(Identifier("dns", "a.example")) == ["http-01", "simpleHttps", "dvsni"]
    assert authenticator.supported_challenges(Identifier("dns", "*.a.example")) == []
    assert authenticator.supported_challenges(Identifier("ip", "192.0.2.1")) == ["http-01"]
