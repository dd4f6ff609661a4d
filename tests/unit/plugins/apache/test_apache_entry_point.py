"""The apache plugin as the client finds it: the entry point, its flags, its capabilities, its refusals."""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from apache_unit_root import context, make_root

from letsencrypt import plugin_api
from letsencrypt.plugin_api import MisconfigurationError, PluginError
from plugins.apache.plugin import ApachePlugin


def test_registered_under_the_letsencrypt_plugins_entry_point() -> None:
    (entry,) = [e for e in entry_points(group=plugin_api.ENTRY_POINT_GROUP) if e.name == "apache"]
    assert entry.load() is ApachePlugin
    assert [option.flag("apache") for option in ApachePlugin.options] == ["--apache-server-root", "--apache-ctl"]
    assert {option.name: option.default for option in ApachePlugin.options} == {
        "server-root": "/etc/apache2", "ctl": "apache2ctl"}


def test_the_optional_capabilities_are_there(tmp_path: Path) -> None:
    plugin = ApachePlugin(context(tmp_path, make_root(tmp_path)))
    assert isinstance(plugin, plugin_api.VerifiesDeployment)
    assert isinstance(plugin, plugin_api.DeleteAware)
    assert plugin.supported_enhancements() == ["redirect", "hsts", "uir", "staple-ocsp"]


def test_prepare_names_what_is_missing(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    missing_ctl = dataclasses.replace(context(tmp_path, root), options={"server-root": root,
                                                                        "ctl": "no-such-apache2ctl"})
    with pytest.raises(PluginError, match="no-such-apache2ctl") as caught:
        ApachePlugin(missing_ctl).prepare()
    assert "--apache-ctl" in (caught.value.hint or "")
    nowhere = dataclasses.replace(missing_ctl, options={"server-root": tmp_path / "nowhere",
                                                        "ctl": str(tmp_path / "bin" / "apache2")})
    with pytest.raises(MisconfigurationError, match="does not exist"):
        ApachePlugin(nowhere).prepare()
