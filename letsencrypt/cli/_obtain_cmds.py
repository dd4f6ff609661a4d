"""``certonly``, ``run`` and ``renew``: the commands that obtain certificates."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from letsencrypt._preload import preload
from letsencrypt.accounts import ensure_account, with_terms_retry
from letsencrypt.acme import crypto
from letsencrypt.acme._lazy import lazy_module
from letsencrypt.acme.client import AcmeClient
from letsencrypt.acme.errors import AcmeError
from letsencrypt.certificates import (
    LineageChoice,
    choose_lineage,
    expiry_text,
    issue_for,
    key_for,
    replaces_id,
    save_obtained,
)
from letsencrypt.cli import command
from letsencrypt.cli._context import runtime_from
from letsencrypt.cli._install import install_lineage
from letsencrypt.cli._runtime import Runtime
from letsencrypt.errors import ConfigError, LetsencryptError
from letsencrypt.hooks import HookCommands, HookRunner
from letsencrypt.plugin_api import Authenticator, Installer, PluginError
from letsencrypt.renewal_time import renewal_decision
from letsencrypt.storage.accounts import AccountStore
from letsencrypt.storage.lineage import Lineage, find_all, recover
from letsencrypt.storage.renewal_config import Hooks, RenewalConfig

if TYPE_CHECKING:
    from cryptography import x509
else:
    x509 = lazy_module("cryptography.x509")  # imported on first use: see letsencrypt.acme._lazy

__all__ = ["commands"]

logger = logging.getLogger(__name__)


def commands() -> list[click.Command]:
    return [run, certonly, renew]


# --- choosing plugins -------------------------------------------------------------------------------


def plugin_names(runtime: Runtime, *, want_installer: bool) -> tuple[str, str | None]:
    s = runtime.settings
    flags = list(s.chosen_plugins)
    if len(flags) > 1:
        raise ConfigError(f"--{flags[0]} and --{flags[1]} both choose how to answer challenges", hint="give one")
    server_plugin = flags[0] if flags and flags[0] in ("nginx", "apache") else None
    authenticator = s.authenticator or (flags[0] if flags else None)
    installer = s.installer or server_plugin
    if authenticator is None:
        entry = runtime.registry.get(installer) if installer is not None else None
        if entry is not None and entry.is_authenticator:
            authenticator = entry.name
        else:
            raise ConfigError("no authenticator chosen",
                              hint="add --standalone, --webroot -w DIR, --manual, --nginx or --apache")
    if want_installer and installer is None:
        raise ConfigError("`run` installs the certificate and needs an installer",
                          hint="add --nginx or --apache, or use `certonly` to only obtain the certificate")
    return authenticator, installer if want_installer else s.installer


# --- renewal configuration ------------------------------------------------------------------------


def _option_text(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def saved_plugin_options(runtime: Runtime, name: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    if name is None:
        return {}
    entry = runtime.entry(name)
    out: dict[str, Any] = {}
    for option in entry.options:
        value = options.get(option.name)
        if option.secret or value in (None, (), []):
            continue
        if option.default is not None and value == option.default:
            continue
        out[option.name] = _option_text(dict(value) if isinstance(value, Mapping) else value)
    return out


def renewal_config_for(
    runtime: Runtime, *, server: str, account_id: str, authenticator: str, installer: str | None,
    auth_options: Mapping[str, Any], installer_options: Mapping[str, Any],
) -> RenewalConfig:
    s = runtime.settings
    plugin_options = {}
    for name, options in ((authenticator, auth_options), (installer, installer_options)):
        saved = saved_plugin_options(runtime, name, options)
        if name and saved:
            plugin_options[name] = {key: value for key, value in saved.items() if key != "map"}
    config = RenewalConfig(
        server=server, account=account_id, authenticator=authenticator, installer=installer,
        reuse_key=s.reuse_key, preferred_chain=s.preferred_chain, preferred_challenges=s.preferred_challenges,
        http01_port=s.http01_port if s.http01_port != 80 else None,
        http01_address=s.http01_address or None,
        https_port=s.https_port if s.https_port != 443 else None,
        webroot_path=s.webroot_paths,
        webroot_map=dict(s.webroot_map),
        preferred_profile=s.preferred_profile, required_profile=s.required_profile,
        hooks=Hooks(s.pre_hook, s.post_hook, s.deploy_hook),
        plugin_options=plugin_options,
    )
    return config.with_key_type(s.key_type)


def profile_for(client: AcmeClient, preferred: str | None, required: str | None) -> str | None:
    offered = client.directory.meta.profiles
    if required:
        if required not in offered:
            raise ConfigError(f"the CA does not offer the profile {required!r}",
                              hint=f"offered: {', '.join(offered) or 'none'} (or drop --required-profile)")
        return required
    if preferred and preferred in offered:
        return preferred
    if preferred:
        logger.info("the CA does not offer the profile %s; using its default", preferred)
    return None


# --- certonly / run ------------------------------------------------------------------------------


def _names(runtime: Runtime, installer: Installer | None, csr_names: Sequence[str]) -> list[str]:
    s = runtime.settings
    if s.domains:
        return list(s.domains)
    if csr_names:
        return list(csr_names)
    if installer is not None and s.interactive:
        found = sorted(installer.names())
        if found:
            for index, name in enumerate(found, 1):
                click.echo(f"{index}: {name}", err=True)
            picked = click.prompt("Numbers of the names to get a certificate for (comma-separated; empty: all)",
                                  default="", show_default=False, err=True)
            if not picked.strip():
                return found
            try:
                return [found[int(item) - 1] for item in picked.replace(" ", "").split(",") if item]
            except (ValueError, IndexError) as err:
                raise ConfigError(f"not a choice: {picked}", hint="give numbers from the list") from err
    raise ConfigError("no names to get a certificate for", hint="add -d example.com (repeatable)")


def obtain(runtime: Runtime, *, install: bool) -> None:
    s = runtime.settings
    auth_name, installer_name = plugin_names(runtime, want_installer=install)
    auth_entry = runtime.entry(auth_name)
    auth_options = runtime.plugin_options(auth_entry)
    auth_context = runtime.context(auth_options, server=s.server)
    installer: Installer | None = None
    installer_options: dict[str, Any] = {}
    if installer_name is not None:
        installer_options = runtime.plugin_options(runtime.entry(installer_name))
        installer = runtime.installer(installer_name, runtime.context(installer_options, server=s.server))
    csr_der, csr_names = _read_csr(s.csr)
    names = _names(runtime, installer, csr_names)
    if csr_der is not None:
        _obtain_with_csr(runtime, auth_name, auth_context, names, csr_der)
        return
    choice = choose_lineage(runtime.paths, names, cert_name=s.cert_name, expand=s.expand, interactive=s.interactive)
    if choice.existing is not None and choice.reason == "renew" and not (s.force_renewal or s.dry_run):
        decision = renewal_decision(x509.load_pem_x509_certificate(choice.existing.cert_path.read_bytes()),
                                    datetime.datetime.now(datetime.UTC))
        if not decision.due:
            click.echo(f"Certificate not yet due for renewal ({decision.reason}); keeping {choice.name}.")
            if install and installer is not None:
                install_lineage(runtime, installer, choice.existing, names)
            return
    # imported while we wait on the CA: cryptography's OpenSSL backend (ec.ECDSA() imports it, for the
    # first signature) and serialization (to store the account key). A new certificate needs no
    # cryptography.x509: the CSR and the checks of what the CA sent are DER (letsencrypt.acme._der).
    preload("cryptography.hazmat.backends.openssl.backend", "cryptography.hazmat.primitives.serialization")
    store = AccountStore(runtime.paths)
    client, account = ensure_account(store, s, runtime.client, runtime.reporter)
    authenticator = runtime.authenticator(auth_name, auth_context)
    hooks = HookRunner(HookCommands(_tuple(s.pre_hook), _tuple(s.post_hook), _tuple(s.deploy_hook)),
                       runtime.reporter, hooks_dir=runtime.paths.renewal_hooks_dir, dry_run=s.dry_run,
                       run_deploy_hooks=s.run_deploy_hooks)
    renewal = renewal_config_for(runtime, server=s.server, account_id=account.id, authenticator=auth_name,
                                 installer=installer_name, auth_options=auth_options,
                                 installer_options=installer_options)
    lineage = _obtain_and_save(runtime, client, authenticator, hooks, choice, names, renewal)
    if install and installer is not None and lineage is not None:
        install_lineage(runtime, installer, lineage, names)


def _tuple(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def _obtain_and_save(
    runtime: Runtime, client: AcmeClient, authenticator: Authenticator, hooks: HookRunner, choice: LineageChoice,
    names: Sequence[str], renewal: RenewalConfig,
) -> Lineage | None:
    s = runtime.settings
    key, reused = key_for(choice.existing, s.key_type, s.reuse_key)
    try:
        hooks.pre()
        profile = profile_for(client, s.preferred_profile, s.required_profile)
        obtained = with_terms_retry(client, s, runtime.reporter, lambda: issue_for(
            client, authenticator, names, key, preferred_challenges=s.preferred_challenges,
            preferred_chain=s.preferred_chain, profile=profile,
            replaces=None if s.dry_run else replaces_id(choice.existing),
            reporter=runtime.reporter,
        ))
        _done(runtime)
        if s.dry_run:
            click.echo(f"The dry run was successful: the CA would issue a certificate for {', '.join(names)}.")
            return None
        lineage = save_obtained(runtime.paths, choice, obtained, key, reused, renewal)
        hooks.deploy(runtime.paths.live(lineage.name), names)
    except (LetsencryptError, PluginError, AcmeError):
        hooks.failed_for(names)
        raise
    finally:
        _done(runtime)
        hooks.post()
    click.echo("Successfully received certificate.")
    click.echo(f"Certificate is saved at: {lineage.fullchain_path}")
    click.echo(f"Key is saved at:         {lineage.key_path}")
    click.echo(f"This certificate expires on {expiry_text(obtained.cert_pem)}.")
    return lineage


def _done(runtime: Runtime) -> None:
    done = getattr(runtime.reporter, "done", None)
    if done is not None:
        done()


def _read_csr(path: Any) -> tuple[bytes | None, list[str]]:
    if path is None:
        return None, []
    try:
        csr = crypto.load_csr(path.read_bytes())
    except (OSError, AcmeError) as err:
        raise ConfigError(f"cannot read the CSR {path}: {err}", hint="give a PEM or DER certificate request") from err
    from cryptography.hazmat.primitives.serialization import Encoding

    return csr.public_bytes(Encoding.DER), [identifier.value for identifier in crypto.csr_identifiers(csr)]


def _obtain_with_csr(runtime: Runtime, auth_name: str, auth_context: Any, names: Sequence[str], csr_der: bytes) -> None:
    """certbot's ``--csr``: no lineage; the certificate goes to --cert-path/--chain-path/--fullchain-path."""
    s = runtime.settings
    if s.dry_run is False and not (s.cert_path or s.fullchain_path):
        raise ConfigError("with --csr, say where to write the certificate", hint="add --cert-path and --fullchain-path")
    store = AccountStore(runtime.paths)
    client, _ = ensure_account(store, s, runtime.client, runtime.reporter)
    authenticator = runtime.authenticator(auth_name, auth_context)
    obtained = with_terms_retry(client, s, runtime.reporter, lambda: issue_for(
        client, authenticator, names, crypto.generate_private_key("ec256"), csr_der=csr_der,
        preferred_challenges=s.preferred_challenges, preferred_chain=s.preferred_chain,
        profile=profile_for(client, s.preferred_profile, s.required_profile), replaces=None, reporter=runtime.reporter,
    ))
    _done(runtime)
    if s.dry_run:
        click.echo("The dry run was successful.")
        return
    for path, text in ((s.cert_path, obtained.cert_pem), (s.chain_path, obtained.chain_pem),
                       (s.fullchain_path, obtained.fullchain_pem)):
        if path is not None:
            path.write_text(text)
            click.echo(f"Wrote {path}")


@command("certonly", "Obtain or renew a certificate, but do not install it.")
def certonly(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    with runtime.locked():
        recover(runtime.paths)
        obtain(runtime, install=False)


@command("run", "Obtain a certificate and install it (the default command).")
def run(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    with runtime.locked():
        recover(runtime.paths)
        obtain(runtime, install=True)


# --- renew -------------------------------------------------------------------------------------------


@command("renew", "Renew every certificate that is due (or --cert-name NAME), as each was obtained.")
def renew(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    with runtime.locked():
        recover(runtime.paths)
        failures = renew_all(runtime)
    if failures:
        raise LetsencryptError(
            f"{len(failures)} renewal(s) failed: " + "; ".join(f"{name}: {reason}" for name, reason in failures),
            hint="fix the cause named above and run `letsencrypt renew` again; the old certificates still work",
        )


def renew_all(runtime: Runtime) -> list[tuple[str, str]]:
    from letsencrypt.cli._renew import renew_lineages

    return renew_lineages(runtime, find_all(runtime.paths))
