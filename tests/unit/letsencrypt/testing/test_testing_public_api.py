"""letsencrypt.testing's public names (what plugin authors import) are pinned, and each resolves."""

from __future__ import annotations

import importlib.metadata

import letsencrypt.testing
from letsencrypt.testing import pytest_plugin

PUBLIC = {
    "CAStub", "ChallengePorts", "CliFailed", "DnsServer", "LetsencryptCli", "LineagePaths", "StartupError",
    "free_port", "json_zone_file", "run_ca_stub", "serve_dns",
}
FIXTURES = {"ca_stub_args", "ca_stub_dns", "ca_stub_server", "challenge_ports", "dns_txt", "letsencrypt_cli"}


def test_public_names_are_pinned_and_importable() -> None:
    assert set(letsencrypt.testing.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(letsencrypt.testing, name) is not None


def test_the_pytest_plugin_is_registered_and_offers_the_documented_fixtures() -> None:
    entry_points = importlib.metadata.entry_points(group="pytest11")
    assert any(ep.value == "letsencrypt.testing.pytest_plugin" for ep in entry_points)
    assert set(pytest_plugin.__all__) == FIXTURES
