"""The ``nginx`` plugin: an authenticator and an installer in one class, found through its entry point.

Role: the actions layer's contract with the client (``letsencrypt.plugin_api``). It keeps the
plugin's state between the client's calls and delegates: the configuration
(``configuration``), the edits (``installer``, ``authenticator``), the checkpoints
(``transactions``), and nginx itself (``control``, ``probes``).

The life of a change: edits stay in memory until :meth:`NginxPlugin.save` commits them as one
checkpoint (snapshot, then atomic writes); :meth:`config_test` runs ``nginx -t``; :meth:`restart`
reloads and returns only once nginx serves what the edits promised (the new certificate for each
name, the redirect), checked by connecting to it; then the checkpoint is confirmed. Until then it
is *pending*: the client calls :meth:`recovery_routine` when anything fails, which reverts every
checkpoint this instance saved (and unsaved edits) byte for byte, and a run that crashed is rolled
back by the next :meth:`prepare`. The authenticator's changes are temporary checkpoints, reverted by
:meth:`cleanup` whatever happened.

Allowed imports: the standard library, ``letsencrypt.plugin_api``, ``letsencrypt.acme`` and this
package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from letsencrypt.plugin_api import (
    ENHANCEMENTS,
    ChallengeSetupError,
    ChallengeTask,
    Identifier,
    MisconfigurationError,
    Option,
    PluginContext,
    PluginError,
)

from . import authenticator, installer
from .configuration import Configuration, listens_for, managed
from .control import Nginx
from .crosscheck import cross_check
from .errors import NginxCrossCheckError
from .model import top_matches
from .probes import Expectation, check_all, pem_certificates, served_chain, wait_until
from .ssl_files import missing_shared_files
from .transactions import Checkpoints

if TYPE_CHECKING:
    from letsencrypt import plugin_api

__all__ = ["DEFAULT_CTL", "DEFAULT_SERVER_ROOT", "NginxPlugin"]

logger = logging.getLogger(__name__)

DEFAULT_SERVER_ROOT = Path("/etc/nginx")
DEFAULT_CTL = "nginx"
SERVE_DEADLINE = 5.0
"""Seconds for nginx's new workers to serve what a change promised (they usually do at once)."""


