"""The command line's shared flags, certbot's names and meanings, and the frozen settings built from them.

Every subcommand accepts the common flags (certbot does too), so ``letsencrypt certonly -d x`` and
``letsencrypt -d x certonly`` both work. Plugin flags (``--<plugin>-<option>``) are made from the
options plugins declare (``letsencrypt.plugin_api.Option``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from letsencrypt import paths as default_paths
from letsencrypt.acme.crypto import CertKeyType
from letsencrypt.acme.records import record
from letsencrypt.errors import ConfigError
from letsencrypt.issuance import normalize_challenges
from letsencrypt.plugin_api import Option

__all__ = ["Settings", "common_options", "plugin_flag_options", "settings_from"]

F = TypeVar("F", bound=Callable[..., Any])

LE_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LE_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

_COMMON: list[Callable[[F], F]] = [
    click.option("-d", "--domains", "--domain", "domains", multiple=True, metavar="DOMAIN",
                 help="A name (or comma-separated names) to get a certificate for; repeatable."),
    click.option("--cert-name", help="The lineage to obtain, renew, revoke or delete (default: the first name)."),
    click.option("-a", "--authenticator", help="Authenticator plugin name (standalone, webroot, manual, nginx, ...)."),
    click.option("-i", "--installer", help="Installer plugin name (nginx, apache, ...)."),
    click.option("--standalone", "use_standalone", is_flag=True, help="Answer challenges with a built-in server."),
    click.option("--webroot", "use_webroot", is_flag=True, help="Put challenge files in a web server's root (-w)."),
    click.option("--manual", "use_manual", is_flag=True, help="Answer challenges by hand or with hook scripts."),
    click.option("--nginx", "use_nginx", is_flag=True, help="Use the nginx plugin as authenticator and installer."),
    click.option("--apache", "use_apache", is_flag=True, help="Use the apache plugin as authenticator and installer."),
    click.option("--server", help="ACME directory URL of the CA (default: Let's Encrypt)."),
    click.option("--staging", "--test-cert", "staging", is_flag=True, help="Use Let's Encrypt's staging CA."),
    click.option("--server-ca-bundle", type=click.Path(dir_okay=False, path_type=Path),
                 help="PEM trust anchor for the CA's HTTPS API (default: the system's, or REQUESTS_CA_BUNDLE)."),
    click.option("--agree-tos", is_flag=True, help="Agree to the CA's terms of service."),
    click.option("-m", "--email", help="Contact e-mail for the account."),
    click.option("--register-unsafely-without-email", "no_email", is_flag=True,
                 help="Create the account without a contact address."),
    click.option("--eab-kid", help="External Account Binding key identifier, from the CA."),
    click.option("--eab-hmac-key", help="External Account Binding HMAC key (base64url), from the CA."),
    click.option("-n", "--non-interactive", "non_interactive", is_flag=True, help="Never ask; fail instead."),
    click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path),
                 default=default_paths.DEFAULT_CONFIG_DIR, show_default=True),
    click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
                 default=default_paths.DEFAULT_WORK_DIR, show_default=True),
    click.option("--logs-dir", type=click.Path(file_okay=False, path_type=Path),
                 default=default_paths.DEFAULT_LOGS_DIR, show_default=True),
    click.option("--http-01-port", type=click.IntRange(1, 65535), default=80, show_default=True),
    click.option("--http-01-address", default="", help="Address the standalone http-01 server binds (default: all)."),
    click.option("--https-port", type=click.IntRange(1, 65535), default=443, show_default=True,
                 help="Port of TLS-based challenges and of the installed HTTPS site."),
    click.option("--redirect/--no-redirect", default=None, help="Redirect HTTP to HTTPS (installers)."),
    click.option("--hsts", is_flag=True, help="Add a Strict-Transport-Security header (installers)."),
    click.option("--uir", is_flag=True, help="Add Content-Security-Policy upgrade-insecure-requests (installers)."),
    click.option("--staple-ocsp", is_flag=True, help="Enable OCSP stapling (installers)."),
    click.option("--key-type", type=click.Choice(["rsa", "ecdsa"]), default=None, help="Default: ecdsa."),
    click.option("--rsa-key-size", type=click.Choice(["2048", "3072", "4096"]), default=None),
    click.option("--elliptic-curve", type=click.Choice(["secp256r1", "secp384r1"]), default=None),
    click.option("--reuse-key", is_flag=True, help="Keep the lineage's private key on renewal."),
    click.option("--force-renewal", "--renew-by-default", "force_renewal", is_flag=True,
                 help="Renew even when not due."),
    click.option("--expand", is_flag=True, help="Add names to an existing lineage that covers some of them."),
    click.option("--dry-run", is_flag=True, help="Obtain certificates without saving anything."),
    click.option("--preferred-challenges", "preferred_challenges", multiple=True, metavar="TYPES",
                 help="Challenge types in order of preference (http-01, dns-01, tls-alpn-01, dvsni, simpleHttps)."),
    click.option("--preferred-chain", help="Issuer Common Name of the chain to use when the CA offers several."),
    click.option("--preferred-profile", help="Certificate profile to ask for when the CA offers it."),
    click.option("--required-profile", help="Certificate profile the CA must offer, else fail."),
    click.option("--csr", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                 help="Use this CSR (PEM or DER) instead of making a key (certonly)."),
    click.option("--pre-hook", help="Command run once before the first certificate is obtained."),
    click.option("--post-hook", help="Command run once after the run, when a certificate was attempted."),
    click.option("--deploy-hook", "--renew-hook", "deploy_hook", help="Command run after each certificate is saved."),
    click.option("--run-deploy-hooks", is_flag=True, help="Run deploy hooks in --dry-run too."),
    click.option("--cert-path", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--key-path", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--chain-path", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--fullchain-path", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("-v", "--verbose", count=True, help="More output (repeat for more)."),
    click.option("-q", "--quiet", is_flag=True, help="Only errors."),
]


def common_options(function: F) -> F:
    for option in reversed(_COMMON):
        function = option(function)
    return function


def plugin_flag_options(options: Sequence[tuple[str, Option]]) -> list[click.Option]:
    """``--<plugin>-<option>`` flags; values stay text and are converted by the plugin's ``Option``."""
    flags = []
    for plugin, option in options:
        names = [option.flag(plugin)]
        if names[0] == "--webroot-path":
            names.insert(0, "-w")  # certbot's short form
        if option.type == "bool":
            flags.append(click.Option([*names, option.key(plugin)], is_flag=True, default=None, help=option.help))
        else:
            flags.append(click.Option([*names, option.key(plugin)], multiple=option.multiple, default=None,
                                      help=option.help))
    return flags


