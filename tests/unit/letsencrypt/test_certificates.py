"""Regression tests of ``letsencrypt.certificates`` (issuing into a lineage) and its crash-point seam."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from plugin_fakes import RecordingReporter

from letsencrypt._crashpoints import CRASH_ENV, crash_point, storage_steps
from letsencrypt.accounts import with_terms_retry
from letsencrypt.acme import crypto
from letsencrypt.acme.client import AcmeClient
from letsencrypt.acme.errors import UserActionRequired
from letsencrypt.acme.messages import Problem
from letsencrypt.certificates import issue_for
from letsencrypt.cli._options import settings_from
from letsencrypt.errors import AccountError, ChallengeFailed
from letsencrypt.plugin_api import Authenticator

TERMS = "https://ca.test/terms/v2"


class TermsChangedClient:
    """The part of ``AcmeClient`` issuing touches: new orders fail until the new terms are agreed."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.agreed = False

    def new_order(self, identifiers: Sequence[Any], **_: Any) -> Any:
        self.calls.append("new_order")
        if not self.agreed:
            problem = Problem.acme("userActionRequired", f"the terms changed; review {TERMS}", 403, instance=TERMS)
            raise UserActionRequired(problem, url="https://ca.test/new-order", status=403, terms_of_service=TERMS)
        raise ChallengeFailed("stop here: the order went through")

    def update_account(self, *, terms_of_service_agreed: bool) -> None:
        self.calls.append("update_account")
        self.agreed = terms_of_service_agreed


def _issue(client: TermsChangedClient, tmp_path: Path, *, agree_tos: bool) -> None:
    settings = settings_from({"config_dir": tmp_path, "work_dir": tmp_path, "logs_dir": tmp_path,
                              "http_01_port": 80, "https_port": 443, "agree_tos": agree_tos,
                              "non_interactive": True}, [], stdin_is_tty=False)
    reporter = RecordingReporter()
    acme = cast(AcmeClient, client)
    with_terms_retry(acme, settings, reporter, lambda: issue_for(
        acme, cast(Authenticator, object()), ["a.example.com"], crypto.generate_private_key("ec256"),
        preferred_challenges=(), preferred_chain=None, profile=None, replaces=None, reporter=reporter))


def test_new_terms_reach_the_terms_retry_and_are_agreed_with_agree_tos(tmp_path: Path) -> None:
    """issue_for used to wrap userActionRequired in a generic error, so --agree-tos could never agree."""
    client = TermsChangedClient()
    with pytest.raises(ChallengeFailed, match="stop here"):
        _issue(client, tmp_path, agree_tos=True)
    assert client.calls == ["new_order", "update_account", "new_order"]


def test_new_terms_without_agree_tos_name_the_terms_and_the_flag(tmp_path: Path) -> None:
    client = TermsChangedClient()
    with pytest.raises(AccountError) as raised:
        _issue(client, tmp_path, agree_tos=False)
    assert TERMS in raised.value.message and "--agree-tos" in (raised.value.hint or "")
    assert client.calls == ["new_order"]


# --- crash points --------------------------------------------------------------------------------------


def test_crash_points_do_nothing_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRASH_ENV, raising=False)
    crash_point("finalized")
    assert storage_steps() is None
    monkeypatch.setenv(CRASH_ENV, "order-created, storage:live:switch")
    crash_point("finalized")
    step = storage_steps()
    assert step is not None
    step("live:generation")


@pytest.mark.parametrize(("wanted", "called"), [("finalized", "crash_point('finalized')"),
                                                ("storage:live:switch", "storage_steps()('live:switch')")])
def test_a_named_crash_point_kills_the_process(wanted: str, called: str) -> None:
    code = f"from letsencrypt._crashpoints import *\n{called}\nprint('survived')"
    result = subprocess.run([sys.executable, "-c", code], env={CRASH_ENV: wanted, "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=30, check=False,
                            cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == -9, result.stderr
    assert "survived" not in result.stdout
