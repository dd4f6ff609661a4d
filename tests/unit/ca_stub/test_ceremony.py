"""The key ceremony: what it makes, where it puts it, with which permissions, and how fast."""

from __future__ import annotations

import datetime
import json
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca_stub.ceremony import FAST_KEYS, CeremonyError, CeremonyKeys, manifest_exists, run_ceremony
from ca_stub.contracts import CA_MANIFEST_NAME, CAManifest
from letsencrypt.acme.crypto import load_private_key, split_pem_chain


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _cn(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_ceremony_writes_manifest_and_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_ceremony(data, keys=FAST_KEYS)

    manifest = CAManifest.from_json(json.loads((data / CA_MANIFEST_NAME).read_text()))
    assert manifest == result.manifest
    assert [root.name for root in manifest.roots] == ["ca_stub Root X1", "ca_stub Root X2"]
    assert [root.key_type for root in manifest.roots] == ["RSA 2048", "ECDSA P-384"]
    assert [(i.id, i.name, i.key_type) for i in manifest.issuers] == [
        ("e1", "ca_stub E1", "ECDSA P-256"),
        ("r1", "ca_stub R1", "RSA 2048"),
    ]
    assert result.root_certificates == (data / "roots/x1.pem", data / "roots/x2.pem")
    assert result.offline_dir == data / "offline"
    assert result.root_keys == (data / "offline/x1.key.pem", data / "offline/x2.key.pem")
    assert manifest_exists(data)
    # the manifest never names a root key
    text = (data / CA_MANIFEST_NAME).read_text()
    assert "offline" not in text and "x1.key" not in text


def test_ceremony_permissions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_ceremony(data, keys=FAST_KEYS)
    assert _mode(result.offline_dir) == 0o700
    assert _mode(data / "issuers") == 0o700
    for key in (*result.root_keys, data / "issuers/e1.key.pem", data / "issuers/r1.key.pem"):
        assert _mode(key) == 0o600, key
        load_private_key(key.read_bytes())
    for cert in (*result.root_certificates, data / "issuers/e1-x1.pem", data / CA_MANIFEST_NAME):
        assert _mode(cert) == 0o644, cert
    assert not list(data.rglob("*.tmp")), "temporary files left behind"


def test_custom_offline_dir_keeps_root_keys_out_of_data_dir(tmp_path: Path) -> None:
    data, offline = tmp_path / "data", tmp_path / "vault" / "roots"
    result = run_ceremony(data, offline_dir=offline, keys=FAST_KEYS)
    assert result.root_keys == (offline / "x1.key.pem", offline / "x2.key.pem")
    assert _mode(offline) == 0o700
    assert not (data / "offline").exists()
    data_keys = {path.name for path in data.rglob("*.key.pem")}
    assert data_keys == {"e1.key.pem", "r1.key.pem"}


def test_root_profile(tmp_path: Path) -> None:
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    result = run_ceremony(tmp_path, keys=FAST_KEYS, now=now)
    for path, key_path in zip(result.root_certificates, result.root_keys, strict=True):
        root = _cert(path)
        assert root.subject == root.issuer
        root.verify_directly_issued_by(root)
        assert _spki(root) == load_private_key(key_path.read_bytes()).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca and constraints.value.path_length is None
        usage = root.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        assert root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value == (
            x509.SubjectKeyIdentifier.from_public_key(root.public_key())
        )
        lifetime = root.not_valid_after_utc - root.not_valid_before_utc
        assert datetime.timedelta(days=365 * 20) <= lifetime <= datetime.timedelta(days=365 * 20 + 10)
        assert root.not_valid_before_utc == now - datetime.timedelta(minutes=1)


def test_intermediate_profile_and_cross_certification(tmp_path: Path) -> None:
    result = run_ceremony(tmp_path, keys=FAST_KEYS)
    roots = [_cert(path) for path in result.root_certificates]
    for issuer in result.manifest.issuers:
        key = load_private_key((tmp_path / issuer.key).read_bytes())
        certs = [split_pem_chain((tmp_path / chain[0]).read_text())[0] for chain in issuer.chains]
        assert len(certs) == 2
        for cert, root in zip(certs, roots, strict=True):
            cert.verify_directly_issued_by(root)
            assert _cn(cert.subject) == issuer.name
            assert cert.subject == certs[0].subject  # same name under both roots
            assert _spki(cert) == key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
            assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            assert usage.key_cert_sign and usage.crl_sign and usage.digital_signature
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            assert aki.key_identifier == root_ski.digest
            lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
            assert datetime.timedelta(days=365 * 5) <= lifetime <= datetime.timedelta(days=365 * 5 + 2)
        assert certs[0].serial_number != certs[1].serial_number


def test_ceremony_refuses_to_overwrite(tmp_path: Path) -> None:
    run_ceremony(tmp_path, keys=FAST_KEYS)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(CeremonyError, match="already has a CA"):
        run_ceremony(tmp_path, keys=FAST_KEYS)
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before


def test_force_replaces_everything(tmp_path: Path) -> None:
    first = run_ceremony(tmp_path, keys=FAST_KEYS)
    old_roots = [path.read_bytes() for path in first.root_certificates]
    old_keys = [path.read_bytes() for path in first.root_keys]
    second = run_ceremony(tmp_path, keys=FAST_KEYS, force=True)
    assert [path.read_bytes() for path in second.root_certificates] != old_roots
    assert [path.read_bytes() for path in second.root_keys] != old_keys
    assert CAManifest.from_json(json.loads(second.manifest_path.read_text())) == second.manifest


def test_half_finished_ceremony_can_be_rerun(tmp_path: Path) -> None:
    """Without a manifest nothing is in use, so stray files from a crash do not block a new run."""
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "x1.pem").write_text("left over by a crash\n")
    assert not manifest_exists(tmp_path)
    result = run_ceremony(tmp_path, keys=FAST_KEYS)
    _cert(result.root_certificates[0])


def test_key_types_are_checked() -> None:
    with pytest.raises(ValueError, match="RSA key type"):
        CeremonyKeys(rsa_issuer="ec256")


def test_default_ceremony_is_fast(tmp_path: Path) -> None:
    """The real ceremony (RSA 4096 Root X1) finishes in a few seconds on a 2-core machine."""
    started = time.monotonic()
    result = run_ceremony(tmp_path)
    elapsed = time.monotonic() - started
    assert result.manifest.roots[0].key_type == "RSA 4096"
    assert elapsed < 5.0, f"the ceremony took {elapsed:.1f} s"
