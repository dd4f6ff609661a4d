"""Which identifiers the CA issues for: syntax (canonical forms only) and the block list.

DNS names (RFC 8555 §7.1.4, §9.7.7): LDH labels (RFC 1035 §2.3.1, RFC 5890 for ``xn--``)
of at most 63 octets, at most 253 octets in all, at least two labels, lower case, no trailing
dot; a wildcard only as the whole left-most label (``*.example.com``, RFC 8555 §7.1.3). IP
identifiers (RFC 8738 §3) in canonical text (RFC 5952 for IPv6); loopback is allowed because
the test CA's users validate on loopback. The RA canonicalises what clients send, so anything
not already canonical here is ``malformed``; refusals of policy are ``rejectedIdentifier``.

Each check returns a subproblem (RFC 8555 §6.7.1) naming the identifier, or ``None``.

Imports: stdlib and ``letsencrypt.acme.messages``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from letsencrypt.acme.messages import Identifier, Problem

__all__ = ["BlockList", "check_dns", "check_ip"]

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
_MAX_NAME = 253
_MAX_LABEL = 63

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _sub(problem_type: str, identifier: Identifier, detail: str) -> Problem:
    return Problem.acme(problem_type, f"{identifier.value!r}: {detail}", identifier=identifier)


class BlockList:
    """Names (and their subdomains) and IP networks the CA refuses: ``rejectedIdentifier``.

    Blocking ``example.net`` blocks ``example.net``, ``a.example.net`` and ``*.example.net``;
    an entry that is an address or a CIDR network blocks those IP identifiers.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            text = entry.strip().strip(".").lower()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                names.add(text.removeprefix("*."))
        self._names = frozenset(names)
        self._networks = tuple(networks)

    def blocked_name(self, name: str) -> str | None:
        """The block-list entry covering DNS name ``name`` (wildcard prefix ignored), if any."""
        labels = name.removeprefix("*.").split(".")
        for start in range(len(labels)):
            candidate = ".".join(labels[start:])
            if candidate in self._names:
                return candidate
        return None

    def blocked_address(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        for network in self._networks:
            if address.version == network.version and address in network:
                return str(network)
        return None


def _label_problem(label: str) -> str | None:
    if not label:
        return "an empty label"
    if len(label) > _MAX_LABEL:
        return f"a label longer than {_MAX_LABEL} characters"
    if not _LABEL.fullmatch(label):
        return f"label {label!r} is not letters, digits and inner hyphens (RFC 1035 §2.3.1)"
    if label[2:4] == "--":
        if not label.startswith("xn--"):
            return f"label {label!r} has a reserved form ('??--', RFC 5890 §2.3.1)"
        try:
            label[4:].encode("ascii").decode("punycode")
        except UnicodeError:
            return f"label {label!r} is not valid punycode (RFC 3492)"
    return None


def _dns_syntax(value: str) -> str | None:
    """Why ``value`` is not a canonical DNS name (maybe a wildcard), or ``None``."""
    if not value:
        return "the name is empty"
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        return "not printable ASCII; send the IDNA (xn--) form without spaces"
    if value != value.lower():
        return "upper-case letters; send it in lower case"
    if value.endswith("."):
        return "a trailing dot"
    if len(value) > _MAX_NAME:
        return f"longer than {_MAX_NAME} characters"
    base = value.removeprefix("*.")
    if "*" in base:
        return "a wildcard other than the whole left-most label ('*.example.com')"
    try:
        ipaddress.ip_address(base)
    except ValueError:
        pass
    else:
        return "an IP address; send it as an 'ip' identifier (RFC 8738)"
    labels = base.split(".")
    if len(labels) < 2:
        return "fewer than two labels (no dot)"
    for label in labels:
        problem = _label_problem(label)
        if problem is not None:
            return problem
    if labels[-1].isdigit():
        return "an all-numeric top-level label"
    return None


def check_dns(identifier: Identifier, block_list: BlockList) -> Problem | None:
    """A ``dns`` identifier: canonical syntax (``malformed``), then the block list (``rejectedIdentifier``)."""
    problem = _dns_syntax(identifier.value)
    if problem is not None:
        return _sub("malformed", identifier, f"not a valid DNS name: {problem}")
    blocked = block_list.blocked_name(identifier.value)
    if blocked is not None:
        return _sub(
            "rejectedIdentifier", identifier, f"the CA's policy forbids issuing for {blocked} and its subdomains"
        )
    return None


def _ip_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if address.is_loopback:
        return None
    if address.is_unspecified:
        return "is the unspecified address"
    if address.is_multicast:
        return "is a multicast address"
    if address.is_link_local:
        return "is a link-local address"
    if address.is_reserved:
        return "is in a reserved range"
    return None


def check_ip(identifier: Identifier, block_list: BlockList) -> Problem | None:
    """An ``ip`` identifier (RFC 8738 §3): canonical text, no scope, a unicast address not blocked."""
    try:
        address = ipaddress.ip_address(identifier.value)
    except ValueError:
        return _sub("malformed", identifier, "is not an IPv4 or IPv6 address")
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return _sub("malformed", identifier, "carries a zone index; send the address alone")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _sub("malformed", identifier, f"is IPv4-mapped; send {str(address.ipv4_mapped)!r}")
    if str(address) != identifier.value:
        return _sub("malformed", identifier, f"is not in canonical form (RFC 5952); send {str(address)!r}")
    refusal = _ip_refusal(address)
    if refusal is not None:
        return _sub("rejectedIdentifier", identifier, f"the CA does not issue for an address that {refusal}")
    blocked = block_list.blocked_address(address)
    if blocked is not None:
        return _sub("rejectedIdentifier", identifier, f"the CA's policy forbids issuing for {blocked}")
    return None
