"""Integration tests: real pebble, nginx, apache2, openssl and ca_stub processes on loopback.

Importable as the package ``integration`` (``tests/`` itself is not a package, so pytest puts
``tests/`` on sys.path). Shared helpers: ``_procs`` (ports, processes, TLS identities, DNS),
``pebble_harness`` (a running Pebble; fixtures ``pebble``/``eab_pebble`` in ``tests/conftest.py``).
"""
