"""Test doubles for the nginx actions tests: a stand-in nginx binary, configurations, certificates, tasks."""

from __future__ import annotations

import datetime
import secrets
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from letsencrypt.acme import challenges
from letsencrypt.acme.jws import AccountKey, b64encode
from letsencrypt.acme.messages import Challenge, ChallengeStatus, Identifier
from letsencrypt.plugin_api import ChallengeTask
from plugins.nginx.configuration import Configuration
from plugins.nginx.control import Nginx, build_info

ACCOUNT_KEY = AccountKey.generate("ec256")

V_OUTPUT = (
    "nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf "
    "--error-log-path=/var/log/nginx/error.log --pid-path=/run/nginx.pid"
)


class RecordingReporter:
    def __init__(self) -> None:
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def progress(self, message: str) -> None:
        pass


def fake_ctl(directory: Path, body: str = "exit 0") -> str:
    """An executable answering ``-V`` like Debian's nginx and running ``body`` (sh) for anything else.

    ``-T`` fails (as nginx does on a configuration it rejects), so the plugin skips its cross-check.
    """
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "fake-nginx"
    script.write_text(f'#!/bin/sh\necho "$@" >> {directory}/calls\n'
                      f'if [ "$1" = -V ]; then echo "{V_OUTPUT}" >&2; exit 0; fi\n'
                      f'if [ "$1" = -T ]; then exit 1; fi\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    build_info.cache_clear()
    return str(script)


def server_root(tmp_path: Path, main: str, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "nginx"
    root.mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(main)
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def configuration(tmp_path: Path, main: str, files: dict[str, str] | None = None) -> Configuration:
    root = server_root(tmp_path, main, files)
    return Configuration.load(Nginx(fake_ctl(tmp_path / "bin"), root))


def http_conf(body: str) -> str:
    return f"events {{}}\nhttp {{\n{body}}}\n"


def certificate_files(directory: Path, names: list[str], *, ocsp: str | None = None) -> tuple[Path, Path, Path]:
    """A self-signed lineage-like folder: fullchain.pem, chain.pem, privkey.pem; AIA names ``ocsp`` if given."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False))
    if ocsp is not None:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp))]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    fullchain, chain, privkey = directory / "fullchain.pem", directory / "chain.pem", directory / "privkey.pem"
    fullchain.write_bytes(pem + pem)
    chain.write_bytes(pem)
    privkey.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return fullchain, chain, privkey


def make_task(domain: str, challenge_type: str = "http-01", *, r: str | None = None,
              nonce: str | None = None) -> ChallengeTask:
    identifier = Identifier("dns", domain)
    token = None if challenge_type == "dvsni" else b64encode(secrets.token_bytes(32))
    challenge = Challenge(type_name=challenge_type, url=f"https://ca.test/chall/{secrets.token_hex(8)}",
                          status=ChallengeStatus.PENDING, token=token, r=r, nonce=nonce)
    key_authorization = "" if token is None else challenges.key_authorization(token, ACCOUNT_KEY)
    return ChallengeTask(identifier, challenge, key_authorization, ACCOUNT_KEY)


def added_lines(before: str, after: str) -> list[str]:
    """The lines ``after`` has that ``before`` lacks; fails if any line of ``before`` went missing or moved."""
    import difflib

    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    removed = [line for line in diff if line.startswith("- ")]
    assert not removed, f"lines changed or removed: {removed}"
    return [line[2:] for line in diff if line.startswith("+ ")]
