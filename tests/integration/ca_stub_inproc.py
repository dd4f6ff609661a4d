"""ca_stub run inside the test process, for the hostile-input and fuzz suites.

``running_ca(workdir)`` starts a real ``CAServer`` (SA on SQLite, PA, VA, CA, RA, WFE behind
cheroot with TLS) on free loopback ports, every name resolving to 127.0.0.1, and yields an
``InProcCA`` that can

- call the WFE's WSGI application directly (``call``, ``post``: no network, no TLS, so a fuzzer
  can send thousands of requests in seconds), or reach it over HTTPS (``base_url``, ``api_root``);
- sign requests the way a client would (``jws``) and tamper with them as dicts;
- drive the protocol up to a ready order or an issued certificate, with a real http-01 responder
  on the CA's validation port (``ready_order``, ``issue``);
- snapshot the SQLite database through a read-only connection (``db_snapshot``), so a test can
  prove a refused request changed nothing;
- report what ca_stub logged at ERROR level (``errors``): the WFE logs "bug: unexpected error"
  with the traceback whenever it answers 500, and the RA logs failed issuances there too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.rcode
from cryptography.hazmat.primitives.serialization import Encoding

from ca_stub.server import CAServer, ServeConfig
from letsencrypt.acme import challenges, crypto
from letsencrypt.acme.jws import AccountKey, b64encode
from letsencrypt.acme.messages import ERROR_PREFIX, Identifier

from ._procs import free_port
from .responders import http01_responder

JOSE = "application/jose+json"
PROBLEM = "application/problem+json"
DEADLINE = 30.0  # for a validation to finish


class GetSentinel:
    """The ``payload`` of a POST-as-GET (RFC 8555 §6.3): an empty string, not JSON."""

    def __repr__(self) -> str:
        return "POST_AS_GET"


POST_AS_GET = GetSentinel()


class ErrorLog(logging.Handler):
    """Keeps every record of level ERROR and above logged under ``ca_stub``."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [self.format(record) for record in self.records]


