"""The text the Apache plugin writes: quoting, redirects that cannot loop, the challenge include."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plugins.apache.snippets import (
    challenge_include,
    quote,
    redirect_directives,
    redirects_all_to_https,
    temporary_vhost,
    tls_options,
)


@pytest.mark.parametrize(("value", "quoted"), [
    ("/etc/x.pem", "/etc/x.pem"),
    ("/srv/my site/x.pem", '"/srv/my site/x.pem"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("", '""'),
])
def test_quote_leaves_plain_arguments_bare(value: str, quoted: str) -> None:
    assert quote(value) == quoted


def test_the_redirect_names_the_https_port_only_when_it_is_not_443() -> None:
    assert redirect_directives(443)[-1] == ("RewriteRule", ("^", "https://%{SERVER_NAME}%{REQUEST_URI}",
                                                            "[END,NE,R=permanent]"))
    assert redirect_directives(8443)[-1][1][1] == "https://%{SERVER_NAME}:8443%{REQUEST_URI}"
    conditions = [args for name, args in redirect_directives(443) if name == "RewriteCond"]
    assert ("%{HTTPS}", "!=on") in conditions, "inert on TLS connections: it cannot loop"


@pytest.mark.parametrize(("name", "args", "loops"), [
    ("Redirect", ("permanent", "/", "https://example.com/"), True),
    ("Redirect", ("/", "HTTPS://example.com/"), True),
    ("RedirectMatch", ("301", "^/(.*)$", "https://example.com/$1"), True),
    ("RedirectPermanent", ("/", "https://example.com/"), True),
    ("RewriteRule", ("^", "https://%{SERVER_NAME}%{REQUEST_URI}", "[END,NE,R=permanent]"), True),
    ("RewriteRule", ("^/?(.*)", "https://%{SERVER_NAME}/$1", "[R,L]"), True),
    ("RewriteRule", ("^/old$", "https://example.com/new", "[R]"), False),
    ("Redirect", ("permanent", "/old", "https://example.com/new"), False),
    ("Redirect", ("/", "http://other.example/"), False),
    ("RedirectMatch", ("^/(", "https://example.com/"), False),
    ("DocumentRoot", ("/var/www",), False),
])
def test_redirects_of_everything_to_https_are_recognised(name: str, args: tuple[str, ...], loops: bool) -> None:
    assert redirects_all_to_https(name, args) is loops


def test_the_challenge_include_maps_the_path_and_rewrites_first_only_when_asked(tmp_path: Path) -> None:
    plain = challenge_include(tmp_path / "c", rewrite=False)
    assert f"Alias /.well-known/acme-challenge/ {tmp_path}/c/" in plain
    assert "RewriteRule" not in plain
    rewriting = challenge_include(tmp_path / "c", rewrite=True)
    rule = next(line for line in rewriting.splitlines() if "RewriteRule" in line).split()
    assert re.fullmatch(rule[1], "/.well-known/acme-challenge/tok_en-1")
    assert not re.fullmatch(rule[1], "/.well-known/acme-challenge/../x")
    assert rule[2:] == [f"{tmp_path}/c/$1", "[END]"]


def test_a_temporary_vhost_lists_every_address_and_its_certificate(tmp_path: Path) -> None:
    text = temporary_vhost(["*:8443", "127.0.0.1:8443"], "n.acme.invalid",
                           certificate=(tmp_path / "c.pem", tmp_path / "k.pem"))
    assert "<VirtualHost *:8443 127.0.0.1:8443>" in text
    assert f"SSLCertificateFile {tmp_path}/c.pem" in text and "SSLEngine on" in text


def test_the_tls_options_are_vhost_directives_only() -> None:
    names = {line.split()[0] for line in tls_options().decode().splitlines() if line and not line.startswith("#")}
    assert names <= {"SSLProtocol", "SSLCipherSuite", "SSLHonorCipherOrder", "SSLSessionTickets", "SSLOptions"}
