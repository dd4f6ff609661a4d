"""Renewal configurations: round trip, certbot's files, certbot's parser reading ours, schema versions."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import configobj  # type: ignore[import-untyped]  # certbot's own parser, no type hints
import pytest
from hypothesis import given
from hypothesis import strategies as st

from letsencrypt.errors import StorageError
from letsencrypt.paths import LETSENCRYPT_PRODUCTION
from letsencrypt.storage import _confobj
from letsencrypt.storage.renewal_config import (
    SCHEMA_VERSION,
    Hooks,
    LineageFiles,
    RenewalConfig,
    load,
    parse,
    render,
    save,
)

FILES = LineageFiles(
    Path("/etc/letsencrypt/archive/example.com"),
    Path("/etc/letsencrypt/live/example.com/cert.pem"),
    Path("/etc/letsencrypt/live/example.com/privkey.pem"),
    Path("/etc/letsencrypt/live/example.com/chain.pem"),
    Path("/etc/letsencrypt/live/example.com/fullchain.pem"),
)

FULL = RenewalConfig(
    server="https://ca.test:14000/dir",
    account="0123456789abcdef0123456789abcdef",
    authenticator="manual",
    installer="nginx",
    key_type="rsa",
    rsa_key_size=4096,
    elliptic_curve=None,
    reuse_key=True,
    must_staple=True,
    preferred_chain="ISRG Root X1",
    preferred_challenges=("dns-01", "http-01"),
    http01_port=8080,
    http01_address="127.0.0.1",
    https_port=8443,
    preferred_profile="shortlived",
    required_profile="tlsserver",
    hooks=Hooks(pre="systemctl stop nginx", post='echo "done, really" # not a comment', deploy="reload 'x'"),
    renew_before_expiry="20 days",
    plugin_options={
        "manual": {"auth-hook": "/usr/local/bin/auth.sh --flag", "cleanup-hook": "/usr/local/bin/clean.sh"},
        "nginx": {"server-root": "/etc/nginx", "ctl": "nginx", "extra-dirs": ("/a", "/b, c")},
    },
    extra={"allow_subset_of_names": "True"},
)

CERTBOT_WEBROOT = """\
# renew_before_expiry = 30 days
version = 2.11.0
archive_dir = /etc/letsencrypt/archive/example.com
cert = /etc/letsencrypt/live/example.com/cert.pem
privkey = /etc/letsencrypt/live/example.com/privkey.pem
chain = /etc/letsencrypt/live/example.com/chain.pem
fullchain = /etc/letsencrypt/live/example.com/fullchain.pem

# Options used in the renewal process
[renewalparams]
account = 9d6fb8f1a3c4e0e0c5a1a6b6f0d1e2c3
authenticator = webroot
webroot_path = /var/www/html,
server = https://acme-v02.api.letsencrypt.org/directory
key_type = ecdsa
installer = nginx
nginx_server_root = /etc/nginx
renew_hook = systemctl reload nginx
pref_challs = http-01,
manual_public_ip_logging_ok = None
[[webroot_map]]
example.com = /var/www/html
www.example.com = /var/www/www
"""

CERTBOT_MANUAL_OLD = """\
# renew_before_expiry = 30 days
version = 0.31.0
archive_dir = /etc/letsencrypt/archive/old.example
cert = /etc/letsencrypt/live/old.example/cert.pem
privkey = /etc/letsencrypt/live/old.example/privkey.pem
chain = /etc/letsencrypt/live/old.example/chain.pem
fullchain = /etc/letsencrypt/live/old.example/fullchain.pem

