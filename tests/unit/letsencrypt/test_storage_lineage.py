"""Lineages: certbot's layout with relative links, modes, versions, reuse-key, delete, find_all."""

from __future__ import annotations

import datetime
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from letsencrypt.acme import crypto
from letsencrypt.errors import ConfigError, StorageError
from letsencrypt.paths import LETSENCRYPT_STAGING, Paths
from letsencrypt.storage import (
    Lineage,
    RenewalConfig,
    find_all,
    lineage_name_for,
    recover,
    renewal_config,
    scan,
    unique_name,
)

KINDS = ("cert", "chain", "fullchain", "privkey")
CONFIG = RenewalConfig(server=LETSENCRYPT_STAGING, account="0" * 32, authenticator="standalone")


class TestCA:
    """A CA made at test time that issues leaf certificates for given names and keys."""

    __test__ = False

    def __init__(self) -> None:
        self.key = crypto.generate_private_key("ec256")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storage test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self, names: list[str], key_pem: bytes | None = None, key_type: crypto.CertKeyType = "ec256"
    ) -> tuple[str, str, bytes]:
        """(cert PEM, chain PEM, key PEM) for ``names``; a fresh key unless ``key_pem`` is given."""
        key = crypto.load_private_key(key_pem) if key_pem else crypto.generate_private_key(key_type)
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return crypto.pem_of([cert]), crypto.pem_of([self.cert]), crypto.private_key_to_pem(key)


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.under(tmp_path)


def make(paths: Paths, ca: TestCA, name: str = "example.com", names: list[str] | None = None) -> Lineage:
    return Lineage.create(paths, name, *ca.issue(names or [name, f"www.{name}"]), CONFIG)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_create_writes_certbot_layout_with_relative_links(paths: Paths, ca: TestCA) -> None:
    cert, chain, key = ca.issue(["example.com", "www.example.com"])
    lineage = Lineage.create(paths, "example.com", cert, chain, key, CONFIG)
    live = paths.live("example.com")
    for kind in KINDS:
        link = live / f"{kind}.pem"
        assert os.readlink(link) == f"../../archive/example.com/{kind}1.pem"
        # certbot resolves a link by joining the link's folder path with its target, as text
        as_certbot = os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))
        assert Path(as_certbot) == paths.archive("example.com") / f"{kind}1.pem"
    assert (live / "cert.pem").read_text() == cert
    assert (live / "chain.pem").read_text() == chain
    assert (live / "fullchain.pem").read_text() == cert + chain
    assert (live / "privkey.pem").read_bytes() == key
    assert "DO NOT MOVE OR RENAME" in (live / "README").read_text()
    assert (paths.live_dir / "README").is_file()
    assert lineage.current_version == 1 and lineage.versions == (1,)
    assert lineage.names == ("example.com", "www.example.com")
    assert lineage.key_type == "ECDSA P-256"
    assert lineage.not_before < datetime.datetime.now(datetime.UTC) < lineage.not_after
    assert lineage.renewal_config == CONFIG
    text = paths.renewal_conf("example.com").read_text()
    assert f"cert = {live.absolute()}/cert.pem" in text and "[renewalparams]" in text


def test_modes_keys_private(paths: Paths, ca: TestCA) -> None:
    lineage = make(paths, ca)
    assert mode(lineage.archive_file("privkey", 1)) == 0o600
    assert mode(lineage.archive_file("cert", 1)) == 0o644
    assert mode(paths.archive_dir) == 0o700 and mode(paths.live_dir) == 0o700
    assert mode(paths.renewal_conf("example.com")) == 0o600


def test_successors_get_the_next_version(paths: Paths, ca: TestCA) -> None:
    lineage = make(paths, ca)
    material = ca.issue(["example.com", "www.example.com", "new.example.com"])
    assert lineage.save_successor(*material) == 2
    assert lineage.save_successor(*ca.issue(["example.com"])) == 3
    assert lineage.versions == (1, 2, 3) and lineage.current_version == 3
    assert lineage.names == ("example.com",)
    assert os.readlink(lineage.cert_path) == "../../archive/example.com/cert3.pem"
    assert lineage.archive_file("cert", 2).read_text() == material[0]
    generations = sorted(p.name for p in paths.live_dir.iterdir() if p.name.startswith("."))
    assert generations == [".example.com.v3"], "old generation folders are removed"
    assert Lineage.open(paths, "example.com").current_version == 3


def test_next_version_skips_stray_archive_files(paths: Paths, ca: TestCA) -> None:
    lineage = make(paths, ca)
    (paths.archive("example.com") / "cert7.pem").write_text("stray")
    assert lineage.save_successor(*ca.issue(["example.com"])) == 8
    assert (paths.archive("example.com") / "cert7.pem").read_text() == "stray"


