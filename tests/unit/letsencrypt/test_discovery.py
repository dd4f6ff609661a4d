"""Plugin discovery through entry points: built-ins found, broken plugins reported and skipped."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_fakes import make_context, make_task

from letsencrypt.acme import challenges
from letsencrypt.plugin_api import ENTRY_POINT_GROUP, Option, PluginError
from letsencrypt.plugins import discovery

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "letsencrypt-dns-example"

GOOD_PLUGIN = '''
from letsencrypt.plugin_api import Option

class GoodAuthenticator:
    name = "good"
    description = "a well-behaved third-party authenticator"
    options = (Option("zone", "zone name", required=True), Option("ttl", "record TTL", type="int", default=60))

    def __init__(self, context): self.context = context
    def prepare(self): pass
    def supported_challenges(self, identifier): return ["dns-01"]
    def perform(self, tasks): return [{} for _ in tasks]
    def cleanup(self, tasks): pass
'''

INSTALLER_PLUGIN = """
class Installer:
    name = "{name}"
    description = "an installer"
    options = ()
    def __init__(self, context): pass
    def prepare(self): pass
""" + "".join(
    f"    def {method}(self, *args, **kwargs): pass\n" for method in discovery.INSTALLER_METHODS
)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` where tests install distributions; their modules are unloaded afterwards."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith(("thirdparty_", "letsencrypt_dns_example")):
            del sys.modules[name]


def install(site: Path, distribution: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Lay out ``distribution`` as an installed dist-info with entry points, plus its modules."""
    info = site / f"{distribution.replace('-', '_')}-1.0.dist-info"  # as installers name it (PEP 427)
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def test_the_built_in_authenticators_are_found_through_their_entry_points() -> None:
    registry = discovery.discover()
    built_ins = [
        ("standalone", "StandaloneAuthenticator"),
        ("webroot", "WebrootAuthenticator"),
        ("manual", "ManualAuthenticator"),
    ]
    for name, class_name in built_ins:
        entry = registry.get(name)
        assert entry is not None, f"{name} is not registered: pip install -e . registers the entry points"
        assert entry.is_authenticator and not entry.is_installer
        assert entry.distribution == "letsencrypt"
        assert entry.entry_point == f"letsencrypt.plugins.{name}:{class_name}"
        assert entry.plugin_class.__name__ == class_name
        assert entry.description
    assert {"standalone", "webroot", "manual"} <= {entry.name for entry in registry.authenticators()}
    assert not {broken.name for broken in registry.broken} & {"standalone", "webroot", "manual"}


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install(
        site,
        "thirdparty-mixed",
        {
            "missing-dep": "thirdparty_missing:Plugin",
            "syntax": "thirdparty_syntax:Plugin",
            "crashes": "thirdparty_crash:Plugin",
            "good": "thirdparty_good:GoodAuthenticator",
        },
        {
            "thirdparty_missing": "import a_module_that_is_not_installed\n",
            "thirdparty_syntax": "def broken(:\n",
            "thirdparty_crash": "raise RuntimeError('no API token configured')\n",
            "thirdparty_good": GOOD_PLUGIN,
        },
    )
    with caplog.at_level(logging.WARNING, logger="letsencrypt.plugins.discovery"):
        registry = discovery.discover()

    broken = {plugin.name: plugin for plugin in registry.broken}
    assert isinstance(broken["missing-dep"].error, ImportError)
    assert isinstance(broken["syntax"].error, SyntaxError)
    assert isinstance(broken["crashes"].error, RuntimeError)
    assert broken["crashes"].reason == "RuntimeError: no API token configured"
    assert {plugin.distribution for plugin in broken.values()} == {"thirdparty-mixed"}
    assert "plugin missing-dep (from thirdparty-mixed) is skipped: ModuleNotFoundError" in caplog.text

    good = registry.get("good")
    assert good is not None and good.is_authenticator and good.distribution == "thirdparty-mixed"
    assert {"standalone", "webroot", "manual", "good"} <= {entry.name for entry in registry}
    assert "missing-dep" not in registry


def test_a_third_party_cannot_shadow_a_built_in(site: Path) -> None:
    install(site, "thirdparty-shadow", {"standalone": "thirdparty_shadow:Plugin"}, {"thirdparty_shadow": ""})
    registry = discovery.discover()
    entry = registry.get("standalone")
    assert entry is not None and entry.distribution == "letsencrypt"
    (clash,) = [plugin for plugin in registry.broken if plugin.name == "standalone"]
    assert clash.distribution == "thirdparty-shadow"
    assert isinstance(clash.error, PluginError)
    assert "already taken by letsencrypt.plugins.standalone:StandaloneAuthenticator" in clash.error.message


def test_two_third_parties_with_one_name_keep_the_first_found(site: Path) -> None:
    source = GOOD_PLUGIN.replace('name = "good"', 'name = "dns-x"')
    install(site, "thirdparty-one", {"dns-x": "thirdparty_one:GoodAuthenticator"}, {"thirdparty_one": source})
    install(site, "thirdparty-two", {"dns-x": "thirdparty_two:GoodAuthenticator"}, {"thirdparty_two": source})
    found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "dns-x"]
    assert len(found) == 2

    registry = discovery.discover(entry_points=found)
    kept = registry.get("dns-x")
    assert kept is not None and kept.entry_point == found[0].value
    (clash,) = registry.broken
    assert found[1].dist is not None
    assert clash.distribution == found[1].dist.name
    assert f"already taken by {found[0].value}" in str(clash.error)


