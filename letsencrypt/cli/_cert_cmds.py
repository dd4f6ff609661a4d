"""``certificates``, ``revoke``, ``delete``, ``install``, ``enhance`` and ``rollback``: managing what is stored.

certbot's behaviour, command by command:

- ``certificates [--cert-name NAME] [-d NAME] [--json]``: every lineage with its names, expiry,
  key type, serial, paths and status (``VALID``, ``EXPIRED``, ``REVOKED`` as the CA's OCSP
  responder or CRL says, ``INVALID`` when its files cannot be read). ``--json`` is the stable form
  documented in ``docs/json-output.md``.
- ``revoke --cert-path PATH | --cert-name NAME [--key-path KEY] [--reason R]``: signed by the
  stored account of the lineage's CA (``--server`` picks another), or with ``--key-path`` by the
  certificate's own key (no account needed). Afterwards the lineage is offered for deletion
  (``--delete-after-revoke`` / ``--no-delete-after-revoke``; ``-n`` keeps it).
- ``delete --cert-name NAME``: refused while an installer that can tell (``plugin_api.DeleteAware``)
  still serves the lineage.
- ``install --cert-name NAME``, ``enhance --cert-name NAME --redirect|--hsts|--uir|--staple-ocsp``,
  ``rollback [--checkpoints N]``: through an installer plugin (``-i``, ``--nginx``, ``--apache``).

Every command that writes holds the configuration directory's lock.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from letsencrypt.acme import crypto
from letsencrypt.acme.errors import MessageError, ProblemError
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.records import record
from letsencrypt.cli import command
from letsencrypt.cli._context import runtime_from
from letsencrypt.cli._install import install_lineage
from letsencrypt.cli._obtain_cmds import saved_plugin_options
from letsencrypt.cli._runtime import Runtime
from letsencrypt.errors import AccountError, ConfigError, LetsencryptError, StorageError
from letsencrypt.plugin_api import ENHANCEMENTS, DeleteAware, Installer, MisconfigurationError, PluginError
from letsencrypt.revocation_status import check_revocation
from letsencrypt.storage.accounts import AccountStore, StoredAccount
from letsencrypt.storage.lineage import KINDS, Lineage, recover, scan

__all__ = ["REVOCATION_REASONS", "commands", "delete_lineage", "status_of"]

logger = logging.getLogger(__name__)

REVOCATION_REASONS = {  # certbot's --reason names -> RFC 5280 §5.3.1 CRLReason codes
    "unspecified": 0, "keycompromise": 1, "affiliationchanged": 3, "superseded": 4, "cessationofoperation": 5,
}


def commands() -> list[click.Command]:
    return [certificates, revoke, delete, install, enhance, rollback]


# --- choosing lineages ----------------------------------------------------------------------------


def _stored_names(runtime: Runtime) -> list[str]:
    found = scan(runtime.paths)
    return sorted({lineage.name for lineage in found.lineages} | {broken.name for broken in found.broken})


def _exists(runtime: Runtime, name: str) -> bool:
    paths = runtime.paths
    return paths.renewal_conf(name).exists() or paths.live(name).is_symlink() or paths.live(name).exists() \
        or paths.archive(name).exists()


def _choose(runtime: Runtime, verb: str, *, several: bool = False) -> list[str]:
    """``--cert-name``, or interactively picked names; ``-n`` without ``--cert-name`` fails naming the flag."""
    s = runtime.settings
    if s.cert_name is not None:
        if not _exists(runtime, s.cert_name):
            raise ConfigError(f"there is no certificate named {s.cert_name} in {runtime.paths.config_dir}",
                              hint="`letsencrypt certificates` lists them")
        return [s.cert_name]
    if not s.interactive:
        raise ConfigError(f"which certificate to {verb}? -n cannot ask", hint="add --cert-name NAME "
                          "(`letsencrypt certificates` lists them)")
    names = _stored_names(runtime)
    if not names:
        raise ConfigError(f"there are no certificates in {runtime.paths.config_dir}",
                          hint="check --config-dir")
    for index, name in enumerate(names, 1):
        click.echo(f"{index}: {name}", err=True)
    question = "Numbers of the certificates (comma-separated)" if several else "Number of the certificate"
    picked = click.prompt(f"{question} to {verb}", err=True)
    try:
        chosen = [names[int(item) - 1] for item in picked.replace(" ", "").split(",") if item]
    except (ValueError, IndexError) as err:
        raise ConfigError(f"not a choice: {picked}", hint="give numbers from the list") from err
    if not chosen or (len(chosen) > 1 and not several):
        raise ConfigError(f"not a choice: {picked}", hint="give one number from the list")
    return chosen


def _open(runtime: Runtime, name: str) -> Lineage:
    try:
        return Lineage.open(runtime.paths, name)
    except StorageError as err:
        raise StorageError(f"the certificate {name} cannot be used: {err.message}",
                           hint=err.hint or f"`letsencrypt delete --cert-name {name}` removes it") from err


# --- certificates ---------------------------------------------------------------------------------


def status_of(
    lineage: Lineage, *, verify: bool | str, now: datetime.datetime
) -> tuple[str, str | None, str | None]:
    """(status, revocation reason, detail): ``valid``, ``expired``, ``revoked`` or ``unknown``."""
    certificate = lineage.certificate
    if crypto.not_after(certificate) <= now:
        return "expired", None, None
    try:
        issuer = crypto.split_pem_chain(lineage.read("chain").decode("ascii", "replace"))[0]
    except (StorageError, MessageError, IndexError) as err:
        return "unknown", None, f"no issuer certificate in {lineage.chain_path}: {err}"
    result = check_revocation(certificate, issuer, verify=verify, now=now)
    if result.status == "revoked":
        return "revoked", result.reason or "unspecified", None
    if result.status == "unknown":
        return "unknown", None, result.detail
    return "valid", None, result.detail if result.status == "unavailable" else None


def _entry(lineage: Lineage, verify: bool | str, now: datetime.datetime) -> dict[str, Any]:
    certificate = lineage.certificate
    expires = crypto.not_after(certificate)
    status, reason, detail = status_of(lineage, verify=verify, now=now)
    return {
        "name": lineage.name,
        "domains": list(lineage.names),
        "expires": expires.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_left": int((expires - now).total_seconds() // 86400),
        "key_type": lineage.key_type,
        "serial": format(certificate.serial_number, "x"),
        "status": status,
        "revocation_reason": reason,
        "status_detail": detail,
        "certificate_path": str(lineage.cert_path),
        "private_key_path": str(lineage.key_path),
        "fullchain_path": str(lineage.fullchain_path),
        "chain_path": str(lineage.chain_path),
        "renewal_config": str(lineage.renewal_conf_path),
        "server": lineage.renewal_config.server,
    }


def _human(entry: dict[str, Any]) -> str:
    status, days = entry["status"], entry["days_left"]
    shown = {
        "valid": f"VALID: {days} days",
        "expired": "INVALID: EXPIRED",
        "revoked": f"INVALID: REVOKED ({entry['revocation_reason']})",
        "unknown": f"VALID: {days} days; revocation status unknown: {entry['status_detail']}",
    }[status]
    expires = entry["expires"].replace("T", " ").replace("Z", "+00:00")
    return (f"  Certificate Name: {entry['name']}\n    Serial Number: {entry['serial']}\n"
            f"    Key Type: {entry['key_type']}\n    Domains: {' '.join(entry['domains'])}\n"
            f"    Expiry Date: {expires} ({shown})\n    Certificate Path: {entry['fullchain_path']}\n"
            f"    Private Key Path: {entry['private_key_path']}")


@command("certificates", "List the certificates stored, with their names, expiry and revocation status.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON (see docs/json-output.md).")
def certificates(ctx: click.Context, as_json: bool, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    s = runtime.settings
    found = scan(runtime.paths)
    wanted = set(s.domains)
    now = datetime.datetime.now(datetime.UTC)
    verify: bool | str = s.ca_bundle or True
    entries: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = [{"name": broken.name, "error": broken.reason} for broken in found.broken
                                    if s.cert_name in (None, broken.name)]
    for lineage in found.lineages:
        if s.cert_name not in (None, lineage.name):
            continue
        try:
            if wanted <= set(lineage.names):
                entries.append(_entry(lineage, verify, now))
        except StorageError as err:
            errors.append({"name": lineage.name, "error": err.message})
    if as_json:
        click.echo(json.dumps({"certificates": entries, "errors": errors}, indent=2))
        return
    if not entries and not errors:
        click.echo("No certificates found.")
        return
    click.echo("Found the following certificates:")
    for entry in entries:
        click.echo(_human(entry))
    for error in errors:
        click.echo(f"  Certificate Name: {error['name']}\n    INVALID: {error['error']}")


# --- delete ---------------------------------------------------------------------------------------


def _installers_using(runtime: Runtime, lineage: Lineage) -> list[tuple[str, list[str]]]:
    """(installer, places) for each DeleteAware installer whose configuration still uses the lineage."""
    live = [lineage.live_dir, *(lineage.live_file(kind) for kind in KINDS)]
    users: list[tuple[str, list[str]]] = []
    for entry in runtime.registry.installers():
        if not callable(getattr(entry.plugin_class, "lineage_in_use", None)):
            continue
        try:
            context = runtime.context(runtime.plugin_options(entry), server=runtime.settings.server)
            plugin = entry.plugin_class(context)
            plugin.prepare()
            places = list(plugin.lineage_in_use(live)) if isinstance(plugin, DeleteAware) else []
        except Exception as err:  # noqa: BLE001 - a third-party plugin may raise anything; it is skipped
            logger.info("cannot ask the %s installer whether %s is in use: %s", entry.name, lineage.name, err)
            continue
        if places:
            users.append((entry.name, places))
    return users


def delete_lineage(runtime: Runtime, name: str) -> None:
    """Delete lineage ``name`` unless an installer still serves it (hold the lock)."""
    lineage = Lineage(runtime.paths, name)
    users = _installers_using(runtime, lineage)
    if users:
        where = "; ".join(f"{plugin}: {', '.join(places)}" for plugin, places in users)
        raise LetsencryptError(
            f"the certificate {name} is still used by the server configuration ({where})",
            hint=f"install another certificate there first (letsencrypt install --cert-name OTHER), then delete {name}",
        )
    lineage.delete()
    click.echo(f"Deleted all files relating to certificate {name}.")


@command("delete", "Delete a certificate (--cert-name NAME) with all its versions and its renewal configuration.")
def delete(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    with runtime.locked():
        recover(runtime.paths)
        names = _choose(runtime, "delete", several=True)
        if runtime.settings.interactive and not click.confirm(
            f"Delete {', '.join(names)} for good (every version and its renewal configuration)?", default=False,
            err=True,
        ):
            click.echo("Nothing was deleted.")
            return
        for name in names:
            delete_lineage(runtime, name)


# --- revoke ---------------------------------------------------------------------------------------


@record
class _Target:
    certificate: x509.Certificate
    label: str
    lineage: Lineage | None
    current: bool  # the lineage's live certificate, so deleting the lineage is what the user means


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}", hint="check --cert-path") from err
    try:
        if b"-----BEGIN" in data:
            return crypto.split_pem_chain(data.decode("ascii", "replace"))[0]
        return x509.load_der_x509_certificate(data)
    except (MessageError, ValueError, IndexError) as err:
        raise ConfigError(f"{path} holds no certificate: {err}", hint="give cert.pem or fullchain.pem") from err


def _lineage_of(runtime: Runtime, path: Path) -> Lineage | None:
    """The lineage whose live or archive folder holds ``path`` (as given or with links resolved)."""
    paths = runtime.paths
    for candidate in (path.absolute(), path.resolve()):
        for base in (paths.live_dir.absolute(), paths.archive_dir.absolute(), paths.live_dir.resolve(),
                     paths.archive_dir.resolve()):
            if candidate.parent.parent == base and paths.renewal_conf(candidate.parent.name).is_file():
                try:
                    return Lineage.open(paths, candidate.parent.name)
                except (StorageError, ConfigError):
                    return None
    return None


def _target(runtime: Runtime) -> _Target:
    s = runtime.settings
    if s.cert_path is not None and s.cert_name is not None:
        raise ConfigError("--cert-path and --cert-name both name the certificate to revoke", hint="give one")
    if s.cert_path is not None:
        certificate = _read_certificate(s.cert_path)
        lineage = _lineage_of(runtime, s.cert_path)
        current = lineage is not None and lineage.certificate.serial_number == certificate.serial_number
        return _Target(certificate, str(s.cert_path), lineage, current)
    if s.cert_name is None and not s.interactive:
        raise ConfigError("which certificate to revoke? -n cannot ask",
                          hint="add --cert-path PATH or --cert-name NAME (`letsencrypt certificates` lists them)")
    lineage = _open(runtime, _choose(runtime, "revoke")[0])
    return _Target(lineage.certificate, lineage.name, lineage, True)


def _account_for(runtime: Runtime, server: str, account_id: str | None) -> StoredAccount:
    store = AccountStore(runtime.paths)
    accounts = store.list(server)
    chosen = next((account for account in accounts if account.id == account_id), None) or next(iter(accounts), None)
    if chosen is None:
        raise AccountError(f"there is no account for {server} in {runtime.paths.accounts_dir}",
                           hint="revoke with the certificate's own key: add --key-path PRIVKEY")
    return chosen


def _certificate_key(path: Path, certificate: x509.Certificate) -> crypto.CertPrivateKey:
    try:
        key = crypto.load_private_key(path.read_bytes())
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}", hint="check --key-path") from err
    except MessageError as err:
        raise ConfigError(f"{path}: {err}", hint="give the certificate's private key (privkey.pem)") from err
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise ConfigError(f"{path} is not the private key of the certificate to revoke",
                          hint="give the privkey.pem that belongs to --cert-path")
    return key


def _send_revocation(runtime: Runtime, target: _Target, reason: int) -> str:
    """Revoke at the CA; the server used."""
    s = runtime.settings
    config = target.lineage.renewal_config if target.lineage is not None else None
    server = config.server if config is not None and not s.server_set else s.server
    serial = format(target.certificate.serial_number, "x")
    try:
        if s.key_path is not None:
            key = _certificate_key(s.key_path, target.certificate)
            with runtime.client(server, AccountKey(key)) as client:
                client.revoke(target.certificate, reason=reason, certificate_key=key)
        else:
            account = _account_for(runtime, server, config.account if config is not None else None)
            with runtime.client(server, account.key, account.url) as client:
                client.revoke(target.certificate, reason=reason)
    except ProblemError as err:
        kind = err.problem.short_type
        if kind == "alreadyRevoked":
            raise LetsencryptError(f"the certificate {target.label} (serial {serial}) is already revoked",
                                   hint="nothing to revoke; `letsencrypt delete` removes it from this machine") from err
        hint = {
            "unauthorized": "revoke with the account that obtained it, or with --key-path and the certificate's key",
            "badRevocationReason": "the CA does not accept this --reason; try another",
        }.get(kind, "see the log file for the full exchange with the CA")
        raise LetsencryptError(f"the CA refused to revoke {target.label}: {err.detail}", hint=hint) from err
    return server


@command("revoke", "Revoke a certificate (--cert-path or --cert-name), signed by the account or by --key-path.")
@click.option("--reason", type=click.Choice(list(REVOCATION_REASONS), case_sensitive=False), default="unspecified",
              show_default=True, help="Why the certificate is revoked (RFC 5280 reason).")
@click.option("--delete-after-revoke/--no-delete-after-revoke", "delete_after", default=None,
              help="Delete the lineage after revoking it (default: ask; with -n: keep it).")
def revoke(ctx: click.Context, reason: str, delete_after: bool | None, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    with runtime.locked():
        recover(runtime.paths)
        target = _target(runtime)
        server = _send_revocation(runtime, target, REVOCATION_REASONS[reason.lower()])
        click.echo(f"Revoked the certificate {target.label} (serial {target.certificate.serial_number:x}) "
                   f"at {server}.")
        if target.lineage is None:
            return
        if not target.current:
            if delete_after:
                runtime.reporter.warn(f"{target.label} is not the current certificate of {target.lineage.name}; "
                                      "the lineage is kept")
            return
        if delete_after is None:
            delete_after = runtime.settings.interactive and click.confirm(
                f"Delete {target.lineage.name}, the certificate you just revoked, with all its versions?",
                default=True, err=True,
            )
        if delete_after:
            delete_lineage(runtime, target.lineage.name)


# --- install, enhance, rollback ---------------------------------------------------------------------


def _installer_name(runtime: Runtime, lineage: Lineage | None) -> str:
    s = runtime.settings
    chosen = [name for name in s.chosen_plugins if name in ("nginx", "apache")]
    if len(chosen) > 1:
        raise ConfigError("--nginx and --apache both choose the installer", hint="give one")
    name = s.installer or next(iter(chosen), None) or (lineage.renewal_config.installer if lineage else None)
    if name is not None:
        return name
    installers = [entry.name for entry in runtime.registry.installers()]
    if s.interactive and installers:
        for index, installer in enumerate(installers, 1):
            click.echo(f"{index}: {installer}", err=True)
        picked = click.prompt("Number of the installer", type=click.IntRange(1, len(installers)), err=True)
        return installers[picked - 1]
    raise ConfigError("no installer chosen", hint="add --nginx, --apache or -i NAME (`letsencrypt plugins` lists "
                      f"them; installed: {', '.join(installers) or 'none'})")


def _installer_for(runtime: Runtime, lineage: Lineage | None) -> tuple[str, Installer, dict[str, Any]]:
    name = _installer_name(runtime, lineage)
    entry = runtime.entry(name)
    config = lineage.renewal_config if lineage is not None else None
    saved = config.plugin_options.get(name) if config is not None and config.installer == name else None
    options = runtime.plugin_options(entry, saved)
    server = config.server if config is not None else runtime.settings.server
    return name, runtime.installer(name, runtime.context(options, server=server)), options


def _names_for(runtime: Runtime, lineage: Lineage) -> list[str]:
    asked = list(runtime.settings.domains)
    if not asked:
        return list(lineage.names)
    outside = [name for name in asked if name not in lineage.names]
    if outside:
        raise ConfigError(f"the certificate {lineage.name} does not cover {', '.join(outside)}",
                          hint=f"it covers {', '.join(lineage.names)}")
    return asked


def _remember_installer(runtime: Runtime, lineage: Lineage, name: str, options: dict[str, Any]) -> None:
    """Renewal redeploys through this installer, with the options it was given."""
    config = lineage.renewal_config
    kept = {plugin: values for plugin, values in config.plugin_options.items() if plugin == config.authenticator}
    saved = saved_plugin_options(runtime, name, options)
    if saved:
        kept[name] = saved
    updated = dataclasses.replace(config, installer=name, plugin_options=kept)
    if updated != config:
        lineage.update_renewal_config(updated)


@command("install", "Install an existing certificate (--cert-name) with an installer (-i, --nginx, --apache).")
def install(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    with runtime.locked():
        recover(runtime.paths)
        lineage = _open(runtime, _choose(runtime, "install")[0])
        name, installer, options = _installer_for(runtime, lineage)
        install_lineage(runtime, installer, lineage, _names_for(runtime, lineage))
        _remember_installer(runtime, lineage, name, options)


def _enhancements(runtime: Runtime, installer_name: str, installer: Installer) -> list[str]:
    s = runtime.settings
    asked = [name for name, flag in zip(ENHANCEMENTS, (s.redirect is True, s.hsts, s.uir, s.staple_ocsp), strict=True)
             if flag]
    supported = [name for name in ENHANCEMENTS if name in set(installer.supported_enhancements())]
    if not asked and s.interactive and supported:
        for index, name in enumerate(supported, 1):
            click.echo(f"{index}: {name}", err=True)
        picked = click.prompt("Numbers of the enhancements to apply (comma-separated)", err=True)
        try:
            asked = [supported[int(item) - 1] for item in picked.replace(" ", "").split(",") if item]
        except (ValueError, IndexError) as err:
            raise ConfigError(f"not a choice: {picked}", hint="give numbers from the list") from err
    if not asked:
        raise ConfigError("no enhancement asked", hint="add --redirect, --hsts, --uir or --staple-ocsp")
    missing = [name for name in asked if name not in supported]
    if missing:
        raise ConfigError(f"the {installer_name} installer does not support {', '.join(missing)}",
                          hint=f"it supports: {', '.join(supported) or 'no enhancements'}")
    return asked


def _apply(runtime: Runtime, installer: Installer, lineage: Lineage, names: Sequence[str], wanted: list[str]) -> None:
    """One checkpoint: enhance, save, test, restart; any failure rolls back and restarts the old configuration."""
    try:
        for enhancement in wanted:
            for name in names:
                installer.enhance(name, enhancement)
        installer.save(f"letsencrypt: {', '.join(wanted)} for {', '.join(names)}")
        installer.config_test()
        installer.restart()
    except (PluginError, OSError) as err:
        logger.exception("enhancing %s failed; rolling back", lineage.name)
        try:
            installer.recovery_routine()
            installer.restart()
        except (PluginError, OSError) as undo_err:
            runtime.reporter.warn(f"rolling back failed too: {undo_err}; check the server configuration now")
        raise LetsencryptError(
            f"applying {', '.join(wanted)} failed and the server configuration was rolled back: "
            f"{getattr(err, 'message', err)}",
            hint=getattr(err, "hint", None) or "fix the cause named above and run `letsencrypt enhance` again",
        ) from err


@command("enhance", "Apply --redirect, --hsts, --uir or --staple-ocsp to the sites of an installed certificate.")
def enhance(ctx: click.Context, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    with runtime.locked():
        recover(runtime.paths)
        lineage = _open(runtime, _choose(runtime, "enhance")[0])
        name, installer, _options = _installer_for(runtime, lineage)
        wanted = _enhancements(runtime, name, installer)
        names = _names_for(runtime, lineage)
        _apply(runtime, installer, lineage, names, wanted)
    click.echo(f"Applied {', '.join(wanted)} for {', '.join(names)}.")


@command("rollback", "Undo the installer's last configuration changes (--checkpoints N), then restart the server.")
@click.option("--checkpoints", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many saved checkpoints to undo.")
def rollback(ctx: click.Context, checkpoints: int, **params: Any) -> None:
    runtime = runtime_from(ctx, params)
    with runtime.locked():
        name = _installer_name(runtime, None)
        entry = runtime.entry(name)
        if not entry.is_installer:
            raise ConfigError(f"{name} is not an installer", hint="choose one from `letsencrypt plugins`")
        installer: Installer = entry.plugin_class(
            runtime.context(runtime.plugin_options(entry), server=runtime.settings.server))
        try:
            installer.prepare()
        except MisconfigurationError as err:  # what a rollback is for: go on
            runtime.reporter.warn(f"the {name} configuration has a problem ({err.message}); rolling back anyway")
        installer.rollback_checkpoints(checkpoints)
        installer.restart()
    click.echo(f"Rolled back {checkpoints} checkpoint(s) of the {name} configuration and restarted the server.")