@record
class Settings:
    """Every common flag, resolved once per run."""

    domains: tuple[str, ...]
    cert_name: str | None
    authenticator: str | None
    installer: str | None
    webroot_map: Mapping[str, str]
    webroot_paths: tuple[str, ...]
    server: str
    server_set: bool
    ca_bundle: str | None
    agree_tos: bool
    email: str | None
    no_email: bool
    eab_kid: str | None
    eab_hmac_key: str | None
    interactive: bool
    config_dir: Path
    work_dir: Path
    logs_dir: Path
    http01_port: int
    http01_address: str
    https_port: int
    redirect: bool | None
    hsts: bool
    uir: bool
    staple_ocsp: bool
    key_type: CertKeyType
    key_type_set: bool
    reuse_key: bool
    force_renewal: bool
    expand: bool
    dry_run: bool
    preferred_challenges: tuple[str, ...]
    preferred_chain: str | None
    preferred_profile: str | None
    required_profile: str | None
    csr: Path | None
    pre_hook: str | None
    post_hook: str | None
    deploy_hook: str | None
    run_deploy_hooks: bool
    cert_path: Path | None
    key_path: Path | None
    chain_path: Path | None
    fullchain_path: Path | None
    verbose: int
    quiet: bool
    plugin_values: Mapping[str, Any]  # raw --<plugin>-<option> values by click key
    chosen_plugins: tuple[str, ...] = ()  # --standalone, --webroot, --manual, --nginx, --apache as given


