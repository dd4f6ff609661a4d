"""Start a real Pebble (Debian's ``pebble`` package) and its mock DNS server on loopback.

``start_pebble(workdir)`` is a context manager yielding a ``Pebble``; the ``pebble`` and
``eab_pebble`` fixtures in ``tests/conftest.py`` wrap it. Each instance gets:

- its own throwaway CA and API server certificate for 127.0.0.1/localhost (``ca_bundle``),
- ``pebble-challtestsrv`` as DNS server only (every A query answers 127.0.0.1; TXT records are
  set through its management API), Pebble's VA resolving through it,
- free loopback ports for everything, including ``http_port``/``tls_port``: where Pebble's VA
  connects for http-01 and tls-alpn-01. Nothing listens there until a test binds them.

Pebble runs with PEBBLE_VA_NOSLEEP=1 (no random validation delay) and otherwise default knobs
(PEBBLE_WFE_NONCEREJECT's 5 % bad nonces included: clients must retry them).

Every request below passes ``verify`` per call: requests lets REQUESTS_CA_BUNDLE in the
environment override a Session's ``verify``, but never a per-request one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import requests

from ._procs import LOOPBACK, ManagedProcess, free_port, make_tls_identity, wait_for_http

PEBBLE = "pebble"
CHALLTESTSRV = "pebble-challtestsrv"
STARTUP_DEADLINE = 20.0
REQUEST_TIMEOUT = 10.0

#: External account binding keys for ``eab_pebble``: kid -> base64url (unpadded) HMAC key.
#: Test-only values (those of Pebble's example configuration): 48 bytes each, so the encoding has
#: no padding whether a reader expects padded or unpadded base64url.
EAB_KEYS: Mapping[str, str] = {
    "kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
    "kid-2": "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH",
}


@dataclasses.dataclass(frozen=True)
class Pebble:
    """A running Pebble plus challtestsrv. URLs are loopback; paths are PEM files."""

    directory_url: str
    """ACME directory, ``https://127.0.0.1:PORT/dir``."""
    ca_bundle: str
    """PEM trust anchor for Pebble's API (and management API) TLS certificate."""
    management_url: str
    """Pebble's management API (HTTPS, same certificate): ``/roots/0``, ``/intermediates/0``, ..."""
    challtestsrv_url: str
    """challtestsrv's management API (plain HTTP): ``/set-txt``, ``/clear-txt``, ..."""
    http_port: int
    """Port Pebble's VA connects to for http-01 (on 127.0.0.1, every name resolves there)."""
    tls_port: int
    """Port Pebble's VA connects to for tls-alpn-01."""
    dns_port: int
    """challtestsrv's DNS port on 127.0.0.1 (UDP and TCP)."""
    eab_keys: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """kid -> base64url HMAC key; non-empty iff this Pebble requires external account binding."""
    pebble_log: Path | None = None
    """Pebble's combined stdout/stderr, for debugging a failed test."""

    @property
    def eab_required(self) -> bool:
        return bool(self.eab_keys)

    def set_txt(self, host: str, value: str) -> None:
        """Add TXT ``value`` for ``host`` (e.g. ``_acme-challenge.example.com``; trailing dot optional)."""
        self._challtestsrv("/set-txt", {"host": _fqdn(host), "value": value})

    def clear_txt(self, host: str) -> None:
        """Remove every TXT record of ``host``."""
        self._challtestsrv("/clear-txt", {"host": _fqdn(host)})

    def roots_pem(self, index: int = 0) -> str:
        """PEM of Pebble's root certificate number ``index`` (changes on every Pebble start)."""
        return self._management_get(f"/roots/{index}")

    def intermediates_pem(self, index: int = 0) -> str:
        """PEM of the intermediate certificate that signs the end-entity certificates of chain ``index``."""
        return self._management_get(f"/intermediates/{index}")

    def _management_get(self, path: str) -> str:
        response = requests.get(self.management_url + path, verify=self.ca_bundle, timeout=REQUEST_TIMEOUT)
        response.raise_for_status()
        return response.text

    def _challtestsrv(self, path: str, body: Mapping[str, str]) -> None:
        response = requests.post(self.challtestsrv_url + path, json=body, timeout=REQUEST_TIMEOUT)
        response.raise_for_status()


