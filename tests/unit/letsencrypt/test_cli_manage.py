"""``delete``, ``revoke`` (what is decided before the CA is asked), ``install``, ``enhance`` and ``rollback``.

Installers come from a fake plugin laid out as an installed distribution (a ``*.dist-info`` with its
entry point) on ``sys.path``, so the client finds it the way it finds any third-party plugin. It
logs each call it gets to ``<work-dir>/fake-installer.log`` and reads what to do from
``<config-dir>/fake-installer.json`` (``fail_at``: a method that raises; ``serves``: live paths its
configuration uses, for ``delete``). The CLI runs in process with click's ``CliRunner``; what it
asks of a CA is in ``tests/integration/test_client_manage.py``.
"""

from __future__ import annotations

import datetime
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import SERVER, installed_plugin, invoke, run_main
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from letsencrypt.acme import crypto
from letsencrypt.cli import main
from letsencrypt.paths import Paths
from letsencrypt.storage.lineage import Lineage
from letsencrypt.storage.lock import ConfigLock
from letsencrypt.storage.renewal_config import RenewalConfig, load

pytestmark = pytest.mark.usefixtures("restore_logging")

FAKE_INSTALLER = '''
import json
from pathlib import Path

from letsencrypt.plugin_api import MisconfigurationError


class FakeInstaller:
    name = "fake-installer"
    description = "records what the client asks of an installer (tests)"
    options = ()

    def __init__(self, context):
        self.context = context

    def _settings(self):
        path = Path(self.context.config_dir) / "fake-installer.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _call(self, method, *args):
        log = Path(self.context.work_dir) / "fake-installer.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(json.dumps([method, *[str(arg) for arg in args]]) + "\\n")
        if self._settings().get("fail_at") == method:
            raise MisconfigurationError(f"{method} failed on purpose", hint="fix the fake configuration")

    def prepare(self): self._call("prepare")
    def names(self): return {"a.test", "www.a.test"}
    def deploy_certificate(self, domain, *, cert_path, key_path, chain_path, fullchain_path):
        self._call("deploy_certificate", domain, fullchain_path)
    def supported_enhancements(self): return ["redirect", "hsts", "staple-ocsp"]
    def enhance(self, domain, enhancement, options=None): self._call("enhance", domain, enhancement)
    def save(self, title, *, temporary=False): self._call("save", title)
    def rollback_checkpoints(self, count=1): self._call("rollback_checkpoints", count)
    def recovery_routine(self): self._call("recovery_routine")
    def config_test(self): self._call("config_test")
    def restart(self): self._call("restart")

    def lineage_in_use(self, live_paths):
        self._call("lineage_in_use")
        served = set(self._settings().get("serves", []))
        return [f"/etc/fake/sites.conf:{line}" for line, path in enumerate(live_paths, 1) if str(path) in served]
'''


