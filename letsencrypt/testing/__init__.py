"""Test helpers for this project and for third-party plugin authors.

``letsencrypt.testing.ca_stub.run_ca_stub`` starts a throwaway ``ca_stub`` on loopback; the pytest
fixtures built on it live in ``letsencrypt.testing.pytest_plugin``.
"""

from letsencrypt.testing.ca_stub import CAStub, StartupError, free_port, run_ca_stub

__all__ = ["CAStub", "StartupError", "free_port", "run_ca_stub"]
