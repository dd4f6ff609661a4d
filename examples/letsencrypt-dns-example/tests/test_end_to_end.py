"""End to end: a certificate from a running test CA through this plugin, found by its entry point.

The fixtures come from the client's pytest plugin (``letsencrypt.testing.pytest_plugin``), which
pytest loads by itself wherever the client is installed:

- ``letsencrypt_cli`` runs the real ``letsencrypt`` command against the test CA, with temporary
  config/work/logs directories and ``--server``/``--server-ca-bundle``/``-n --agree-tos -m`` given;
- ``dns_txt`` is the DNS server the CA (``ca_stub_dns``) asks for ``_acme-challenge`` TXT records:
  ``add_source(json_zone_file(zone))`` makes it serve whatever the plugin wrote to the zone file,
  the way a provider's name servers serve what its API was told.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509

from letsencrypt.testing import CAStub, DnsServer, LetsencryptCli, json_zone_file


def test_obtains_a_wildcard_certificate_with_dns01(letsencrypt_cli: LetsencryptCli, dns_txt: DnsServer,
                                                   tmp_path: Path) -> None:
    zone = tmp_path / "zone.json"
    dns_txt.add_source(json_zone_file(zone))

    letsencrypt_cli.run("certonly", "-a", "dns-example", "--dns-example-zone-file", str(zone),
                        "-d", "dns.example.com", "-d", "*.dns.example.com")

    lineage = letsencrypt_cli.live("dns.example.com")
    assert lineage.exists()
    certificate = x509.load_pem_x509_certificate(lineage.cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == ["*.dns.example.com", "dns.example.com"]
    assert ("_acme-challenge.dns.example.com", "TXT") in dns_txt.queries  # the CA really looked
    assert json.loads(zone.read_text()) == {}  # cleanup removed every record it published
    assert str(zone) in lineage.renewal_conf.read_text()  # the plugin option is kept for renewal


def test_a_missing_zone_file_flag_fails_with_a_hint(letsencrypt_cli: LetsencryptCli, ca_stub_dns: CAStub) -> None:
    """Asking for ``ca_stub_dns`` points ``letsencrypt_cli`` at it: one CA for the whole module."""
    result = letsencrypt_cli.run("certonly", "-a", "dns-example", "-d", "nozone.example.com", check=False)

    assert result.returncode != 0
    assert "--dns-example-zone-file" in result.stderr
    assert not letsencrypt_cli.live("nozone.example.com").exists()
