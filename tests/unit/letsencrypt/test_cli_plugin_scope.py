"""Which plugins a command line loads (letsencrypt.cli._context.named_plugins): only those it names."""

from __future__ import annotations

import pytest

from letsencrypt.cli._context import named_plugins

INSTALLED = ["apache", "dns-example", "manual", "nginx", "standalone", "webroot"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["certonly", "--standalone", "-d", "a.example"], {"standalone"}),
        (["-d", "a.example", "--standalone", "certonly"], {"standalone"}),
        (["certonly", "-a", "dns-example", "--dns-example-zone-file", "z.json", "-d", "a"], {"dns-example"}),
        (["certonly", "--authenticator=manual", "-d", "a"], {"manual"}),
        (["certonly", "-astandalone", "-d", "a"], {"standalone"}),
        (["certonly", "--webroot", "-w", "/srv/a", "-d", "a"], {"webroot"}),
        (["certonly", "--standalone", "--nginx-server-root", "/etc/nginx", "-d", "a"], {"standalone", "nginx"}),
        (["--nginx", "-d", "a"], {"nginx"}),
        (["run", "-a", "standalone", "-i", "apache", "-d", "a"], {"standalone", "apache"}),
    ],
)
def test_a_command_line_that_names_its_plugins_loads_only_those(argv: list[str], expected: set[str]) -> None:
    assert named_plugins(argv, INSTALLED) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["renew"],
        ["plugins"],
        ["certificates"],
        ["certonly", "--help"],
        ["certonly", "-d", "a.example"],  # no authenticator named: the error names the choices
        ["run", "--standalone", "-d", "a.example"],  # run without an installer
        ["-d", "a.example"],
    ],
)
def test_anything_else_loads_every_plugin(argv: list[str]) -> None:
    assert named_plugins(argv, INSTALLED) is None
