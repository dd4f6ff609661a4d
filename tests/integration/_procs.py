"""Generic pieces for integration suites that drive real programs (pebble, nginx, apache2, ca_stub).

- ``free_port()``: a free loopback port, picked by binding port 0 (DESIGN.md section 4).
- ``require_binary()``: skip with a reason when a program is missing, but fail under CI, which
  installs everything (STYLE.md section 9: CI skips none).
- ``ManagedProcess``: a started program whose output goes to a log file; stopped by its pid.
- ``wait_for_http()``: poll a URL until it answers, with a short interval and a deadline.
- ``make_tls_identity()``: a throwaway CA and a server certificate for some names, as PEM files.
- ``dns_query()``: a tiny stdlib UDP DNS client, enough to read back A and TXT records.

Everything here binds and connects to loopback only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"


class StartupError(RuntimeError):
    """A program did not come up (exited early or never answered); the message has its log tail."""


def in_ci() -> bool:
    """True when running under CI (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with ``reason``; under CI fail it instead, since CI must skip nothing."""
    if in_ci():
        pytest.fail(f"{reason}, and CI must skip nothing", pytrace=False)
    pytest.skip(reason)


def require_binary(name: str, apt_package: str) -> str:
    """Return the path of program ``name``; skip the test if it is missing (fail under CI)."""
    path = shutil.which(name)
    if path is not None:
        return path
    skip_or_fail(f"needs {apt_package} (apt-get install {apt_package}): `{name}` is not on PATH")


def free_port(*, udp: bool = False, host: str = LOOPBACK) -> int:
    """A port on ``host`` that is free for TCP (and for UDP too when ``udp``), picked by binding 0.

    The port is released before returning, so another process may take it in between; use it at
    once. A DNS server needs both protocols on one number, hence ``udp``.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            if not udp:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram:
                try:
                    dgram.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port on {host} is free for both TCP and UDP after 50 tries")


class ManagedProcess:
    """A program started with stdout and stderr going to ``log_path``, stopped by its pid.

    Use as a context manager, or call ``stop()``; ``stop()`` sends SIGTERM and, if the program has
    not exited after ``grace`` seconds, SIGKILL.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self._popen.pid

    def poll(self) -> int | None:
        """The exit status if the program has exited, else None."""
        return self._popen.poll()

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the program's output."""
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as err:
            return f"(cannot read {self.log_path}: {err})"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        """One paragraph for an error message: command, pid, exit status and the log tail."""
        status = self.poll()
        state = "running" if status is None else f"exited with status {status}"
        return f"{self.argv[0]} (pid {self.pid}) {state}; log {self.log_path}, last lines:\n{self.log_tail()}"

    def stop(self, grace: float = 5.0) -> int:
        """Terminate by pid (SIGTERM, then SIGKILL after ``grace`` seconds); return the exit status."""
        try:
            if self._popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGTERM)
                try:
                    self._popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                    self._popen.wait(timeout=grace)
            return self._popen.returncode
        finally:
            self._log.close()

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_for_http(
    url: str,
    *,
    verify: bool | str = True,
    deadline: float = 20.0,
    interval: float = 0.1,
    expect_status: int | None = None,
    process: ManagedProcess | None = None,
) -> requests.Response:
    """GET ``url`` until it answers (with ``expect_status`` if given) or ``deadline`` seconds pass.

    ``verify`` is passed on each request, so REQUESTS_CA_BUNDLE in the environment does not
    replace it. If ``process`` exits meanwhile, or the deadline passes, raise ``StartupError``
    with the process's log tail.
    """
    end = time.monotonic() + deadline
    last = "no attempt made"
    while True:
        if process is not None and process.poll() is not None:
            raise StartupError(f"{url} never answered: {process.describe()}")
        try:
            response = requests.get(url, verify=verify, timeout=min(2.0, deadline))
        except requests.RequestException as err:
            last = f"{type(err).__name__}: {err}"
        else:
            if expect_status is None or response.status_code == expect_status:
                return response
            last = f"HTTP {response.status_code}: {response.text[:200]!r}"
        if time.monotonic() >= end:
            detail = f"\n{process.describe()}" if process is not None else ""
            raise StartupError(f"{url} did not answer within {deadline:g} s (last: {last}){detail}")
        time.sleep(interval)


@dataclasses.dataclass(frozen=True, slots=True)
class TLSIdentity:
    """PEM files: ``cert`` (server certificate), ``key`` (its private key), ``ca`` (the trust anchor)."""

    cert: Path
    key: Path
    ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_tls_identity(
    directory: Path, names: Sequence[str] = (LOOPBACK, "localhost"), *, prefix: str = "tls"
) -> TLSIdentity:
    """Make a throwaway CA and a server certificate for ``names`` (DNS names or IP addresses).

    Writes ``{prefix}-ca.pem``, ``{prefix}-cert.pem`` and ``{prefix}-key.pem`` (0600) into
    ``directory``. ECDSA P-256, valid from an hour ago for 30 days.
    """
    if not names:
        raise ValueError("make_tls_identity needs at least one name")
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"throwaway test CA {secrets.token_hex(4)}")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    identity = TLSIdentity(
        cert=directory / f"{prefix}-cert.pem",
        key=directory / f"{prefix}-key.pem",
        ca=directory / f"{prefix}-ca.pem",
    )
    identity.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    identity.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(identity.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(key_pem)
    return identity


DNS_A = 1
DNS_TXT = 16


def _encode_name(name: str) -> bytes:
    labels = [label for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\0"


def _skip_name(message: bytes, offset: int) -> int:
    while True:
        length = message[offset]
        if length & 0xC0 == 0xC0:  # compression pointer: two bytes end the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def dns_query(name: str, qtype: int, *, server: tuple[str, int], timeout: float = 2.0) -> list[bytes]:
    """Ask ``server`` (host, port) over UDP for ``name``'s records of ``qtype``; return their RDATA.

    For TXT records, each RDATA is the concatenation of its character-strings (length prefixes
    removed); for A records, the four address bytes. Only what the tests need: no retries, no
    TCP fallback, answers of other types (CNAME) are dropped.
    """
    query_id = secrets.randbelow(0x10000)
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # RD set, one question
    packet = header + _encode_name(name) + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, server)
        message, _ = sock.recvfrom(65535)
    answer_id, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", message[:12])
    if answer_id != query_id:
        raise ValueError(f"DNS answer id {answer_id} does not match query id {query_id}")
    if flags & 0x000F:
        raise ValueError(f"DNS server answered rcode {flags & 0x000F} for {name}")
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(message, offset) + 4
    records: list[bytes] = []
    for _ in range(ancount):
        offset = _skip_name(message, offset)
        rtype, _rclass, _ttl, rdlength = struct.unpack("!HHIH", message[offset : offset + 10])
        offset += 10
        rdata = message[offset : offset + rdlength]
        offset += rdlength
        if rtype != qtype:
            continue
        if rtype == DNS_TXT:
            parts, i = [], 0
            while i < len(rdata):
                parts.append(rdata[i + 1 : i + 1 + rdata[i]])
                i += 1 + rdata[i]
            rdata = b"".join(parts)
        records.append(rdata)
    return records
