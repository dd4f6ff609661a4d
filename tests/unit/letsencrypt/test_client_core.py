"""Unit tests of the client core: argument grammar, challenge choice, hooks, renewal timing, lineage choice."""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from plugin_fakes import RecordingReporter

from letsencrypt.acme import crypto
from letsencrypt.acme.jws import AccountKey, b64encode
from letsencrypt.acme.messages import (
    Authorization,
    AuthorizationStatus,
    Challenge,
    ChallengeStatus,
    Identifier,
    RenewalInfo,
)
from letsencrypt.certificates import choose_lineage
from letsencrypt.cli import LetsencryptGroup
from letsencrypt.cli._options import webroot_map_from_argv
from letsencrypt.errors import ChallengeFailed, ConfigError
from letsencrypt.hooks import HookCommands, HookRunner
from letsencrypt.issuance import _task, normalize_challenges
from letsencrypt.paths import Paths
from letsencrypt.plugin_api import ChallengeTask
from letsencrypt.renewal_time import renewal_decision
from letsencrypt.storage.lineage import Lineage
from letsencrypt.storage.renewal_config import RenewalConfig

NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)


# --- command-line grammar ---------------------------------------------------------------------


def _group() -> tuple[LetsencryptGroup, list[list[str]]]:
    seen: list[list[str]] = []
    group = LetsencryptGroup(name="letsencrypt")
    for name in ("run", "certonly", "renew"):
        @click.command(name, context_settings={"ignore_unknown_options": True})
        @click.argument("rest", nargs=-1, type=click.UNPROCESSED)
        def _cmd(rest: tuple[str, ...], _name: str = name) -> None:
            seen.append([_name, *rest])

        group.add_command(_cmd)
    return group, seen


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--nginx", "-d", "example.com"], ["run", "--nginx", "-d", "example.com"]),
        (["certonly", "-d", "x"], ["certonly", "-d", "x"]),
        (["-d", "x", "certonly", "--standalone"], ["certonly", "-d", "x", "--standalone"]),
        (["renew"], ["renew"]),
    ],
)
def test_subcommand_anywhere_and_run_by_default(argv: list[str], expected: list[str]) -> None:
    group, seen = _group()
    group.main(args=argv, standalone_mode=False)
    assert seen == [expected]


def test_webroot_map_follows_certbot_order() -> None:
    argv = ["certonly", "-w", "/a", "-d", "a.example,www.a.example", "--webroot-path=/b", "-d", "b.example",
            "-d", "c.example"]
    mapping = webroot_map_from_argv(argv)
    assert mapping == {"a.example": "/a", "www.a.example": "/a", "b.example": "/b", "c.example": "/b"}


def test_normalize_challenges_accepts_certbot_short_names() -> None:
    assert normalize_challenges(["http,dns", "tls-alpn-01", "http"]) == ("http-01", "dns-01", "tls-alpn-01")
    with pytest.raises(ConfigError, match="unknown challenge type"):
        normalize_challenges(["carrier-pigeon"])


# --- challenge choice -------------------------------------------------------------------------


class _Auth:
    name = "fake"
    description = "fake"
    options: Sequence[Any] = ()

    def __init__(self, supported: Sequence[str]) -> None:
        self._supported = supported

    def prepare(self) -> None:
        pass

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        return self._supported

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        return [{} for _ in tasks]

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        pass


class _Handle:
    def __init__(self, authorization: Authorization) -> None:
        self.authorization = authorization
        self.url = "https://ca.test/authz/1"


class _Client:
    key = AccountKey.generate()


def _authorization(types: Sequence[str], *, wildcard: bool = False) -> Authorization:
    challenges = tuple(
        Challenge(kind, f"https://ca.test/chall/{i}", ChallengeStatus.PENDING, token=b64encode(os.urandom(32)))
        for i, kind in enumerate(types)
    )
    return Authorization(Identifier.dns("example.com"), AuthorizationStatus.PENDING, challenges, wildcard=wildcard)


def test_task_takes_the_first_preferred_type_the_ca_offers() -> None:
    handle = _Handle(_authorization(["http-01", "dns-01", "tls-alpn-01"]))
    task = _task(_Client(), _Auth(["http-01", "tls-alpn-01"]), handle, ("tls-alpn-01", "http-01"))  # type: ignore[arg-type]
    assert task.challenge.type_name == "tls-alpn-01"
    assert task.key_authorization.startswith(task.challenge.token or "")
    task = _task(_Client(), _Auth(["http-01", "tls-alpn-01"]), handle, ())  # type: ignore[arg-type]
    assert task.challenge.type_name == "http-01"


def test_task_for_a_wildcard_names_the_wildcard() -> None:
    handle = _Handle(_authorization(["dns-01"], wildcard=True))
    task = _task(_Client(), _Auth(["dns-01"]), handle, ())  # type: ignore[arg-type]
    assert task.domain == "*.example.com"
    assert task.dns01_record_name == "_acme-challenge.example.com"


