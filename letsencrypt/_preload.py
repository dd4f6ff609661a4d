"""Import modules a run needs later on a helper thread, while the main thread waits on the CA.

A one-name ``certonly`` spends a few tens of milliseconds waiting for the CA's answers and its
validation, and needs some modules only after the first of them: cryptography's OpenSSL backend
(``ec.ECDSA()`` imports it for the first signature) and its ``serialization`` package (to store
keys). ``preload`` imports such modules on a daemon thread started just before the first request,
so the import runs while the main thread sleeps in ``recv``. The run is otherwise CPU-bound, so
this only pays for modules a run is sure to need.

Python's import system makes this safe: a module is imported once, and a thread that needs a module
another thread is still importing waits for it (``letsencrypt.acme._lazy`` imports on first use,
through that same path). A failed import is only logged here; the main thread's own import of the
module then raises the error where it is used.

While the thread runs, the interpreter's switch interval is 0.5 ms instead of 5 ms: when the main
thread's ``recv`` returns, it gets the interpreter back at once instead of after up to 5 ms.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading

__all__ = ["THREAD_NAME", "finish", "preload"]

logger = logging.getLogger(__name__)

THREAD_NAME = "letsencrypt-preload"
SWITCH_INTERVAL = 0.0005


def preload(*names: str) -> threading.Thread | None:
    """Start importing ``names`` (those not imported yet) on a daemon thread; the thread, or None."""
    missing = [name for name in names if name not in sys.modules]
    if not missing:
        return None
    previous = sys.getswitchinterval()

    def run() -> None:
        try:
            for name in missing:
                try:
                    importlib.import_module(name)
                except Exception:  # the main thread's own import reports it where it matters
                    logger.debug("preloading %s failed; it is imported when first used", name, exc_info=True)
        finally:
            sys.setswitchinterval(previous)

    sys.setswitchinterval(min(previous, SWITCH_INTERVAL))
    thread = threading.Thread(target=run, name=THREAD_NAME, daemon=True)
    thread.start()
    return thread


def finish(timeout: float = 10.0) -> None:
    """Wait for running preload threads (before the process ends without interpreter teardown)."""
    for thread in threading.enumerate():
        if thread.name == THREAD_NAME and thread is not threading.current_thread():
            thread.join(timeout)
