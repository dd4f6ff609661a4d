"""The installer's edits on real parsed configurations: where TLS, redirects and headers go, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from nginx_fakes import added_lines, certificate_files, configuration, http_conf

from letsencrypt.plugin_api import MisconfigurationError, NotSupported
from plugins.nginx import installer
from plugins.nginx.configuration import Configuration

TWO_SITES = http_conf("""\
    server {
        listen 127.0.0.1:80;
        listen [::]:80;
        server_name a.example www.a.example;
        root /srv/a;
    }
    server {
        listen 8080;
        server_name b.example;
        return 200 "b";
    }
""")


def _deploy(conf: Configuration, tmp_path: Path, domain: str, port: int = 443) -> list[str]:
    fullchain, _, key = certificate_files(tmp_path / "live" / domain, [domain])
    before = conf.config.root.dump()
    expectations = installer.deploy(conf, domain, key_path=key, fullchain_path=fullchain, https_port=port,
                                    server_root=Path("/etc/nginx"))
    assert expectations and all(e.kind == "certificate" and e.name == domain for e in expectations)
    return added_lines(before, conf.config.root.dump())


def test_deploy_adds_a_tls_listen_per_address_and_the_certificate_beside_the_existing_lines(tmp_path: Path) -> None:
    conf = configuration(tmp_path, TWO_SITES)
    added = _deploy(conf, tmp_path, "www.a.example")
    live = tmp_path / "live" / "www.a.example"
    assert [line.strip() for line in added] == [
        "listen 127.0.0.1:443 ssl; # managed by letsencrypt",
        "listen [::]:443 ssl; # managed by letsencrypt",
        f"ssl_certificate {live}/fullchain.pem; # managed by letsencrypt",
        f"ssl_certificate_key {live}/privkey.pem; # managed by letsencrypt",
        "include /etc/nginx/options-ssl-nginx.conf; # managed by letsencrypt",
        "ssl_dhparam /etc/nginx/ssl-dhparams.pem; # managed by letsencrypt",
    ]
    assert all(line.startswith("        ") for line in added), "indented like the block's other lines"
    text = conf.config.root.dump()
    assert text.index("server_name a.example") < text.index("listen 127.0.0.1:443") < text.index("root /srv/a")


def test_deploy_again_changes_nothing_and_updates_an_existing_setup_in_place(tmp_path: Path) -> None:
    conf = configuration(tmp_path, TWO_SITES)
    _deploy(conf, tmp_path, "a.example")
    conf.config.root.source = conf.config.root.dump()  # as if saved
    assert _deploy(conf, tmp_path, "a.example") == []  # renewal: the same live paths


def test_an_existing_tls_block_is_updated_in_place_and_a_second_certificate_removed(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("""\
    server {
        listen 443 ssl;
        server_name a.example;
        ssl_certificate /old/rsa.pem;
        ssl_certificate_key /old/rsa.key;
        ssl_certificate /old/ecdsa.pem;
        ssl_certificate_key /old/ecdsa.key;
        ssl_protocols TLSv1.3;
    }
"""))
    fullchain, _, key = certificate_files(tmp_path / "live", ["a.example"])
    installer.deploy(conf, "a.example", key_path=key, fullchain_path=fullchain, https_port=443,
                     server_root=Path("/etc/nginx"))
    text = conf.config.root.dump()
    assert f"        ssl_certificate {fullchain};\n        ssl_certificate_key {key};\n" in text
    assert "/old/" not in text
    assert text.count("listen") == 1, "no second TLS listen"
    assert "options-ssl-nginx.conf" not in text, "the block sets ssl_protocols itself: no duplicate"
    assert "ssl_dhparam /etc/nginx/ssl-dhparams.pem; # managed by letsencrypt" in text


def test_an_exact_plain_block_gets_tls_rather_than_a_wildcard_tls_block(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("""\
    server { listen 443 ssl; server_name *.example.com; ssl_certificate /w.pem; ssl_certificate_key /w.key; }
    server {
        listen 80;
        server_name www.example.com;
    }
"""))
    targets, in_place = installer.tls_targets(conf, "www.example.com")
    assert [t.index for t in targets] == [1] and not in_place
    _deploy(conf, tmp_path, "www.example.com")
    assert "ssl_certificate /w.pem;" in conf.config.root.dump()


def test_a_block_without_listen_keeps_port_80(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("    server {\n        server_name a.example;\n    }\n"))
    added = _deploy(conf, tmp_path, "a.example")
    assert [line.strip() for line in added[:2]] == ["listen 80; # managed by letsencrypt",
                                                    "listen 443 ssl; # managed by letsencrypt"]


def test_no_matching_block_is_a_misconfiguration_with_a_hint(tmp_path: Path) -> None:
    conf = configuration(tmp_path, TWO_SITES)
    with pytest.raises(MisconfigurationError, match=r"no nginx server block has a server_name matching c\.example") \
            as caught:
        _deploy(conf, tmp_path, "c.example")
    assert caught.value.hint and "server_name" in caught.value.hint


def test_tls_is_never_added_to_a_plain_http_port(tmp_path: Path) -> None:
    conf = configuration(tmp_path, TWO_SITES)
    with pytest.raises(MisconfigurationError, match="port 8080 serves plain HTTP"):
        _deploy(conf, tmp_path, "a.example", port=8080)


def test_a_new_tls_listen_joins_the_wildcard_group_of_the_port(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("""\
    server {
        listen 443 ssl default_server;
        server_name other.example;
    }
    server {
        listen 127.0.0.1:80;
        listen [::1]:80;
        server_name a.example;
    }
