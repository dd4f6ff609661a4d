"""The TLS twin of a vhost: its file name, its addresses, and the redirects it must not copy."""

from __future__ import annotations

from pathlib import Path

from apache_unit_root import add_site, context, make_root

from plugins.apache.model import Address
from plugins.apache.server import ApacheSite
from plugins.apache.tls_vhost import https_addresses, looping_redirects, plan_copy


def _config(tmp_path: Path, root: Path) -> ApacheSite:
    site = ApacheSite.shared(context(tmp_path, root))
    site.prepare()
    return site


def test_names_addresses_and_loops(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    add_site(root, "many.conf", """\
        <VirtualHost 192.0.2.1:80 [2001:db8::1]:80 *:80>
            ServerName a.example
            RewriteEngine on
            RewriteCond %{HTTPS} off
            RewriteCond %{HTTP_HOST} !^internal
            RewriteRule ^/?(.*) https://%{SERVER_NAME}/$1 [R,L]
            RewriteRule ^/old$ /new [R]
            RedirectMatch 301 ^/(.*)$ https://elsewhere.example/$1
        </VirtualHost>
        <VirtualHost *:80>
            ServerName b.example
            Redirect permanent / https://b.example/
        </VirtualHost>
        """)
    site = _config(tmp_path, root)
    first, second = site.config.vhosts
    assert https_addresses(first, 8443) == ["192.0.2.1:8443", "[2001:db8::1]:8443", "*:8443"]
    assert [(node.name, node.line) for node in looping_redirects(first)] == [
        ("RewriteCond", 4), ("RewriteCond", 5), ("RewriteRule", 6)], "not the redirect to another site"
    assert [node.name for node in looping_redirects(second)] == ["Redirect"]
    taken = {root / "sites-available" / "many-1-le-ssl.conf"}
    assert plan_copy(site.config, root, first, ()).file == root / "sites-available" / "many-1-le-ssl.conf"
    assert plan_copy(site.config, root, first, taken).file == root / "sites-available" / "many-1-le-ssl-2.conf"
    assert plan_copy(site.config, root, second, ()).link == root / "sites-enabled" / "many-2-le-ssl.conf"
    assert str(Address("*", 443)) == "*:443"
