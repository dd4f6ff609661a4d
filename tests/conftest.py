"""Fixtures shared by every suite.

- ``pebble`` (session): a running Pebble with its mock DNS server; see ``integration.pebble_harness.Pebble``.
- ``eab_pebble`` (session): a second Pebble that requires external account binding with the keys
  in its ``eab_keys`` (kid -> base64url HMAC key).
- ``ca_stub_server`` / ``eab_ca_stub`` (session): the same for our own test CA (``ca-stub serve`` as
  a process, 5 % bad nonces, challtestsrv as its DNS server), in the same ``Pebble`` record shape.
- ``acme_server`` / ``eab_acme_server``: parametrized over both, for tests that must pass against
  Pebble and ca_stub alike.

Both skip with "needs pebble (apt-get install pebble)" when the binaries are missing, except under
CI (``CI=true``), where a missing binary fails the test: CI installs everything and skips none.
Tests under ``tests/integration/`` are marked ``integration`` automatically (``-m "not integration"``
runs only the fast ones).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from integration._procs import require_binary
from integration.ca_stub_harness import start_ca_stub
from integration.pebble_harness import CHALLTESTSRV, EAB_KEYS, PEBBLE, Pebble, start_pebble

_INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _require_pebble() -> None:
    require_binary(PEBBLE, "pebble")
    require_binary(CHALLTESTSRV, "pebble")


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A Pebble ACME server on loopback (no external account binding), shared by the session."""
    _require_pebble()
    with start_pebble(tmp_path_factory.mktemp("pebble")) as instance:
        yield instance


@pytest.fixture(scope="session")
def eab_pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A second Pebble that requires external account binding; ``eab_keys`` holds kid -> key."""
    _require_pebble()
    with start_pebble(tmp_path_factory.mktemp("eab-pebble"), eab_keys=EAB_KEYS) as instance:
        yield instance


@pytest.fixture(scope="session")
def ca_stub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """ca_stub (the real ``ca-stub serve`` process) on loopback, shaped like the ``pebble`` fixture."""
    require_binary(CHALLTESTSRV, "pebble")
    with start_ca_stub(tmp_path_factory.mktemp("ca_stub")) as instance:
        yield instance


@pytest.fixture(scope="session")
def eab_ca_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A second ca_stub that requires external account binding with ``EAB_KEYS``."""
    require_binary(CHALLTESTSRV, "pebble")
    with start_ca_stub(tmp_path_factory.mktemp("eab-ca_stub"), eab_keys=EAB_KEYS) as instance:
        yield instance


@pytest.fixture(params=["pebble", "ca_stub"])
def acme_server(request: pytest.FixtureRequest) -> Pebble:
    """Each test using this runs once against Pebble and once against ca_stub."""
    name = "pebble" if request.param == "pebble" else "ca_stub_server"
    server: Pebble = request.getfixturevalue(name)
    return server


@pytest.fixture(params=["pebble", "ca_stub"])
def eab_acme_server(request: pytest.FixtureRequest) -> Pebble:
    name = "eab_pebble" if request.param == "pebble" else "eab_ca_stub"
    server: Pebble = request.getfixturevalue(name)
    return server
