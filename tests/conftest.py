"""Fixtures shared by every suite.

- ``pebble`` (session): a running Pebble with its mock DNS server; see ``integration.pebble_harness.Pebble``.
- ``eab_pebble`` (session): a second Pebble that requires external account binding with the keys
  in its ``eab_keys`` (kid -> base64url HMAC key).

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