"""))
    added = _deploy(conf, tmp_path, "a.example")
    # 127.0.0.1:443 would take connections to 127.0.0.1 away from other.example; [::1]:443 takes none
    assert [line.strip() for line in added[:2]] == ["listen 443 ssl; # managed by letsencrypt",
                                                    "listen [::1]:443 ssl; # managed by letsencrypt"]


def test_a_certificate_set_in_a_shared_snippet_is_not_edited(tmp_path: Path) -> None:
    snippet = "ssl_certificate /snake.pem;\nssl_certificate_key /snake.key;\n"
    conf = configuration(tmp_path, http_conf("""\
    server { listen 443 ssl; server_name a.example; include snippets/snakeoil.conf; }
    server { listen 443 ssl; server_name b.example; include snippets/snakeoil.conf; }
"""), {"snippets/snakeoil.conf": snippet})
    with pytest.raises(MisconfigurationError, match="included by other server blocks"):
        _deploy(conf, tmp_path, "a.example")


def test_redirect_goes_before_the_first_return_of_each_plain_block_serving_the_name(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("""\
    server { listen 80; server_name a.example; return 200 "plain"; }
    server { listen 8080; server_name .a.example; location / { } }
    server { listen 443 ssl; server_name a.example; ssl_certificate /c; ssl_certificate_key /k; }
    server { listen 80; server_name other.example; }
"""))
    expectations = installer.enhance(conf, "a.example", "redirect", https_port=8443)
    text = conf.config.root.dump()
    assert text.count("if ($scheme != https)") == 2
    assert "return 301 https://$host:8443$request_uri;" in text
    first = text.split("server {")[1]
    assert first.index("if ($scheme") < first.index('return 200 "plain"')
    assert "$scheme" not in text.split("server {")[3] and "$scheme" not in text.split("server {")[4]
    assert sorted((e.port, e.value) for e in expectations) == [(80, b"https://a.example:8443/"),
                                                               (8080, b"https://a.example:8443/")]
    again = text
    installer.enhance(conf, "a.example", "redirect", https_port=8443)
    assert conf.config.root.dump() == again, "an existing redirect is not added twice"


def test_redirect_needs_https_and_a_plain_block(tmp_path: Path) -> None:
    conf = configuration(tmp_path, TWO_SITES)
    with pytest.raises(MisconfigurationError, match="over HTTPS"):
        installer.enhance(conf, "a.example", "redirect", https_port=443)
    tls_only = configuration(tmp_path / "2", http_conf(
        "    server { listen 443 ssl; server_name a.example; ssl_certificate /c; ssl_certificate_key /k; }\n"))
    with pytest.raises(NotSupported, match="nothing to redirect"):
        installer.enhance(tls_only, "a.example", "redirect", https_port=443)


def test_hsts_and_uir_go_once_into_the_tls_block(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf(
        "    server {\n        listen 443 ssl;\n        server_name a.example;\n    }\n"
        "    server {\n        listen 80;\n        server_name a.example;\n    }\n"))
    for _ in range(2):
        installer.enhance(conf, "a.example", "hsts", https_port=443)
        installer.enhance(conf, "a.example", "uir", https_port=443)
    text = conf.config.root.dump()
    tls_block, plain_block = text.split("server {")[1:]
    assert tls_block.count('add_header Strict-Transport-Security max-age=31536000 always;') == 1
    assert tls_block.count('add_header Content-Security-Policy upgrade-insecure-requests always;') == 1
    assert "add_header" not in plain_block


def test_staple_ocsp_only_when_the_certificate_names_a_responder(tmp_path: Path) -> None:
    with_ocsp, chain, _ = certificate_files(tmp_path / "ocsp", ["a.example"], ocsp="http://ocsp.test/x")
    without, _, _ = certificate_files(tmp_path / "none", ["b.example"])
    conf = configuration(tmp_path, http_conf(
        f"    server {{ listen 443 ssl; server_name a.example; ssl_certificate {with_ocsp}; }}\n"
        f"    server {{ listen 443 ssl; server_name b.example; ssl_certificate {without}; }}\n"))
    installer.enhance(conf, "a.example", "staple-ocsp", https_port=443)
    text = conf.config.root.dump()
    assert "ssl_stapling on;" in text and f"ssl_trusted_certificate {chain};" in text
    with pytest.raises(NotSupported, match="names no OCSP responder"):
        installer.enhance(conf, "b.example", "staple-ocsp", https_port=443)
    with pytest.raises(NotSupported, match="no enhancement"):
        installer.enhance(conf, "a.example", "http2", https_port=443)


def test_lineage_in_use_reports_file_and_line_of_each_reference(tmp_path: Path) -> None:
    live = tmp_path / "le" / "live" / "a.example"
    conf = configuration(tmp_path, http_conf(
        "    server {\n        listen 443 ssl;\n        server_name a.example;\n"
        f"        ssl_certificate {live}/fullchain.pem;\n        ssl_certificate_key {live}/privkey.pem;\n    }}\n"
        "    include sites/*.conf;\n"),
        {"sites/b.conf": f"server {{ ssl_trusted_certificate {live}/chain.pem; }}\n"})
    main = str(tmp_path / "nginx" / "nginx.conf")
    places = installer.lineage_in_use(conf, [live, live / "fullchain.pem"])
    assert places == [f"{main}:6", f"{main}:7", f"{tmp_path}/nginx/sites/b.conf:1"]
    assert installer.lineage_in_use(conf, [tmp_path / "le" / "live" / "other"]) == []
