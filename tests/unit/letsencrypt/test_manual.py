"""The manual authenticator runs certbot-style hooks with certbot's environment, or asks the user."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from plugin_fakes import RecordingReporter, make_context, make_task

from letsencrypt.acme.messages import Identifier
from letsencrypt.plugin_api import ChallengeSetupError, NotSupported, PluginError
from letsencrypt.plugins.manual import ManualAuthenticator

_VARIABLES = (
    "CERTBOT_DOMAIN", "CERTBOT_VALIDATION", "CERTBOT_TOKEN", "CERTBOT_REMAINING_CHALLENGES",
    "CERTBOT_ALL_DOMAINS", "CERTBOT_AUTH_OUTPUT",
)  # fmt: skip


def _recording_hook(log: Path, label: str) -> str:
    """A shell hook appending its CERTBOT_* environment as one JSON line to ``log``."""
    program = (
        "import json, os, sys; "
        f"record = {{'hook': {label!r}, **{{k: os.environ.get(k) for k in {_VARIABLES!r}}}}}; "
        f"open({str(log)!r}, 'a').write(json.dumps(record) + '\\n')"
    )
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(program)} && echo published-$CERTBOT_DOMAIN"


def _records(log: Path) -> list[dict[str, str | None]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_hooks_get_certbots_environment(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    hooks = {"auth-hook": _recording_hook(log, "auth"), "cleanup-hook": _recording_hook(log, "cleanup")}
    plugin = ManualAuthenticator(make_context(tmp_path, hooks))
    plugin.prepare()
    http, dns = make_task("example.com", "http-01"), make_task("*.example.org", "dns-01")

    assert plugin.perform([http, dns]) == [{}, {}]
    plugin.cleanup([http, dns])

    auth_http, auth_dns, cleanup_http, cleanup_dns = _records(log)
    assert auth_http == {
        "hook": "auth", "CERTBOT_DOMAIN": "example.com", "CERTBOT_VALIDATION": http.key_authorization,
        "CERTBOT_TOKEN": http.token, "CERTBOT_REMAINING_CHALLENGES": "1",
        "CERTBOT_ALL_DOMAINS": "example.com,example.org", "CERTBOT_AUTH_OUTPUT": None,
    }  # fmt: skip
    assert auth_dns == {
        "hook": "auth", "CERTBOT_DOMAIN": "example.org", "CERTBOT_VALIDATION": dns.dns01_txt_value,
        "CERTBOT_TOKEN": None, "CERTBOT_REMAINING_CHALLENGES": "0",
        "CERTBOT_ALL_DOMAINS": "example.com,example.org", "CERTBOT_AUTH_OUTPUT": None,
    }  # fmt: skip
    assert cleanup_http == {**auth_http, "hook": "cleanup", "CERTBOT_AUTH_OUTPUT": "published-example.com"}
    assert cleanup_dns == {**auth_dns, "hook": "cleanup", "CERTBOT_AUTH_OUTPUT": "published-example.org"}


def test_a_failing_auth_hook_raises_with_its_exit_code_and_stderr(tmp_path: Path) -> None:
    plugin = ManualAuthenticator(make_context(tmp_path, {"auth-hook": "echo 'zone example.com is locked' >&2; exit 3"}))
    with pytest.raises(ChallengeSetupError) as caught:
        plugin.perform([make_task("example.com", "dns-01")])
    message = caught.value.message
    assert "--manual-auth-hook failed for example.com with exit code 3" in message
    assert "zone example.com is locked" in message


def test_a_failing_cleanup_hook_warns_and_cleans_up_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "cleanup.log"
    cleanup = f'echo "$CERTBOT_DOMAIN" >> {shlex.quote(str(log))}; [ "$CERTBOT_DOMAIN" != a.example ] || exit 4'
    context = make_context(tmp_path, {"auth-hook": "true", "cleanup-hook": cleanup})
    plugin = ManualAuthenticator(context)
    tasks = [make_task("a.example"), make_task("b.example")]
    plugin.perform(tasks)

    plugin.cleanup(tasks)
    assert log.read_text().split() == ["a.example", "b.example"]
    assert isinstance(context.reporter, RecordingReporter)
    assert len(context.reporter.warnings) == 1
    assert "--manual-cleanup-hook failed for a.example with exit code 4" in context.reporter.warnings[0]


def test_without_a_hook_a_non_interactive_run_asks_for_one(tmp_path: Path) -> None:
    plugin = ManualAuthenticator(make_context(tmp_path, interactive=False))
    with pytest.raises(PluginError) as caught:
        plugin.prepare()
    assert caught.value.hint == "give --manual-auth-hook"
    with pytest.raises(PluginError):
        plugin.perform([make_task("example.com")])


def test_without_a_hook_an_interactive_run_shows_what_to_publish_and_waits(tmp_path: Path) -> None:
    context = make_context(tmp_path, interactive=True)
    waited: list[str] = []

    def press_enter(prompt: str) -> str:
        waited.append(prompt)
        return ""

    plugin = ManualAuthenticator(context, input_fn=press_enter)
    plugin.prepare()
    http, dns = make_task("example.com", "http-01"), make_task("example.org", "dns-01")

    assert plugin.perform([http, dns]) == [{}, {}]
    plugin.cleanup([http, dns])
    assert len(waited) == 2
    assert isinstance(context.reporter, RecordingReporter)
    shown = "\n".join(context.reporter.infos)
    assert http.key_authorization in shown
    assert f"http://example.com/.well-known/acme-challenge/{http.token}" in shown
    assert "_acme-challenge.example.org" in shown
    assert dns.dns01_txt_value in shown


def test_end_of_input_while_waiting_is_an_error(tmp_path: Path) -> None:
    def closed(_: str) -> str:
        raise EOFError

    plugin = ManualAuthenticator(make_context(tmp_path, interactive=True), input_fn=closed)
    with pytest.raises(PluginError, match="no answer"):
        plugin.perform([make_task("example.com")])


def test_supported_challenges(tmp_path: Path) -> None:
    plugin = ManualAuthenticator(make_context(tmp_path))
    assert plugin.supported_challenges(Identifier.dns("example.com")) == ["http-01", "dns-01"]
    assert plugin.supported_challenges(Identifier("dns", "*.example.com")) == ["dns-01"]
    assert plugin.supported_challenges(Identifier.ip("192.0.2.1")) == ["http-01"]
    with pytest.raises(NotSupported):
        ManualAuthenticator(make_context(tmp_path, {"auth-hook": "true"})).perform(
            [make_task("example.com", "tls-alpn-01")]
        )
