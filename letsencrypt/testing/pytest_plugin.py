"""pytest fixtures for plugin authors: a running test CA and the real client configured against it.

Installed with the ``letsencrypt`` distribution and registered under ``pytest11``, so pytest loads
it by itself in any environment where the client is installed (``-p no:letsencrypt`` turns it off).
Every fixture is lazy: nothing starts unless a test asks for it.

- ``ca_stub_server`` (session): ``ca-stub serve`` on loopback (``letsencrypt.testing.CAStub``:
  ``directory_url``, ``ca_bundle``, ``http_port``/``tls_port`` where it validates, ``roots_pem()``,
  ``certificate_status(serial)``). Every name resolves to 127.0.0.1. Its extra ``serve`` flags come
  from the ``ca_stub_args`` fixture (default: 5 % of nonces rejected, as Pebble does), which a
  ``conftest.py`` may override.
- ``ca_stub_dns`` (session): another ca_stub whose dns-01 lookups go to an in-process DNS server
  (``letsencrypt.testing.dns``), for DNS authenticators. Publish records with ``dns_txt``.
- ``dns_txt`` (function): that DNS server (``letsencrypt.testing.dns.DnsServer``): ``set_txt(name,
  value)``, ``clear_txt(name)``, ``add_source(json_zone_file(path))`` to serve what a plugin wrote to
  a file, ``queries`` (what the CA asked). Emptied after each test. Requesting it starts ``ca_stub_dns``.
- ``letsencrypt_cli`` (function): a ``letsencrypt.testing.LetsencryptCli`` with temporary config,
  work and logs directories; ``run("certonly", "-a", "my-plugin", "-d", "x.example.com")`` runs
  ``python -m letsencrypt`` against the test CA (``--server``, ``--server-ca-bundle``, ``-n
  --agree-tos -m``, the standalone ports) and returns the ``CompletedProcess``; ``live(name)`` gives
  the lineage's paths. It talks to ``ca_stub_dns`` when the test uses that (directly or through
  ``dns_txt``), otherwise to ``ca_stub_server``.
- ``challenge_ports`` (function): ``ChallengePorts(http, tls, address)`` of that same CA: where an
  HTTP- or TLS-based authenticator under test must listen.

Imports: stdlib, pytest and ``letsencrypt.testing``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from letsencrypt.testing.ca_stub import CAStub, run_ca_stub
from letsencrypt.testing.client import ChallengePorts, LetsencryptCli

if TYPE_CHECKING:
    from letsencrypt.testing.dns import DnsServer

__all__ = [
    "ca_stub_args",
    "ca_stub_dns",
    "ca_stub_server",
    "challenge_ports",
    "dns_txt",
    "letsencrypt_cli",
]

DEFAULT_CA_STUB_ARGS = ("--bad-nonce-rate", "5")


@pytest.fixture(scope="session")
def ca_stub_args() -> Sequence[str]:
    """Extra ``ca-stub serve`` flags for ``ca_stub_server`` and ``ca_stub_dns``; override in a conftest.py."""
    return DEFAULT_CA_STUB_ARGS


@pytest.fixture(scope="session")
def ca_stub_server(tmp_path_factory: pytest.TempPathFactory, ca_stub_args: Sequence[str]) -> Iterator[CAStub]:
    """A ca_stub process on loopback for the whole session; stopped (by pid) at its end."""
    with run_ca_stub(tmp_path_factory.mktemp("ca_stub"), extra_args=list(ca_stub_args)) as ca:
        yield ca


@pytest.fixture(scope="session")
def _letsencrypt_dns_server() -> Iterator[DnsServer]:
    from letsencrypt.testing.dns import serve_dns

    with serve_dns() as server:
        yield server


@pytest.fixture(scope="session")
def ca_stub_dns(
    tmp_path_factory: pytest.TempPathFactory, ca_stub_args: Sequence[str], _letsencrypt_dns_server: DnsServer
) -> Iterator[CAStub]:
    """A ca_stub whose TXT lookups (dns-01) go to the in-process DNS server behind ``dns_txt``."""
    args = [*ca_stub_args, "--dns-server", _letsencrypt_dns_server.address]
    with run_ca_stub(tmp_path_factory.mktemp("ca_stub_dns"), extra_args=args) as ca:
        yield ca


@pytest.fixture
def dns_txt(ca_stub_dns: CAStub, _letsencrypt_dns_server: DnsServer) -> Iterator[DnsServer]:
    """The DNS server ``ca_stub_dns`` asks for TXT records; its records and sources are dropped afterwards."""
    _letsencrypt_dns_server.clear()
    yield _letsencrypt_dns_server
    _letsencrypt_dns_server.clear()


def _test_ca(request: pytest.FixtureRequest) -> CAStub:
    """``ca_stub_dns`` when the test uses it, else ``ca_stub_server`` (each started on first use)."""
    name = "ca_stub_dns" if "ca_stub_dns" in request.fixturenames else "ca_stub_server"
    ca: CAStub = request.getfixturevalue(name)
    return ca


@pytest.fixture
def letsencrypt_cli(request: pytest.FixtureRequest, tmp_path: Path) -> LetsencryptCli:
    """The real client, with its directories under ``tmp_path/letsencrypt``, configured for the test CA."""
    return LetsencryptCli(_test_ca(request), tmp_path / "letsencrypt")


@pytest.fixture
def challenge_ports(request: pytest.FixtureRequest) -> ChallengePorts:
    """Where the test CA connects for http-01 (``http``) and the TLS-based challenges (``tls``)."""
    ca = _test_ca(request)
    return ChallengePorts(http=ca.http_port, tls=ca.tls_port)
