"""The ``apache`` plugin: authenticator and installer for Apache, found through the ``letsencrypt.plugins`` entry point.

Role: the class the client loads. It declares the options (``--apache-server-root``,
``--apache-ctl``) and hands each call to the part that does it: ``authenticator.ApacheAuthenticator``
(challenges through the running Apache) and ``installer.ApacheInstaller`` (TLS vhosts and
enhancements), which share one ``server.ApacheSite`` (the configuration as Apache reads it, the
checkpoints, the control program). It also answers the optional capabilities the client probes
for: ``verify_deployment`` and ``lineage_in_use``.

Allowed imports: the standard library, ``letsencrypt.plugin_api``; this package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from letsencrypt import plugin_api
from letsencrypt.plugin_api import ChallengeTask, Identifier, Option, PluginContext

from .authenticator import ApacheAuthenticator
from .installer import ApacheInstaller
from .server import ApacheSite

__all__ = ["ApachePlugin"]

_CERTIFICATE_DIRECTIVES = ("sslcertificatefile", "sslcertificatekeyfile", "sslcertificatechainfile")


class ApachePlugin:
    """``--apache``: prove control through Apache's own virtual hosts, then install into them."""

    name = "apache"
    description = "Apache web server: challenges through its virtual hosts, certificates installed into them"
    options: Sequence[Option] = (
        Option("server-root", "Apache's server root: the folder of apache2.conf", type="path",
               default="/etc/apache2"),
        Option("ctl", "Apache's control program (apache2ctl), or the server binary for a root of its own",
               default="apache2ctl"),
    )

    def __init__(self, context: PluginContext) -> None:
        self._site = ApacheSite.shared(context)
        self._authenticator = ApacheAuthenticator(self._site, context)
        self._installer = ApacheInstaller(self._site, context)

    def prepare(self) -> None:
        self._site.prepare()

    # --- authenticator -----------------------------------------------------------------------------

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        return self._authenticator.supported_challenges(identifier)

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        return self._authenticator.perform(tasks)

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        self._authenticator.cleanup(tasks)

    # --- installer ---------------------------------------------------------------------------------

    def names(self) -> set[str]:
        return {name for vhost in self._site.config.vhosts for name in vhost.names if "*" not in name
                and "?" not in name}

    def deploy_certificate(self, domain: str, *, cert_path: Path, key_path: Path, chain_path: Path,
                           fullchain_path: Path) -> None:
        self._installer.deploy_certificate(domain, cert_path=cert_path, key_path=key_path, chain_path=chain_path,
                                           fullchain_path=fullchain_path)

    def supported_enhancements(self) -> Sequence[str]:
        return self._installer.supported_enhancements()

    def enhance(self, domain: str, enhancement: str, options: Mapping[str, Any] | None = None) -> None:
        self._installer.enhance(domain, enhancement, options)

    def save(self, title: str, *, temporary: bool = False) -> None:
        self._installer.save(title, temporary=temporary)

    def rollback_checkpoints(self, count: int = 1) -> None:
        self._installer.rollback_checkpoints(count)

    def recovery_routine(self) -> None:
        self._authenticator.cleanup(())
        self._installer.recovery_routine()

    def config_test(self) -> None:
        self._installer.config_test()

    def restart(self) -> None:
        self._installer.restart()

    # --- optional capabilities ---------------------------------------------------------------------

    def verify_deployment(self, domain: str, fullchain_pem: bytes) -> None:
        self._installer.verify_deployment(domain, fullchain_pem)

    def lineage_in_use(self, live_paths: Sequence[Path]) -> list[str]:
        """``file:line`` of every certificate directive Apache reads that points into a lineage."""
        live = [Path(p).absolute() for p in live_paths]
        root = Path(self._site.config.loaded.server_root)
        found = []
        for entry in self._site.config.loaded.walk():
            if entry.key in _CERTIFICATE_DIRECTIVES and entry.words:
                path = Path(entry.words[0])
                path = path if path.is_absolute() else root / path
                if any(path == p or p in path.parents for p in live):
                    found.append(f"{entry.node.file}:{entry.node.line}")
        return list(dict.fromkeys(found))


if TYPE_CHECKING:
    _authenticator: type[plugin_api.Authenticator] = ApachePlugin
    _installer: type[plugin_api.Installer] = ApachePlugin
    _verifies: type[plugin_api.VerifiesDeployment] = ApachePlugin
    _delete_aware: type[plugin_api.DeleteAware] = ApachePlugin
