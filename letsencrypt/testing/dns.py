"""A tiny in-process DNS server for tests: TXT records from a dict, or from a file read on each query.

``serve_dns()`` starts a UDP server on loopback in a background thread and yields a ``DnsServer``;
start ``ca_stub`` with ``--dns-server {server.address}`` (``ca_stub --resolve-all`` still gives every
name its address) and the CA's dns-01 lookups (RFC 8555 §8.4) are answered from it. Records come from

- ``set_txt(name, value)`` / ``clear_txt(name)``: what a test publishes itself, and
- sources added with ``add_source(callable)``: a function returning ``{name: [values]}``, called on
  each query, such as ``json_zone_file(path)`` for a plugin that writes a JSON zone file (the
  example plugin ``letsencrypt-dns-example`` does), so what the plugin wrote is what the CA sees.

Names are compared without case and trailing dot. A TXT query for a name with no record gets
NXDOMAIN; A and AAAA queries are answered with ``address`` (127.0.0.1) and nothing respectively,
so the server also works as the only resolver of a test CA. UDP only: TXT answers of a test are
small (dnspython falls back to TCP only for a truncated answer, which this server never sends).

Imports: stdlib and dnspython.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

__all__ = ["DnsServer", "RecordSource", "json_zone_file", "serve_dns"]

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
TTL = 0  # nothing may cache a test's records
_MAX_STRING = 255  # one <character-string> of a TXT rdata (RFC 1035 §3.3.14)

RecordSource = Callable[[], Mapping[str, Sequence[str]]]
"""A function returning TXT records ``{name: [value, ...]}``, called on every query."""


def _key(name: str) -> str:
    return name.strip().rstrip(".").lower()


def json_zone_file(path: Path) -> RecordSource:
    """A source reading ``{"_acme-challenge.example.com": ["value", ...]}`` from ``path`` on each query.

    A missing file has no records; a file being rewritten (unparseable for an instant) is read as
    empty rather than failing the query: the CA asks again when the challenge is retried.
    """

    def read() -> Mapping[str, Sequence[str]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(name): [str(value) for value in values] for name, values in data.items()
                if isinstance(values, list)}

    return read


class DnsServer:
    """The running server: ``host``, ``port``, ``address`` ("host:port") and the records it serves."""

    def __init__(self, sock: socket.socket, address: str = LOOPBACK) -> None:
        self._socket = sock
        self._answer_address = address
        self._lock = threading.Lock()
        self._records: dict[str, list[str]] = {}
        self._sources: list[RecordSource] = []
        self._stopped = threading.Event()
        self.queries: list[tuple[str, str]] = []  # (name, type) asked, for tests that check what the CA did
        host, port = sock.getsockname()[:2]
        self.host: str = host
        self.port: int = port

    @property
    def address(self) -> str:
        """``HOST:PORT``, as ``ca-stub serve --dns-server`` takes it."""
        return f"{self.host}:{self.port}"

    def set_txt(self, name: str, value: str) -> None:
        """Add TXT ``value`` at ``name`` (e.g. ``_acme-challenge.example.com``), keeping other values."""
        with self._lock:
            values = self._records.setdefault(_key(name), [])
            if value not in values:
                values.append(value)

    def clear_txt(self, name: str) -> None:
        """Remove every TXT value set at ``name`` with ``set_txt``."""
        with self._lock:
            self._records.pop(_key(name), None)

    def add_source(self, source: RecordSource) -> None:
        """Also answer from ``source`` (called on every query), e.g. ``json_zone_file(path)``."""
        with self._lock:
            self._sources.append(source)

    def clear(self) -> None:
        """Forget every record, source and logged query."""
        with self._lock:
            self._records.clear()
            self._sources.clear()
            self.queries.clear()

    def txt(self, name: str) -> list[str]:
        """The TXT values served at ``name`` right now: those set, then those of each source."""
        key = _key(name)
        with self._lock:
            values = list(self._records.get(key, ()))
            sources = list(self._sources)
        for source in sources:
            for found_name, found in source().items():
                if _key(found_name) == key:
                    values.extend(value for value in found if value not in values)
        return values

    # --- serving -------------------------------------------------------------------------------

    def serve(self) -> None:
        """Answer queries until ``stop()``; run in a thread by ``serve_dns``."""
        self._socket.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                wire, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                raise
            reply = self._reply(wire)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self._socket.sendto(reply, peer)

    def stop(self) -> None:
        self._stopped.set()

    def _reply(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            logger.debug("ignoring a malformed DNS query")
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name, rdtype = question.name.to_text(), question.rdtype
            self.queries.append((_key(name), dns.rdatatype.to_text(rdtype)))
            rrset = self._answer(question.name, rdtype)
            if rrset is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif len(rrset):
                response.answer.append(rrset)
        return response.to_wire()

    def _answer(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        """The answer's records (empty: NOERROR with no data), or None for NXDOMAIN."""
        rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
        rrset.update_ttl(TTL)
        if rdtype == dns.rdatatype.TXT:
            values = self.txt(name.to_text())
            if not values:
                return None
            for value in values:
                raw = value.encode()
                chunks = [raw[i:i + _MAX_STRING] for i in range(0, len(raw), _MAX_STRING)] or [b""]
                rrset.add(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks))
        elif rdtype == dns.rdatatype.A:
            rrset.add(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, self._answer_address))
        return rrset


@contextlib.contextmanager
def serve_dns(
    records: Mapping[str, Sequence[str]] | None = None,
    *,
    sources: Sequence[RecordSource] = (),
    host: str = LOOPBACK,
    port: int = 0,
    address: str = LOOPBACK,
) -> Iterator[DnsServer]:
    """Serve DNS on ``host:port`` (UDP; 0: a free port) in a thread; stop and join it on exit.

    ``records`` and ``sources`` are the initial TXT records; ``address`` answers every A query.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        server = DnsServer(sock, address)
        for name, values in (records or {}).items():
            for value in values:
                server.set_txt(name, value)
        for source in sources:
            server.add_source(source)
        thread = threading.Thread(target=server.serve, name=f"dns-{server.port}", daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.stop()
            thread.join(5)
    finally:
        sock.close()
