"""ca_stub for integration tests, shaped like the Pebble harness so one test runs against both.

``start_ca_stub(workdir)`` runs challtestsrv (as the DNS server for dns-01 TXT lookups) and
``ca-stub serve`` through ``letsencrypt.testing.run_ca_stub`` (every name resolves to
127.0.0.1), with Pebble's default 5 % bad-nonce rate switched on, and yields a ``Pebble``
record: the same fields and methods (``set_txt``, ``roots_pem``, ...) work for both servers.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from letsencrypt.testing import run_ca_stub

from ._procs import LOOPBACK
from .pebble_harness import Pebble, start_challtestsrv


@contextlib.contextmanager
def start_ca_stub(
    workdir: Path, *, eab_keys: Mapping[str, str] | None = None, extra_args: tuple[str, ...] = ()
) -> Iterator[Pebble]:
    with contextlib.ExitStack() as stack:
        challtestsrv_url, dns_port = stack.enter_context(start_challtestsrv(workdir / "challtestsrv"))
        args = ["--dns-server", f"{LOOPBACK}:{dns_port}", "--bad-nonce-rate", "5", *extra_args]
        for kid, key in (eab_keys or {}).items():
            # ca_stub takes unpadded base64url too; normalise keys given in standard base64
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            args += ["--eab-key", f"{kid}:{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"]
        if eab_keys:
            args.append("--eab-required")
        ca = stack.enter_context(run_ca_stub(workdir, extra_args=args))
        yield Pebble(
            directory_url=ca.directory_url,
            ca_bundle=ca.ca_bundle,
            management_url=ca.management_url,
            challtestsrv_url=challtestsrv_url,
            http_port=ca.http_port,
            tls_port=ca.tls_port,
            dns_port=dns_port,
            eab_keys=dict(eab_keys or {}),
            pebble_log=ca.log_path,
        )