@pytest.mark.parametrize(
    ("source", "target", "problem"),
    [
        ("Plugin = 42\n", "thirdparty_bad:Plugin", "is not a class"),
        ("class Plugin:\n    name = 'other'\n", "thirdparty_bad:Plugin", "declares name 'other'"),
        ("class Plugin:\n    name = 'bad'\n", "thirdparty_bad:Plugin", "lacks description, options, prepare"),
        (
            "class Plugin:\n    name = 'bad'\n    description = ''\n    options = ()\n    def prepare(self): pass\n",
            "thirdparty_bad:Plugin",
            "neither an authenticator nor an installer",
        ),
        (GOOD_PLUGIN.replace('name = "good"', 'name = "bad"').replace("options = (", "options = ('zone', "),
         "thirdparty_bad:GoodAuthenticator", "options must be a sequence"),
        (GOOD_PLUGIN.replace('name = "good"', 'name = "bad"').replace('"ttl"', '"zone"'),
         "thirdparty_bad:GoodAuthenticator", "declares option zone more than once"),
    ],
)  # fmt: skip
def test_a_class_that_does_not_fit_the_contract_is_reported(site: Path, source: str, target: str, problem: str) -> None:
    (site / "thirdparty_bad.py").write_text(source)
    entry_point = importlib.metadata.EntryPoint("bad", target, ENTRY_POINT_GROUP)
    registry = discovery.discover(entry_points=[entry_point])
    assert len(registry) == 0
    (broken,) = registry.broken
    assert problem in str(broken.error)


def test_installers_are_classified_by_their_methods(site: Path) -> None:
    (site / "thirdparty_installer.py").write_text(INSTALLER_PLUGIN.format(name="fake-server"))
    (site / "thirdparty_both.py").write_text(
        INSTALLER_PLUGIN.format(name="both")
        + "".join(f"    def {method}(self, *args): pass\n" for method in discovery.AUTHENTICATOR_METHODS)
    )
    registry = discovery.discover(
        entry_points=[
            importlib.metadata.EntryPoint("fake-server", "thirdparty_installer:Installer", ENTRY_POINT_GROUP),
            importlib.metadata.EntryPoint("both", "thirdparty_both:Installer", ENTRY_POINT_GROUP),
        ]
    )
    assert [entry.name for entry in registry.installers()] == ["both", "fake-server"]
    assert [entry.name for entry in registry.authenticators()] == ["both"]


def test_plugin_options_gives_the_cli_its_flags(site: Path) -> None:
    (site / "thirdparty_opts.py").write_text(GOOD_PLUGIN)
    registry = discovery.discover(
        entry_points=[importlib.metadata.EntryPoint("good", "thirdparty_opts:GoodAuthenticator", ENTRY_POINT_GROUP)]
    )
    flags = [option.flag(plugin) for plugin, option in discovery.plugin_options(registry)]
    assert flags == ["--good-zone", "--good-ttl"]


def test_resolve_options_fills_defaults_and_converts_text() -> None:
    options = (
        Option("zone", "zone", required=True),
        Option("ttl", "ttl", type="int", default=60),
        Option("path", "paths", type="path", multiple=True),
        Option("dry", "flag", type="bool", default=False),
    )
    assert discovery.resolve_options("good", options, {"zone": "example.com"}) == {
        "zone": "example.com", "ttl": 60, "path": None, "dry": False,
    }  # fmt: skip
    given = {"zone": "z", "ttl": "120", "path": ["/a", "/b"], "dry": "yes"}  # as a renewal configuration has them
    resolved = discovery.resolve_options("good", options, given)
    assert resolved == {"zone": "z", "ttl": 120, "path": (Path("/a"), Path("/b")), "dry": True}

    with pytest.raises(PluginError) as caught:
        discovery.resolve_options("good", options, {})
    assert caught.value.hint == "give --good-zone"
    with pytest.raises(PluginError, match="plugin good has no option colour"):
        discovery.resolve_options("good", options, {"zone": "z", "colour": "red"})
    with pytest.raises(PluginError, match="expects int"):
        discovery.resolve_options("good", options, {"zone": "z", "ttl": "soon"})


def test_the_documented_example_plugin_is_found_through_its_entry_point_and_works(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/letsencrypt-dns-example as an installer lays it out: its own pyproject's entry point."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert entry_points == {"dns-example": "letsencrypt_dns_example:DnsExampleAuthenticator"}
    install(site, project["project"]["name"], entry_points, {})
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.delitem(sys.modules, "letsencrypt_dns_example", raising=False)

    entry = discovery.discover().get("dns-example")
    assert entry is not None and entry.is_authenticator and entry.distribution == "letsencrypt-dns-example"
    flags = {option.flag(entry.name) for option in entry.options}
    assert flags == {"--dns-example-zone-file", "--dns-example-propagation-seconds"}

    zone = site / "zone.json"
    options = discovery.resolve_options(entry.name, entry.options, {"zone-file": str(zone)})
    plugin = entry.plugin_class(make_context(site, options))
    plugin.prepare()
    task = make_task("*.example.com", "dns-01")
    assert plugin.perform([task]) == [{}]
    challenges.check_dns01(json.loads(zone.read_text())[task.dns01_record_name], task.key_authorization)
    plugin.cleanup([task])
    assert json.loads(zone.read_text()) == {}