@dataclasses.dataclass(frozen=True)
class Reply:
    """What the WFE answered (a ``Response`` from ``handle_environ``, or one read over HTTPS)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def problem_type(self) -> str | None:
        """The problem type without the ``urn:ietf:params:acme:error:`` prefix, if a problem."""
        if self.header("Content-Type") != PROBLEM:
            return None
        kind = str(self.json().get("type", ""))
        return kind.removeprefix(ERROR_PREFIX)


@dataclasses.dataclass(frozen=True)
class Account:
    key: AccountKey
    kid: str  # the account URL

    @property
    def id(self) -> int:
        return int(self.kid.rsplit("/", 1)[1])


@dataclasses.dataclass(frozen=True)
class OrderInfo:
    url: str
    body: Mapping[str, Any]

    @property
    def path(self) -> str:
        return "/acme/" + self.url.split("/acme/", 1)[1]

    @property
    def finalize_path(self) -> str:
        return self.path + "/finalize"

    @property
    def authorization_paths(self) -> list[str]:
        return ["/acme/" + url.split("/acme/", 1)[1] for url in self.body["authorizations"]]

    @property
    def identifiers(self) -> list[Identifier]:
        return [Identifier.from_json(item) for item in self.body["identifiers"]]


class InProcCA:
    """One running ca_stub, driven through its WSGI application; see the module docstring."""

    def __init__(self, server: CAServer, http_port: int, errors: ErrorLog) -> None:
        self.server = server
        self.http_port = http_port
        self.errors = errors
        self.wfe = server.wfe
        self.base_url = server.base_url
        self.directory_url = server.directory_url
        assert server.api_root is not None
        self.api_root = server.api_root
        self.db_path = server.config.data_dir / "ca.sqlite"

    # --- plain requests ------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    @staticmethod
    def environ(
        method: str, path: str, body: bytes = b"", *, content_type: str | None = JOSE, query: str = "",
        headers: Mapping[str, str] | None = None, content_length: str | None = None, stream: Any = None,
    ) -> dict[str, Any]:
        """A WSGI environ as cheroot builds it; ``content_length`` overrides the body's length."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "https",
            "wsgi.input": stream if stream is not None else io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length,
        }
        if content_type is not None:
            environ["CONTENT_TYPE"] = content_type
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        return environ

    def call_environ(self, environ: Mapping[str, Any]) -> Reply:
        response = self.wfe.handle_environ(environ)
        return Reply(response.status, tuple(response.headers), response.body)

    def call(self, method: str, path: str, body: bytes = b"", **kwargs: Any) -> Reply:
        return self.call_environ(self.environ(method, path, body, **kwargs))

    def nonce(self) -> str:
        reply = self.call("HEAD", "/acme/new-nonce", content_type=None)
        nonce = reply.header("Replay-Nonce")
        assert nonce, reply
        return nonce

    # --- signed requests -----------------------------------------------------------------------

    def jws(
        self, key: AccountKey, path: str, payload: Any = POST_AS_GET, *, kid: str | None = None,
        nonce: str | None = None, url: str | None = None, extra: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """A flattened JWS signed by ``key``: with ``kid`` if given, else with the key's ``jwk``.

        ``payload`` is JSON-encoded, or ``bytes`` sent as they are, or ``POST_AS_GET``; ``nonce``
        defaults to a fresh one from the WFE, ``url`` to the request URL of ``path``; ``extra``
        members are added to the protected header (a value of ``None`` removes a member).
        """
        header: dict[str, Any] = {"alg": key.alg, "nonce": nonce or self.nonce(), "url": url or self.url(path)}
        if kid is not None:
            header["kid"] = kid
        else:
            header["jwk"] = dict(key.jwk)
        for name, value in (extra or {}).items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value
        if isinstance(payload, GetSentinel):
            encoded = ""
        elif isinstance(payload, bytes):
            encoded = b64encode(payload)
        else:
            encoded = b64encode(json.dumps(payload).encode())
        protected = b64encode(json.dumps(header).encode())
        signature = key.sign(f"{protected}.{encoded}".encode("ascii"))
        return {"protected": protected, "payload": encoded, "signature": b64encode(signature)}

    def send(self, path: str, jws: Mapping[str, Any] | bytes, **kwargs: Any) -> Reply:
        body = jws if isinstance(jws, bytes) else json.dumps(jws).encode()
        path, _, query = path.partition("?")
        return self.call("POST", path, body, query=query, **kwargs)

    def post(self, who: Account, path: str, payload: Any = POST_AS_GET, **kwargs: Any) -> Reply:
        """A request signed by ``who`` (with its ``kid``)."""
        return self.send(path, self.jws(who.key, path, payload, kid=who.kid, **kwargs))

    def post_jwk(self, key: AccountKey, path: str, payload: Any = POST_AS_GET, **kwargs: Any) -> Reply:
        """A request signed by ``key`` and carrying it as ``jwk`` (newAccount, revocation by key)."""
        return self.send(path, self.jws(key, path, payload, **kwargs))

    # --- protocol steps ------------------------------------------------------------------------

    def register(self, key: AccountKey | None = None) -> Account:
        key = key or AccountKey.generate("ec256")
        reply = self.post_jwk(key, "/acme/new-account",
                              {"termsOfServiceAgreed": True, "contact": ["mailto:fuzz@example.com"]})
        assert reply.status in (200, 201), reply
        location = reply.header("Location")
        assert location is not None
        return Account(key, location)

    def new_order(self, who: Account, names: list[str]) -> OrderInfo:
        identifiers = [Identifier.parse(name).to_json() for name in names]
        reply = self.post(who, "/acme/new-order", {"identifiers": identifiers})
        assert reply.status == 201, reply
        location = reply.header("Location")
        assert location is not None
        return OrderInfo(location, reply.json())

    def read_order(self, who: Account, order: OrderInfo) -> OrderInfo:
        reply = self.post(who, order.path)
        assert reply.status == 200, reply
        return OrderInfo(order.url, reply.json())

    def ready_order(self, who: Account, names: list[str]) -> OrderInfo:
        """A ready order: pending authorizations are validated over real http-01."""
        order = self.new_order(who, names)
        pending = []
        for path in order.authorization_paths:
            authorization = self.post(who, path).json()
            if authorization["status"] == "pending":
                challenge = next(c for c in authorization["challenges"] if c["type"] == "http-01")
                pending.append((path, challenge))
        bodies = {}
        for _, challenge in pending:
            key_authorization = challenges.key_authorization(challenge["token"], who.key)
            bodies[challenges.http01_path(challenge["token"])] = challenges.http01_body(key_authorization)
        if not pending:  # every authorization was reused: no responder (its shutdown takes 0.5 s)
            return self.read_order(who, order)
        with http01_responder(self.http_port, bodies):
            for _, challenge in pending:
                chall_path = "/acme/" + challenge["url"].split("/acme/", 1)[1]
                assert self.post(who, chall_path, {}).status == 200
            deadline = time.monotonic() + DEADLINE
            for path, _ in pending:
                while (status := self.post(who, path).json()["status"]) == "pending":
                    assert time.monotonic() < deadline, f"{path} still pending"
                    time.sleep(0.02)
                assert status == "valid", self.post(who, path).json()
        order = self.read_order(who, order)
        assert order.body["status"] == "ready", order.body
        return order

    def finalize(self, who: Account, order: OrderInfo, csr_der: bytes) -> Reply:
        return self.post(who, order.finalize_path, {"csr": b64encode(csr_der)})

    def issue(self, who: Account, names: list[str], key: Any = None) -> tuple[OrderInfo, bytes]:
        """A certificate for ``names`` (and ``key``, default a new P-256 key): ``(the valid order, the leaf's DER)``."""
        order = self.ready_order(who, names)
        key = key or crypto.generate_private_key("ec256")
        reply = self.finalize(who, order, crypto.make_csr(key, order.identifiers))
        assert reply.status == 200 and reply.json()["status"] == "valid", reply
        order = OrderInfo(order.url, reply.json())
        certificate_path = "/acme/" + order.body["certificate"].split("/acme/", 1)[1]
        pem = self.post(who, certificate_path).body.decode()
        leaf = crypto.split_pem_chain(pem)[0]
        return order, leaf.public_bytes(Encoding.DER)

    # --- inspection ----------------------------------------------------------------------------

    def db_snapshot(self) -> list[str]:
        """The whole database as SQL, read through a read-only connection."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    @contextlib.contextmanager
    def unchanged(self) -> Iterator[None]:
        """Assert that the block leaves the database exactly as it was and logs no error."""
        before = self.db_snapshot()
        logged = len(self.errors.records)
        yield
        after = self.db_snapshot()
        assert before == after, "the refused request changed the database:\n" + "\n".join(
            line for line in after if line not in before
        )
        assert self.errors.messages()[logged:] == []


@contextlib.contextmanager
def nxdomain_dns() -> Iterator[tuple[str, int]]:
    """A UDP DNS server on loopback answering every query NXDOMAIN at once, until the block ends.

    With nothing listening, the VA's dns-01 lookups would wait out their whole lifetime (about 10 s).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
                response = dns.message.make_response(dns.message.from_wire(data))
            except TimeoutError:
                continue
            except dns.exception.DNSException:
                continue
            response.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, name="nxdomain-dns", daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[0], sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


@contextlib.contextmanager
def running_ca(workdir: Path, **config: Any) -> Iterator[InProcCA]:
    """A ca_stub on free loopback ports in ``workdir``; extra ``ServeConfig`` fields in ``config``.

    Its DNS server (dns-01 lookups) answers NXDOMAIN to everything (``nxdomain_dns``).
    """
    http_port = free_port()
    errors = ErrorLog()
    ca_logger = logging.getLogger("ca_stub")
    with contextlib.ExitStack() as stack:
        settings: dict[str, Any] = {
            "data_dir": workdir,
            "listen": ("127.0.0.1", 0),
            "resolve_all": "127.0.0.1",
            "http_port": http_port,
            "tls_port": free_port(),
            "dns_server": stack.enter_context(nxdomain_dns()),
            "threads": 4,
        }
        settings.update(config)
        ca_logger.addHandler(errors)
        stack.callback(ca_logger.removeHandler, errors)
        server = stack.enter_context(CAServer(ServeConfig(**settings)))
        yield InProcCA(server, http_port, errors)