def _domains(values: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip().lower().rstrip(".")
            if name and name not in names:
                names.append(name)
    return tuple(names)


def _key_type(params: Mapping[str, Any]) -> CertKeyType:
    kind = params.get("key_type") or ("rsa" if params.get("rsa_key_size") and not params.get("elliptic_curve")
                                      else "ecdsa")
    if kind == "rsa":
        return {"2048": "rsa2048", "3072": "rsa3072", "4096": "rsa4096"}[params.get("rsa_key_size") or "2048"]  # type: ignore[return-value]  # literal map
    return "ec384" if params.get("elliptic_curve") == "secp384r1" else "ec256"


def webroot_map_from_argv(argv: Sequence[str]) -> dict[str, str]:
    """certbot's rule: each ``-w DIR`` applies to the ``-d`` names after it (until the next ``-w``)."""
    mapping: dict[str, str] = {}
    current: str | None = None
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        value: str | None = None
        name = arg
        if "=" in arg and arg.startswith("--"):
            name, value = arg.split("=", 1)
        elif arg.startswith(("-w", "-d")) and len(arg) > 2 and not arg.startswith("--"):
            name, value = arg[:2], arg[2:]
        if name in ("-w", "--webroot-path", "-d", "--domains", "--domain") and value is None:
            index += 1
            value = args[index] if index < len(args) else None
        if value is not None and name in ("-w", "--webroot-path"):
            current = value
        elif value is not None and name in ("-d", "--domains", "--domain") and current is not None:
            for domain in _domains([value]):
                mapping.setdefault(domain, current)
        index += 1
    return mapping


def settings_from(
    params: Mapping[str, Any], argv: Sequence[str], stdin_is_tty: bool, plugin_keys: frozenset[str] = frozenset()
) -> Settings:
    if params.get("staging") and params.get("server"):
        raise ConfigError("--staging and --server name two different CAs", hint="give only one of them")
    server = params.get("server") or (LE_STAGING if params.get("staging") else LE_PRODUCTION)
    if params.get("email") and params.get("no_email"):
        raise ConfigError("-m and --register-unsafely-without-email contradict each other", hint="give one")
    bundle = params.get("server_ca_bundle")
    if bundle is not None and not Path(bundle).is_file():
        raise ConfigError(f"--server-ca-bundle {bundle}: no such file",
                          hint="give the PEM file of the CA's API trust anchor (ca_stub: DATA/api-root.pem)")
    return Settings(
        domains=_domains(params.get("domains") or ()),
        cert_name=params.get("cert_name"),
        authenticator=params.get("authenticator"),
        installer=params.get("installer"),
        webroot_map=webroot_map_from_argv(argv),
        webroot_paths=tuple(str(path) for path in params.get("webroot_path") or ()),
        server=server,
        server_set=bool(params.get("server") or params.get("staging")),
        ca_bundle=str(bundle) if bundle else None,
        agree_tos=bool(params.get("agree_tos")),
        email=params.get("email"),
        no_email=bool(params.get("no_email")),
        eab_kid=params.get("eab_kid"),
        eab_hmac_key=params.get("eab_hmac_key"),
        interactive=not params.get("non_interactive") and stdin_is_tty and os.environ.get("CI") is None,
        config_dir=Path(params["config_dir"]),
        work_dir=Path(params["work_dir"]),
        logs_dir=Path(params["logs_dir"]),
        http01_port=int(params["http_01_port"]),
        http01_address=params.get("http_01_address") or "",
        https_port=int(params["https_port"]),
        redirect=params.get("redirect"),
        hsts=bool(params.get("hsts")),
        uir=bool(params.get("uir")),
        staple_ocsp=bool(params.get("staple_ocsp")),
        key_type=_key_type(params),
        key_type_set=bool(params.get("key_type") or params.get("rsa_key_size") or params.get("elliptic_curve")),
        reuse_key=bool(params.get("reuse_key")),
        force_renewal=bool(params.get("force_renewal")),
        expand=bool(params.get("expand")),
        dry_run=bool(params.get("dry_run")),
        preferred_challenges=normalize_challenges(params.get("preferred_challenges") or ()),
        preferred_chain=params.get("preferred_chain"),
        preferred_profile=params.get("preferred_profile"),
        required_profile=params.get("required_profile"),
        csr=params.get("csr"),
        pre_hook=params.get("pre_hook"),
        post_hook=params.get("post_hook"),
        deploy_hook=params.get("deploy_hook"),
        run_deploy_hooks=bool(params.get("run_deploy_hooks")),
        cert_path=params.get("cert_path"),
        key_path=params.get("key_path"),
        chain_path=params.get("chain_path"),
        fullchain_path=params.get("fullchain_path"),
        verbose=int(params.get("verbose") or 0),
        quiet=bool(params.get("quiet")),
        plugin_values={name: value for name, value in params.items() if name in plugin_keys and value},
        chosen_plugins=tuple(name for name in ("standalone", "webroot", "manual", "nginx", "apache")
                             if params.get(f"use_{name}")),
    )
