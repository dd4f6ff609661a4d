"""Pre, deploy and post hooks, run the way certbot runs them so existing hook scripts keep working.

Commands come from ``--pre-hook``/``--post-hook``/``--deploy-hook`` (and, for ``renew``, from each
lineage's saved configuration) and from the executables in ``renewal-hooks/{pre,deploy,post}/``
(run in name order). For every command that obtains a certificate:

- the pre hooks run once, just before the first certificate is requested (never when nothing is
  due); a command given twice runs once;
- a deploy hook runs after each certificate is saved, with ``RENEWED_LINEAGE`` (the lineage's
  ``live`` folder) and ``RENEWED_DOMAINS`` (its names, space-separated); not in ``--dry-run``
  unless asked;
- the post hooks run once at the end of the run, if the pre hooks ran, with ``RENEWED_DOMAINS``
  and ``FAILED_DOMAINS`` of the whole run.

A hook that fails is reported (its exit code and the end of its stderr) and the run goes on, as
with certbot; ``failures`` counts them so the caller can say so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from letsencrypt.acme.records import record
from letsencrypt.plugin_api import Reporter

__all__ = ["HookCommands", "HookRunner"]

logger = logging.getLogger(__name__)

HOOK_TIMEOUT = 600.0


@record
class HookCommands:
    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    deploy: tuple[str, ...] = ()

    def merged(self, other: HookCommands) -> HookCommands:
        return HookCommands(
            _unique(self.pre + other.pre), _unique(self.post + other.post), _unique(self.deploy + other.deploy)
        )


def _unique(commands: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(command for command in commands if command.strip()))


def _executables(folder: Path | None) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    return [
        str(path) for path in sorted(folder.iterdir())
        if path.is_file() and os.access(path, os.X_OK) and not path.name.startswith(".")
    ]


class HookRunner:
    """One run's hooks; ``pre`` and ``post`` run at most once however often they are called."""

    def __init__(
        self,
        commands: HookCommands,
        reporter: Reporter,
        *,
        hooks_dir: Path | None = None,
        dry_run: bool = False,
        run_deploy_hooks: bool = False,
    ) -> None:
        self.commands = commands
        self._reporter = reporter
        self._hooks_dir = hooks_dir
        self._dry_run = dry_run
        self._run_deploy = run_deploy_hooks or not dry_run
        self._pre_done = False
        self._post_done = False
        self._ran: set[str] = set()
        self.renewed: list[str] = []
        self.failed: list[str] = []
        self.failures = 0

    def add(self, commands: HookCommands) -> None:
        """Add a lineage's saved hooks (``renew``)."""
        self.commands = self.commands.merged(commands)

    def pre(self) -> None:
        if self._pre_done:
            return
        self._pre_done = True
        for command in [*self.commands.pre, *_executables(self._dir("pre"))]:
            if command not in self._ran:  # certbot: the same pre hook runs once per run
                self._ran.add(command)
                self._run("pre", command, {})

    def deploy(self, live_dir: Path, domains: Sequence[str]) -> None:
        self.renewed.extend(domains)
        if not self._run_deploy:
            logger.info("dry run: not running deploy hooks for %s", live_dir)
            return
        env = {"RENEWED_LINEAGE": str(live_dir), "RENEWED_DOMAINS": " ".join(domains)}
        for command in [*self.commands.deploy, *_executables(self._dir("deploy"))]:
            self._run("deploy", command, env)

    def failed_for(self, domains: Sequence[str]) -> None:
        self.failed.extend(domains)

    def post(self) -> None:
        if self._post_done or not self._pre_done:
            return
        self._post_done = True
        env = {"RENEWED_DOMAINS": " ".join(self.renewed), "FAILED_DOMAINS": " ".join(self.failed)}
        for command in [*self.commands.post, *_executables(self._dir("post"))]:
            self._run("post", command, env)

    def _dir(self, kind: str) -> Path | None:
        return None if self._hooks_dir is None else self._hooks_dir / kind

    def _run(self, kind: str, command: str, env: Mapping[str, str]) -> None:
        self._reporter.progress(f"running {kind} hook: {command}")
        logger.info("running %s hook: %s", kind, command)
        import subprocess  # here: most runs have no hook to run
        try:
            result = subprocess.run(  # noqa: S602 - hooks are shell commands, as with certbot
                command, shell=True, env={**os.environ, **env}, capture_output=True, text=True,
                timeout=HOOK_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            self.failures += 1
            self._reporter.warn(f"{kind} hook {command!r} could not run: {err}")
            return
        if result.stdout.strip():
            logger.info("%s hook output: %s", kind, result.stdout.strip())
        if result.returncode != 0:
            self.failures += 1
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            suffix = f": {tail}" if tail else ""
            self._reporter.warn(f"{kind} hook {command!r} exited with {result.returncode}{suffix}")
