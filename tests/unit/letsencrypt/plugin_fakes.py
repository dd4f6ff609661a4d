"""Shared test doubles for the plugin tests: a recording Reporter, contexts and challenge tasks."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from letsencrypt.acme import challenges
from letsencrypt.acme.jws import AccountKey, b64encode
from letsencrypt.acme.messages import Challenge, ChallengeStatus, Identifier
from letsencrypt.plugin_api import ChallengeTask, PluginContext

ACCOUNT_KEY = AccountKey.generate("ec256")


class RecordingReporter:
    """A Reporter that keeps what plugins tell the user."""

    def __init__(self) -> None:
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.progress_lines: list[str] = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def progress(self, message: str) -> None:
        self.progress_lines.append(message)


def make_context(tmp_path: Path, options: Mapping[str, Any] | None = None, **fields: Any) -> PluginContext:
    values: dict[str, Any] = {
        "options": dict(options or {}),
        "config_dir": tmp_path / "config",
        "work_dir": tmp_path / "work",
        "logs_dir": tmp_path / "logs",
        "reporter": RecordingReporter(),
        "http01_address": "127.0.0.1",
    }
    values.update(fields)
    return PluginContext(**values)


def new_token() -> str:
    return b64encode(secrets.token_bytes(32))


def make_task(
    domain: str,
    challenge_type: str = "http-01",
    *,
    account_key: AccountKey = ACCOUNT_KEY,
    r: str | None = None,
    nonce: str | None = None,
) -> ChallengeTask:
    """A pending challenge task as the client builds it (dvsni: no token, empty key authorization)."""
    identifier = Identifier.parse(domain) if not domain.startswith("*.") else Identifier("dns", domain)
    token = None if challenge_type == "dvsni" else new_token()
    challenge = Challenge(
        type_name=challenge_type,
        url=f"https://ca.test/chall/{secrets.token_hex(8)}",
        status=ChallengeStatus.PENDING,
        token=token,
        r=r,
        nonce=nonce,
    )
    key_authorization = "" if token is None else challenges.key_authorization(token, account_key)
    return ChallengeTask(identifier, challenge, key_authorization, account_key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
