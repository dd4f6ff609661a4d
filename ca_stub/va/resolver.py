"""How the VA finds addresses and TXT records: one fixed address, a DNS server, or the system.

``--resolve-all IP`` maps every name to one address (tests, Pebble's challtestsrv style);
``--dns-server HOST:PORT`` asks that server with dnspython (A/AAAA, and TXT for dns-01, RFC 8555
§8.4); otherwise addresses come from the system resolver (``getaddrinfo``) and TXT records
from the servers in ``/etc/resolv.conf``. IP literals are used as they are. Every lookup is
noted on the attempt so that error details can say what was asked and what came back.

Imports: stdlib, dnspython and ``ca_stub.va``.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.resolver

from ca_stub.va._attempt import Attempt, Failure

__all__ = ["Resolver"]


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _server_address(host: str) -> str:
    """dnspython wants the DNS server as an address: resolve a host name once, at start."""
    literal = _ip_literal(host.strip("[]"))
    if literal is not None:
        return literal
    try:
        return str(socket.getaddrinfo(host, 53, proto=socket.IPPROTO_UDP)[0][4][0])
    except (OSError, UnicodeError, IndexError) as err:
        raise ValueError(f"DNS server {host!r} has no address: {err}") from err


class Resolver:
    """Addresses for a host and TXT values for a name; failures are ``Failure(dns)``."""

    def __init__(self, *, resolve_all: str | None = None, dns_server: tuple[str, int] | None = None) -> None:
        self._resolve_all = None if resolve_all is None else str(ipaddress.ip_address(resolve_all))
        self._server = None if dns_server is None else (_server_address(dns_server[0]), dns_server[1])
        self._where = "the system resolver" if dns_server is None else f"DNS server {dns_server[0]}:{dns_server[1]}"

    def _dns(self) -> dns.resolver.Resolver:
        """A fresh resolver per lookup: nothing mutable is shared between worker threads."""
        if self._server is None:
            return dns.resolver.Resolver()
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self._server[0]]
        resolver.port = self._server[1]
        return resolver

    def addresses(self, host: str, attempt: Attempt) -> list[str]:
        """IP addresses to connect to for ``host`` (a DNS name or an IP literal), IPv6 first."""
        literal = _ip_literal(host)
        if literal is not None:
            return [literal]
        if self._resolve_all is not None:
            attempt.note(f"resolve-all {host} -> {self._resolve_all}")
            return [self._resolve_all]
        found = self._system_addresses(host, attempt) if self._server is None else self._dns_addresses(host, attempt)
        attempt.note(f"addresses of {host} from {self._where}: {', '.join(found)}")
        return found

    def _system_addresses(self, host: str, attempt: Attempt) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as err:
            raise Failure("dns", f"no address for {host} from {self._where}: {err}") from err
        ordered = sorted({str(info[4][0]) for info in infos}, key=lambda a: (":" not in a, a))
        if not ordered:
            raise Failure("dns", f"no address for {host} from {self._where}")
        return ordered

    def _dns_addresses(self, host: str, attempt: Attempt) -> list[str]:
        found: list[str] = []
        errors: list[str] = []
        for rdtype in ("AAAA", "A"):
            try:
                answer = self._dns().resolve(
                    host, rdtype, search=False, raise_on_no_answer=False,
                    lifetime=attempt.remaining(f"looking up {rdtype} for {host}"),
                )
            except dns.resolver.NXDOMAIN:
                raise Failure("dns", f"{host} does not exist (NXDOMAIN from {self._where})") from None
            except dns.exception.DNSException as err:
                errors.append(f"{rdtype}: {err}")
                continue
            found.extend(rdata.to_text() for rdata in answer)
        if not found:
            why = "; ".join(errors) if errors else "no A or AAAA record"
            raise Failure("dns", f"no address for {host} from {self._where}: {why}")
        return found

    def txt(self, name: str, attempt: Attempt) -> list[str]:
        """The TXT values at ``name``, each rdata's strings concatenated (RFC 1035 §3.3.14)."""
        try:
            answer = self._dns().resolve(
                name, "TXT", search=False, lifetime=attempt.remaining(f"looking up TXT for {name}")
            )
        except dns.resolver.NXDOMAIN:
            raise Failure("dns", f"no TXT record at {name}: NXDOMAIN from {self._where}") from None
        except dns.resolver.NoAnswer:
            raise Failure("dns", f"no TXT record at {name}: the name exists but has none ({self._where})") from None
        except dns.exception.DNSException as err:
            raise Failure("dns", f"looking up TXT at {name} with {self._where} failed: {err}") from err
        values = [
            b"".join(rdata.strings).decode("utf-8", "replace")
            for rdata in answer
            if hasattr(rdata, "strings")
        ]
        attempt.note(f"TXT {name} from {self._where}: {len(values)} value(s)")
        return values
