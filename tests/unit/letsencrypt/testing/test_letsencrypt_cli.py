"""letsencrypt.testing.client.LetsencryptCli: the flags it adds, and the real command it runs."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import certifi
import pytest

from letsencrypt.testing import CliFailed, LetsencryptCli, free_port


@dataclasses.dataclass(frozen=True)
class NowhereCA:
    """A CA record whose API port nothing listens on."""

    directory_url: str
    ca_bundle: str = certifi.where()
    http_port: int = 5002
    tls_port: int = 5001


@pytest.fixture
def cli(tmp_path: Path) -> LetsencryptCli:
    return LetsencryptCli(NowhereCA(f"https://127.0.0.1:{free_port()}/directory"), tmp_path / "le")


def _value(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def test_points_the_client_at_the_ca_with_temporary_directories(cli: LetsencryptCli) -> None:
    argv = cli.argv(["certonly", "-d", "x.example.com"])

    assert argv[:5] == [sys.executable, "-m", "letsencrypt", "certonly", "-d"]
    assert _value(argv, "--server") == [cli.ca.directory_url]
    assert _value(argv, "--server-ca-bundle") == [cli.ca.ca_bundle]
    assert _value(argv, "--config-dir") == [str(cli.root / "config")]
    assert _value(argv, "--http-01-port") == ["5002"]
    assert _value(argv, "--https-port") == ["5001"]
    assert _value(argv, "--http-01-address") == ["127.0.0.1"]
    assert {"-n", "--agree-tos"} <= set(argv)
    assert _value(argv[3:], "-m") == ["admin@example.com"]
    assert cli.challenge_ports.http == 5002


def test_a_flag_given_in_the_call_replaces_the_default(cli: LetsencryptCli) -> None:
    argv = cli.argv(["certonly", "--http-01-port=8080", "--register-unsafely-without-email", "--non-interactive"])

    assert "--http-01-port" not in argv
    assert "-m" not in argv[3:]
    assert "-n" not in argv
    assert cli.argv(["plugins"], defaults=False) == [sys.executable, "-m", "letsencrypt", "plugins"]


def test_live_names_the_lineage_files(cli: LetsencryptCli) -> None:
    lineage = cli.live("x.example.com")

    assert lineage.fullchain == cli.root / "config" / "live" / "x.example.com" / "fullchain.pem"
    assert lineage.renewal_conf == cli.root / "config" / "renewal" / "x.example.com.conf"
    assert not lineage.exists()


def test_runs_the_real_command_and_reports_a_failure_with_its_output(cli: LetsencryptCli) -> None:
    assert cli.run("--version", defaults=False).stdout.strip().startswith("letsencrypt ")

    with pytest.raises(CliFailed) as failed:
        cli.run("certonly", "--standalone", "-d", "x.example.com", env={"REQUESTS_CA_BUNDLE": None})
    assert failed.value.result.returncode != 0
    assert "$ " in str(failed.value) and "--- stderr" in str(failed.value)
    assert cli.run("certonly", "-d", "x.example.com", check=False).returncode != 0
