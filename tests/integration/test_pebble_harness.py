"""Smoke tests for the Pebble harness: the API answers over TLS with our trust anchor, the
management API serves roots, challtestsrv serves the TXT records we set, and the EAB instance
announces that it requires external account binding."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests
from cryptography import x509

from ._procs import DNS_A, DNS_TXT, dns_query, make_tls_identity
from .pebble_harness import Pebble


def _get_directory(pebble: Pebble) -> dict[str, object]:
    response = requests.get(pebble.directory_url, verify=pebble.ca_bundle, timeout=10)
    assert response.status_code == 200
    directory: dict[str, object] = response.json()
    assert "newNonce" in directory
    assert "newAccount" in directory
    return directory


def test_directory_with_other_bundle_in_environment(
    pebble: Pebble, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A bundle that cannot verify Pebble: if the environment won over verify=, this would fail.
    other = make_tls_identity(tmp_path, ["other.invalid"], prefix="other")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other.ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other.ca))
    _get_directory(pebble)
    # ... and the environment's bundle is indeed in effect when verify is not given.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(pebble.directory_url, timeout=10)


def test_directory_without_bundle_in_environment(pebble: Pebble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    directory = _get_directory(pebble)
    meta = directory.get("meta")
    assert not (isinstance(meta, dict) and meta.get("externalAccountRequired"))


def test_roots_pem_is_a_ca_certificate(pebble: Pebble) -> None:
    pem = pebble.roots_pem()
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    root = x509.load_pem_x509_certificate(pem.encode())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    intermediate = x509.load_pem_x509_certificate(pebble.intermediates_pem().encode())
    assert intermediate.issuer == root.subject


def test_set_and_clear_txt(pebble: Pebble) -> None:
    server = ("127.0.0.1", pebble.dns_port)
    host = "_acme-challenge.harness.example.com"
    pebble.set_txt(host, "first-value")
    try:
        assert dns_query(host, DNS_TXT, server=server) == [b"first-value"]
    finally:
        pebble.clear_txt(host)
    assert dns_query(host, DNS_TXT, server=server) == []


def test_every_name_resolves_to_loopback(pebble: Pebble) -> None:
    answers = dns_query("anything.example.org", DNS_A, server=("127.0.0.1", pebble.dns_port))
    assert [socket.inet_ntoa(a) for a in answers] == ["127.0.0.1"]


def test_validation_ports_are_free_for_responders(pebble: Pebble) -> None:
    for port in (pebble.http_port, pebble.tls_port):
        with socket.socket() as sock:
            # Earlier validations leave TIME_WAIT connections on these ports; responders (like
            # http.server) set SO_REUSEADDR so that they can bind again at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


def test_eab_pebble_requires_external_account_binding(eab_pebble: Pebble) -> None:
    assert eab_pebble.eab_required
    assert set(eab_pebble.eab_keys) == {"kid-1", "kid-2"}
    meta = _get_directory(eab_pebble).get("meta")
    assert isinstance(meta, dict)
    assert meta.get("externalAccountRequired") is True