def _fqdn(host: str) -> str:
    return host if host.endswith(".") else host + "."


def _write_config(path: Path, settings: Mapping[str, object]) -> None:
    path.write_text(json.dumps({"pebble": settings}, indent=2) + "\n")


@contextlib.contextmanager
def start_pebble(workdir: Path, *, eab_keys: Mapping[str, str] | None = None) -> Iterator[Pebble]:
    """Run challtestsrv and Pebble with files under ``workdir``; stop both (by pid) on exit.

    With ``eab_keys``, Pebble requires external account binding with those kid -> key pairs.
    Raises ``_procs.StartupError`` with the log tail if either program does not come up within
    20 seconds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    identity = make_tls_identity(workdir, (LOOPBACK, "localhost"), prefix="pebble-api")
    api_port, management_port = free_port(), free_port()
    http_port, tls_port = free_port(), free_port()

    settings: dict[str, object] = {
        "listenAddress": f"{LOOPBACK}:{api_port}",
        "managementListenAddress": f"{LOOPBACK}:{management_port}",
        "certificate": str(identity.cert),
        "privateKey": str(identity.key),
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": bool(eab_keys),
    }
    if eab_keys:
        settings["externalAccountMACKeys"] = dict(eab_keys)
    config = workdir / "pebble-config.json"
    _write_config(config, settings)


    with contextlib.ExitStack() as stack:
        challtestsrv_url, dns_port = stack.enter_context(start_challtestsrv(workdir))

        pebble_argv = [PEBBLE, "-config", str(config), "-dnsserver", f"{LOOPBACK}:{dns_port}"]
        pebble_env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1"}
        pebble = stack.enter_context(
            ManagedProcess(pebble_argv, workdir / "pebble.log", env=pebble_env, cwd=workdir)
        )
        directory_url = f"https://{LOOPBACK}:{api_port}/dir"
        wait_for_http(
            directory_url,
            verify=str(identity.ca),
            deadline=STARTUP_DEADLINE,
            expect_status=200,
            process=pebble,
        )
        management_url = f"https://{LOOPBACK}:{management_port}"
        wait_for_http(
            management_url + "/roots/0",
            verify=str(identity.ca),
            deadline=STARTUP_DEADLINE,
            expect_status=200,
            process=pebble,
        )
        yield Pebble(
            directory_url=directory_url,
            ca_bundle=str(identity.ca),
            management_url=management_url,
            challtestsrv_url=challtestsrv_url,
            http_port=http_port,
            tls_port=tls_port,
            dns_port=dns_port,
            eab_keys=dict(eab_keys or {}),
            pebble_log=pebble.log_path,
        )


@contextlib.contextmanager
def start_challtestsrv(workdir: Path) -> Iterator[tuple[str, int]]:
    """challtestsrv as a DNS server only (A: 127.0.0.1; TXT set through its management API).

    Yields (management URL, DNS port); stopped by pid on exit.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    dns_port, challtestsrv_port = free_port(udp=True), free_port()
    challtestsrv_argv = [
        CHALLTESTSRV,
        "-defaultIPv4",
        LOOPBACK,
        "-defaultIPv6",
        "",
        "-dns01",
        f"{LOOPBACK}:{dns_port}",
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-management",
        f"{LOOPBACK}:{challtestsrv_port}",
    ]
    with ManagedProcess(challtestsrv_argv, workdir / "challtestsrv.log", cwd=workdir) as challtestsrv:
        challtestsrv_url = f"http://{LOOPBACK}:{challtestsrv_port}"
        # Any HTTP answer (404 on /) means the management API is up; the DNS server starts first.
        wait_for_http(challtestsrv_url + "/", deadline=STARTUP_DEADLINE, process=challtestsrv)
        yield challtestsrv_url, dns_port
