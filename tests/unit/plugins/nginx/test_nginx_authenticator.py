"""The authenticator's temporary edits: where each challenge answer goes, and what is checked after reload."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from nginx_fakes import configuration, http_conf, make_task

from letsencrypt.acme import challenges
from letsencrypt.acme.messages import Identifier
from letsencrypt.plugin_api import MisconfigurationError, NotSupported
from plugins.nginx.authenticator import Ports, provision, supported

PORTS = Ports(http=80, https=443, address="")


def test_supported_challenges() -> None:
    assert supported(Identifier("dns", "a.example")) == ["http-01", "dvsni", "simpleHttps"]
    assert supported(Identifier("dns", "*.a.example")) == []
    assert supported(Identifier("ip", "127.0.0.1")) == ["http-01"]


def test_http01_is_an_exact_location_in_the_block_serving_the_name(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("""\
    server {
        listen 80;
        listen [::]:80;
        server_name a.example;
        location / { }
    }
    server {
        listen 80;
        server_name b.example;
    }
"""))
    task = make_task("a.example")
    done = provision(conf, [task], PORTS, tmp_path / "scratch")
    text = conf.config.root.dump()
    block = text.split("server {")[1]
    assert (f"        location = {task.http01_path} {{\n"
            f"            default_type text/plain;\n            return 200 {task.key_authorization};\n"
            f"        }} # managed by letsencrypt\n") in block
    assert "acme-challenge" not in text.split("server {")[2]
    assert done.responses == [{}]
    assert sorted((e.host, e.port, e.path, e.value) for e in done.expectations) == [
        ("127.0.0.1", 80, task.http01_path, task.http01_body), ("::1", 80, task.http01_path, task.http01_body)]


def test_http01_in_a_redirecting_block_answers_before_the_redirect(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("""\
    server {
        listen 80;
        server_name a.example;
        if ($scheme != https) {
            return 301 https://$host$request_uri;
        } # managed by letsencrypt
        return 404;
    }
"""))
    task = make_task("a.example")
    provision(conf, [task], PORTS, tmp_path / "scratch")
    text = conf.config.root.dump()
    assert text.index(f"if ($uri = {task.http01_path})") < text.index("if ($scheme != https)")
    assert f"return 200 {task.key_authorization};" in text


def test_http01_without_a_block_for_the_name_gets_a_temporary_server_on_each_address_of_the_port(
        tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("""\
    server {
        listen 127.0.0.1:8080 default_server;
        listen [::1]:8080;
        server_name other.example;
    }
"""))
    task = make_task("new.example")
    done = provision(conf, [task], Ports(http=8080, https=8443, address=""), tmp_path / "scratch")
    new_block = conf.config.root.dump().split("server {")[2]
    assert "listen 127.0.0.1:8080; # managed by letsencrypt" in new_block
    assert "listen [::1]:8080; # managed by letsencrypt" in new_block
    assert "server_name new.example; # managed by letsencrypt" in new_block
    assert {e.host for e in done.expectations} == {"127.0.0.1", "::1"}


def test_http01_on_a_port_nobody_listens_on_uses_the_http01_address(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf("    server {\n        listen 80;\n    }\n"))
    provision(conf, [make_task("x.example")], Ports(http=5002, https=443, address="127.0.0.1"), tmp_path / "s")
    assert "listen 127.0.0.1:5002; # managed by letsencrypt" in conf.config.root.dump()


def test_dvsni_is_a_temporary_tls_block_for_the_challenge_sni(tmp_path: Path) -> None:
    tls = "    server {\n        listen 443 ssl;\n        server_name a.example;\n    }\n"
    conf = configuration(tmp_path, http_conf(tls))
    r, nonce = challenges.new_dvsni_challenge_fields()
    task = make_task("a.example", "dvsni", r=r, nonce=nonce)
    done = provision(conf, [task], PORTS, tmp_path / "scratch")
    text = conf.config.root.dump()
    assert f"server_name {nonce}.acme.invalid; # managed by letsencrypt" in text
    assert "listen 443 ssl; # managed by letsencrypt" in text
    key_file = tmp_path / "scratch" / f"dvsni-{nonce}.key"
    assert key_file in done.private and set(done.files) == {key_file, key_file.with_suffix(".crt")}
    assert done.responses[0]["type"] == "dvsni" and "s" in done.responses[0]
    [expectation] = done.expectations
    assert expectation.kind == "certificate" and expectation.name == f"{nonce}.acme.invalid"
    assert expectation.value == ssl.PEM_cert_to_DER_cert(done.files[key_file.with_suffix(".crt")].decode())


def test_simple_https_uses_the_tls_block_serving_the_name_or_a_temporary_one(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf(
        "    server {\n        listen 443 ssl;\n        server_name a.example;\n    }\n"))
    served, new = make_task("a.example", "simpleHttps"), make_task("b.example", "simpleHttps")
    done = provision(conf, [served, new], PORTS, tmp_path / "scratch")
    text = conf.config.root.dump()
    first, second = text.split("server {")[1:]
    assert "location = /.well-known/acme-challenge/" in first and "ssl_certificate" not in first
    assert "server_name b.example; # managed by letsencrypt" in second and "ssl_certificate " in second
    assert [e.tls for e in done.expectations] == [True, True]
    assert [e.value for e in done.expectations] == [served.token.encode(), new.token.encode()]
    assert all(r["type"] == "simpleHttps" and r["path"] for r in done.responses)


def test_tls_challenges_are_refused_on_a_plain_http_port(tmp_path: Path) -> None:
    plain = "    server {\n        listen 80;\n        server_name a.example;\n    }\n"
    conf = configuration(tmp_path, http_conf(plain))
    r, nonce = challenges.new_dvsni_challenge_fields()
    with pytest.raises(MisconfigurationError, match="port 80 serves plain HTTP"):
        provision(conf, [make_task("a.example", "dvsni", r=r, nonce=nonce)], Ports(80, 80, ""), tmp_path / "s")


def test_an_unsupported_challenge_is_not_supported(tmp_path: Path) -> None:
    conf = configuration(tmp_path, http_conf(""))
    with pytest.raises(NotSupported, match="dns-01"):
        provision(conf, [make_task("a.example", "dns-01")], PORTS, tmp_path / "s")
