"""Test-only crash points: ``LETSENCRYPT_TEST_CRASH_AT=<name>`` makes the process kill itself there.

The crash-safety tests (``tests/integration/test_client_crash.py``) run the real command as a
subprocess and need it to die with SIGKILL at a chosen step of obtaining a certificate, the way a
power cut or the OOM killer would end it: no ``finally``, no ``atexit``, no flush. The client calls
``crash_point(name)`` at each step; it does nothing unless the environment variable names that
step (comma-separated names allowed). The steps are:

- ``order-created``: the CA has the new order; nothing was solved yet;
- ``challenges-answered``: every challenge was answered, validation may still be running;
- ``finalized``: the CA issued the certificate (the order is valid); it was not downloaded yet;
- ``downloaded``: the certificate is in memory; nothing was written;
- ``storage:<step>``: inside saving the lineage, at each step of the storage journal
  (``letsencrypt.storage.lineage``'s ``_fail_at`` seam: ``journal:writing``, ``archive:cert``,
  ``archive:cert:before-rename``, ..., ``journal:ready``, ``live:generation``, ``live:switch``,
  ``renewal-conf``, ``cleanup``, ``journal:remove``); ``storage_steps()`` gives that seam.

Imports: the standard library only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

__all__ = ["CRASH_ENV", "crash_point", "storage_steps"]

logger = logging.getLogger(__name__)

CRASH_ENV = "LETSENCRYPT_TEST_CRASH_AT"


def _wanted() -> frozenset[str]:
    value = os.environ.get(CRASH_ENV, "")
    return frozenset(item.strip() for item in value.split(",") if item.strip())


def crash_point(name: str) -> None:
    """SIGKILL this process when ``LETSENCRYPT_TEST_CRASH_AT`` names ``name``; otherwise nothing."""
    if name in _wanted():
        import signal  # here: only a test's crash point needs it

        logger.warning("%s=%s: killing this process (pid %d)", CRASH_ENV, name, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)


def storage_steps() -> Callable[[str], None] | None:
    """The ``_fail_at`` seam of lineage saves, crashing at ``storage:<step>``; None outside these tests."""
    if not _wanted():
        return None
    return lambda step: crash_point(f"storage:{step}")