# Options used in the renewal process
[renewalparams]
authenticator = manual
account = 5b2fd0b85e2c0f4c43e6a7c4a3e0b7a1
pref_challs = dns-01,
manual_auth_hook = /etc/letsencrypt/hooks/auth.sh
manual_cleanup_hook = /etc/letsencrypt/hooks/cleanup.sh
manual_public_ip_logging_ok = True
rsa_key_size = 4096
server = https://acme-v02.api.letsencrypt.org/directory
pre_hook = "service nginx stop, then wait"
"""


def test_round_trip_of_every_field() -> None:
    text = render(FULL, FILES)
    assert f"schema_version = {SCHEMA_VERSION}" in text
    assert "manual_auth_hook = /usr/local/bin/auth.sh --flag" in text
    assert "nginx_server_root = /etc/nginx" in text
    assert "renew_hook = \"reload 'x'\"" in text
    assert parse(text) == FULL


def test_minimal_config_uses_the_defaults() -> None:
    config = RenewalConfig(server=LETSENCRYPT_PRODUCTION)
    assert parse(render(config, FILES)) == config
    assert config.cert_key_type == "ec256"


def test_certbot_reads_what_we_write() -> None:
    """certbot parses renewal files with ConfigObj: it must see our values exactly."""
    parsed = configobj.ConfigObj(render(FULL, FILES).splitlines(), encoding="utf-8", default_encoding="utf-8")
    assert parsed["cert"] == str(FILES.cert) and parsed["archive_dir"] == str(FILES.archive_dir)
    params = parsed["renewalparams"]
    assert params["server"] == FULL.server and params["account"] == FULL.account
    assert params["pref_challs"] == ["dns-01", "http-01"]
    assert params["post_hook"] == 'echo "done, really" # not a comment'
    assert params["renew_hook"] == "reload 'x'"
    assert params["manual_auth_hook"] == "/usr/local/bin/auth.sh --flag"
    assert params["nginx_extra_dirs"] == ["/a", "/b, c"]
    assert params["rsa_key_size"] == "4096" and params["reuse_key"] == "True"
    with_map = RenewalConfig(server=LETSENCRYPT_PRODUCTION, authenticator="webroot", webroot_path=("/srv",),
                             webroot_map={"example.com": "/srv", "b.example": "/srv/b"})
    parsed = configobj.ConfigObj(render(with_map, FILES).splitlines())
    assert parsed["renewalparams"]["webroot_path"] == ["/srv"]
    assert dict(parsed["renewalparams"]["webroot_map"]) == {"b.example": "/srv/b", "example.com": "/srv"}


def test_certbot_webroot_conf() -> None:
    config = parse(CERTBOT_WEBROOT)
    assert config.server == LETSENCRYPT_PRODUCTION
    assert config.account == "9d6fb8f1a3c4e0e0c5a1a6b6f0d1e2c3"
    assert (config.authenticator, config.installer) == ("webroot", "nginx")
    assert config.webroot_path == ("/var/www/html",)
    assert config.webroot_map == {"example.com": "/var/www/html", "www.example.com": "/var/www/www"}
    assert config.cert_key_type == "ec256"
    assert config.preferred_challenges == ("http-01",)
    assert config.hooks == Hooks(deploy="systemctl reload nginx")
    assert config.plugin_options == {"nginx": {"server-root": "/etc/nginx"}}
    assert config.extra == {"manual_public_ip_logging_ok": "None"}
    assert config.renew_before_expiry is None
    again = parse(render(config, FILES))
    assert again == config, "what we read from certbot survives our own write"


def test_certbot_pre_2_manual_conf_is_rsa() -> None:
    config = parse(CERTBOT_MANUAL_OLD)
    assert config.cert_key_type == "rsa4096"
    assert config.plugin_options == {"manual": {
        "auth-hook": "/etc/letsencrypt/hooks/auth.sh",
        "cleanup-hook": "/etc/letsencrypt/hooks/cleanup.sh",
        "public-ip-logging-ok": "True",
    }}
    assert config.hooks.pre == "service nginx stop, then wait"
    assert config.preferred_challenges == ("dns-01",)


def test_a_newer_schema_is_refused_clearly() -> None:
    text = render(FULL, FILES).replace(f"schema_version = {SCHEMA_VERSION}", "schema_version = 7")
    with pytest.raises(StorageError, match="schema_version 7") as info:
        parse(text, source="renewal/example.com.conf")
    assert "renewal/example.com.conf" in info.value.message
    assert info.value.hint and "upgrade" in info.value.hint


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("schema_version = 1\n[renewalparams]\nkey_type = ecdsa\n", "no server"),
        ("schema_version = x\n[renewalparams]\nserver = s\n", "schema_version must be"),
        ("[renewalparams]\nserver = s\nhttp01_port = eighty\n", "whole number"),
        ("[renewalparams]\nserver = s\nreuse_key = maybe\n", "True or False"),
        ("[renewalparams]\nserver = s\nkey_type = dsa\n", "rsa or ecdsa"),
        ("[renewalparams\nserver = s\n", "line 1: bad section header"),
        ("[renewalparams]\nno equals sign\n", "line 2: expected 'key = value'"),
        ("[renewalparams]\nserver = \"unclosed\n", "no closing"),
        ("[renewalparams]\nserver = '''multi\nline'''\n", "multi-line"),
        ("[[orphan]]\nx = y\n", "nested deeper"),
    ],
)
def test_unreadable_files_name_the_problem(text: str, match: str) -> None:
    with pytest.raises(StorageError, match=match):
        parse(text)


def test_options_are_normalized() -> None:
    loose: Any = {"webroot": {"path": ["/srv"], "map": {"a": "/srv"}}, "nginx": {"port": 8080, "on": True}}
    config = RenewalConfig(
        server="s", authenticator="webroot", installer="nginx",
        preferred_challenges=["http-01"],  # type: ignore[arg-type]  # callers may pass lists
        plugin_options=loose,  # what plugins declare: ints, booleans, lists
    )
    assert config.preferred_challenges == ("http-01",)
    assert config.webroot_path == ("/srv",), "the webroot plugin's path option lands in the typed field"
    assert config.plugin_options == {"nginx": {"port": "8080", "on": "True"}}
    assert parse(render(config, FILES)) == config


def test_options_of_other_plugins_and_line_breaks_are_refused() -> None:
    with pytest.raises(StorageError, match="neither the authenticator nor the installer"):
        render(RenewalConfig(server="s", authenticator="standalone", plugin_options={"nginx": {"a": "b"}}), FILES)
    with pytest.raises(StorageError, match="line breaks"):
        render(RenewalConfig(server="s", hooks=Hooks(pre="a\nb")), FILES)


def test_key_types() -> None:
    base = RenewalConfig(server="s")
    for key_type in ("rsa2048", "rsa3072", "rsa4096", "ec256", "ec384"):
        config = base.with_key_type(key_type)
        assert config.cert_key_type == key_type
        assert parse(render(config, FILES)).cert_key_type == key_type
    with pytest.raises(StorageError, match="rsa_key_size 1024"):
        _ = RenewalConfig(server="s", key_type="rsa", rsa_key_size=1024).cert_key_type
    with pytest.raises(StorageError, match="secp521r1"):
        _ = RenewalConfig(server="s", elliptic_curve="secp521r1").cert_key_type


def test_save_is_atomic_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "example.com.conf"
    save(path, FULL, FILES)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    save(path, RenewalConfig(server="s"), FILES)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert load(path) == RenewalConfig(server="s")
    assert [p.name for p in tmp_path.iterdir()] == ["example.com.conf"]
    with pytest.raises(StorageError, match="cannot read"):
        load(tmp_path / "missing.conf")


_values = st.text(st.characters(codec="utf-8"))


@given(st.one_of(_values, st.lists(_values, max_size=4).map(tuple)))
def test_any_single_line_value_survives_both_parsers(value: str | tuple[str, ...]) -> None:
    items = (value,) if isinstance(value, str) else value
    if any(len(item.splitlines()) > 1 or item.splitlines() not in ([], [item]) for item in items):
        with pytest.raises(ValueError, match="cannot span lines"):
            _confobj.format_entry("key", value)
        return
    if any("'''" in item and '"""' in item for item in items):
        return  # no quoting can hold both triple quotes; format_value refuses it
    if isinstance(value, tuple) and any(('"' in item and "'" in item) for item in value):
        with pytest.raises(ValueError, match="both quote characters"):
            _confobj.format_entry("key", value)  # ConfigObj cannot hold them either (no triple quotes in lists)
        return
    line = _confobj.format_entry("key", value)
    assert _confobj.parse(line).top["key"] == value
    theirs = configobj.ConfigObj([line])["key"]
    assert (tuple(theirs) if isinstance(theirs, list) else theirs) == value
