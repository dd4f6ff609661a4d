"""The one place that names ca_stub's concrete components and wires them together.

``CAServer(config)`` builds SA (SQLite in the data directory), PA, VA, CA and RA, puts the WFE
behind cheroot with TLS, and the management API behind a second cheroot listener, each on its
own threads. cheroot is CherryPy's HTTP server: maintained, pure Python, a thread pool and TLS
built in, a WSGI interface, and nothing to compile, so the whole CA installs from PyPI.

On an empty data directory it first runs the key ceremony (the root keys go to ``offline/``,
which the serving code never reads). Orders a crash left in ``processing`` are recovered at
start (see ``RegistrationAuthority.recover``).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from ca_stub._api_tls import API_ROOT, ensure_api_identity
from ca_stub.ca import SigningCA
from ca_stub.ceremony import run_ceremony
from ca_stub.contracts import TermsOfService
from ca_stub.pa import Policy
from ca_stub.ra import RegistrationAuthority
from ca_stub.sa import SQLiteStorage
from ca_stub.va import NetworkVA
from ca_stub.wfe import ManagementAPI, NonceService, WebFrontEnd, WFEConfig

__all__ = ["CAServer", "ServeConfig"]

logger = logging.getLogger(__name__)

DEFAULT_TERMS = """ca_stub terms of service

This is a test certificate authority. Its certificates are trusted by nobody who has not chosen
to trust its root. Do not use them to protect anything that matters.
"""


@dataclasses.dataclass(frozen=True, slots=True)
class ServeConfig:
    data_dir: Path
    listen: tuple[str, int] = ("127.0.0.1", 14000)
    management: tuple[str, int] | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    http_port: int = 80
    tls_port: int = 443
    resolve_all: str | None = None
    dns_server: tuple[str, int] | None = None
    legacy_challenges: bool = False
    bad_nonce_rate: float = 0.0
    validation_delay: float = 0.0  # at most this many seconds, at random, before each validation
    authorization_reuse: int = 100  # percent
    eab_keys: Mapping[str, bytes] = dataclasses.field(default_factory=dict)
    eab_required: bool = False
    block_list: Sequence[str] = ()
    terms: Path | None = None  # default: DATA/terms.txt, written on first start
    threads: int = 32
    poll_retry_after: int | None = None  # Retry-After (seconds) on pending orders and authorizations


def _host_for_url(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class CAServer:
    """A running ca_stub: ``start()``, ``stop()``, or use it as a context manager."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        data_dir = config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        if not (data_dir / "ca.json").exists():
            logger.info("empty data directory %s: running the key ceremony", data_dir)
            run_ceremony(data_dir)
        self.terms_path = config.terms or data_dir / "terms.txt"
        if not self.terms_path.exists():
            self.terms_path.write_text(DEFAULT_TERMS)
        cert, key = (config.tls_cert, config.tls_key)
        if cert is None or key is None:
            cert, key = ensure_api_identity(data_dir, [config.listen[0]])
        self.api_root = data_dir / API_ROOT if config.tls_cert is None else None

        self._api = wsgi.Server(config.listen, self._not_ready, numthreads=config.threads,
                                server_name="ca_stub", request_queue_size=256)
        self._api.ssl_adapter = BuiltinSSLAdapter(str(cert), str(key))
        self._api.prepare()  # binds now, so port 0 resolves before the WFE needs its base URL
        host, port = self._api.bind_addr[0], self._api.bind_addr[1]
        self.base_url = f"https://{_host_for_url(str(host))}:{port}"
        self.directory_url = self.base_url + "/directory"
        self._build_components()
        self._api.wsgi_app = self.wfe
        self._management: wsgi.Server | None = None
        self.management_url: str | None = None
        if config.management is not None:
            self._management = wsgi.Server(config.management, self.management_api, numthreads=4,
                                           server_name="ca_stub-management")
            self._management.prepare()
            mhost, mport = self._management.bind_addr[0], self._management.bind_addr[1]
            self.management_url = f"http://{_host_for_url(str(mhost))}:{mport}"
        self._threads: list[threading.Thread] = []

    def _build_components(self) -> None:
        config = self.config
        self.storage = storage = SQLiteStorage(config.data_dir / "ca.sqlite")
        policy = Policy(block_list=config.block_list, legacy_challenges=config.legacy_challenges)
        delay = None
        if config.validation_delay > 0:
            rng = random.Random()  # noqa: S311 - fault injection
            limit = config.validation_delay
            delay = lambda: rng.uniform(0, limit)  # noqa: E731
        self.va = NetworkVA(
            http_port=config.http_port, tls_port=config.tls_port, resolve_all=config.resolve_all,
            dns_server=config.dns_server, delay=delay,
        )
        self.ca = SigningCA(config.data_dir, base_url_for_ocsp=self.base_url + "/ocsp",
                            crl_base_url=self.base_url + "/crl")
        self.ra = RegistrationAuthority(
            storage, policy, self.va, self.ca,
            terms=TermsOfService.from_file(self.base_url + "/terms", self.terms_path),
            eab_keys=dict(config.eab_keys), eab_required=config.eab_required,
            authorization_reuse_percent=config.authorization_reuse,
        )
        self.ra.recover()
        self.wfe = WebFrontEnd(
            self.ra, self.ca,
            WFEConfig(
                base_url=self.base_url, terms_path=self.terms_path,
                external_account_required=config.eab_required, bad_nonce_rate=config.bad_nonce_rate,
                profiles={name: profile.description for name, profile in policy.profiles().items()},
                poll_retry_after=config.poll_retry_after,
            ),
            NonceService(),
        )
        self.management_api = ManagementAPI(self.ra, self.ca)

    @staticmethod
    def _not_ready(environ: object, start_response: object) -> list[bytes]:  # pragma: no cover
        raise RuntimeError("ca_stub is still starting")

    def start(self) -> CAServer:
        servers = [self._api] + ([self._management] if self._management else [])
        for server in servers:
            thread = threading.Thread(target=server.serve, name=f"ca_stub:{server.server_name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("ca_stub ready: directory %s", self.directory_url)
        return self

    def wait(self) -> None:
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.5)

    def stop(self) -> None:
        # cheroot's stop waits for its accept loop (~0.5 s each): stop both listeners at once
        stoppers = [threading.Thread(target=server.stop)
                    for server in [self._api] + ([self._management] if self._management else [])]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(15)
        for thread in self._threads:
            thread.join(10)
        self.va.close()
        self.storage.close()

    def __enter__(self) -> CAServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
