"""``letsencrypt certificates`` and the revocation check behind it (``letsencrypt.revocation_status``).

A small CA made at test time issues the certificates; a real HTTP server on loopback answers OCSP
and serves CRLs for it, and can misbehave (wrong signer, stale answers, garbage, silence) so that
each refusal of an untrustworthy answer is seen.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import SERVER, invoke
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from letsencrypt.acme import crypto
from letsencrypt.paths import Paths
from letsencrypt.revocation_status import check_revocation, crl_urls, ocsp_urls
from letsencrypt.storage.lineage import Lineage
from letsencrypt.storage.renewal_config import RenewalConfig

DOCS = Path(__file__).resolve().parents[3] / "docs" / "json-output.md"
NOW = datetime.datetime.now(datetime.UTC)
pytestmark = pytest.mark.usefixtures("restore_logging")


# --- a CA and its OCSP responder / CRL server ------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class MiniCA:
    """An issuing CA whose revocation state the responder below publishes."""

    def __init__(self, common_name: str = "Mini CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=30)).not_valid_after(NOW + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.revoked: dict[int, x509.ReasonFlags | None] = {}

    def issue(
        self, names: list[str], *, ocsp_url: str | None = None, crl_url: str | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=2))
            .not_valid_after(not_after or NOW + datetime.timedelta(days=88))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        )
        if ocsp_url:
            builder = builder.add_extension(x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                        x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
        if crl_url:
            builder = builder.add_extension(x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key

    def delegate(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A responder certificate with id-kp-OCSPSigning (RFC 6960 §4.2.2.2)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder().subject_name(_name("Mini OCSP")).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert, key


@dataclasses.dataclass
class Responder:
    """How the server answers: ``ocsp`` and ``crl`` pick a behaviour; ``requests`` counts calls."""

    ca: MiniCA
    ocsp: str = "normal"  # normal, foreign-signer, forged-name, delegated, stale, unauthorized, garbage, silent,
    # wrong-nonce
    crl: str = "normal"  # normal, foreign-signer, http-500
    requests: list[str] = dataclasses.field(default_factory=list)

    def ocsp_answer(self, body: bytes) -> bytes:
        if self.ocsp == "garbage":
            return b"<html>not ocsp</html>"
        if self.ocsp == "unauthorized":
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                serialization.Encoding.DER)
        request = ocsp.load_der_ocsp_request(body)
        serial = request.serial_number
        this_update = NOW - datetime.timedelta(days=10 if self.ocsp == "stale" else 0, minutes=1)
        reason = self.ca.revoked.get(serial)
        revoked = serial in self.ca.revoked
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, serial, request.hash_algorithm,
            ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update, this_update + datetime.timedelta(days=3),
            NOW - datetime.timedelta(hours=1) if revoked else None, reason,
        )
        signer_cert, signer_key = self.ca.cert, self.ca.key
        if self.ocsp == "delegated":
            signer_cert, signer_key = self.ca.delegate()
            builder = builder.certificates([signer_cert])
        elif self.ocsp in ("foreign-signer", "forged-name"):
            impostor = MiniCA(self.ca.cert.subject.rfc4514_string()[3:])  # same name, another key
            signer_cert, signer_key = impostor.cert, impostor.key
        encoding = ocsp.OCSPResponderEncoding.NAME if self.ocsp == "forged-name" else ocsp.OCSPResponderEncoding.HASH
        builder = builder.responder_id(encoding, signer_cert)
        nonce = next((ext.value.nonce for ext in request.extensions if isinstance(ext.value, x509.OCSPNonce)), None)
        if nonce is not None:
            echoed = b"x" * len(nonce) if self.ocsp == "wrong-nonce" else nonce
            builder = builder.add_extension(x509.OCSPNonce(echoed), critical=False)
        return builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def crl_der(self) -> bytes:
        key = ec.generate_private_key(ec.SECP256R1()) if self.crl == "foreign-signer" else self.ca.key
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.ca.cert.subject)
                   .last_update(NOW - datetime.timedelta(minutes=1)).next_update(NOW + datetime.timedelta(days=1)))
        for serial, reason in self.ca.revoked.items():
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW)
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclasses.dataclass
class RevocationServer:
    base_url: str
    responder: Responder

    @property
    def ocsp_url(self) -> str:
        return self.base_url + "/ocsp"

    @property
    def crl_url(self) -> str:
        return self.base_url + "/crl"


@pytest.fixture
def mini_ca() -> MiniCA:
    return MiniCA()


@pytest.fixture
def server(mini_ca: MiniCA) -> Iterator[RevocationServer]:
    responder = Responder(mini_ca)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            responder.requests.append("ocsp")
            if responder.ocsp == "silent":
                time.sleep(1.5)
            self._send(200, responder.ocsp_answer(body), "application/ocsp-response")

        def do_GET(self) -> None:
            responder.requests.append("crl")
            if responder.crl == "http-500":
                self._send(500, b"oops", "text/plain")
            else:
                self._send(200, responder.crl_der(), "application/pkix-crl")

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RevocationServer(f"http://127.0.0.1:{httpd.server_address[1]}", responder)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# --- revocation_status --------------------------------------------------------------------------------


def test_urls_come_from_the_certificate(mini_ca: MiniCA) -> None:
    cert, _ = mini_ca.issue(["a.test"], ocsp_url="http://o.test/", crl_url="http://c.test/1.crl")
    assert ocsp_urls(cert) == ["http://o.test/"]
    assert crl_urls(cert) == ["http://c.test/1.crl"]
    bare, _ = mini_ca.issue(["a.test"])
    assert ocsp_urls(bare) == [] and crl_urls(bare) == []
    assert check_revocation(bare, mini_ca.cert).status == "unavailable"


def test_ocsp_good_then_revoked_with_its_reason(mini_ca: MiniCA, server: RevocationServer) -> None:
    cert, _ = mini_ca.issue(["a.test"], ocsp_url=server.ocsp_url)
    assert check_revocation(cert, mini_ca.cert).status == "good"
    mini_ca.revoked[cert.serial_number] = x509.ReasonFlags.key_compromise
    result = check_revocation(cert, mini_ca.cert)
    assert (result.status, result.source, result.reason) == ("revoked", "ocsp", "keyCompromise")
    assert result.revoked_at is not None and result.revoked


def test_a_delegated_responder_is_believed(mini_ca: MiniCA, server: RevocationServer) -> None:
    server.responder.ocsp = "delegated"
    cert, _ = mini_ca.issue(["a.test"], ocsp_url=server.ocsp_url)
    mini_ca.revoked[cert.serial_number] = None
    result = check_revocation(cert, mini_ca.cert)
    assert (result.status, result.reason) == ("revoked", None)


@pytest.mark.parametrize(
    ("behaviour", "detail"),
    [
        ("foreign-signer", "signed neither by the issuer"),
        ("forged-name", "signature does not verify"),
        ("stale", "stale"),
        ("unauthorized", "unauthorized"),
        ("garbage", "not an OCSP response"),
        ("wrong-nonce", "nonce"),
    ],
)
def test_untrustworthy_ocsp_answers_give_unknown(
    mini_ca: MiniCA, server: RevocationServer, behaviour: str, detail: str
) -> None:
    server.responder.ocsp = behaviour
    cert, _ = mini_ca.issue(["a.test"], ocsp_url=server.ocsp_url)
    mini_ca.revoked[cert.serial_number] = x509.ReasonFlags.superseded  # a forged "good" must not hide this
    result = check_revocation(cert, mini_ca.cert)
    assert result.status == "unknown"
    assert detail in (result.detail or "")


def test_a_silent_responder_gives_unknown_within_the_timeout(mini_ca: MiniCA, server: RevocationServer) -> None:
    server.responder.ocsp = "silent"
    cert, _ = mini_ca.issue(["a.test"], ocsp_url=server.ocsp_url)
    started = time.monotonic()
    result = check_revocation(cert, mini_ca.cert, timeout=0.3)
    assert time.monotonic() - started < 1.4
    assert result.status == "unknown" and "no answer" in (result.detail or "")


def test_nobody_listening_gives_unknown(mini_ca: MiniCA) -> None:
    cert, _ = mini_ca.issue(["a.test"], ocsp_url="http://127.0.0.1:9/ocsp", crl_url="ftp://c.test/x.crl")
    result = check_revocation(cert, mini_ca.cert, timeout=1)
    assert result.status == "unknown"
    assert "OCSP http://127.0.0.1:9/ocsp: no answer" in (result.detail or "")
    assert "unsupported URL scheme ftp" in (result.detail or "")


def test_crl_when_the_certificate_names_only_a_crl(mini_ca: MiniCA, server: RevocationServer) -> None:
    cert, _ = mini_ca.issue(["a.test"], crl_url=server.crl_url)
    assert check_revocation(cert, mini_ca.cert).status == "good"
    mini_ca.revoked[cert.serial_number] = x509.ReasonFlags.cessation_of_operation
    result = check_revocation(cert, mini_ca.cert)
    assert (result.status, result.source, result.reason) == ("revoked", "crl", "cessationOfOperation")
    assert server.responder.requests == ["crl", "crl"]


def test_the_crl_is_the_fallback_when_ocsp_fails(mini_ca: MiniCA, server: RevocationServer) -> None:
    server.responder.ocsp = "garbage"
    cert, _ = mini_ca.issue(["a.test"], ocsp_url=server.ocsp_url, crl_url=server.crl_url)
    mini_ca.revoked[cert.serial_number] = x509.ReasonFlags.key_compromise
    result = check_revocation(cert, mini_ca.cert)
    assert (result.status, result.source) == ("revoked", "crl")
    assert server.responder.requests == ["ocsp", "crl"]


@pytest.mark.parametrize(("behaviour", "detail"), [("foreign-signer", "signature"), ("http-500", "HTTP 500")])
def test_bad_crls_give_unknown(mini_ca: MiniCA, server: RevocationServer, behaviour: str, detail: str) -> None:
    server.responder.crl = behaviour
    cert, _ = mini_ca.issue(["a.test"], crl_url=server.crl_url)
    result = check_revocation(cert, mini_ca.cert)
    assert result.status == "unknown" and detail in (result.detail or "")


def test_an_issuer_that_did_not_issue_the_certificate_gives_unknown(
    mini_ca: MiniCA, server: RevocationServer
) -> None:
    cert, _ = mini_ca.issue(["a.test"], ocsp_url=server.ocsp_url)
    result = check_revocation(cert, MiniCA("Other").cert)
    assert result.status == "unknown" and "did not issue" in (result.detail or "")
    assert server.responder.requests == []


# --- the certificates command ----------------------------------------------------------------------


def store(tmp_path: Path, ca: MiniCA, name: str, names: list[str], **issue: Any) -> Lineage:
    cert, key = ca.issue(names, **issue)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return Lineage.create(Paths.under(tmp_path), name, pem, ca.cert.public_bytes(serialization.Encoding.PEM),
                          crypto.private_key_to_pem(key), RenewalConfig(server=SERVER))


def test_certificates_json_reports_each_status(tmp_path: Path, mini_ca: MiniCA, server: RevocationServer) -> None:
    good = store(tmp_path, mini_ca, "good.test", ["good.test", "www.good.test"], ocsp_url=server.ocsp_url)
    revoked = store(tmp_path, mini_ca, "revoked.test", ["revoked.test"], crl_url=server.crl_url)
    mini_ca.revoked[revoked.certificate.serial_number] = x509.ReasonFlags.key_compromise
    store(tmp_path, mini_ca, "expired.test", ["expired.test"], ocsp_url=server.ocsp_url,
          not_after=NOW - datetime.timedelta(days=1))
    store(tmp_path, mini_ca, "plain.test", ["plain.test"])
    store(tmp_path, mini_ca, "dark.test", ["dark.test"], ocsp_url="http://127.0.0.1:9/ocsp")
    broken = store(tmp_path, mini_ca, "broken.test", ["broken.test"])
    (broken.archive_dir / "cert1.pem").unlink()

    result = invoke(tmp_path, "certificates", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    by_name = {entry["name"]: entry for entry in document["certificates"]}
    assert list(by_name) == ["dark.test", "expired.test", "good.test", "plain.test", "revoked.test"]
    assert {name: entry["status"] for name, entry in by_name.items()} == {
        "dark.test": "unknown", "expired.test": "expired", "good.test": "valid", "plain.test": "valid",
        "revoked.test": "revoked",
    }
    entry = by_name["good.test"]
    assert entry["domains"] == ["good.test", "www.good.test"]
    assert entry["serial"] == format(good.certificate.serial_number, "x")
    assert entry["key_type"] == "ECDSA P-256" and entry["server"] == SERVER
    assert entry["days_left"] in (87, 88)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["expires"])
    assert entry["fullchain_path"] == str(good.fullchain_path) and entry["renewal_config"] == str(
        good.renewal_conf_path)
    assert by_name["revoked.test"]["revocation_reason"] == "keyCompromise"
    assert by_name["expired.test"]["days_left"] < 0
    assert "no answer" in by_name["dark.test"]["status_detail"]
    assert "names no OCSP responder" in by_name["plain.test"]["status_detail"]
    assert [error["name"] for error in document["errors"]] == ["broken.test"]
    assert server.responder.requests.count("ocsp") == 1  # the expired one is not asked about


def test_certificates_human_output_like_certbot(
    tmp_path: Path, mini_ca: MiniCA, server: RevocationServer
) -> None:
    lineage = store(tmp_path, mini_ca, "a.test", ["a.test", "b.test"], ocsp_url=server.ocsp_url)
    mini_ca.revoked[lineage.certificate.serial_number] = x509.ReasonFlags.superseded
    store(tmp_path, mini_ca, "c.test", ["c.test"])
    (Paths.under(tmp_path).renewal_conf("c.test")).write_text("not = [a valid\n")

    result = invoke(tmp_path, "certificates")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Found the following certificates:\n  Certificate Name: a.test\n")
    assert "    Domains: a.test b.test\n" in out
    assert "(INVALID: REVOKED (superseded))" in out
    assert f"    Certificate Path: {lineage.fullchain_path}\n" in out
    assert f"    Private Key Path: {lineage.key_path}\n" in out
    assert "  Certificate Name: c.test\n    INVALID: " in out


def test_certificates_filters_by_name_and_domain(tmp_path: Path, mini_ca: MiniCA) -> None:
    store(tmp_path, mini_ca, "a.test", ["a.test", "www.a.test"])
    store(tmp_path, mini_ca, "b.test", ["b.test"])

    def names(*args: str) -> list[str]:
        return [entry["name"] for entry in json.loads(invoke(tmp_path, "certificates", "--json", *args).stdout)[
            "certificates"]]

    assert names() == ["a.test", "b.test"]
    assert names("--cert-name", "b.test") == ["b.test"]
    assert names("-d", "www.a.test") == ["a.test"]
    assert names("-d", "nothing.test") == []


def test_no_certificates(tmp_path: Path) -> None:
    assert invoke(tmp_path, "certificates").stdout == "No certificates found.\n"
    assert json.loads(invoke(tmp_path, "certificates", "--json").stdout) == {"certificates": [], "errors": []}


# --- the documented JSON schema --------------------------------------------------------------------


def documented_example(heading: str) -> Any:
    """The first ```json block after ``heading`` in docs/json-output.md."""
    text = DOCS.read_text()
    section = text[text.index(heading):]
    return json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])


def test_certificates_json_has_exactly_the_documented_keys(tmp_path: Path, mini_ca: MiniCA) -> None:
    store(tmp_path, mini_ca, "a.test", ["a.test"])
    bad = store(tmp_path, mini_ca, "bad.test", ["bad.test"])
    (bad.archive_dir / "cert1.pem").unlink()
    document = json.loads(invoke(tmp_path, "certificates", "--json").stdout)
    example = documented_example("## `certificates --json`")
    assert set(document) == set(example)
    assert list(document["certificates"][0]) == list(example["certificates"][0])
    assert set(document["errors"][0]) == set(example["errors"][0])
    table = DOCS.read_text().split("## `certificates --json`")[1].split("## ")[0]
    for key in example["certificates"][0]:
        assert f"`{key}`" in table, f"{key} is not described in docs/json-output.md"
