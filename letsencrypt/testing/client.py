"""Run the real ``letsencrypt`` command against a test CA, as a user types it: ``LetsencryptCli``.

``LetsencryptCli(ca, root).run("certonly", "-a", "dns-example", "-d", "x.example.com")`` starts
``python -m letsencrypt`` as a subprocess with its config, work and logs directories under
``root`` and the flags that point it at ``ca`` (``--server``, ``--server-ca-bundle``), keep it
from asking anything (``-n --agree-tos -m``) and put the standalone authenticator's listeners where
the CA validates (``--http-01-port``, ``--https-port`` on 127.0.0.1). A flag given in the call wins
over the default. ``live(name)`` gives the lineage's file paths.

``ca`` is anything with ``directory_url``, ``ca_bundle``, ``http_port`` and ``tls_port``:
``letsencrypt.testing.CAStub`` or a Pebble harness record. The pytest fixture ``letsencrypt_cli``
(``letsencrypt.testing.pytest_plugin``) builds one per test.

Imports: stdlib only.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

__all__ = ["AcmeTestServer", "ChallengePorts", "CliFailed", "LetsencryptCli", "LineagePaths"]

EMAIL = "admin@example.com"
RUN_TIMEOUT = 120.0
LOOPBACK = "127.0.0.1"
_SCRUBBED = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


class AcmeTestServer(Protocol):
    """What ``LetsencryptCli`` needs of a running test CA."""

    @property
    def directory_url(self) -> str: ...
    @property
    def ca_bundle(self) -> str: ...
    @property
    def http_port(self) -> int: ...
    @property
    def tls_port(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class ChallengePorts:
    """Where the CA connects to validate: ``http`` for http-01, ``tls`` for tls-alpn-01 (and legacy)."""

    http: int
    tls: int
    address: str = LOOPBACK  # every name resolves here (ca_stub --resolve-all)


@dataclasses.dataclass(frozen=True)
class LineagePaths:
    """A lineage's files: ``live/NAME/{cert,chain,fullchain,privkey}.pem`` and ``renewal/NAME.conf``."""

    name: str
    directory: Path
    cert: Path
    chain: Path
    fullchain: Path
    privkey: Path
    renewal_conf: Path

    def exists(self) -> bool:
        return all(path.is_file() for path in (self.cert, self.chain, self.fullchain, self.privkey))


class CliFailed(AssertionError):
    """A run with ``check=True`` exited non-zero; the message has the command, exit status and output."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(describe(result))
        self.result = result


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """The command, its exit status and its output, for an assertion message."""
    command = " ".join(str(arg) for arg in result.args)
    return f"$ {command}\nexit {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"


def _given(flag: str, args: Sequence[str]) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in args)


class LetsencryptCli:
    """``letsencrypt`` subprocesses sharing one config/work/logs directory under ``root``."""

    def __init__(self, ca: AcmeTestServer, root: Path, *, email: str = EMAIL, python: str = sys.executable,
                 env: Mapping[str, str] | None = None) -> None:
        self.ca = ca
        self.root = root
        self.config_dir = root / "config"
        self.work_dir = root / "work"
        self.logs_dir = root / "logs"
        self.email = email
        self.python = python
        self.env = dict(env or {})

    @property
    def challenge_ports(self) -> ChallengePorts:
        return ChallengePorts(http=self.ca.http_port, tls=self.ca.tls_port)

    def _defaults(self) -> list[tuple[tuple[str, ...], list[str]]]:
        """(flags that override it, arguments) for each default."""
        return [
            (("--server",), ["--server", self.ca.directory_url]),
            (("--server-ca-bundle",), ["--server-ca-bundle", self.ca.ca_bundle]),
            (("--config-dir",), ["--config-dir", str(self.config_dir)]),
            (("--work-dir",), ["--work-dir", str(self.work_dir)]),
            (("--logs-dir",), ["--logs-dir", str(self.logs_dir)]),
            (("--http-01-port",), ["--http-01-port", str(self.ca.http_port)]),
            (("--http-01-address",), ["--http-01-address", LOOPBACK]),
            (("--https-port",), ["--https-port", str(self.ca.tls_port)]),
            (("-n", "--non-interactive"), ["-n"]),
            (("--agree-tos",), ["--agree-tos"]),
            (("-m", "--email", "--register-unsafely-without-email"), ["-m", self.email]),
        ]

    def default_args(self) -> list[str]:
        """The flags every ``run`` adds unless the call gives the same flag itself."""
        return [arg for _flags, args in self._defaults() for arg in args]

    def argv(self, args: Sequence[str], *, defaults: bool = True) -> list[str]:
        """``python -m letsencrypt ARGS`` plus the defaults ``ARGS`` does not override."""
        extra: list[str] = []
        if defaults:
            for flags, values in self._defaults():
                if not any(_given(flag, args) for flag in flags):
                    extra += values
        return [self.python, "-m", "letsencrypt", *args, *extra]

    def environment(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """The parent's environment without CA-bundle and ``LETSENCRYPT_*`` variables, plus ``env``.

        A value of None in ``extra`` removes that variable.
        """
        env = {key: value for key, value in os.environ.items()
               if key not in _SCRUBBED and not key.startswith("LETSENCRYPT_")}
        env.update(self.env)
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(self, *args: str, check: bool = True, env: Mapping[str, str | None] | None = None,
            timeout: float = RUN_TIMEOUT, defaults: bool = True, stdin_text: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run ``letsencrypt ARGS`` and wait; raise ``CliFailed`` on a non-zero exit when ``check``.

        stdin is closed (or holds ``stdin_text``), so the client never sees a terminal.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            self.argv(args, defaults=defaults), env=self.environment(env), capture_output=True, text=True,
            timeout=timeout, input=stdin_text, stdin=subprocess.DEVNULL if stdin_text is None else None, cwd=self.root,
            check=False,
        )
        if check and result.returncode != 0:
            raise CliFailed(result)
        return result

    def live(self, name: str) -> LineagePaths:
        """The paths of lineage ``name`` (they exist once a certificate was obtained)."""
        directory = self.config_dir / "live" / name
        return LineagePaths(
            name=name, directory=directory, cert=directory / "cert.pem", chain=directory / "chain.pem",
            fullchain=directory / "fullchain.pem", privkey=directory / "privkey.pem",
            renewal_conf=self.config_dir / "renewal" / f"{name}.conf",
        )

    def log_text(self) -> str:
        """The client's main log file (``letsencrypt.log`` under the logs directory), or ``""``."""
        path = self.logs_dir / "letsencrypt.log"
        return path.read_text(errors="replace") if path.exists() else ""