def test_no_common_challenge_says_what_each_side_can_do() -> None:
    handle = _Handle(_authorization(["dns-01"]))
    with pytest.raises(ChallengeFailed) as caught:
        _task(_Client(), _Auth(["http-01"]), handle, ())  # type: ignore[arg-type]
    assert "the CA offers dns-01" in caught.value.message
    assert "fake can do http-01" in caught.value.message
    assert caught.value.hint is not None


# --- hooks ------------------------------------------------------------------------------------


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_hooks_run_like_certbot(tmp_path: Path) -> None:
    log = tmp_path / "log"
    hooks_dir = tmp_path / "renewal-hooks"
    (hooks_dir / "deploy").mkdir(parents=True)
    _script(hooks_dir / "deploy", "10-dir", f'echo "dir-deploy $RENEWED_DOMAINS" >> {log}')
    commands = HookCommands(
        pre=(f"echo pre >> {log}",),
        post=(f'echo "post renewed=$RENEWED_DOMAINS failed=$FAILED_DOMAINS" >> {log}',),
        deploy=(f'echo "deploy $RENEWED_LINEAGE $RENEWED_DOMAINS" >> {log}',),
    )
    reporter = RecordingReporter()
    runner = HookRunner(commands, reporter, hooks_dir=hooks_dir)
    runner.post()  # nothing attempted yet: no post hook
    runner.pre()
    runner.add(HookCommands(pre=(f"echo pre >> {log}",)))  # the same pre hook again: still once
    runner.pre()
    runner.deploy(Path("/live/a"), ["a.example", "www.a.example"])
    runner.failed_for(["b.example"])
    runner.post()
    runner.post()
    assert log.read_text().splitlines() == [
        "pre",
        "deploy /live/a a.example www.a.example",
        "dir-deploy a.example www.a.example",
        "post renewed=a.example www.a.example failed=b.example",
    ]
    assert runner.failures == 0


def test_failing_hook_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    reporter = RecordingReporter()
    runner = HookRunner(HookCommands(pre=("echo oops >&2; exit 3",)), reporter)
    runner.pre()
    assert runner.failures == 1
    assert "exited with 3" in reporter.warnings[0] and "oops" in reporter.warnings[0]


def test_dry_run_skips_deploy_hooks_unless_asked(tmp_path: Path) -> None:
    log = tmp_path / "log"
    commands = HookCommands(deploy=(f"echo deploy >> {log}",))
    HookRunner(commands, RecordingReporter(), dry_run=True).deploy(tmp_path, ["a"])
    assert not log.exists()
    HookRunner(commands, RecordingReporter(), dry_run=True, run_deploy_hooks=True).deploy(tmp_path, ["a"])
    assert log.read_text() == "deploy\n"


# --- renewal timing ---------------------------------------------------------------------------


def _certificate(days: float, *, age: float = 0) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    start = NOW - datetime.timedelta(days=age)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def test_lifetime_rule_a_third_or_half() -> None:
    assert not renewal_decision(_certificate(90, age=59), NOW).due  # 31 days left of 90
    assert renewal_decision(_certificate(90, age=61), NOW).due  # 29 days left
    assert not renewal_decision(_certificate(6, age=2.9), NOW).due  # short-lived: half
    assert renewal_decision(_certificate(6, age=3.1), NOW).due


def test_renewal_information_wins() -> None:
    fresh = _certificate(90, age=1)
    window = RenewalInfo(NOW - datetime.timedelta(hours=2), NOW - datetime.timedelta(hours=1))
    decision = renewal_decision(fresh, NOW, renewal_info=window)
    assert decision.due and "RFC 9773" in decision.reason
    later = RenewalInfo(NOW + datetime.timedelta(days=1), NOW + datetime.timedelta(days=2))
    assert not renewal_decision(_certificate(90, age=80), NOW, renewal_info=later).due


# --- lineage choice ---------------------------------------------------------------------------


def _lineage(paths: Paths, name: str, names: Sequence[str]) -> Lineage:
    key = crypto.generate_private_key("ec256")
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")])
    cert = (
        x509.CertificateBuilder().subject_name(issuer).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = crypto.pem_of([cert])
    return Lineage.create(paths, name, pem, pem, crypto.private_key_to_pem(key), RenewalConfig(server="https://ca.test/dir"))


def test_expanding_needs_expand_and_never_makes_a_sibling(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path)
    _lineage(paths, "a.example", ["a.example"])
    with pytest.raises(ConfigError) as caught:
        choose_lineage(paths, ["a.example", "b.example"], cert_name=None, expand=False, interactive=False)
    assert "--expand" in (caught.value.hint or "")
    choice = choose_lineage(paths, ["a.example", "b.example"], cert_name=None, expand=True, interactive=False)
    assert (choice.name, choice.reason) == ("a.example", "expand")
    assert choose_lineage(paths, ["a.example"], cert_name=None, expand=False, interactive=False).reason == "renew"


def test_other_names_get_a_new_lineage(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path)
    _lineage(paths, "a.example", ["a.example", "b.example"])
    choice = choose_lineage(paths, ["a.example"], cert_name=None, expand=False, interactive=False)
    assert choice.existing is None and choice.name == "a.example-0001"
    named = choose_lineage(paths, ["c.example"], cert_name="a.example", expand=False, interactive=False)
    assert named.reason == "replace" and named.existing is not None
