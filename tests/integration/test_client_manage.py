"""The managing commands as a user types them: the real ``letsencrypt`` CLI in subprocesses, against CAs.

Against ``ca_stub`` (``letsencrypt.testing.run_ca_stub``): the account commands (register,
show_account --json, update_account, unregister), ``certonly --standalone`` then ``certificates
--json``, revocation by the account (seen as ``revoked`` through the CA's OCSP responder, and in
its CRL) and by the certificate's own key from a configuration directory without any account,
``delete``, ``plugins --json``, and the interactive ``delete`` on a terminal. Against Pebble: the
account commands and revocation by the account, checked with Pebble's management API.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509

from letsencrypt.acme import crypto
from letsencrypt.acme.client import AcmeClient
from letsencrypt.acme.errors import ProblemError
from letsencrypt.acme.jws import AccountKey
from letsencrypt.revocation_status import check_revocation
from letsencrypt.testing import CAStub, run_ca_stub
from letsencrypt.testing.client import AcmeTestServer, describe

from .pebble_harness import Pebble

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "json-output.md"
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CAStub]:
    with run_ca_stub(tmp_path_factory.mktemp("ca_stub")) as stub:
        yield stub


class Client:
    """``python -m letsencrypt ARGS`` with its directories under ``root`` and ``--server`` set to ``ca``."""

    def __init__(self, root: Path, ca: AcmeTestServer) -> None:
        self.root, self.ca = root, ca
        self.config_dir = root / "config"

    def argv(self, args: Sequence[str], *, interactive: bool = False) -> list[str]:
        return [sys.executable, "-m", "letsencrypt", *args,
                "--config-dir", str(self.config_dir), "--work-dir", str(self.root / "work"),
                "--logs-dir", str(self.root / "logs"), "--server", self.ca.directory_url,
                "--server-ca-bundle", self.ca.ca_bundle, *([] if interactive else ["-n"])]

    @staticmethod
    def env() -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("LETSENCRYPT_") and key not in ("REQUESTS_CA_BUNDLE", "CI")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        return env

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.argv(args), env=self.env(), capture_output=True, text=True, timeout=TIMEOUT,
                                stdin=subprocess.DEVNULL, check=False)
        if ok:
            assert result.returncode == 0, describe(result)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout)

    def certonly(self, *names: str) -> None:
        self("certonly", "--standalone", "--http-01-port", str(self.ca.http_port), "--http-01-address",
             "127.0.0.1", "--agree-tos", "-m", "admin@example.com", *(f"-d{name}" for name in names))

    def live(self, name: str, kind: str = "cert") -> Path:
        return self.config_dir / "live" / name / f"{kind}.pem"

    def serial(self, name: str) -> str:
        return format(x509.load_pem_x509_certificate(self.live(name).read_bytes()).serial_number, "x")


def documented_keys(heading: str) -> list[str]:
    text = DOCS.read_text()
    return list(json.loads(text[text.index(heading):].split("```json\n", 1)[1].split("```", 1)[0]))


# --- ca_stub ----------------------------------------------------------------------------------------


def test_account_commands(ca: CAStub, tmp_path: Path) -> None:
    client = Client(tmp_path, ca)
    refused = client("register", "-m", "first@example.com", ok=False)
    assert refused.returncode == 1 and "add --agree-tos" in refused.stderr
    registered = client("register", "--agree-tos", "-m", "first@example.com")
    assert registered.stdout.startswith("Account registered: https://")

    shown = client.json("show_account", "--json")
    assert list(shown) == documented_keys("## `show_account --json`")
    assert shown["status"] == "valid" and shown["contact"] == ["mailto:first@example.com"]
    assert shown["server"] == ca.directory_url and shown["account_url"] in registered.stdout
    (folder,) = (client.config_dir / "accounts").glob(f"*/*/{shown['account_id']}")
    key = AccountKey.from_pem((folder / "private_key.pem").read_bytes())
    assert shown["key_thumbprint"] == key.thumbprint

    again = client("register", "--agree-tos", "-m", "x@example.com", ok=False)
    assert again.returncode == 1 and "there is already an account" in again.stderr

    client("update_account", "-m", "second@example.com,third@example.com")
    shown = client.json("show_account", "--json")
    assert shown["contact"] == ["mailto:second@example.com", "mailto:third@example.com"]
    assert "Email contact: second@example.com, third@example.com" in client("show_account").stdout

    assert client("unregister").stdout == f"Account deactivated: {shown['account_url']}\n"
    assert not folder.exists()
    gone = client("show_account", ok=False)
    assert gone.returncode == 1 and "there is no account" in gone.stderr
    with AcmeClient(ca.directory_url, key, verify=ca.ca_bundle) as acme, pytest.raises(ProblemError):
        acme.find_account()  # deactivated at the CA, not only forgotten here


def test_certificates_revoke_and_delete(ca: CAStub, tmp_path: Path) -> None:
    client = Client(tmp_path, ca)
    client.certonly("manage.example.com", "www.manage.example.com")
    (entry,) = client.json("certificates", "--json")["certificates"]
    assert entry["status"] == "valid" and entry["status_detail"] is None
    assert entry["domains"] == ["manage.example.com", "www.manage.example.com"]
    assert entry["serial"] == client.serial("manage.example.com") and entry["server"] == ca.directory_url

    revoked = client("revoke", "--cert-name", "manage.example.com", "--reason", "keycompromise",
                     "--no-delete-after-revoke")
    assert f"serial {entry['serial']}" in revoked.stdout
    status = ca.certificate_status(entry["serial"])
    assert status["Status"] == "Revoked" and status["Reason"] == 1

    (entry,) = client.json("certificates", "--json")["certificates"]  # asked through the CA's OCSP responder
    assert (entry["status"], entry["revocation_reason"]) == ("revoked", "keyCompromise")
    assert "INVALID: REVOKED (keyCompromise)" in client("certificates").stdout

    certificate = x509.load_pem_x509_certificate(client.live("manage.example.com").read_bytes())
    issuer = crypto.split_pem_chain(client.live("manage.example.com", "chain").read_text())[0]
    from_crl = check_revocation(certificate, issuer, verify=ca.ca_bundle, methods=("crl",))
    assert (from_crl.status, from_crl.source, from_crl.reason) == ("revoked", "crl", "keyCompromise")

    again = client("revoke", "--cert-name", "manage.example.com", ok=False)
    assert again.returncode == 1 and "is already revoked" in again.stderr

    client("delete", "--cert-name", "manage.example.com")
    assert client.json("certificates", "--json") == {"certificates": [], "errors": []}
    assert not (client.config_dir / "renewal" / "manage.example.com.conf").exists()


def test_revoke_deletes_the_lineage_when_asked(ca: CAStub, tmp_path: Path) -> None:
    client = Client(tmp_path, ca)
    client.certonly("gone.example.com")
    serial = client.serial("gone.example.com")
    client("revoke", "--cert-path", str(client.live("gone.example.com", "fullchain")), "--delete-after-revoke",
           "--reason", "superseded")
    assert ca.certificate_status(serial)["Status"] == "Revoked"
    assert not (client.config_dir / "archive" / "gone.example.com").exists()


def test_revoke_with_the_certificate_key_needs_no_account(ca: CAStub, tmp_path: Path) -> None:
    owner = Client(tmp_path / "owner", ca)
    owner.certonly("keyholder.example.com")
    serial = owner.serial("keyholder.example.com")
    stranger = Client(tmp_path / "stranger", ca)
    result = stranger("revoke", "--cert-path", str(owner.live("keyholder.example.com")),
                      "--key-path", str(owner.live("keyholder.example.com", "privkey")), "--reason", "keycompromise")
    assert f"serial {serial}" in result.stdout
    assert ca.certificate_status(serial)["Status"] == "Revoked"
    assert not list((stranger.config_dir / "accounts").glob("**/private_key.pem"))
    assert owner.live("keyholder.example.com").exists()  # not the stranger's lineage to delete
    (entry,) = owner.json("certificates", "--json")["certificates"]
    assert entry["status"] == "revoked"


def test_plugins_json_lists_the_built_in_authenticators(ca: CAStub, tmp_path: Path) -> None:
    document = Client(tmp_path, ca).json("plugins", "--json")
    names = {plugin["name"]: plugin for plugin in document["plugins"]}
    assert {"standalone", "webroot", "manual"} <= set(names)
    assert all(names[name]["authenticator"] for name in ("standalone", "webroot", "manual"))


def test_interactive_delete_offers_the_certificates(ca: CAStub, tmp_path: Path) -> None:
    client = Client(tmp_path, ca)
    client.certonly("one.example.com")
    client.certonly("two.example.com")
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(client.argv(["delete"], interactive=True), env=client.env(), stdin=secondary,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(primary, b"2\ny\n")
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        os.close(primary)
        os.close(secondary)
    assert process.returncode == 0, err
    assert "1: one.example.com\n2: two.example.com\n" in err
    assert out == "Deleted all files relating to certificate two.example.com.\n"
    assert [entry["name"] for entry in client.json("certificates", "--json")["certificates"]] == ["one.example.com"]


# --- Pebble -----------------------------------------------------------------------------------------


def pebble_status(pebble: Pebble, serial: str) -> dict[str, Any]:
    response = requests.get(f"{pebble.management_url}/cert-status-by-serial/{serial}", verify=pebble.ca_bundle,
                            timeout=10)
    response.raise_for_status()
    status: dict[str, Any] = response.json()
    return status


def test_pebble_accounts_and_revocation(pebble: Pebble, tmp_path: Path) -> None:
    client = Client(tmp_path, pebble)
    client("register", "--agree-tos", "-m", "pebble@example.com")
    shown = client.json("show_account", "--json")
    assert shown["status"] == "valid" and shown["contact"] == ["mailto:pebble@example.com"]
    client("update_account", "-m", "other@example.com")
    assert client.json("show_account", "--json")["contact"] == ["mailto:other@example.com"]

    client.certonly("pebble-manage.example.com")
    (entry,) = client.json("certificates", "--json")["certificates"]
    assert entry["status"] == "valid"
    client("revoke", "--cert-name", "pebble-manage.example.com", "--reason", "cessationofoperation")
    assert pebble_status(pebble, entry["serial"])["Status"] == "Revoked"
    assert (client.config_dir / "renewal" / "pebble-manage.example.com.conf").exists()  # -n keeps it
    client("delete", "--cert-name", "pebble-manage.example.com")
    client("unregister")
    assert client("show_account", ok=False).returncode == 1