class NginxPlugin:
    """Answers http-01 (and the legacy dvsni and simpleHttps) through nginx and installs certificates into it."""

    name = "nginx"
    description = "Answer challenges through nginx and install certificates into its configuration"
    options: Sequence[Option] = (
        Option("server-root", "the folder holding nginx.conf", type="path", default=DEFAULT_SERVER_ROOT),
        Option("ctl", "the nginx binary (a name on PATH or a path)", default=DEFAULT_CTL),
    )

    def __init__(self, context: PluginContext, *, input_fn: Callable[[str], str] = input) -> None:
        self._context = context
        root = Path(context.options.get("server-root") or DEFAULT_SERVER_ROOT)
        self._nginx = Nginx(str(context.options.get("ctl") or DEFAULT_CTL), root)
        self._checkpoints = Checkpoints(context.work_dir / "nginx-checkpoints")
        self._input = input_fn
        self._conf: Configuration | None = None
        self._cross_checked = False
        self._saved: list[str] = []  # checkpoints this instance saved: recovery_routine reverts them
        self._unconfirmed: list[str] = []  # saved but not yet served by nginx
        self._expectations: list[Expectation] = []
        self._shared_files: dict[Path, bytes] = {}
        self._challenges: dict[str, set[str]] = {}  # temporary checkpoint id -> challenge URLs not cleaned up

    # --- common ----------------------------------------------------------------------------------

    def prepare(self) -> None:
        info = self._nginx.info  # raises with a hint when the binary is missing
        logger.debug("nginx %s at %s, server root %s", info.version, self._nginx.ctl, self._nginx.server_root)
        rolled_back = self._checkpoints.recover()
        if rolled_back:
            self._context.reporter.warn(
                "rolled back nginx configuration changes an interrupted run left: " + "; ".join(rolled_back))
        self._conf = Configuration.load(self._nginx)

    def _configuration(self) -> Configuration:
        """The configuration to edit: loaded again when the files changed on disk since."""
        if self._conf is None or (not self._conf.modified and self._conf.changed_on_disk()):
            self._conf = Configuration.load(self._nginx)
        if not self._cross_checked:
            self._cross_check(self._conf)
        return self._conf

    def _cross_check(self, conf: Configuration) -> None:
        """``nginx -T`` must read the files we read, before we edit any (a loader bug stops here)."""
        prefix = None if self._nginx.uses_defaults else f"{self._nginx.server_root}/"
        try:
            cross_check(conf.config, nginx=self._nginx.ctl, prefix=prefix)
        except NginxCrossCheckError:
            raise
        except MisconfigurationError as err:  # nginx -T itself failed; nginx -t will say why before reload
            logger.info("cannot cross-check the loaded files with nginx -T: %s", err)
        self._cross_checked = True

    # --- installer ---------------------------------------------------------------------------------

    def names(self) -> set[str]:
        conf = self._configuration()
        return {name for block in conf.blocks for name in block.literal_names()}

    def deploy_certificate(
        self, domain: str, *, cert_path: Path, key_path: Path, chain_path: Path, fullchain_path: Path
    ) -> None:
        conf = self._configuration()
        if not top_matches(conf.blocks, domain):
            self._offer_new_block(conf, domain)
        self._expectations += installer.deploy(conf, domain, key_path=key_path, fullchain_path=fullchain_path,
                                               https_port=self._context.https_port,
                                               server_root=self._nginx.server_root)
        self._shared_files.update(missing_shared_files(self._nginx.server_root))

    def _offer_new_block(self, conf: Configuration, domain: str) -> None:
        if not self._context.interactive:
            raise installer.no_block_error(domain)
        listens = listens_for(conf, self._context.http01_port, self._context.http01_address, tls=False)
        self._context.reporter.info(
            f"No nginx server block serves {domain}. Create one at the end of the http block "
            f"(listen {', '.join(listens)}; server_name {domain})? [y/N]")
        try:
            answer = self._input("")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            raise installer.no_block_error(domain)
        conf.append_server([*(managed("listen", *text.split()) for text in listens), managed("server_name", domain)])

    def supported_enhancements(self) -> Sequence[str]:
        return list(ENHANCEMENTS)

    def enhance(self, domain: str, enhancement: str, options: Mapping[str, Any] | None = None) -> None:
        conf = self._configuration()
        self._expectations += installer.enhance(conf, domain, enhancement, https_port=self._context.https_port)

    def save(self, title: str, *, temporary: bool = False) -> None:
        if self._context.dry_run and not temporary:
            logger.info("dry run: not saving the nginx configuration change %r", title)
            self._conf, self._shared_files = None, {}
            return
        writes = dict(self._conf.writes()) if self._conf is not None else {}
        writes.update({path: data for path, data in self._shared_files.items() if not path.exists()})
        checkpoint = self._checkpoints.commit(title, writes, temporary=temporary)
        self._conf, self._shared_files = None, {}  # the files on disk are now the truth
        if checkpoint.files:
            self._saved.append(checkpoint.id)
            self._unconfirmed.append(checkpoint.id)

    def rollback_checkpoints(self, count: int = 1) -> None:
        self._checkpoints.rollback(count)
        self._conf, self._expectations = None, []

    def recovery_routine(self) -> None:
        self._checkpoints.revert([*self._saved, *self._challenges])
        self._saved, self._unconfirmed, self._challenges = [], [], {}
        self._conf, self._expectations, self._shared_files = None, [], {}

    def config_test(self) -> None:
        conf = self._configuration()
        pid_free = conf.pid_free_main()
        self._nginx.config_test(pid_path=conf.pid_path, pid_free_copy=None if pid_free is None else lambda: pid_free)

    def restart(self) -> None:
        conf = self._configuration()
        self._nginx.reload(pid_path=conf.pid_path, error_log=conf.error_log)
        expectations, self._expectations = self._expectations, []
        if expectations:
            wait_until(check_all(expectations), SERVE_DEADLINE, "nginx to serve the new configuration")
        self._checkpoints.confirm(self._unconfirmed)
        self._unconfirmed = []

    def verify_deployment(self, domain: str, fullchain_pem: bytes) -> None:
        expected = pem_certificates(fullchain_pem)
        conf = self._configuration()
        blocks = [block for block in top_matches(conf.blocks, domain) if block.tls_listens]
        if not blocks:
            raise PluginError(f"nginx serves {domain} over no TLS port after the reload")
        for block in blocks:
            for listen in block.tls_listens:
                try:
                    served = served_chain(listen.connect_host, listen.port, domain)
                except OSError as err:
                    raise PluginError(f"cannot connect to {domain} at {listen.connect_host}:{listen.port}: {err}",
                                      hint="see nginx's error log") from err
                wanted = expected if served.complete else expected[:1]
                if served.certificates != wanted:
                    raise PluginError(
                        f"nginx at {listen.connect_host}:{listen.port} ({block.where()}) serves {domain} with "
                        f"another certificate chain ({len(served.certificates)} certificates) than the new one",
                        hint="see nginx's error log; another server block may be answering for this name")

    def lineage_in_use(self, live_paths: Sequence[Path]) -> list[str]:
        return installer.lineage_in_use(self._configuration(), live_paths)

    # --- authenticator -------------------------------------------------------------------------------

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        return authenticator.supported(identifier)

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        conf = self._configuration()
        scratch = self._context.work_dir / "nginx-challenges"
        scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        ports = authenticator.Ports(self._context.http01_port, self._context.https_port,
                                    self._context.http01_address)
        try:
            done = authenticator.provision(conf, tasks, ports, scratch)
        except MisconfigurationError as err:
            self._conf = None
            raise ChallengeSetupError(err.message, hint=err.hint) from err
        except BaseException:
            self._conf = None
            raise
        title = "letsencrypt: challenges for " + ", ".join(dict.fromkeys(task.domain for task in tasks))
        writes = {**conf.writes(), **done.files}
        checkpoint = self._checkpoints.commit(title, writes, temporary=True, private=done.private)
        self._conf = None
        self._challenges[checkpoint.id] = {task.challenge.url for task in tasks}
        try:
            self.config_test()
            saved = self._configuration()
            self._nginx.reload(pid_path=saved.pid_path, error_log=saved.error_log)
            wait_until(check_all(done.expectations), SERVE_DEADLINE, "nginx to serve the challenges")
        except PluginError as err:
            self.cleanup(tasks)
            raise ChallengeSetupError(f"nginx cannot serve the challenges: {err.message}",
                                      hint=err.hint or "see nginx's error log") from err
        return done.responses

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        urls = {task.challenge.url for task in tasks}
        finished = []
        for checkpoint_id, pending in self._challenges.items():
            pending -= urls
            if not pending:
                finished.append(checkpoint_id)
        if not finished:
            return
        for checkpoint_id in finished:
            del self._challenges[checkpoint_id]
        self._checkpoints.revert(finished)
        self._conf = None
        try:
            conf = self._configuration()
            # the next reload (the install) waits for the generations before it to stop accepting
            self._nginx.reload(pid_path=conf.pid_path, error_log=conf.error_log, settle=False)
        except PluginError as err:  # the files are restored; nginx serves the challenge until its next reload
            logger.warning("nginx was not reloaded after removing the challenges: %s", err)
            self._context.reporter.warn(f"nginx was not reloaded after removing the challenges: {err}")


if TYPE_CHECKING:
    _authenticator: type[plugin_api.Authenticator] = NginxPlugin
    _installer: type[plugin_api.Installer] = NginxPlugin
    _verifies: type[plugin_api.VerifiesDeployment] = NginxPlugin
    _delete_aware: type[plugin_api.DeleteAware] = NginxPlugin
