"""Test helpers for this project and for third-party plugin authors.

- ``run_ca_stub(workdir) -> CAStub`` (``letsencrypt.testing.ca_stub``): a throwaway ``ca_stub`` on loopback.
- ``LetsencryptCli(ca, root)`` (``letsencrypt.testing.client``): the real ``letsencrypt`` command run
  as a subprocess against it; ``ChallengePorts``, ``LineagePaths``, ``CliFailed``.
- ``serve_dns() -> DnsServer`` and ``json_zone_file(path)`` (``letsencrypt.testing.dns``): a tiny DNS
  server answering the CA's dns-01 TXT lookups from a dict or a plugin's zone file.
- the pytest fixtures built on them (``ca_stub_server``, ``ca_stub_dns``, ``dns_txt``,
  ``letsencrypt_cli``, ``challenge_ports``) live in ``letsencrypt.testing.pytest_plugin``, which
  pytest loads by itself through the ``pytest11`` entry point.

The DNS names are imported on first use, so that ``import letsencrypt.testing`` (done by every
pytest run in an environment with the client) does not load dnspython.

Imports: stdlib, third-party, ``letsencrypt.testing``; never ``ca_stub`` (it only starts it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from letsencrypt.testing.ca_stub import CAStub, StartupError, free_port, run_ca_stub
from letsencrypt.testing.client import ChallengePorts, CliFailed, LetsencryptCli, LineagePaths

if TYPE_CHECKING:
    from letsencrypt.testing.dns import DnsServer, json_zone_file, serve_dns

__all__ = [
    "CAStub",
    "ChallengePorts",
    "CliFailed",
    "DnsServer",
    "LetsencryptCli",
    "LineagePaths",
    "StartupError",
    "free_port",
    "json_zone_file",
    "run_ca_stub",
    "serve_dns",
]

_LAZY = {"DnsServer": "letsencrypt.testing.dns", "json_zone_file": "letsencrypt.testing.dns",
         "serve_dns": "letsencrypt.testing.dns"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
