"""The Apache installer on a real server root (no server running): what it writes, where, and undoing it."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest
from apache_unit_root import add_site, context, make_root, state
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from integration._procs import make_tls_identity

from letsencrypt.plugin_api import MisconfigurationError, NotSupported
from plugins.apache.installer import ocsp_responder
from plugins.apache.plugin import ApachePlugin


def _plugin(tmp_path: Path, root: Path, **ports: int) -> ApachePlugin:
    plugin = ApachePlugin(context(tmp_path, root, **ports))
    plugin.prepare()
    return plugin


def _deploy(plugin: ApachePlugin, lineage: Path, *names: str) -> None:
    for name in names:
        plugin.deploy_certificate(name, cert_path=lineage / "cert.pem", key_path=lineage / "privkey.pem",
                                  chain_path=lineage / "chain.pem", fullchain_path=lineage / "fullchain.pem")


@pytest.fixture
def lineage(tmp_path: Path) -> Path:
    live = tmp_path / "live" / "a.example"
    identity = make_tls_identity(live, ["a.example", "b.example"])
    for kind in ("cert", "chain", "fullchain"):
        (live / f"{kind}.pem").write_bytes(identity.cert.read_bytes())
    (live / "privkey.pem").write_bytes(identity.key.read_bytes())
    return live


SITE = """\
    # a.example, as the admin wrote it
    <VirtualHost *:80>
    \tServerName a.example
    \tServerAlias www.a.example
    \t# static files
    \tDocumentRoot /srv/a
    \tRewriteEngine on
    \tRewriteCond %{HTTP_HOST} ^www\\. [NC]
    \tRewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [R=301,L]
    \tRedirect /old https://a.example/new
    </VirtualHost>
    """


def test_a_twin_in_sites_available_with_modules_options_and_no_extra_listen(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path)
    site = add_site(root, "a.conf", SITE)
    before = site.read_bytes()
    plugin = _plugin(tmp_path, root)
    _deploy(plugin, lineage, "a.example", "www.a.example")
    plugin.enhance("a.example", "hsts")
    plugin.enhance("www.a.example", "uir")
    plugin.save("install")

    twin = root / "sites-available" / "a-le-ssl.conf"
    assert (root / "sites-enabled" / "a-le-ssl.conf").readlink() == Path("../sites-available/a-le-ssl.conf")
    assert twin.read_text() == textwrap.dedent(f"""\
        # The TLS twin of {root}/sites-enabled/a.conf:2, made by letsencrypt --apache.
        <IfModule mod_ssl.c>
        <VirtualHost *:443>
        \tServerName a.example
        \tServerAlias www.a.example
        \t# static files
        \tDocumentRoot /srv/a
        \tRewriteEngine on
        \tRedirect /old https://a.example/new
        \tSSLEngine on
        \tSSLCertificateFile {lineage}/fullchain.pem
        \tSSLCertificateKeyFile {lineage}/privkey.pem
        \tInclude {root}/options-ssl-apache.conf
        \tHeader always set Strict-Transport-Security max-age=31536000
        \tHeader always set Content-Security-Policy upgrade-insecure-requests
        </VirtualHost>
        </IfModule>
        """), "the looping rewrite and its condition are left out; the partial Redirect stays"
    assert site.read_bytes() == before, "the original is not touched without --redirect"
    assert sorted(p.name for p in (root / "mods-enabled").iterdir()) == [
        "alias.load", "headers.load", "mime.load", "setenvif.load", "socache_shmcb.load", "ssl.conf", "ssl.load"]
    assert (root / "options-ssl-apache.conf").read_text().startswith("# Added by letsencrypt")
    assert "Listen 443" in (root / "ports.conf").read_text() and (root / "ports.conf").read_text().count("Listen") == 2


def test_two_vhosts_in_one_file_and_a_listen_for_another_port(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path, ports="Listen 127.0.0.1:8080\n")
    add_site(root, "two.conf", """\
        <VirtualHost 127.0.0.1:8080>
            ServerName a.example
        </VirtualHost>
        <VirtualHost *:8080>
            ServerName b.example
        </VirtualHost>
        """)
    plugin = _plugin(tmp_path, root, http_port=8080, https_port=8443)
    _deploy(plugin, lineage, "a.example", "b.example")
    plugin.save("install")
    first = (root / "sites-available" / "two-1-le-ssl.conf").read_text()
    second = (root / "sites-available" / "two-2-le-ssl.conf").read_text()
    assert "<VirtualHost 127.0.0.1:8443>" in first and "ServerName a.example" in first
    assert "<VirtualHost *:8443>" in second and "ServerName b.example" in second
    assert (root / "ports.conf").read_text() == "Listen 127.0.0.1:8080\nListen 127.0.0.1:8443 https\n"


def test_an_existing_tls_vhost_is_updated_in_place(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path)
    for name in ("ssl", "setenvif", "socache_shmcb"):
        (root / "mods-enabled" / f"{name}.load").symlink_to(f"../mods-available/{name}.load")
    site = add_site(root, "secure.conf", """\
        <VirtualHost *:443>
          ServerName a.example
          SSLEngine on
          # the old certificate
          SSLCertificateFile /etc/ssl/old.pem
          SSLCertificateKeyFile /etc/ssl/old.key
          SSLCertificateChainFile /etc/ssl/chain.pem
        </VirtualHost>
        """)
    plugin = _plugin(tmp_path, root)
    _deploy(plugin, lineage, "a.example")
    plugin.enhance("a.example", "hsts")
    plugin.save("install")
    assert site.read_text() == textwrap.dedent(f"""\
        <VirtualHost *:443>
          ServerName a.example
          SSLEngine on
          # the old certificate
          SSLCertificateFile {lineage}/fullchain.pem
          SSLCertificateKeyFile {lineage}/privkey.pem
          Header always set Strict-Transport-Security max-age=31536000
        </VirtualHost>
        """), "changed lines only, the added one indented like its neighbours"
    assert not list((root / "sites-available").glob("*le-ssl*")), "never a second TLS vhost"
    assert (root / "mods-enabled" / "headers.load").is_symlink()


def test_redirect_goes_into_the_plain_vhost_once_and_names_the_port(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path)
    site = add_site(root, "a.conf", """\
        <VirtualHost *:80>
        \tServerName a.example
        </VirtualHost>
        """)
    plugin = _plugin(tmp_path, root, https_port=8443)
    _deploy(plugin, lineage, "a.example")
    plugin.enhance("a.example", "redirect")
    plugin.save("install")
    assert site.read_text() == textwrap.dedent("""\
        <VirtualHost *:80>
        \tServerName a.example
        \tRewriteEngine on
        \tRewriteCond %{HTTPS} !=on
        \tRewriteCond %{REQUEST_URI} !^/\\.well-known/acme-challenge/
        \tRewriteRule ^ https://%{SERVER_NAME}:8443%{REQUEST_URI} [END,NE,R=permanent]
        </VirtualHost>
        """)
    assert "Listen 8443 https" in (root / "ports.conf").read_text()
    again = ApachePlugin(context(tmp_path, root, https_port=8443))
    again.prepare()
    snapshot = state(root)
    _deploy(again, lineage, "a.example")
    again.enhance("a.example", "redirect")
    again.save("install again")
    assert state(root) == snapshot, "a second install changes nothing: the same twin, the same redirect"


def test_a_vhost_outside_sites_available_gets_its_twin_included_right_after_it(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path)
    main = root / "apache2.conf"
    main.write_text(main.read_text() + "Define DOCS /srv/docs\n<VirtualHost *:80>\n    ServerName a.example\n"
                    "    DocumentRoot ${DOCS}\n</VirtualHost>\n# the end\n")
    plugin = _plugin(tmp_path, root)
    _deploy(plugin, lineage, "a.example")
    plugin.save("install")
    twin = root / "le-ssl" / "a.example-le-ssl.conf"
    assert "DocumentRoot ${DOCS}" in twin.read_text()
    assert main.read_text().endswith(f"</VirtualHost>\nInclude {twin}\n# the end\n")


def test_refusals_come_before_any_change(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path)
    add_site(root, "a.conf", SITE)
    plugin = _plugin(tmp_path, root)
    snapshot = state(root)
    with pytest.raises(MisconfigurationError, match=r"no Apache virtual host serves c\.example") as caught:
        _deploy(plugin, lineage, "c.example")
    assert "ServerName c.example" in (caught.value.hint or "")
    _deploy(plugin, lineage, "a.example")
    with pytest.raises(NotSupported, match="no OCSP responder"):
        plugin.enhance("a.example", "staple-ocsp")
    with pytest.raises(NotSupported, match="does not know"):
        plugin.enhance("a.example", "brotli")
    assert state(root) == snapshot


def _ocsp_certificate(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://ocsp.example/"))]),
            critical=False)
        .sign(key, hashes.SHA256()))
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def test_staple_ocsp_when_the_certificate_names_a_responder(tmp_path: Path, lineage: Path) -> None:
    _ocsp_certificate(lineage / "fullchain.pem")
    assert ocsp_responder((lineage / "fullchain.pem").read_bytes()) == "http://ocsp.example/"
    root = make_root(tmp_path)
    add_site(root, "a.conf", SITE)
    plugin = _plugin(tmp_path, root)
    _deploy(plugin, lineage, "a.example")
    plugin.enhance("a.example", "staple-ocsp")
    plugin.save("install")
    assert "SSLUseStapling on" in (root / "sites-available" / "a-le-ssl.conf").read_text()
    assert "SSLStaplingCache" in (root / "apache2.conf").read_text()


def test_rollback_recovery_and_what_the_configuration_still_uses(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path)
    add_site(root, "a.conf", SITE)
    snapshot = state(root)
    plugin = _plugin(tmp_path, root)
    _deploy(plugin, lineage, "a.example")
    plugin.enhance("a.example", "redirect")
    plugin.save("install")
    assert plugin.lineage_in_use([lineage]) == [f"{root}/sites-enabled/a-le-ssl.conf:11",
                                                f"{root}/sites-enabled/a-le-ssl.conf:12"]
    assert plugin.names() == {"a.example", "www.a.example"}
    plugin.recovery_routine()
    assert state(root) == snapshot
    assert plugin.lineage_in_use([lineage]) == []
    _deploy(plugin, lineage, "a.example")
    plugin.save("again")
    plugin.rollback_checkpoints(1)
    assert state(root) == snapshot


def test_a_failing_configtest_is_reported_with_apaches_words(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path)
    add_site(root, "a.conf", SITE)
    plugin = _plugin(tmp_path, root)
    (root / "broken").touch()
    with pytest.raises(MisconfigurationError, match="Syntax error on line 1 of broken"):
        plugin.config_test()


def test_recovery_after_the_second_lineage_of_a_renew_keeps_the_first(tmp_path: Path, lineage: Path) -> None:
    root = make_root(tmp_path)
    add_site(root, "a.conf", "<VirtualHost *:80>\n    ServerName a.example\n</VirtualHost>\n")
    add_site(root, "b.conf", "<VirtualHost *:80>\n    ServerName b.example\n</VirtualHost>\n")
    plugin = _plugin(tmp_path, root)
    _deploy(plugin, lineage, "a.example")
    plugin.save("install a")
    plugin._site.confirm_mine()  # what restart() does once Apache serves it
    first = state(root)
    _deploy(plugin, lineage, "b.example")
    plugin.save("install b")
    plugin.recovery_routine()
    assert state(root) == first
