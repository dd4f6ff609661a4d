"""The ``manual`` authenticator: dns-01 and http-01 through the user's scripts, or by hand.

With ``--manual-auth-hook`` (and optionally ``--manual-cleanup-hook``) it runs the hooks through
``/bin/sh -c`` once per challenge, with the environment certbot gives them, so existing certbot
hook scripts work unchanged:

- ``CERTBOT_DOMAIN``: the domain being validated (a wildcard without its ``*.``);
- ``CERTBOT_VALIDATION``: what to publish: the key authorization (http-01) or the TXT value (dns-01);
- ``CERTBOT_TOKEN``: the token, the file name under ``/.well-known/acme-challenge/`` (http-01 only);
- ``CERTBOT_REMAINING_CHALLENGES``: how many challenges come after this one;
- ``CERTBOT_ALL_DOMAINS``: every domain being validated, comma-separated;
- ``CERTBOT_AUTH_OUTPUT``: the auth hook's standard output (cleanup hook only).

Without a hook, an interactive run tells the user what to publish (through the reporter) and waits
for Enter; a non-interactive run fails, asking for ``--manual-auth-hook``.

Registered through the ``letsencrypt.plugins`` entry point like any third-party plugin.
Imports: stdlib, ``letsencrypt.plugin_api``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from letsencrypt.plugin_api import (
    ChallengeSetupError,
    ChallengeTask,
    ChallengeType,
    Identifier,
    NotSupported,
    Option,
    PluginContext,
    PluginError,
)

if TYPE_CHECKING:
    from letsencrypt import plugin_api

logger = logging.getLogger(__name__)

_STDERR_SHOWN = 2000  # characters of a failing hook's stderr kept in the error


class ManualAuthenticator:
    """Runs the user's auth and cleanup hooks, or asks the user to publish the challenges by hand."""

    name = "manual"
    description = "Publish challenges yourself, by hand or with --manual-auth-hook/--manual-cleanup-hook scripts"
    options: Sequence[Option] = (
        Option("auth-hook", "command run (by /bin/sh) to publish each challenge, certbot's environment set"),
        Option("cleanup-hook", "command run (by /bin/sh) to remove each challenge afterwards"),
    )
    shell = "/bin/sh"

    def __init__(self, context: PluginContext, *, input_fn: Callable[[str], str] = input) -> None:
        self._context = context
        self._auth_hook: str | None = context.options.get("auth-hook") or None
        self._cleanup_hook: str | None = context.options.get("cleanup-hook") or None
        self._input = input_fn
        self._auth_output: dict[str, str] = {}  # challenge URL -> the auth hook's stdout

    def prepare(self) -> None:
        if self._auth_hook is None and not self._context.interactive:
            raise PluginError(
                "the manual authenticator needs a hook to publish challenges when running non-interactively",
                hint="give --manual-auth-hook",
            )

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        if identifier.type == "ip":
            return [ChallengeType.HTTP_01]  # an IP address has no DNS zone to publish in
        if identifier.value.startswith("*."):
            return [ChallengeType.DNS_01]
        return [ChallengeType.HTTP_01, ChallengeType.DNS_01]

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        self.prepare()
        for task in tasks:
            if task.type not in (ChallengeType.HTTP_01, ChallengeType.DNS_01):
                raise NotSupported(
                    f"the manual authenticator answers http-01 and dns-01, not {task.challenge.type_name}",
                    hint="choose http-01 or dns-01 with --preferred-challenges",
                )
        if self._auth_hook is None:
            self._ask(tasks)
        else:
            for index, task in enumerate(tasks):
                env = _environment(task, tasks, remaining=len(tasks) - index - 1)
                self._auth_output[task.challenge.url] = self._run("auth", self._auth_hook, task, env)
        return [{} for _ in tasks]

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        hook = self._cleanup_hook
        for index, task in enumerate(tasks):
            output = self._auth_output.pop(task.challenge.url, None)
            if hook is None or output is None:
                continue  # nothing published for this task, nothing to clean up
            env = _environment(task, tasks, remaining=len(tasks) - index - 1)
            env["CERTBOT_AUTH_OUTPUT"] = output or ""
            try:
                self._run("cleanup", hook, task, env)
            except PluginError as err:  # cleanup goes on for the other tasks; the certificate is not at stake
                logger.error("%s", err)
                self._context.reporter.warn(str(err))

    def _run(self, which: str, hook: str, task: ChallengeTask, env: Mapping[str, str]) -> str:
        """Run one hook; its stdout is returned, a non-zero exit becomes ``ChallengeSetupError``."""
        logger.info("manual: running the %s hook for %s", which, task.domain)
        try:
            result = subprocess.run(
                [self.shell, "-c", hook], env={**os.environ, **env}, capture_output=True, text=True, check=False
            )
        except OSError as err:
            raise ChallengeSetupError(
                f"cannot run the --manual-{which}-hook for {task.domain}: {err}", hint=f"check that {self.shell} exists"
            ) from err
        if result.stderr:
            logger.debug("%s hook stderr for %s: %s", which, task.domain, result.stderr.rstrip())
        if result.returncode != 0:
            stderr = result.stderr.strip()[-_STDERR_SHOWN:] or "(no output on stderr)"
            raise ChallengeSetupError(
                f"the --manual-{which}-hook failed for {task.domain} with exit code {result.returncode}: {stderr}",
                hint=f"fix the hook or run it by hand: {hook}",
            )
        return result.stdout.strip()

    def _ask(self, tasks: Sequence[ChallengeTask]) -> None:
        reporter = self._context.reporter
        for task in tasks:
            reporter.info(_instructions(task))
            reporter.info("Press Enter to continue")
            try:
                self._input("")
            except EOFError as err:
                raise PluginError(
                    "no answer while waiting for the challenge to be published",
                    hint="give --manual-auth-hook for unattended runs",
                ) from err
            self._auth_output[task.challenge.url] = ""


def _instructions(task: ChallengeTask) -> str:
    if task.type is ChallengeType.DNS_01:
        return (
            f"Please deploy a DNS TXT record under the name {task.dns01_record_name} with the following "
            f"value:\n\n{task.dns01_txt_value}\n\nBefore continuing, check that the record has propagated."
        )
    return (
        f"Create a file containing just this data:\n\n{task.key_authorization}\n\nAnd make it available on "
        f"your web server at this URL:\n\nhttp://{task.domain}{task.http01_path}"
    )


def _environment(task: ChallengeTask, tasks: Sequence[ChallengeTask], *, remaining: int) -> dict[str, str]:
    """certbot's hook environment for ``task`` (see the module docstring)."""
    env = {
        "CERTBOT_DOMAIN": task.domain.removeprefix("*."),
        "CERTBOT_REMAINING_CHALLENGES": str(remaining),
        "CERTBOT_ALL_DOMAINS": ",".join(dict.fromkeys(t.domain.removeprefix("*.") for t in tasks)),
    }
    if task.type is ChallengeType.DNS_01:
        env["CERTBOT_VALIDATION"] = task.dns01_txt_value
    else:
        env["CERTBOT_VALIDATION"] = task.key_authorization
        env["CERTBOT_TOKEN"] = task.token
    return env


if TYPE_CHECKING:
    _: type[plugin_api.Authenticator] = ManualAuthenticator
