"""Unit tests of the example plugin: fakes of the client's side, the plugin itself for real.

Run from this directory after ``pip install -e '.[test]'``: ``pytest tests``. The end-to-end test
(a certificate from a running ca_stub through this plugin) is ``test_end_to_end.py``: it uses the
fixtures of the client's pytest plugin (``letsencrypt_cli``, ``dns_txt``), as docs/plugins.md shows.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from letsencrypt_dns_example import DnsExampleAuthenticator

from letsencrypt.acme import challenges
from letsencrypt.acme.jws import b64encode
from letsencrypt.acme.messages import ChallengeStatus
from letsencrypt.plugin_api import AccountKey, Challenge, ChallengeTask, Identifier, PluginContext, PluginError

ACCOUNT_KEY = AccountKey.generate()


class Reporter:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    warn = progress = info


def _context(tmp_path: Path, **options: object) -> PluginContext:
    return PluginContext(
        options=options, config_dir=tmp_path, work_dir=tmp_path, logs_dir=tmp_path, reporter=Reporter()
    )


def _task(domain: str) -> ChallengeTask:
    token = b64encode(secrets.token_bytes(32))
    challenge = Challenge("dns-01", f"https://ca.test/chall/{token[:8]}", ChallengeStatus.PENDING, token=token)
    identifier = Identifier("dns", domain)
    return ChallengeTask(identifier, challenge, challenges.key_authorization(token, ACCOUNT_KEY), ACCOUNT_KEY)


def test_publishes_and_removes_txt_records(tmp_path: Path) -> None:
    zone = tmp_path / "zone.json"
    zone.write_text(json.dumps({"www.example.com": ["kept"]}))
    plugin = DnsExampleAuthenticator(_context(tmp_path, **{"zone-file": zone, "propagation-seconds": 0}))
    plugin.prepare()
    tasks = [_task("example.com"), _task("*.example.com")]

    assert plugin.perform(tasks) == [{}, {}]
    records = json.loads(zone.read_text())
    values = records["_acme-challenge.example.com"]
    challenges.check_dns01(values, tasks[0].key_authorization)
    challenges.check_dns01(values, tasks[1].key_authorization)

    plugin.cleanup(tasks)
    assert json.loads(zone.read_text()) == {"www.example.com": ["kept"]}


def test_without_a_zone_file_it_says_which_flag_to_give(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as caught:
        DnsExampleAuthenticator(_context(tmp_path)).prepare()
    assert caught.value.hint == "give --dns-example-zone-file PATH"


def test_offers_dns01_for_names_only(tmp_path: Path) -> None:
    plugin = DnsExampleAuthenticator(_context(tmp_path))
    assert plugin.supported_challenges(Identifier("dns", "*.example.com")) == ["dns-01"]
    assert plugin.supported_challenges(Identifier("ip", "192.0.2.1")) == []