def test_reuse_key_copies_the_current_key(paths: Paths, ca: TestCA) -> None:
    lineage = make(paths, ca)
    key = lineage.read("privkey")
    cert, chain, _ = ca.issue(["example.com"], key_pem=key)
    assert lineage.save_successor(cert, chain, None) == 2
    assert lineage.archive_file("privkey", 2).read_bytes() == key
    assert mode(lineage.archive_file("privkey", 2)) == 0o600
    assert lineage.read("cert") == cert.encode()


def test_reuse_key_with_a_certificate_for_another_key_is_refused(paths: Paths, ca: TestCA) -> None:
    lineage = make(paths, ca)
    cert, chain, _ = ca.issue(["example.com"])  # a new key the caller forgot to pass
    with pytest.raises(StorageError, match="does not match the private key"):
        lineage.save_successor(cert, chain, None)
    assert lineage.current_version == 1 and lineage.versions == (1,)
    assert sorted(p.name for p in paths.archive("example.com").iterdir()) == [f"{k}1.pem" for k in sorted(KINDS)]


@pytest.mark.parametrize("bad", ["not a certificate", "fullchain"])
def test_bad_input_is_refused(paths: Paths, ca: TestCA, bad: str) -> None:
    cert, chain, key = ca.issue(["example.com"])
    cert = cert + chain if bad == "fullchain" else bad
    with pytest.raises(StorageError, match="refusing to store"):
        Lineage.create(paths, "example.com", cert, chain, key, CONFIG)
    assert not paths.archive("example.com").exists() and not paths.live("example.com").exists()


def test_rsa_key_and_empty_chain(paths: Paths, ca: TestCA) -> None:
    cert, _, key = ca.issue(["rsa.example"], key_type="rsa2048")
    lineage = Lineage.create(paths, "rsa.example", cert, "", key, CONFIG.with_key_type("rsa2048"))
    assert lineage.key_type == "RSA 2048"
    assert lineage.read("chain") == b"" and lineage.read("fullchain") == cert.encode()
    assert lineage.renewal_config.cert_key_type == "rsa2048"


def test_create_refuses_a_taken_name_and_unique_name_finds_siblings(paths: Paths, ca: TestCA) -> None:
    make(paths, ca)
    with pytest.raises(StorageError, match="already exists") as info:
        make(paths, ca)
    assert info.value.hint
    assert unique_name(paths, "example.com") == "example.com-0001"
    make(paths, ca, "example.com-0001")
    assert unique_name(paths, "example.com") == "example.com-0002"
    assert unique_name(paths, "other.example") == "other.example"


def test_lineage_names() -> None:
    assert lineage_name_for(["example.com", "www.example.com"]) == "example.com"
    assert lineage_name_for(["*.example.com", "example.com"]) == "example.com"
    with pytest.raises(ConfigError):
        lineage_name_for([])
    for bad in ("", ".hidden", "a/b", "README", "../x"):
        with pytest.raises(ConfigError):
            Lineage(Paths.under(Path("/nonexistent")), bad)


def test_update_renewal_config_keeps_the_file_mode(paths: Paths, ca: TestCA) -> None:
    lineage = make(paths, ca)
    os.chmod(lineage.renewal_conf_path, 0o640)
    changed = RenewalConfig(server=LETSENCRYPT_STAGING, authenticator="webroot", webroot_map={"example.com": "/srv"})
    lineage.update_renewal_config(changed)
    assert mode(lineage.renewal_conf_path) == 0o640
    assert Lineage.open(paths, "example.com").renewal_config == changed


def test_successor_replaces_the_renewal_config(paths: Paths, ca: TestCA) -> None:
    lineage = make(paths, ca)
    changed = CONFIG.with_key_type("ec384")
    lineage.save_successor(*ca.issue(["example.com"], key_type="ec384"), changed)
    assert renewal_config.load(lineage.renewal_conf_path) == changed
    assert lineage.key_type == "ECDSA P-384"


def test_delete_removes_live_archive_and_renewal(paths: Paths, ca: TestCA) -> None:
    lineage = make(paths, ca)
    lineage.save_successor(*ca.issue(["example.com"]))
    keep = make(paths, ca, "keep.example")
    lineage.delete()
    assert not paths.live("example.com").exists() and not paths.live("example.com").is_symlink()
    assert not paths.archive("example.com").exists() and not paths.renewal_conf("example.com").exists()
    assert [p.name for p in paths.live_dir.iterdir() if p.name.startswith(".example.com")] == []
    assert [lin.name for lin in find_all(paths)] == ["keep.example"]
    assert keep.current_version == 1


