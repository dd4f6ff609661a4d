"""The public plugin contract: its names are pinned, its helpers behave, it imports only the protocol library."""

from __future__ import annotations

import ast
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from plugin_fakes import ACCOUNT_KEY, RecordingReporter, make_task

import letsencrypt.plugin_api as plugin_api
from letsencrypt.acme import challenges
from letsencrypt.plugin_api import (
    ChallengeSetupError,
    ChallengeTask,
    Identifier,
    MisconfigurationError,
    NotSupported,
    Option,
    PluginContext,
    PluginError,
)


def test_all_names_exist_and_are_sorted() -> None:
    assert plugin_api.__all__ == sorted(plugin_api.__all__, key=lambda name: (not name.isupper(), name))  # ruff order
    for name in plugin_api.__all__:
        assert getattr(plugin_api, name) is not None


def test_public_api_is_pinned() -> None:
    assert set(plugin_api.__all__) == {
        "API_VERSION", "ENHANCEMENTS", "ENTRY_POINT_GROUP", "AccountKey", "Authenticator", "Challenge",
        "ChallengeSetupError", "ChallengeTask", "ChallengeType", "DeleteAware", "Identifier", "Installer",
        "MisconfigurationError", "NotSupported", "Option", "OptionType", "Plugin", "PluginContext", "PluginError",
        "Reporter", "VerifiesDeployment",
    }  # fmt: skip
    assert plugin_api.ENTRY_POINT_GROUP == "letsencrypt.plugins"
    assert plugin_api.ENHANCEMENTS == ("redirect", "hsts", "uir", "staple-ocsp")


def test_imports_only_the_standard_library_and_the_protocol_library() -> None:
    tree = ast.parse(Path(plugin_api.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    for name in imported:
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith("letsencrypt.acme"), name


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("error_class", [MisconfigurationError, NotSupported, ChallengeSetupError])
def test_every_plugin_error_carries_message_and_hint(error_class: type[PluginError]) -> None:
    error = error_class("port 80 is in use", hint="stop the web server on port 80")
    assert isinstance(error, PluginError)
    assert (error.message, error.hint, error.exit_code) == ("port 80 is in use", "stop the web server on port 80", 1)
    assert str(error) == "port 80 is in use (hint: stop the web server on port 80)"
    assert str(PluginError("no hint")) == "no hint"


# --- options ----------------------------------------------------------------------------------


def test_option_names_become_prefixed_flags_and_keys() -> None:
    option = Option("zone-file", "where the zone lives", type="path", required=True)
    assert option.flag("dns-example") == "--dns-example-zone-file"
    assert option.key("dns-example") == "dns_example_zone_file"


@pytest.mark.parametrize("name", ["Zone", "zone_file", "-zone", "zone-", "", "zone--file"])
def test_option_names_must_be_kebab_case(name: str) -> None:
    with pytest.raises(ValueError, match="kebab-case"):
        Option(name, "help")


def test_option_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="type must be"):
        Option("ttl", "help", type="float")  # type: ignore[arg-type]  # the check under test
    with pytest.raises(ValueError, match="cannot be given several times"):
        Option("verbose", "help", type="bool", multiple=True)


def test_option_parse_converts_text_to_the_declared_type() -> None:
    assert Option("ttl", "", type="int").parse("120") == 120
    assert Option("root", "", type="path").parse("/srv/www") == Path("/srv/www")
    assert Option("zone", "").parse("example.com") == "example.com"
    flag = Option("propagate", "", type="bool")
    assert [flag.parse(text) for text in ("true", "Yes", "1", "off", "False", "")] == [True] * 3 + [False] * 3
    with pytest.raises(ValueError, match="'propagate' expects true or false"):
        flag.parse("maybe")
    with pytest.raises(ValueError, match="'ttl' expects int"):
        Option("ttl", "", type="int").parse("soon")


# --- challenge tasks --------------------------------------------------------------------------


def test_challenge_task_gives_what_to_publish() -> None:
    task = make_task("www.example.com", "http-01")
    assert task.domain == "www.example.com"
    assert task.type == "http-01"
    assert task.key_authorization == challenges.key_authorization(task.token, ACCOUNT_KEY)
    assert task.http01_path == f"/.well-known/acme-challenge/{task.token}"
    assert task.http01_body == task.key_authorization.encode()
    assert task.dns01_record_name == "_acme-challenge.www.example.com"
    assert task.dns01_txt_value == challenges.dns01_txt_value(task.key_authorization)
    assert "private" not in repr(task) and "AccountKey" not in repr(task)


def test_a_wildcard_task_publishes_at_the_base_domain() -> None:
    assert make_task("*.example.com", "dns-01").dns01_record_name == "_acme-challenge.example.com"


def test_a_dvsni_task_has_no_token() -> None:
    task = make_task("example.com", "dvsni", r="r", nonce="n")
    with pytest.raises(ValueError, match="has no token"):
        _ = task.token


def test_a_hostile_token_never_reaches_a_path() -> None:
    task = make_task("example.com")
    hostile = ChallengeTask(
        task.identifier, plugin_api.Challenge("http-01", task.challenge.url, task.challenge.status, "../../etc"),
        "x", ACCOUNT_KEY,
    )  # fmt: skip
    with pytest.raises(ValueError, match="base64url"):
        _ = hostile.http01_path


# --- protocols --------------------------------------------------------------------------------


class _FakeAuthenticator:
    """The smallest complete authenticator: what docs/plugins.md shows a plugin author."""

    name = "fake"
    description = "answers nothing"
    options: Sequence[Option] = (Option("zone", "zone"),)

    def __init__(self, context: PluginContext) -> None:
        self.context = context

    def prepare(self) -> None:
        pass

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        return ["dns-01"]

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        return [{} for _ in tasks]

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        pass


class _VerifyingInstaller:
    def verify_deployment(self, domain: str, fullchain_pem: bytes) -> None:
        pass

    def lineage_in_use(self, live_paths: Sequence[Path]) -> list[str]:
        return []


if TYPE_CHECKING:  # the one-line static conformance check documented for plugin authors
    _: type[plugin_api.Authenticator] = _FakeAuthenticator


def test_optional_capabilities_are_probed_at_run_time(tmp_path: Path) -> None:
    assert isinstance(_VerifyingInstaller(), plugin_api.VerifiesDeployment)
    assert isinstance(_VerifyingInstaller(), plugin_api.DeleteAware)
    context = PluginContext(
        options={}, config_dir=tmp_path, work_dir=tmp_path, logs_dir=tmp_path, reporter=RecordingReporter()
    )
    plain = _FakeAuthenticator(context)
    assert not isinstance(plain, plugin_api.VerifiesDeployment)
    assert not isinstance(plain, plugin_api.DeleteAware)
    assert isinstance(context.reporter, plugin_api.Reporter)


def test_plugin_context_defaults(tmp_path: Path) -> None:
    context = PluginContext(
        options={"zone": "z"}, config_dir=tmp_path, work_dir=tmp_path, logs_dir=tmp_path, reporter=RecordingReporter()
    )
    assert (context.http01_port, context.https_port, context.http01_address) == (80, 443, "")
    assert (context.interactive, context.dry_run) == (False, False)
    with pytest.raises(TypeError):
        PluginContext({}, tmp_path, tmp_path, tmp_path, RecordingReporter())  # type: ignore[call-arg]  # keyword-only
