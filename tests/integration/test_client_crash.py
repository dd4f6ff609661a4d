"""Crash safety: ``kill -9`` the real client at each step of a renewal; the lineage stays usable.

``renew --force-renewal`` runs as a subprocess with ``LETSENCRYPT_TEST_CRASH_AT=<step>``, which
makes the client SIGKILL itself at that step (``letsencrypt._crashpoints``): after the order is
created, after the challenges are answered, after finalization, after the download, and at the
steps of the storage journal while the new version is saved. After each kill, before anything
repairs it:

- ``live/NAME/{cert,chain,fullchain,privkey}.pem`` are one version, the certificate matches the
  key, the key is 0600 and ``openssl verify`` accepts the chain against the CA's root;
- ``letsencrypt certificates`` works;

and the next ``renew --force-renewal`` succeeds and moves the lineage to a new version. Then the
same again with kills at random moments.

One lineage goes through every case in turn (each case leaves it consistent, which is what the
next one relies on). The CA is a ca_stub of this module's that never reuses an authorization, so
every renewal passes the ``challenges-answered`` step.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from integration._procs import require_binary
from integration.ca_stub_harness import start_ca_stub
from integration.client_harness import ClientRunner, describe, lineage_version
from integration.pebble_harness import CHALLTESTSRV, Pebble
from letsencrypt._crashpoints import CRASH_ENV

NAME = "crash.example.com"

CLIENT_STEPS = ["order-created", "challenges-answered", "finalized", "downloaded"]
#: Steps of ``Lineage.save_successor`` (its ``_fail_at`` seam), one per distinct state on disk: nothing
#: yet; some archive files; a temporary file; the journal "ready"; the generation folder built; the
#: switch done; the renewal configuration half written; old generations left. Every single step is
#: killed in-process by tests/unit/letsencrypt/test_storage_crash.py, which also pins their names.
STORAGE_STEPS = [
    "journal:writing",
    "archive:cert",
    "archive:privkey",
    "archive:privkey:before-rename",
    "journal:ready",
    "live:generation",
    "live:switch",
    "renewal-conf",
    "renewal-conf:before-rename",
    "cleanup",
    "journal:remove",
]
#: From this storage step on, the new version is already live when the process dies.
COMMITTED_FROM = "storage:renewal-conf"
STEPS = CLIENT_STEPS + [f"storage:{step}" for step in STORAGE_STEPS]


@pytest.fixture(scope="module")
def crash_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """ca_stub (5 % bad nonces) that never reuses an authorization: every renewal answers a challenge."""
    require_binary(CHALLTESTSRV, "pebble")
    with start_ca_stub(tmp_path_factory.mktemp("crash-ca_stub"), extra_args=("--authorization-reuse", "0")) as ca:
        yield ca


@pytest.fixture(scope="module")
def lineage(crash_ca: Pebble, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientRunner]:
    """A client whose config directory holds the lineage NAME, obtained with standalone http-01."""
    runner = ClientRunner(tmp_path_factory.mktemp("crash"), crash_ca)
    result = runner.run("certonly", "--standalone", "--http-01-port", str(crash_ca.http_port),
                        "--http-01-address", "127.0.0.1", "-d", NAME)
    assert result.returncode == 0, describe(result)
    yield runner


def assert_usable(runner: ClientRunner) -> int:
    """The lineage as web servers and the client see it right after a kill; returns its version."""
    runner.check_lineage(NAME, [NAME])
    listed = runner.run("certificates", agree=False, email=None)
    assert listed.returncode == 0, describe(listed)
    assert NAME in listed.stdout, describe(listed)
    return lineage_version(runner.live(NAME))


def renew_succeeds(runner: ClientRunner, before: int) -> None:
    result = runner.run("renew", "--force-renewal")
    assert result.returncode == 0, describe(result)
    assert lineage_version(runner.live(NAME)) > before
    runner.check_lineage(NAME, [NAME])
    assert not list(runner.archive(NAME).glob(".pending")), "a finished save left its journal"


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step(lineage: ClientRunner, step: str) -> None:
    before = lineage_version(lineage.live(NAME))
    killed = lineage.run("renew", "--force-renewal", env={CRASH_ENV: step})
    assert killed.returncode == -signal.SIGKILL, f"the crash point {step} was never reached\n{describe(killed)}"
    after = assert_usable(lineage)
    committed = STEPS.index(step) >= STEPS.index(COMMITTED_FROM)
    assert after == before + committed, f"after a kill at {step} the lineage went from {before} to {after}"
    renew_succeeds(lineage, after)


def test_kill_at_random_moments(lineage: ClientRunner) -> None:
    rng = random.Random()
    for _ in range(3):
        before = lineage_version(lineage.live(NAME))
        process = lineage.popen("renew", "--force-renewal")
        time.sleep(rng.uniform(0.2, 1.0))
        process.send_signal(signal.SIGKILL)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        after = assert_usable(lineage)
        assert after in (before, before + 1)
        renew_succeeds(lineage, after)
