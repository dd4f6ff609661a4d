"""Installing a lineage with an installer plugin, as one transaction.

Deploy the certificate for every name, apply the enhancements asked for (``--redirect``,
``--hsts``, ``--uir``, ``--staple-ocsp``), checkpoint, test the configuration, restart, and let the
installer verify what is served. Any failure rolls the configuration back (``recovery_routine``)
and restarts the server on the old configuration, so a working server is never left broken.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import click

from letsencrypt.cli._runtime import Runtime
from letsencrypt.errors import LetsencryptError
from letsencrypt.plugin_api import Installer, NotSupported, PluginError, VerifiesDeployment
from letsencrypt.storage.lineage import Lineage

__all__ = ["enhancements_asked", "install_lineage"]

logger = logging.getLogger(__name__)


def enhancements_asked(runtime: Runtime, installer: Installer) -> list[str]:
    s = runtime.settings
    wanted = []
    supported = set(installer.supported_enhancements())
    redirect = s.redirect
    if redirect is None and "redirect" in supported:
        redirect = True  # the point of `run`: HTTPS forced, as the README promises
    for name, asked in (("redirect", redirect), ("hsts", s.hsts), ("uir", s.uir), ("staple-ocsp", s.staple_ocsp)):
        if not asked:
            continue
        if name in supported:
            wanted.append(name)
        else:
            runtime.reporter.warn(f"the installer does not support {name}; skipped")
    return wanted


def install_lineage(runtime: Runtime, installer: Installer, lineage: Lineage, names: Sequence[str]) -> None:
    enhancements = enhancements_asked(runtime, installer)
    title = f"letsencrypt: install {lineage.name} for {', '.join(names)}"
    try:
        for name in names:
            installer.deploy_certificate(
                name, cert_path=lineage.cert_path, key_path=lineage.key_path,
                chain_path=lineage.chain_path, fullchain_path=lineage.fullchain_path,
            )
        for enhancement in enhancements:
            for name in names:
                try:
                    installer.enhance(name, enhancement)
                except NotSupported as err:
                    runtime.reporter.warn(f"{enhancement} for {name}: {err.message}")
        installer.save(title)
        installer.config_test()
        installer.restart()
        if isinstance(installer, VerifiesDeployment):
            for name in names:
                installer.verify_deployment(name, lineage.fullchain_path.read_bytes())
    except (PluginError, LetsencryptError, OSError) as err:
        logger.exception("installing %s failed; rolling back", lineage.name)
        _roll_back(runtime, installer)
        message = getattr(err, "message", str(err))
        raise LetsencryptError(
            f"installing the certificate failed and the server configuration was rolled back: {message}",
            hint=getattr(err, "hint", None) or f"the certificate is saved in {lineage.live_dir}; fix the cause and "
            f"run `letsencrypt install --cert-name {lineage.name}`",
        ) from err
    click.echo(f"Deployed the certificate {lineage.name} for {', '.join(names)}"
               + (f" with {', '.join(enhancements)}" if enhancements else "") + ".")


def _roll_back(runtime: Runtime, installer: Installer) -> None:
    try:
        installer.recovery_routine()
        installer.restart()
    except (PluginError, OSError) as err:
        runtime.reporter.warn(f"rolling back failed too: {err}; check the server configuration now")
