"""The plugin class without a running nginx: its contract, saving, recovery and rollback byte for byte.

The binary is a stand-in script (``nginx -t`` and ``-T`` answer as told); what needs a real nginx
(reload, served certificates) is in tests/integration/test_nginx_plugin.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nginx_fakes import RecordingReporter, certificate_files, fake_ctl, http_conf, server_root

from letsencrypt.plugin_api import (
    Authenticator,
    DeleteAware,
    Installer,
    MisconfigurationError,
    PluginContext,
    VerifiesDeployment,
)
from plugins.nginx import NginxParseError
from plugins.nginx.plugin import NginxPlugin

SITE = http_conf("""\
    server {
        listen 127.0.0.1:80;
        server_name a.example www.a.example *.w.example;
        location / { }
    }
""")


def _plugin(tmp_path: Path, main: str = SITE, *, ctl_body: str = "exit 0", interactive: bool = False,
            answer: str = "", dry_run: bool = False, files: dict[str, str] | None = None) -> NginxPlugin:
    root = tmp_path / "nginx" if (tmp_path / "nginx").is_dir() else server_root(tmp_path, main, files)
    context = PluginContext(
        options={"server-root": root, "ctl": fake_ctl(tmp_path / "bin", ctl_body)},
        config_dir=tmp_path / "config", work_dir=tmp_path / "work", logs_dir=tmp_path / "logs",
        reporter=RecordingReporter(), interactive=interactive, dry_run=dry_run,
    )
    return NginxPlugin(context, input_fn=lambda _prompt: answer)


def _deploy(plugin: NginxPlugin, tmp_path: Path, domain: str = "a.example") -> None:
    fullchain, chain, key = certificate_files(tmp_path / "live" / domain, [domain])
    plugin.deploy_certificate(domain, cert_path=fullchain, key_path=key, chain_path=chain, fullchain_path=fullchain)


def test_the_plugin_is_both_and_declares_its_flags(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path)
    for protocol in (Authenticator, Installer):
        methods = [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]
        assert methods and all(callable(getattr(plugin, name, None)) for name in methods)
    for optional in (VerifiesDeployment, DeleteAware):
        assert isinstance(plugin, optional)
    assert [option.flag("nginx") for option in plugin.options] == ["--nginx-server-root", "--nginx-ctl"]
    assert plugin.options[0].default == Path("/etc/nginx") and plugin.options[1].default == "nginx"


def test_prepare_stops_on_an_unparseable_include_with_its_location(tmp_path: Path) -> None:
    main = http_conf("    include sites/*.conf;\n")
    plugin = _plugin(tmp_path, main, files={"sites/bad.conf": "server {\n    listen 80\n}\n"})
    with pytest.raises(NginxParseError) as caught:
        plugin.prepare()
    assert caught.value.path == str(tmp_path / "nginx" / "sites" / "bad.conf") and caught.value.line == 3


def test_prepare_without_nginx_conf_says_which_flag_to_give(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path)
    (tmp_path / "nginx" / "nginx.conf").unlink()
    with pytest.raises(MisconfigurationError) as caught:
        plugin.prepare()
    assert caught.value.hint is not None and "--nginx-server-root" in caught.value.hint


def test_names_lists_the_literal_names(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path)
    plugin.prepare()
    assert plugin.names() == {"a.example", "www.a.example"}


def test_save_then_recovery_routine_restores_every_byte(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path)
    plugin.prepare()
    conf = tmp_path / "nginx" / "nginx.conf"
    before = conf.read_bytes()
    _deploy(plugin, tmp_path)
    plugin.enhance("a.example", "hsts")
    plugin.save("install")
    assert conf.read_bytes() != before
    assert (tmp_path / "nginx" / "options-ssl-nginx.conf").is_file()
    assert (tmp_path / "nginx" / "ssl-dhparams.pem").is_file()
    plugin.config_test()
    plugin.recovery_routine()  # e.g. the reload failed
    assert conf.read_bytes() == before
    assert not (tmp_path / "nginx" / "options-ssl-nginx.conf").exists(), "files it created go too"


def test_unsaved_edits_are_dropped_by_recovery_routine(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path)
    plugin.prepare()
    before = (tmp_path / "nginx" / "nginx.conf").read_bytes()
    _deploy(plugin, tmp_path)
    plugin.recovery_routine()
    plugin.save("nothing")
    assert (tmp_path / "nginx" / "nginx.conf").read_bytes() == before


def test_rollback_checkpoints_reverts_saved_installs_newest_first(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path)
    plugin.prepare()
    conf = tmp_path / "nginx" / "nginx.conf"
    original = conf.read_bytes()
    _deploy(plugin, tmp_path)
    plugin.save("install")
    installed = conf.read_bytes()
    plugin.enhance("a.example", "hsts")
    plugin.save("hsts")
    later = _plugin(tmp_path)  # a later run: `letsencrypt rollback`
    later.prepare()
    later.rollback_checkpoints(1)
    assert conf.read_bytes() == installed
    later.rollback_checkpoints(1)
    assert conf.read_bytes() == original


def test_a_crashed_install_is_rolled_back_by_the_next_prepare(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path)
    plugin.prepare()
    conf = tmp_path / "nginx" / "nginx.conf"
    original = conf.read_bytes()
    _deploy(plugin, tmp_path)
    plugin.save("install")  # ... and the process dies before restart() confirms it
    for manifest in (tmp_path / "work" / "nginx-checkpoints").glob("*/manifest.json"):
        data = json.loads(manifest.read_text())
        data["pid"] = 2**22 + 7
        manifest.write_text(json.dumps(data))
    next_run = _plugin(tmp_path)
    next_run.prepare()
    assert conf.read_bytes() == original
    assert next_run._context.reporter.warnings[0].startswith("rolled back nginx configuration changes")  # type: ignore[attr-defined]


def test_no_block_for_a_name_offers_to_create_one_interactively(tmp_path: Path) -> None:
    refused = _plugin(tmp_path / "n", interactive=True, answer="n")
    refused.prepare()
    with pytest.raises(MisconfigurationError, match="no nginx server block"):
        _deploy(refused, tmp_path, "new.example")
    accepted = _plugin(tmp_path / "y", interactive=True, answer="y")
    accepted.prepare()
    _deploy(accepted, tmp_path, "new.example")
    accepted.save("install")
    text = (tmp_path / "y" / "nginx" / "nginx.conf").read_text()
    assert "server_name new.example; # managed by letsencrypt" in text
    assert "listen 127.0.0.1:80; # managed by letsencrypt" in text
    assert "listen 127.0.0.1:443 ssl; # managed by letsencrypt" in text


def test_dry_run_saves_nothing(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, dry_run=True)
    plugin.prepare()
    before = (tmp_path / "nginx" / "nginx.conf").read_bytes()
    _deploy(plugin, tmp_path)
    plugin.save("install")
    assert (tmp_path / "nginx" / "nginx.conf").read_bytes() == before
    assert not (tmp_path / "work" / "nginx-checkpoints").exists()


def test_config_test_failure_is_a_misconfiguration_quoting_nginx(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, ctl_body='case "$*" in *-t*) echo "nginx: [emerg] bad thing" >&2; exit 1;; esac')
    plugin.prepare()
    with pytest.raises(MisconfigurationError, match=r"\[emerg\] bad thing"):
        plugin.config_test()


def test_lineage_in_use_through_the_plugin(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path)
    plugin.prepare()
    _deploy(plugin, tmp_path)
    plugin.save("install")
    live = tmp_path / "live" / "a.example"
    fresh = _plugin(tmp_path)
    fresh.prepare()
    places = fresh.lineage_in_use([live])
    assert len(places) == 2 and all(p.startswith(f"{tmp_path}/nginx/nginx.conf:") for p in places)
    assert os.path.exists(places[0].rsplit(":", 1)[0])
