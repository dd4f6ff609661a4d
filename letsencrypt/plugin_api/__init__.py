"""The public plugin contract: what a third-party authenticator or installer implements.

This module is the contract (DESIGN.md "Plugins", STYLE.md section 1); its public submodules are
helpers an installer may use: ``files`` (atomic, durable writes), ``checkpoints`` (crash-safe,
exact rollback of configuration files), ``probes`` (what a server serves, its processes) and
``solutions`` (challenge answers checked once for every plugin). A plugin is a
class registered under the entry-point group ``letsencrypt.plugins``; the client finds it there,
builds ``--<plugin>-<option>`` flags from its :class:`Option` declarations, constructs it with a
:class:`PluginContext` and calls the methods of :class:`Authenticator` and/or :class:`Installer`.
The shape follows lego's ``challenge/provider.go``: a small required protocol plus optional
capabilities (:class:`VerifiesDeployment`, :class:`DeleteAware`) that the client probes for.

A plugin module imports this module and ``letsencrypt.acme`` (for challenge math) and nothing else
of the client. Each implementation carries a one-line static conformance check, so that mypy
reports a contract mismatch at the class rather than at a call site::

    from typing import TYPE_CHECKING
    if TYPE_CHECKING:
        _: type[plugin_api.Authenticator] = MyAuthenticator

Errors a plugin raises::

    PluginError               root: anything a plugin reports; ``message`` and ``hint`` (the next step)
    ├── MisconfigurationError the server configuration cannot be used: unparseable, no matching vhost
    ├── NotSupported          the challenge type or enhancement is not supported by this plugin
    └── ChallengeSetupError   a challenge could not be provisioned (a port in use, a failing hook)

Allowed imports: the standard library and ``letsencrypt.acme`` only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from letsencrypt.acme import challenges
from letsencrypt.acme.jws import AccountKey
from letsencrypt.acme.messages import Challenge, ChallengeType, Identifier
from letsencrypt.acme.records import record

__all__ = [
    "API_VERSION",
    "ENHANCEMENTS",
    "ENTRY_POINT_GROUP",
    "AccountKey",
    "Authenticator",
    "Challenge",
    "ChallengeSetupError",
    "ChallengeTask",
    "ChallengeType",
    "DeleteAware",
    "Identifier",
    "Installer",
    "MisconfigurationError",
    "NotSupported",
    "Option",
    "OptionType",
    "Plugin",
    "PluginContext",
    "PluginError",
    "Reporter",
    "VerifiesDeployment",
]

API_VERSION = 1
"""Raised only on an incompatible change of this module; a plugin may check it at import time."""

ENTRY_POINT_GROUP = "letsencrypt.plugins"
"""The entry-point group plugins register in: ``name = "package.module:PluginClass"``."""

ENHANCEMENTS = ("redirect", "hsts", "uir", "staple-ocsp")
"""Enhancement names an installer may support (certbot's names; ``--redirect``, ``--hsts``, ...)."""

_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


# --- errors ------------------------------------------------------------------------------------


class PluginError(Exception):
    """Something a plugin could not do, said so that the user knows what to do next.

    ``message`` says what failed and for which domain or file; ``hint`` (optional) says what to
    try, e.g. ``"stop the web server on port 80 or use --webroot / --nginx"``. The client shows
    both and exits with ``exit_code``.
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} (hint: {self.hint})"


class MisconfigurationError(PluginError):
    """The server configuration cannot be used: unparseable, no matching vhost, a missing directory."""


class NotSupported(PluginError):
    """The requested challenge type or enhancement is not something this plugin can do."""


class ChallengeSetupError(PluginError):
    """A challenge could not be provisioned: a port in use, a failing hook, an unwritable webroot."""


# --- option declarations ----------------------------------------------------------------------

OptionType = Literal["str", "int", "bool", "path"]
_PARSERS: dict[str, Any] = {"str": str, "int": int, "path": Path}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@record
class Option:
    """One setting a plugin accepts; it becomes the flag ``--<plugin>-<name>``.

    ``name`` is kebab-case (``zone-file`` on plugin ``dns-example`` gives
    ``--dns-example-zone-file``). The value reaches the plugin as ``context.options[name]``,
    converted to ``type`` (``"path"`` gives a :class:`pathlib.Path`); with ``multiple`` the flag
    may repeat and the value is a tuple. The values a user gave are saved in the lineage's renewal
    configuration, so that ``renew`` constructs the plugin exactly as it was when the certificate
    was obtained. ``secret`` values (API tokens) are never logged, shown or saved: renewal cannot
    re-create them, so a plugin that needs a secret at renewal takes the *path* of a credentials
    file (mode 0600) instead, as certbot's DNS plugins do.
    """

    name: str
    help: str
    type: OptionType = "str"
    default: Any = None
    multiple: bool = False
    required: bool = False
    secret: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"option name {self.name!r} is not kebab-case (lowercase letters, digits, '-')")
        if self.type not in ("str", "int", "bool", "path"):
            raise ValueError(f"option {self.name!r}: type must be str, int, bool or path, not {self.type!r}")
        if self.type == "bool" and self.multiple:
            raise ValueError(f"option {self.name!r}: a bool option cannot be given several times")

    def flag(self, plugin_name: str) -> str:
        """The command-line flag: ``--<plugin>-<name>``."""
        return f"--{plugin_name}-{self.name}"

    def key(self, plugin_name: str) -> str:
        """The snake_case key for renewal configuration files: ``<plugin>_<name>``."""
        return f"{plugin_name}_{self.name}".replace("-", "_")

    def parse(self, text: str) -> Any:
        """Convert one textual value (a flag, a renewal configuration entry) to ``type``.

        Raises ``ValueError`` naming the option when the text does not fit.
        """
        if self.type == "bool":
            lowered = text.strip().lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError(f"option {self.name!r} expects true or false, got {text!r}")
        try:
            return _PARSERS[self.type](text)
        except ValueError as err:
            raise ValueError(f"option {self.name!r} expects {self.type}, got {text!r}") from err


# --- what a plugin is given -------------------------------------------------------------------


@runtime_checkable
class Reporter(Protocol):
    """Where a plugin talks to the user; plugins never print. The CLI decides where it goes."""

    def info(self, message: str) -> None:
        """Something the user should read (instructions, a result)."""

    def warn(self, message: str) -> None:
        """Something went wrong but the run goes on."""

    def progress(self, message: str) -> None:
        """A transient status line while waiting."""


@record(kw_only=True)
class PluginContext:
    """Everything a plugin gets from the client, handed to its constructor; no global state.

    ``options`` holds only this plugin's own options, keyed by option name (``"zone-file"``), with
    defaults filled in and values converted. Directories are the client's ``--config-dir``,
    ``--work-dir`` (scratch space a plugin may use) and ``--logs-dir``. The ports and the address are
    where the standalone-style responders listen (``--http-01-port``, ``--http-01-address``,
    ``--https-port``). ``interactive`` is false under ``-n`` or without a terminal: a plugin must then
    not wait for a person. ``dry_run`` is true for ``--dry-run`` (staging CA, nothing saved):
    installers must not change live configuration then.
    """

    options: Mapping[str, Any]
    config_dir: Path
    work_dir: Path
    logs_dir: Path
    reporter: Reporter
    http01_port: int = 80
    http01_address: str = ""
    https_port: int = 443
    interactive: bool = False
    dry_run: bool = False
    server_url: str = ""


@record
class ChallengeTask:
    """One challenge to solve: the identifier, the CA's challenge object and the key authorization.

    ``key_authorization`` is ``token.thumbprint`` (RFC 8555 §8.1), or ``""`` for ``dvsni``, which
    carries no token. ``account_key`` is there for ``dvsni``, whose certificate is signed by the
    account key; other challenge types never need it. The properties give what to publish, using
    the shared challenge math in ``letsencrypt.acme.challenges``.
    """

    identifier: Identifier
    challenge: Challenge
    key_authorization: str
    account_key: AccountKey = dataclasses.field(repr=False)

    @property
    def type(self) -> ChallengeType:
        return self.challenge.type

    @property
    def domain(self) -> str:
        """The identifier's value: a DNS name (maybe ``*.``-prefixed) or an IP address."""
        return self.identifier.value

    @property
    def token(self) -> str:
        """The challenge token, checked to be base64url (RFC 8555 §8.3); ``ValueError`` if there is none."""
        if self.challenge.token is None:
            raise ValueError(f"the {self.challenge.type_name} challenge for {self.domain} has no token")
        return challenges.check_token(self.challenge.token)

    @property
    def http01_path(self) -> str:
        """``/.well-known/acme-challenge/<token>``: where an http-01 validator looks."""
        return challenges.http01_path(self.token)

    @property
    def http01_body(self) -> bytes:
        """The exact body to serve at :attr:`http01_path`."""
        return challenges.http01_body(self.key_authorization)

    @property
    def dns01_record_name(self) -> str:
        """``_acme-challenge.<domain>`` (a wildcard's base domain): where the TXT record goes."""
        return challenges.dns01_record_name(self.domain)

    @property
    def dns01_txt_value(self) -> str:
        """The TXT record's value: base64url(SHA-256(key authorization)), 43 characters."""
        return challenges.dns01_txt_value(self.key_authorization)


# --- the protocols ----------------------------------------------------------------------------


class Plugin(Protocol):
    """What every plugin class has.

    ``name`` is its entry-point name (kebab-case; the flag prefix), ``description`` one line for
    ``letsencrypt plugins``, ``options`` its declarations. The constructor must be cheap and must
    not touch the system; :meth:`prepare` checks the environment (binaries present, configuration
    parseable, ports valid) and raises :class:`PluginError` with a hint when something is missing.
    """

    # Read-only members, so that plain class attributes (``name = "dns-example"``,
    # ``options = (Option(...),)``) satisfy them.
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def options(self) -> Sequence[Option]: ...

    def __init__(self, context: PluginContext) -> None: ...

    def prepare(self) -> None:
        """Check that the plugin can work here; raise :class:`PluginError` (with a hint) if not."""


class Authenticator(Plugin, Protocol):
    """Proves control of identifiers by serving challenges (lego's ``Provider``: present, clean up)."""

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        """Challenge type names this plugin can serve for ``identifier``, preferred first.

        Names are ACME's (``"http-01"``, ``"dns-01"``, ``"tls-alpn-01"``, ``"simpleHttps"``,
        ``"dvsni"``). Return an empty sequence for an identifier the plugin cannot handle (a
        wildcard for an HTTP-based plugin, an IP address for a DNS plugin).
        """
        ...

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        """Provision all ``tasks`` at once and return, for each task in order, the response payload.

        The payload is ``{}`` for http-01, dns-01 and tls-alpn-01 (RFC 8555 §7.5.1); for
        ``simpleHttps`` and ``dvsni`` it is what
        ``letsencrypt.acme.challenges.challenge_response`` builds. When this returns, every
        challenge must be answerable (files written, servers listening, records published).
        Raise :class:`ChallengeSetupError` or :class:`NotSupported` otherwise.
        """
        ...

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        """Undo :meth:`perform` for ``tasks``; called even when validation failed or perform raised."""


class Installer(Plugin, Protocol):
    """Deploys certificates into a server's configuration, with checkpoints to roll back."""

    def names(self) -> set[str]:
        """Names found in the server configuration (for the user to pick from interactively)."""
        ...

    def deploy_certificate(
        self, domain: str, *, cert_path: Path, key_path: Path, chain_path: Path, fullchain_path: Path
    ) -> None:
        """Point the configuration for ``domain`` at the lineage's live files (not yet saved)."""

    def supported_enhancements(self) -> Sequence[str]:
        """The :data:`ENHANCEMENTS` this installer can apply."""
        ...

    def enhance(self, domain: str, enhancement: str, options: Mapping[str, Any] | None = None) -> None:
        """Apply one enhancement for ``domain``; raise :class:`NotSupported` for an unknown one."""

    def save(self, title: str, *, temporary: bool = False) -> None:
        """Write pending changes to disk as one checkpoint named ``title``.

        A ``temporary`` checkpoint (e.g. challenge configuration) is undone by
        :meth:`recovery_routine` and never listed for ``rollback``.
        """

    def rollback_checkpoints(self, count: int = 1) -> None:
        """Revert the last ``count`` saved checkpoints."""

    def recovery_routine(self) -> None:
        """Revert unsaved and temporary changes, e.g. after a crash or a failed deployment."""

    def config_test(self) -> None:
        """Run the server's own configuration check; raise :class:`MisconfigurationError` if it fails."""

    def restart(self) -> None:
        """Reload the server so that it serves the new configuration."""


@runtime_checkable
class VerifiesDeployment(Protocol):
    """Optional installer capability: check the certificate actually served after :meth:`Installer.restart`."""

    def verify_deployment(self, domain: str, fullchain_pem: bytes) -> None:
        """Raise :class:`PluginError` if ``domain`` does not serve ``fullchain_pem``'s leaf."""


@runtime_checkable
class DeleteAware(Protocol):
    """Optional installer capability: refuse ``letsencrypt delete`` of a lineage still served."""

    def lineage_in_use(self, live_paths: Sequence[Path]) -> list[str]:
        """Where the configuration still references any of ``live_paths`` (``"file:line"``); ``[]`` if nowhere."""
        ...
