"""``renew``: every lineage that is due, each renewed the way it was obtained.

Due means: RFC 9773 renewal information from the CA says so, or (without it) a third of the
lifetime is left (half for certificates under 10 days); ``--force-renewal`` and ``--dry-run``
renew regardless. A lineage that fails is reported and the others go on; the command exits
non-zero when any failed. ``--dry-run`` never touches live files.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Sequence
from typing import Any

import click
from cryptography import x509

from letsencrypt.accounts import ensure_account, with_terms_retry
from letsencrypt.acme.client import AcmeClient
from letsencrypt.acme.errors import AcmeError
from letsencrypt.certificates import LineageChoice, expiry_text, issue_for, key_for, replaces_id, save_obtained
from letsencrypt.cli._install import install_lineage
from letsencrypt.cli._runtime import Runtime
from letsencrypt.errors import LetsencryptError
from letsencrypt.hooks import HookCommands, HookRunner
from letsencrypt.plugin_api import PluginError
from letsencrypt.renewal_time import Decision, renewal_decision
from letsencrypt.storage.accounts import AccountStore
from letsencrypt.storage.lineage import Lineage
from letsencrypt.storage.renewal_config import RenewalConfig

__all__ = ["renew_lineages"]

logger = logging.getLogger(__name__)


def renew_lineages(runtime: Runtime, lineages: Sequence[Lineage]) -> list[tuple[str, str]]:
    s = runtime.settings
    selected = [lineage for lineage in lineages if s.cert_name in (None, lineage.name)]
    if s.cert_name is not None and not selected:
        raise LetsencryptError(f"there is no certificate named {s.cert_name}", hint="see `letsencrypt certificates`")
    hooks = HookRunner(HookCommands(_tuple(s.pre_hook), _tuple(s.post_hook), _tuple(s.deploy_hook)),
                       runtime.reporter, hooks_dir=runtime.paths.renewal_hooks_dir, dry_run=s.dry_run,
                       run_deploy_hooks=s.run_deploy_hooks)
    failures: list[tuple[str, str]] = []
    renewed: list[str] = []
    not_due: list[str] = []
    try:
        for lineage in selected:
            try:
                if _renew_one(runtime, lineage, hooks):
                    renewed.append(lineage.name)
                else:
                    not_due.append(lineage.name)
            except (LetsencryptError, PluginError, AcmeError, OSError) as err:
                logger.debug("renewing %s failed", lineage.name, exc_info=True)
                reason = getattr(err, "message", None) or str(err)
                failures.append((lineage.name, reason))
                hooks.failed_for(list(lineage.names))
                runtime.reporter.warn(f"renewing {lineage.name} failed: {reason}")
    finally:
        hooks.post()
    _summary(renewed, not_due, failures, dry_run=s.dry_run)
    return failures


def _summary(renewed: list[str], not_due: list[str], failures: list[tuple[str, str]], *, dry_run: bool) -> None:
    verb = "would be renewed (dry run)" if dry_run else "renewed"
    if renewed:
        click.echo(f"Certificates {verb}: {', '.join(renewed)}")
    if not_due:
        click.echo(f"Not due for renewal yet: {', '.join(not_due)}")
    if failures:
        click.echo("Renewal failed for: " + ", ".join(name for name, _ in failures))
    if not (renewed or not_due or failures):
        click.echo("No certificates found.")


def _tuple(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def _client_for(runtime: Runtime, config: RenewalConfig) -> AcmeClient:
    s = runtime.settings
    settings = s if s.server_set else dataclasses.replace(s, server=config.server)
    store = AccountStore(runtime.paths)
    client, _account = ensure_account(store, settings, runtime.client, runtime.reporter,
                                      server=settings.server, account_id=_known_account(store, settings.server,
                                                                                        config.account))
    return client


def _known_account(store: AccountStore, server: str, account_id: str | None) -> str | None:
    if account_id is None:
        return None
    return account_id if any(account.id == account_id for account in store.list(server)) else None


def _decide(runtime: Runtime, client: AcmeClient, certificate: x509.Certificate) -> Decision:
    now = datetime.datetime.now(datetime.UTC)
    info = None
    try:
        response = client.renewal_info(certificate)
        info = response.info if response is not None else None
    except AcmeError as err:
        logger.info("no renewal information from the CA (%s); using the lifetime rule", err)
    return renewal_decision(certificate, now, renewal_info=info)


def _renew_one(runtime: Runtime, lineage: Lineage, hooks: HookRunner) -> bool:
    s = runtime.settings
    config = lineage.renewal_config
    certificate = x509.load_pem_x509_certificate(lineage.cert_path.read_bytes())
    client = _client_for(runtime, config)
    if not (s.force_renewal or s.dry_run):
        decision = _decide(runtime, client, certificate)
        if not decision.due:
            logger.info("%s is not due: %s", lineage.name, decision.reason)
            return False
        runtime.reporter.info(f"Renewing {lineage.name}: {decision.reason}")
    hooks.add(HookCommands(_tuple(config.hooks.pre), _tuple(config.hooks.post), _tuple(config.hooks.deploy)))
    auth_name = s.authenticator or config.authenticator or "standalone"
    auth_entry = runtime.entry(auth_name)
    auth_options = runtime.plugin_options(auth_entry, _saved(config, auth_name, webroot=auth_name == "webroot"))
    ports = {"http01_port": _flag_or(s.http01_port, 80, config.http01_port),
             "http01_address": s.http01_address or config.http01_address,
             "https_port": _flag_or(s.https_port, 443, config.https_port)}
    authenticator = runtime.authenticator(auth_name, runtime.context(auth_options, server=config.server, ports=ports))
    key_type = s.key_type if s.key_type_set else config.cert_key_type
    key, reused = key_for(lineage, key_type, s.reuse_key or config.reuse_key)
    names = list(lineage.names)
    hooks.pre()
    obtained = with_terms_retry(client, s, runtime.reporter, lambda: issue_for(
        client, authenticator, names, key,
        preferred_challenges=s.preferred_challenges or config.preferred_challenges,
        preferred_chain=s.preferred_chain or config.preferred_chain,
        profile=config.required_profile or config.preferred_profile if _offered(client, config) else None,
        replaces=None if s.dry_run else replaces_id(lineage),  # a rehearsal must not use up the real renewal
        reporter=runtime.reporter,
    ))
    if s.dry_run:
        return True
    updated = config.with_key_type(key_type) if s.key_type_set else config
    save_obtained(runtime.paths, LineageChoice(lineage.name, lineage, "renew"), obtained, key, reused, updated)
    hooks.deploy(runtime.paths.live(lineage.name), names)
    runtime.reporter.info(f"Renewed {lineage.name}; it expires on {expiry_text(obtained.cert_pem)}")
    if config.installer:
        installer_entry = runtime.entry(config.installer)
        options = runtime.plugin_options(installer_entry, _saved(config, config.installer))
        installer = runtime.installer(config.installer, runtime.context(options, server=config.server, ports=ports))
        install_lineage(runtime, installer, lineage, names)
    return True


def _offered(client: AcmeClient, config: RenewalConfig) -> bool:
    wanted = config.required_profile or config.preferred_profile
    if wanted is None:
        return False
    if wanted in client.directory.meta.profiles:
        return True
    if config.required_profile:
        raise LetsencryptError(f"the CA no longer offers the profile {config.required_profile!r}",
                               hint="renew with another profile: letsencrypt certonly --required-profile ...")
    return False


def _flag_or(given: int, default: int, saved: int | None) -> int:
    return given if given != default or saved is None else saved


def _saved(config: RenewalConfig, plugin: str, *, webroot: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {key: value for key, value in config.plugin_options.get(plugin, {}).items()}
    if webroot:
        if config.webroot_map:
            options["map"] = dict(config.webroot_map)
        if config.webroot_path:
            options["path"] = list(config.webroot_path)
    return options
