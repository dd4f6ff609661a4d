"""letsencrypt.testing.dns: real UDP queries with dnspython, as ca_stub's VA makes them."""

from __future__ import annotations

import json
from pathlib import Path

import dns.rdatatype
import dns.resolver
import pytest

from letsencrypt.testing.dns import DnsServer, json_zone_file, serve_dns


def _resolver(server: DnsServer) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server.host]
    resolver.port = server.port
    resolver.lifetime = 5
    return resolver


def _txt(server: DnsServer, name: str) -> list[str]:
    answer = _resolver(server).resolve(name, "TXT", search=False)
    return sorted(b"".join(rdata.strings).decode() for rdata in answer)


def test_serves_records_set_by_the_test_without_case_or_trailing_dot() -> None:
    with serve_dns({"_acme-challenge.Example.COM.": ["first"]}) as server:
        server.set_txt("_acme-challenge.example.com", "second")
        server.set_txt("_acme-challenge.example.com", "second")  # kept once

        assert _txt(server, "_acme-challenge.example.com") == ["first", "second"]
        assert ("_acme-challenge.example.com", "TXT") in server.queries

        server.clear_txt("_ACME-challenge.example.com.")
        with pytest.raises(dns.resolver.NXDOMAIN):
            _resolver(server).resolve("_acme-challenge.example.com", "TXT", search=False)


def test_a_long_value_is_split_into_character_strings_and_joined_back() -> None:
    value = "v" * 600
    with serve_dns({"long.example.com": [value]}) as server:
        assert _txt(server, "long.example.com") == [value]


def test_reads_a_json_zone_file_on_every_query(tmp_path: Path) -> None:
    zone = tmp_path / "zone.json"
    with serve_dns(sources=[json_zone_file(zone)]) as server:
        with pytest.raises(dns.resolver.NXDOMAIN):  # no file yet: no records
            _resolver(server).resolve("_acme-challenge.a.example", "TXT", search=False)

        zone.write_text(json.dumps({"_acme-challenge.a.example": ["from-the-plugin"]}))
        assert _txt(server, "_acme-challenge.a.example") == ["from-the-plugin"]

        zone.write_text("{ half written")
        assert server.txt("_acme-challenge.a.example") == []

        server.clear()  # drops the source too
        zone.write_text(json.dumps({"_acme-challenge.a.example": ["from-the-plugin"]}))
        assert server.txt("_acme-challenge.a.example") == []


def test_answers_addresses_so_it_can_be_a_ca_s_only_resolver() -> None:
    with serve_dns(address="127.0.0.2") as server:
        resolver = _resolver(server)
        assert [r.to_text() for r in resolver.resolve("www.example.com", "A", search=False)] == ["127.0.0.2"]
        empty = resolver.resolve("www.example.com", "AAAA", search=False, raise_on_no_answer=False)
        assert empty.rrset is None
        assert server.queries[-1] == ("www.example.com", dns.rdatatype.to_text(dns.rdatatype.AAAA))
        assert server.address == f"127.0.0.1:{server.port}"