@pytest.fixture
def fake_installer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the fake installer distribution; yields its call log."""
    with installed_plugin(tmp_path / "site", monkeypatch, "fake-installer", "1.0",
                          "fake-installer = fake_installer_mod:FakeInstaller", "fake_installer_mod",
                          textwrap.dedent(FAKE_INSTALLER)):
        yield tmp_path / "work" / "fake-installer.log"


def configure_fake(tmp_path: Path, **settings: Any) -> None:
    (tmp_path / "config").mkdir(parents=True, exist_ok=True)
    (tmp_path / "config" / "fake-installer.json").write_text(json.dumps(settings))


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def store(tmp_path: Path, name: str, names: list[str], **config: Any) -> Lineage:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Lineage.create(Paths.under(tmp_path), name, cert.public_bytes(serialization.Encoding.PEM), b"",
                          crypto.private_key_to_pem(key), RenewalConfig(server=SERVER, **config))


# --- delete -------------------------------------------------------------------------------------------


def test_delete_removes_every_file_of_the_lineage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lineage = store(tmp_path, "a.test", ["a.test"])
    other = store(tmp_path, "b.test", ["b.test"])
    code, out, _ = run_main(tmp_path, capsys, "delete", "--cert-name", "a.test")
    assert code == 0
    assert out == "Deleted all files relating to certificate a.test.\n"
    assert not lineage.archive_dir.exists() and not lineage.live_dir.exists()
    assert not lineage.renewal_conf_path.exists()
    assert other.certificate  # untouched


def test_delete_needs_cert_name_under_n(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store(tmp_path, "a.test", ["a.test"])
    code, _, err = run_main(tmp_path, capsys, "delete")
    assert code == 1
    assert "Error: which certificate to delete? -n cannot ask" in err and "Hint: add --cert-name NAME" in err
    code, _, err = run_main(tmp_path, capsys, "delete", "--cert-name", "nope.test")
    assert code == 1 and "there is no certificate named nope.test" in err


def test_a_broken_lineage_can_be_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lineage = store(tmp_path, "a.test", ["a.test"])
    (lineage.archive_dir / "cert1.pem").unlink()
    code, _, _ = run_main(tmp_path, capsys, "delete", "--cert-name", "a.test")
    assert code == 0 and not lineage.archive_dir.exists()


def test_delete_is_refused_while_an_installer_serves_the_lineage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_installer: Path
) -> None:
    lineage = store(tmp_path, "a.test", ["a.test"])
    configure_fake(tmp_path, serves=[str(lineage.fullchain_path)])
    code, _, err = run_main(tmp_path, capsys, "delete", "--cert-name", "a.test")
    assert code == 1
    assert ("the certificate a.test is still used by the server configuration "
            "(fake-installer: /etc/fake/sites.conf:") in err
    assert "Hint: install another certificate there first" in err
    assert lineage.certificate and lineage.renewal_conf_path.exists()
    assert ["lineage_in_use"] in calls(fake_installer)


def test_an_installer_that_cannot_start_does_not_block_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_installer: Path
) -> None:
    lineage = store(tmp_path, "a.test", ["a.test"])
    configure_fake(tmp_path, serves=[str(lineage.fullchain_path)], fail_at="prepare")
    code, _, _ = run_main(tmp_path, capsys, "delete", "--cert-name", "a.test")
    assert code == 0 and not lineage.archive_dir.exists()
    assert calls(fake_installer) == [["prepare"]]


# --- revoke: what is settled before asking the CA -------------------------------------------------------


def test_revoke_under_n_needs_the_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(tmp_path, capsys, "revoke")
    assert code == 1 and "Hint: add --cert-path PATH or --cert-name NAME" in err
    lineage = store(tmp_path, "a.test", ["a.test"])
    code, _, err = run_main(tmp_path, capsys, "revoke", "--cert-name", "a.test", "--cert-path", str(lineage.cert_path))
    assert code == 1 and "--cert-path and --cert-name both name" in err


def test_revoke_without_an_account_suggests_the_certificate_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store(tmp_path, "a.test", ["a.test"])
    code, _, err = run_main(tmp_path, capsys, "revoke", "--cert-name", "a.test")
    assert code == 1
    assert f"Error: there is no account for {SERVER}" in err and "--key-path" in err


def test_revoke_refuses_a_key_that_is_not_the_certificates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = store(tmp_path, "a.test", ["a.test"])
    other = store(tmp_path, "b.test", ["b.test"])
    code, _, err = run_main(tmp_path, capsys, "revoke", "--cert-path", str(lineage.fullchain_path),
                            "--key-path", str(other.key_path))
    assert code == 1 and "is not the private key of the certificate to revoke" in err
    (tmp_path / "junk.pem").write_text("junk")
    code, _, err = run_main(tmp_path, capsys, "revoke", "--cert-path", str(tmp_path / "junk.pem"))
    assert code == 1 and "holds no certificate" in err


def test_revoke_reasons_are_certbots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(tmp_path, capsys, "revoke", "--cert-name", "x", "--reason", "because")
    assert code == 2
    for reason in ("unspecified", "keycompromise", "affiliationchanged", "superseded", "cessationofoperation"):
        assert reason in err


# --- the lock -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["delete", "--cert-name", "a.test"], ["revoke", "--cert-name", "a.test"], ["install", "--cert-name", "a.test"],
     ["enhance", "--cert-name", "a.test", "--hsts"], ["rollback"], ["register", "--agree-tos"],
     ["update_account", "-m", "x@example.com"], ["unregister"]],
    ids=lambda args: args[0],
)
def test_commands_that_write_take_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    lineage = store(tmp_path, "a.test", ["a.test"])
    with ConfigLock(Paths.under(tmp_path).lock_file):
        code, _, err = run_main(tmp_path, capsys, *args, "--server", SERVER)
    assert code == 1
    assert "another letsencrypt run" in err
    assert lineage.certificate


# --- install, enhance, rollback -------------------------------------------------------------------------


def test_install_deploys_through_the_installer_and_remembers_it(
    tmp_path: Path, fake_installer: Path
) -> None:
    lineage = store(tmp_path, "a.test", ["a.test", "www.a.test"], authenticator="standalone")
    result = invoke(tmp_path, "install", "--cert-name", "a.test", "-i", "fake-installer")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Deployed the certificate a.test for a.test, www.a.test with redirect.\n"
    fullchain = str(lineage.fullchain_path)
    assert calls(fake_installer) == [
        ["prepare"],
        ["deploy_certificate", "a.test", fullchain], ["deploy_certificate", "www.a.test", fullchain],
        ["enhance", "a.test", "redirect"], ["enhance", "www.a.test", "redirect"],
        ["save", "letsencrypt: install a.test for a.test, www.a.test"], ["config_test"], ["restart"],
    ]
    config = load(lineage.renewal_conf_path)
    assert (config.installer, config.authenticator) == ("fake-installer", "standalone")


def test_install_a_subset_of_names_without_redirect(tmp_path: Path, fake_installer: Path) -> None:
    store(tmp_path, "a.test", ["a.test", "www.a.test"])
    result = invoke(tmp_path, "install", "--cert-name", "a.test", "-i", "fake-installer", "-d", "www.a.test",
                    "--no-redirect")
    assert result.exit_code == 0, result.output
    assert [call[:2] for call in calls(fake_installer) if call[0] in ("deploy_certificate", "enhance")] == [
        ["deploy_certificate", "www.a.test"]]


def test_install_failure_rolls_the_configuration_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_installer: Path
) -> None:
    lineage = store(tmp_path, "a.test", ["a.test"])
    configure_fake(tmp_path, fail_at="config_test")
    code, _, err = run_main(tmp_path, capsys, "install", "--cert-name", "a.test", "-i", "fake-installer")
    assert code == 1
    assert "rolled back: config_test failed on purpose" in err
    assert [call[0] for call in calls(fake_installer)][-3:] == ["config_test", "recovery_routine", "restart"]
    assert load(lineage.renewal_conf_path).installer is None


def test_install_needs_a_certificate_and_an_installer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_installer: Path
) -> None:
    store(tmp_path, "a.test", ["a.test"])
    code, _, err = run_main(tmp_path, capsys, "install", "-i", "fake-installer")
    assert code == 1 and "Hint: add --cert-name NAME" in err
    code, _, err = run_main(tmp_path, capsys, "install", "--cert-name", "a.test")
    assert code == 1 and "no installer chosen" in err and "fake-installer" in err.split("installed:")[1]
    code, _, err = run_main(tmp_path, capsys, "install", "--cert-name", "a.test", "-i", "standalone")
    assert code == 1 and "standalone is not an installer" in err
    code, _, err = run_main(tmp_path, capsys, "install", "--cert-name", "a.test", "-i", "fake-installer",
                            "-d", "b.test")
    assert code == 1 and "does not cover b.test" in err


def test_enhance_applies_only_the_enhancements(tmp_path: Path, fake_installer: Path) -> None:
    store(tmp_path, "a.test", ["a.test", "www.a.test"], installer="fake-installer")
    result = invoke(tmp_path, "enhance", "--cert-name", "a.test", "--hsts", "--staple-ocsp")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Applied hsts, staple-ocsp for a.test, www.a.test.\n"
    assert calls(fake_installer) == [
        ["prepare"],
        ["enhance", "a.test", "hsts"], ["enhance", "www.a.test", "hsts"],
        ["enhance", "a.test", "staple-ocsp"], ["enhance", "www.a.test", "staple-ocsp"],
        ["save", "letsencrypt: hsts, staple-ocsp for a.test, www.a.test"], ["config_test"], ["restart"],
    ]


def test_enhance_refuses_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_installer: Path
) -> None:
    store(tmp_path, "a.test", ["a.test"], installer="fake-installer")
    code, _, err = run_main(tmp_path, capsys, "enhance", "--cert-name", "a.test")
    assert code == 1 and "no enhancement asked" in err and "--redirect, --hsts, --uir or --staple-ocsp" in err
    code, _, err = run_main(tmp_path, capsys, "enhance", "--cert-name", "a.test", "--uir")
    assert code == 1 and "does not support uir" in err and "redirect, hsts, staple-ocsp" in err
    assert not [call for call in calls(fake_installer) if call[0] in ("enhance", "save")]


def test_enhance_failure_rolls_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_installer: Path
) -> None:
    store(tmp_path, "a.test", ["a.test"])
    configure_fake(tmp_path, fail_at="restart")
    code, _, err = run_main(tmp_path, capsys, "enhance", "--cert-name", "a.test", "-i", "fake-installer",
                            "--redirect")
    assert code == 1 and "applying redirect failed and the server configuration was rolled back" in err
    assert [call[0] for call in calls(fake_installer)][-3:] == ["restart", "recovery_routine", "restart"]


def test_rollback_reverts_checkpoints_then_restarts(tmp_path: Path, fake_installer: Path) -> None:
    result = invoke(tmp_path, "rollback", "--checkpoints", "3", "-i", "fake-installer")
    assert result.exit_code == 0, result.output
    assert calls(fake_installer) == [["prepare"], ["rollback_checkpoints", "3"], ["restart"]]
    assert "Rolled back 3 checkpoint(s)" in result.stdout


def test_rollback_goes_on_when_the_configuration_is_broken(tmp_path: Path, fake_installer: Path) -> None:
    configure_fake(tmp_path, fail_at="prepare")
    result = invoke(tmp_path, "rollback", "-i", "fake-installer")
    assert result.exit_code == 0, result.output
    assert "rolling back anyway" in result.stderr
    assert calls(fake_installer)[1:] == [["rollback_checkpoints", "1"], ["restart"]]


def test_rollback_needs_an_installer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(tmp_path, capsys, "rollback", "--checkpoints", "0")
    assert code == 2
    code, _, err = run_main(tmp_path, capsys, "rollback")
    assert code == 1 and "no installer chosen" in err


def test_revoke_by_path_finds_the_lineage_and_its_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --cert-path inside a lineage (relative paths too) is revoked with the lineage's CA and account."""
    store(tmp_path, "a.test", ["a.test"])
    monkeypatch.chdir(tmp_path)
    for path in ("config/live/a.test/fullchain.pem", "config/archive/a.test/cert1.pem"):
        try:
            main(["revoke", "--cert-path", path, "--config-dir", "config", "--work-dir", "work", "--logs-dir", "logs",
                  "-n"])
        except SystemExit as done:
            assert done.code == 1
        assert f"Error: there is no account for {SERVER}" in capsys.readouterr().err  # not the default CA's