def test_find_all_skips_broken_lineages(paths: Paths, ca: TestCA, caplog: pytest.LogCaptureFixture) -> None:
    for name in ("good.example", "corrupt.example", "noconf.example", "mixed.example", "newer.example"):
        make(paths, ca, name)
    paths.renewal_conf("corrupt.example").write_text("[renewalparams\nserver = x\n")
    paths.renewal_conf("noconf.example").unlink()
    mixed = Lineage(paths, "mixed.example")
    mixed.save_successor(*ca.issue(["mixed.example"]))
    os.replace(mixed.live_dir, paths.live_dir / "mixed-real")  # a certbot-style folder with mixed links
    os.rename(paths.live_dir / os.readlink(paths.live_dir / "mixed-real"), mixed.live_dir)
    os.unlink(paths.live_dir / "mixed-real")
    os.unlink(mixed.key_path)
    os.symlink("../../archive/mixed.example/privkey1.pem", mixed.key_path)
    text = paths.renewal_conf("newer.example").read_text().replace("schema_version = 1", "schema_version = 99")
    paths.renewal_conf("newer.example").write_text(text)
    (paths.renewal_dir / "stray.txt").write_text("not a lineage")
    with caplog.at_level(logging.WARNING):
        result = scan(paths)
        found = find_all(paths)
    assert [lineage.name for lineage in found] == ["good.example"]
    assert [lineage.name for lineage in result.lineages] == ["good.example"]
    reasons = {broken.name: broken.reason for broken in result.broken}
    assert set(reasons) == {"corrupt.example", "noconf.example", "mixed.example", "newer.example"}
    assert "bad section header" in reasons["corrupt.example"]
    assert "no renewal configuration" in reasons["noconf.example"]
    assert "different versions" in reasons["mixed.example"] and "privkey 1" in reasons["mixed.example"]
    assert "schema_version 99" in reasons["newer.example"]
    assert "skipping the certificate corrupt.example" in caplog.text


def _certbot_lineage(paths: Paths, ca: TestCA, name: str, versions: int) -> list[tuple[str, str, bytes]]:
    """A lineage as certbot writes it: a real live/NAME folder of relative links, a certbot conf."""
    archive, live = paths.archive(name), paths.live(name)
    archive.mkdir(parents=True)
    live.mkdir(parents=True)
    paths.renewal_dir.mkdir(parents=True)
    material = [ca.issue([name]) for _ in range(versions)]
    for number, (cert, chain, key) in enumerate(material, start=1):
        for kind, data in (("cert", cert), ("chain", chain), ("fullchain", cert + chain)):
            (archive / f"{kind}{number}.pem").write_text(data)
        (archive / f"privkey{number}.pem").write_bytes(key)
    for kind in KINDS:
        os.symlink(f"../../archive/{name}/{kind}{versions}.pem", live / f"{kind}.pem")
    (live / "README").write_text("certbot README\n")
    paths.renewal_conf(name).write_text(
        f"version = 2.11.0\narchive_dir = {archive}\ncert = {live}/cert.pem\nprivkey = {live}/privkey.pem\n"
        f"chain = {live}/chain.pem\nfullchain = {live}/fullchain.pem\n\n"
        "# Options used in the renewal process\n[renewalparams]\naccount = 0123456789abcdef0123456789abcdef\n"
        "authenticator = standalone\nserver = https://acme-v02.api.letsencrypt.org/directory\nkey_type = ecdsa\n"
    )
    return material


def test_certbot_lineage_is_read_and_converted_on_its_next_version(paths: Paths, ca: TestCA) -> None:
    material = _certbot_lineage(paths, ca, "old.example", 2)
    lineage = Lineage.open(paths, "old.example")
    assert lineage.current_version == 2 and lineage.versions == (1, 2)
    assert lineage.read("cert") == material[1][0].encode()
    assert lineage.renewal_config.authenticator == "standalone"
    new = ca.issue(["old.example"])
    assert lineage.save_successor(*new) == 3
    assert os.readlink(paths.live("old.example")) == ".old.example.v3"
    assert lineage.read("privkey") == new[2] and lineage.current_version == 3
    assert sorted(p.name for p in paths.live_dir.iterdir()) == [".old.example.v3", "old.example"]
    assert recover(paths) == []


def test_recover_on_an_empty_or_missing_config_dir(tmp_path: Path) -> None:
    assert recover(Paths.under(tmp_path / "missing")) == []
    assert find_all(Paths.under(tmp_path / "missing")) == []
