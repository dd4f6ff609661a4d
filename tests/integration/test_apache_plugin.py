"""``letsencrypt --apache`` against a real apache2 with a server root of its own, from ca_stub and Pebble.

Each test builds a Debian-shaped server root on free loopback ports (``apache_plugin_harness``),
starts apache2 in the foreground, runs the real CLI as a subprocess, then checks what Apache serves
(the certificate presented for each name, the redirect, HSTS) and what is on disk (the TLS twins,
untouched bytes, nothing left by the challenges). The CAs validate on the ports Apache listens on.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration._procs import free_port, require_binary
from integration.apache_plugin_harness import (
    ApacheServer,
    add_site,
    docroot,
    enable_module,
    make_server_root,
    snapshot,
    world_readable_dir,
)
from integration.client_harness import ClientRunner, describe
from integration.pebble_harness import Pebble
from letsencrypt.testing import CAStub, run_ca_stub

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def ports() -> tuple[int, int]:
    """The http and https ports of every apache2 of this module: where ca_stub validates."""
    require_binary("apache2", "apache2")
    require_binary("apache2ctl", "apache2")
    return free_port(), free_port()


@pytest.fixture(scope="module")
def ca(ports: tuple[int, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CAStub]:
    with run_ca_stub(tmp_path_factory.mktemp("apache-ca"), http_port=ports[0], tls_port=ports[1],
                     extra_args=["--legacy-challenges", "--bad-nonce-rate", "5"]) as server:
        yield server


@pytest.fixture
def base() -> Iterator[Path]:
    with world_readable_dir() as path:
        yield path


class Site:
    """One test's world: the server root, apache2, the client's directories, and the CLI."""

    def __init__(self, base: Path, ca: CAStub | Pebble, http_port: int, https_port: int) -> None:
        self.base = base
        self.root = make_server_root(base, http_port, https_port)
        self.server = ApacheServer(self.root, http_port, https_port)
        self.client = ClientRunner(base / "client", ca)
        self.http_port, self.https_port = http_port, https_port

    def site(self, name: str, text: str, **kwargs: bool) -> Path:
        return add_site(self.root, name, textwrap.dedent(text).format(base=self.base, http=self.http_port),
                        **kwargs)

    def docroot(self, name: str) -> Path:
        return docroot(self.base, name)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = self.client.run("--apache", "--apache-server-root", str(self.root), "--http-01-port",
                                 str(self.http_port), "--https-port", str(self.https_port), *args)
        if check:
            assert result.returncode == 0, describe(result)
        return result

    def served(self, name: str) -> bytes:
        return self.server.leaf(name)

    def lineage_leaf(self, name: str) -> bytes:
        pem = (self.client.live(name) / "cert.pem").read_text()
        return ssl.PEM_cert_to_DER_cert(pem)

    def checkpoints(self) -> list[str]:
        folder = self.client.work_dir / "apache-checkpoints"
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def world(base: Path, ca: CAStub, ports: tuple[int, int]) -> Iterator[Site]:
    site = Site(base, ca, *ports)
    yield site
    site.server.stop()


def _site_a(world: Site, name: str = "a.example") -> Path:
    world.docroot(name)
    return world.site(f"{name}.conf", f"""\
        # the site {name}
        <VirtualHost *:{{http}}>
        \tServerName {name}
        \t# the files of {name}
        \tDocumentRoot {{base}}/www/{name}
        </VirtualHost>
        """)


def test_obtain_install_redirect_and_hsts_from_ca_stub(world: Site) -> None:
    original = _site_a(world)
    before = original.read_bytes()
    world.server.start()
    world.run("-d", "a.example", "--redirect", "--hsts")

    assert world.served("a.example") == world.lineage_leaf("a.example")
    plain = world.server.get("a.example", "/page?x=1")
    assert plain.status == 301
    assert plain.headers["location"] == f"https://a.example:{world.https_port}/page?x=1"
    secure = world.server.get("a.example", tls=True)
    assert (secure.status, secure.body) == (200, b"site a.example\n")
    assert secure.headers["strict-transport-security"] == "max-age=31536000"
    twin = world.root / "sites-available" / "a.example-le-ssl.conf"
    assert (world.root / "sites-enabled" / "a.example-le-ssl.conf").resolve() == twin
    assert "\t# the files of a.example\n" in twin.read_text(), "the copy keeps the original's comments and layout"
    added = original.read_bytes()
    assert added.startswith(before[:before.rindex(b"</VirtualHost>")]), "only lines added, none changed"
    assert world.checkpoints() == ["000001"], "one checkpoint; the challenge's temporary one is gone"
    assert not (world.client.work_dir / "apache-challenges").exists()
    assert "a.example" in world.client.renewal_conf_path("a.example").read_text()


def test_two_vhosts_in_one_file_get_two_tls_twins(world: Site) -> None:
    for name in ("one.example", "two.example"):
        world.docroot(name)
    world.site("two.conf", """\
        <VirtualHost *:{http}>
            ServerName one.example
            DocumentRoot {base}/www/one.example
        </VirtualHost>

        <VirtualHost *:{http}>
            ServerName two.example
            DocumentRoot {base}/www/two.example
        </VirtualHost>
        """)
    world.server.start()
    world.run("-d", "one.example", "-d", "two.example", "--redirect")
    for name in ("one.example", "two.example"):
        assert world.served(name) == world.lineage_leaf("one.example")
        assert world.server.get(name, tls=True).body == f"site {name}\n".encode()
        assert world.server.get(name).headers["location"].startswith(f"https://{name}:")
    assert sorted(p.name for p in (world.root / "sites-enabled").iterdir()) == [
        "two-1-le-ssl.conf", "two-2-le-ssl.conf", "two.conf"]


def test_vhosts_in_apache2_conf_and_a_subdirectory_with_define_and_a_wildcard_alias(world: Site) -> None:
    world.docroot("main.example")
    world.docroot("wild.example")
    main_conf = world.root / "apache2.conf"
    main_conf.write_text(main_conf.read_text() + textwrap.dedent(f"""\
        Define SITES {world.base}/www
        Define HTTP_PORT {world.http_port}
        <VirtualHost *:${{HTTP_PORT}}>
            ServerName main.example
            DocumentRoot ${{SITES}}/main.example
        </VirtualHost>
        IncludeOptional conf.d/*/*.conf
        """))
    sub = world.root / "conf.d" / "wild"
    sub.mkdir(parents=True)
    (sub / "wild.conf").write_text(textwrap.dedent(f"""\
        <VirtualHost *:{world.http_port}>
            ServerName wild.example
            ServerAlias *.wild.example
            DocumentRoot ${{SITES}}/wild.example
        </VirtualHost>
        """))
    world.server.start()
    world.run("-d", "main.example", "-d", "www.wild.example")
    for name, body in (("main.example", "main.example"), ("www.wild.example", "wild.example")):
        assert world.served(name) == world.lineage_leaf("main.example")
        assert world.server.get(name, tls=True).body == f"site {body}\n".encode()


def test_a_file_the_lens_rejects_stops_the_run_before_anything_changes(world: Site) -> None:
    _site_a(world)
    world.server.start()
    broken = world.site("broken.conf", """\
        <VirtualHost *:{http}>
            ServerName broken.example
        """)
    before = snapshot(world.root)
    result = world.run("-d", "a.example", check=False)
    assert result.returncode != 0
    assert f"{broken.parent.parent / 'sites-enabled' / 'broken.conf'}" in result.stderr
    assert "nothing was changed" in result.stderr
    assert snapshot(world.root) == before
    assert not world.client.live("a.example").exists(), "stopped before asking the CA"


def test_an_install_that_makes_configtest_fail_is_rolled_back_byte_for_byte(world: Site) -> None:
    _site_a(world)
    (world.root / "conf-enabled" / "trap.conf").write_text(
        "<IfModule ssl_module>\n    SSLNoSuchDirective on\n</IfModule>\n")  # inert until mod_ssl is enabled
    world.server.start()
    before = snapshot(world.root)
    result = world.run("-d", "a.example", "--redirect", check=False)
    assert result.returncode != 0, describe(result)
    assert "rolled back" in result.stderr and "SSLNoSuchDirective" in result.stderr
    assert snapshot(world.root) == before
    assert world.server.running() and world.server.get("a.example").status == 200
    assert world.client.live("a.example").exists(), "the certificate is kept for a later install"


def test_renewal_goes_through_the_plugin_and_serves_the_new_certificate(world: Site) -> None:
    _site_a(world)
    world.server.start()
    world.run("-d", "a.example", "--redirect")
    first = world.served("a.example")
    config = snapshot(world.root)
    result = world.client.run("renew", "--force-renewal")
    assert result.returncode == 0, describe(result)
    assert world.served("a.example") == world.lineage_leaf("a.example") != first
    assert snapshot(world.root) == config, "a renewal changes no configuration file"


@pytest.mark.parametrize("challenge", ["dvsni", "simpleHttps"])
def test_legacy_challenges_through_a_temporary_tls_vhost(world: Site, challenge: str) -> None:
    _site_a(world)
    world.server.start()
    before = snapshot(world.root)
    world.run("certonly", "-d", "a.example", "--preferred-challenges", challenge)
    assert world.client.live("a.example").exists()
    assert snapshot(world.root) == before, "the temporary vhost and mod_ssl are gone again"
    assert world.checkpoints() == []


def test_rollback_and_delete_know_what_the_plugin_installed(world: Site) -> None:
    _site_a(world)
    world.server.start()
    before = snapshot(world.root)
    world.run("-d", "a.example")
    refused = world.client.run("delete", "--cert-name", "a.example", "--apache-server-root", str(world.root))
    assert refused.returncode != 0 and "a.example-le-ssl.conf" in refused.stderr, describe(refused)
    rolled = world.client.run("rollback", "--apache", "--apache-server-root", str(world.root))
    assert rolled.returncode == 0, describe(rolled)
    assert snapshot(world.root) == before
    assert world.server.get("a.example").status == 200


def test_an_interrupted_change_is_rolled_back_by_the_next_run(world: Site) -> None:
    original = _site_a(world)
    world.server.start()
    before = snapshot(world.root)
    crash = textwrap.dedent(f"""\
        import os, sys
        from pathlib import Path
        from plugins.apache.transactions import Checkpoints
        def step(name):
            if name.startswith("write"):
                os._exit(9)
        Checkpoints(Path({str(world.client.work_dir / 'apache-checkpoints')!r}), step=step).commit(
            "half done", {{Path({str(original)!r}): b"garbage", Path({str(world.root / 'ports.conf')!r}): b"x"}})
        """)
    died = subprocess.run([sys.executable, "-c", crash], check=False, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert died.returncode == 9 and original.read_bytes() == b"garbage"
    result = world.run("-d", "a.example", "--no-redirect")
    assert "rolled back" in result.stderr and "half done" in result.stderr
    assert world.served("a.example") == world.lineage_leaf("a.example")
    assert snapshot(world.root)[f"sites-available/{original.name}"] == before[f"sites-available/{original.name}"]


def test_pebble_apache_redirect_end_to_end_timing(base: Path, pebble: Pebble) -> None:
    require_binary("apache2", "apache2")
    world = Site(base, pebble, pebble.http_port, pebble.tls_port)
    try:
        _site_a(world, "timed.example")
        webroot = world.docroot("timed.example")
        enable_module(world.root, "alias")
        world.server.start()
        world.client.run("register", check=True)
        started = time.monotonic()
        world.client.run("certonly", "--webroot", "-w", str(webroot), "-d", "baseline.example", check=True)
        baseline = time.monotonic() - started
        started = time.monotonic()
        world.run("-d", "timed.example", "--redirect")
        took = time.monotonic() - started
        assert world.served("timed.example") == world.lineage_leaf("timed.example")
        answer = world.server.get("timed.example")
        assert answer.status == 301 and answer.headers["location"].startswith("https://timed.example:")
        assert world.server.get("timed.example", tls=True).body == b"site timed.example\n"
        report = {"apache_redirect_seconds": round(took, 3), "webroot_certonly_seconds": round(baseline, 3),
                  "apache_over_webroot_seconds": round(took - baseline, 3)}
        print(f"\nTIMING {json.dumps(report)}")
        assert took < 30
    finally:
        world.server.stop()
