"""``plugins`` (human and ``--json``, broken plugins included) and the account commands' checks before the CA.

What the account commands do with a CA (register, show_account, update_account, unregister) is
in ``tests/integration/test_client_manage.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import SERVER, installed_plugin, invoke, run_main

from letsencrypt.acme.jws import AccountKey
from letsencrypt.paths import Paths
from letsencrypt.storage.accounts import AccountStore

DOCS = Path(__file__).resolve().parents[3] / "docs" / "json-output.md"
pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed distribution whose plugin fails to import."""
    with installed_plugin(tmp_path / "site", monkeypatch, "thirdparty-broken", "2.0",
                          "dns-broken = thirdparty_broken_mod:Plugin", "thirdparty_broken_mod",
                          "import a_module_that_is_not_installed\n"):
        yield


def documented_example(heading: str) -> Any:
    text = DOCS.read_text()
    return json.loads(text[text.index(heading):].split("```json\n", 1)[1].split("```", 1)[0])


# --- plugins ------------------------------------------------------------------------------------------


def test_plugins_json_lists_the_built_ins_with_their_flags(tmp_path: Path) -> None:
    result = invoke(tmp_path, "plugins", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    by_name = {plugin["name"]: plugin for plugin in document["plugins"]}
    assert {"standalone", "webroot", "manual"} <= set(by_name)
    for name in ("standalone", "webroot", "manual"):
        assert by_name[name]["authenticator"] and not by_name[name]["installer"]
        assert by_name[name]["distribution"] == "letsencrypt"
        assert by_name[name]["entry_point"].startswith(f"letsencrypt.plugins.{name}:")
    webroot_path = next(option for option in by_name["webroot"]["options"] if option["name"] == "path")
    assert webroot_path["flag"] == "--webroot-path" and webroot_path["multiple"] and webroot_path["type"] == "path"
    assert "--manual-auth-hook" in [option["flag"] for option in by_name["manual"]["options"]]
    assert [plugin["name"] for plugin in document["plugins"]] == sorted(by_name)


def test_plugins_json_has_exactly_the_documented_keys(tmp_path: Path, broken_plugin: None) -> None:
    document = json.loads(invoke(tmp_path, "plugins", "--json").stdout)
    example = documented_example("## `plugins --json`")
    assert set(document) == set(example)
    webroot = next(plugin for plugin in document["plugins"] if plugin["name"] == "webroot")
    assert list(webroot) == list(example["plugins"][0])
    assert list(webroot["options"][0]) == list(example["plugins"][0]["options"][0])
    assert list(document["broken"][0]) == list(example["broken"][0])


def test_a_broken_plugin_is_listed_with_its_error(tmp_path: Path, broken_plugin: None) -> None:
    document = json.loads(invoke(tmp_path, "plugins", "--json").stdout)
    assert document["broken"] == [{
        "name": "dns-broken", "distribution": "thirdparty-broken",
        "error": "ModuleNotFoundError: No module named 'a_module_that_is_not_installed'",
    }]
    assert "standalone" in [plugin["name"] for plugin in document["plugins"]]
    human = invoke(tmp_path, "plugins")
    assert human.exit_code == 0
    assert "* dns-broken (BROKEN, skipped)\nDistribution: thirdparty-broken\nError: ModuleNotFoundError" in human.stdout
    assert "plugin dns-broken could not be loaded and is skipped" in human.stderr


def test_plugins_human_output(tmp_path: Path) -> None:
    out = invoke(tmp_path, "plugins").stdout
    assert "* standalone\nDescription: " in out
    assert "Interfaces: Authenticator\nEntry point: standalone = letsencrypt.plugins.standalone:" in out
    assert "Option: --webroot-path (repeatable): " in out


# --- account commands: what is checked before the CA is asked --------------------------------------------


def test_account_commands_without_an_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("show_account", "update_account", "unregister"):
        code, out, err = run_main(tmp_path, capsys, command, "--server", SERVER, "-m", "x@example.com")
        assert code == 1 and out == ""
        assert f"Error: there is no account for {SERVER}" in err
        assert "Hint: create one with `letsencrypt register`" in err


def test_register_refuses_a_second_account_and_update_needs_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    AccountStore(Paths.under(tmp_path)).save(SERVER, "https://ca.test/acct/1", AccountKey.generate("ec256"),
                                             ("mailto:old@example.com",))
    code, _, err = run_main(tmp_path, capsys, "register", "--server", SERVER, "--agree-tos", "-m", "x@example.com")
    assert code == 1 and "there is already an account for https://ca.test/directory: https://ca.test/acct/1" in err
    assert "update_account" in err
    code, _, err = run_main(tmp_path, capsys, "update_account", "--server", SERVER)
    assert code == 1 and "update_account needs the new e-mail address" in err and "-m you@example.com" in err
