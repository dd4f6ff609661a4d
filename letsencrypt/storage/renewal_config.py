"""The renewal configuration of a lineage (``renewal/NAME.conf``): an explicit, versioned schema.

The file is the INI subset certbot writes with ConfigObj (see ``_confobj``), so certbot can read
ours and we can read certbot's::

    schema_version = 1                                  # ours; certbot's files have none
    archive_dir = /etc/letsencrypt/archive/example.com
    cert = /etc/letsencrypt/live/example.com/cert.pem
    privkey = ... chain = ... fullchain = ...           # one line each
    [renewalparams]
    account = <account id>
    authenticator = webroot
    server = https://acme-v02.api.letsencrypt.org/directory
    key_type = ecdsa
    webroot_path = /var/www/html,
    manual_auth_hook = /usr/local/bin/auth.sh           # plugin options: <plugin>_<option>
    [[webroot_map]]
    example.com = /var/www/html

Schema versions: a file without ``schema_version`` is certbot's (read for the fields below,
unknown ``renewalparams`` kept in ``extra`` and written back); ``1`` is this module's; a larger
number was written by a newer client and is refused with a clear error rather than half-read.

Plugin options are stored the way certbot stores them, flattened into ``renewalparams`` as
``<plugin>_<option>`` with dashes turned into underscores (``nginx_server_root``); on reading,
keys with the prefix of the lineage's authenticator or installer become ``plugin_options``
(option names with dashes again, ready to become ``--<plugin>-<option>``). Only the authenticator's
and the installer's options are stored, as only they matter for renewal.

Imports: the standard library, ``letsencrypt.errors``, ``letsencrypt.acme.crypto`` (key types) and
the storage package's private helpers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from letsencrypt.acme.crypto import CertKeyType
from letsencrypt.acme.records import record
from letsencrypt.errors import StorageError
from letsencrypt.storage import _confobj
from letsencrypt.storage._confobj import Value
from letsencrypt.storage._files import atomic_write

__all__ = [
    "SCHEMA_VERSION",
    "Hooks",
    "LineageFiles",
    "OptionValue",
    "RenewalConfig",
    "load",
    "parse",
    "render",
    "save",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
OptionValue = str | tuple[str, ...]
_CURVES = {"ec256": "secp256r1", "ec384": "secp384r1"}
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_FILE_KEYS = ("archive_dir", "cert", "privkey", "chain", "fullchain")
_TYPED_KEYS = frozenset({
    "account", "authenticator", "installer", "server", "key_type", "rsa_key_size", "elliptic_curve", "reuse_key",
    "must_staple", "preferred_chain", "pref_challs", "http01_port", "http01_address", "https_port", "webroot_path",
    "webroot_map", "preferred_profile", "required_profile", "pre_hook", "post_hook", "renew_hook", "deploy_hook",
})


@record
class Hooks:
    """Commands run around issuance: ``--pre-hook``, ``--post-hook``, ``--deploy-hook``."""

    pre: str | None = None
    post: str | None = None
    deploy: str | None = None


@record
class LineageFiles:
    """The lineage paths written at the top of the file (certbot reads them; we derive them)."""

    archive_dir: Path
    cert: Path
    privkey: Path
    chain: Path
    fullchain: Path


@record
class RenewalConfig:
    """Everything needed to renew a lineage the way it was obtained.

    Key parameters use certbot's fields (``key_type`` rsa/ecdsa, ``rsa_key_size``,
    ``elliptic_curve``); ``cert_key_type`` and ``with_key_type`` convert from and to
    ``letsencrypt.acme.crypto.CertKeyType``. The mappings are read-only by convention.
    """

    server: str
    account: str | None = None
    authenticator: str | None = None
    installer: str | None = None
    key_type: Literal["rsa", "ecdsa"] = "ecdsa"
    rsa_key_size: int | None = None
    elliptic_curve: str | None = "secp256r1"
    reuse_key: bool = False
    must_staple: bool = False
    preferred_chain: str | None = None
    preferred_challenges: tuple[str, ...] = ()
    http01_port: int | None = None
    http01_address: str | None = None
    https_port: int | None = None
    webroot_path: tuple[str, ...] = ()
    webroot_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
    preferred_profile: str | None = None
    required_profile: str | None = None
    hooks: Hooks = Hooks()
    renew_before_expiry: str | None = None
    plugin_options: Mapping[str, Mapping[str, OptionValue]] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, Value] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        """Normalize what callers may pass loosely (lists, ints, Paths) to the canonical stored form."""
        setattr_ = object.__setattr__
        setattr_(self, "preferred_challenges", tuple(self.preferred_challenges))
        setattr_(self, "webroot_path", tuple(str(path) for path in self.webroot_path))
        setattr_(self, "webroot_map", {str(domain): str(path) for domain, path in self.webroot_map.items()})
        options: dict[str, dict[str, OptionValue]] = {}
        for plugin, values in self.plugin_options.items():
            prefix = plugin.replace("-", "_") + "_"
            for option, value in values.items():
                key = prefix + option.replace("-", "_")
                if key == "webroot_path" and not self.webroot_path and value is not None:
                    setattr_(self, "webroot_path", _option_value(value) if isinstance(value, tuple | list) else
                             (str(value),))
                if key in _TYPED_KEYS or value is None:
                    continue  # a typed field holds it (webroot_path, webroot_map)
                options.setdefault(plugin, {})[option] = _option_value(value)
        setattr_(self, "plugin_options", options)
        setattr_(self, "extra", dict(self.extra))

    @property
    def cert_key_type(self) -> CertKeyType:
        """The certificate key to generate on renewal (RSA 2048 / P-256 when the size is unset)."""
        if self.key_type == "rsa":
            size = self.rsa_key_size or 2048
            if size not in (2048, 3072, 4096):
                raise StorageError(f"unsupported rsa_key_size {size} in the renewal configuration",
                                   hint="use 2048, 3072 or 4096 (--rsa-key-size)")
            return "rsa2048" if size == 2048 else "rsa3072" if size == 3072 else "rsa4096"
        curve = self.elliptic_curve or "secp256r1"
        if curve == _CURVES["ec256"]:
            return "ec256"
        if curve == _CURVES["ec384"]:
            return "ec384"
        raise StorageError(f"unsupported elliptic_curve {self.elliptic_curve!r} in the renewal configuration",
                           hint="use secp256r1 or secp384r1 (--elliptic-curve)")

    def with_key_type(self, key_type: CertKeyType) -> RenewalConfig:
        """A copy whose key fields describe ``key_type``."""
        if key_type.startswith("rsa"):
            return dataclasses.replace(self, key_type="rsa", rsa_key_size=int(key_type[3:]), elliptic_curve=None)
        return dataclasses.replace(self, key_type="ecdsa", rsa_key_size=None, elliptic_curve=_CURVES[key_type])


def _option_value(value: object) -> OptionValue:
    """A plugin option as stored: text, or a tuple of texts for a repeated option."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple | list):
        return tuple(str(item) for item in value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


# --- reading -------------------------------------------------------------------------------------


class _Params:
    """The ``renewalparams`` being converted; what is not taken is left for plugins and extras."""

    def __init__(self, values: Mapping[str, Value | _confobj.Section]) -> None:
        self.values = dict(values)

    def text(self, key: str, *aliases: str) -> str | None:
        for name in (key, *aliases):
            value = self.values.pop(name, None)
            if isinstance(value, dict):
                raise ValueError(f"{name} is a section, expected a value")
            if isinstance(value, tuple):  # an unquoted comma in a hand-edited value: keep it literal
                value = ", ".join(value)
            if value is not None and value not in ("", "None"):
                return value
        return None

    def items(self, key: str) -> tuple[str, ...]:
        value = self.values.pop(key, None)
        if isinstance(value, dict):
            raise ValueError(f"{key} is a section, expected a list")
        if value is None or value in ("", "None"):
            return ()
        return (value,) if isinstance(value, str) else tuple(item for item in value if item)

    def integer(self, key: str) -> int | None:
        value = self.text(key)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError as err:
            raise ValueError(f"{key} must be a whole number, not {value!r}") from err

    def flag(self, key: str) -> bool:
        value = self.text(key)
        if value is None:
            return False
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"{key} must be True or False, not {value!r}")

    def section(self, key: str) -> dict[str, str]:
        value = self.values.pop(key, None)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a [[{key}]] section")
        return {name: item if isinstance(item, str) else ", ".join(item)
                for name, item in value.items() if not isinstance(item, dict)}


def _schema_version(top: Mapping[str, Value]) -> int:
    raw = top.get("schema_version")
    if raw is None:
        return 0  # written by certbot
    try:
        version = int(raw) if isinstance(raw, str) else -1
    except ValueError:
        version = -1
    if version < 1:
        raise ValueError(f"schema_version must be a positive whole number, not {raw!r}")
    return version


def _split_plugin_options(
    params: _Params, plugins: tuple[str | None, ...]
) -> dict[str, dict[str, OptionValue]]:
    prefixes = sorted({(name.replace("-", "_") + "_", name) for name in plugins if name},
                      key=lambda pair: -len(pair[0]))
    options: dict[str, dict[str, OptionValue]] = {}
    for key in list(params.values):
        value = params.values[key]
        for prefix, plugin in prefixes:
            if key.startswith(prefix) and len(key) > len(prefix) and not isinstance(value, dict):
                options.setdefault(plugin, {})[key[len(prefix):].replace("_", "-")] = value
                del params.values[key]
                break
    return options


def _from_document(document: _confobj.Document) -> RenewalConfig:
    version = _schema_version(document.top)
    if version > SCHEMA_VERSION:
        raise _NewerSchema(version)
    params = _Params(document.sections.get("renewalparams", {}))
    server = params.text("server")
    if server is None:
        raise ValueError("[renewalparams] has no server (the ACME directory URL)")
    key_type = params.text("key_type") or ("ecdsa" if version else "rsa")  # certbot < 2.0 wrote RSA only
    if key_type not in ("rsa", "ecdsa"):
        raise ValueError(f"key_type must be rsa or ecdsa, not {key_type!r}")
    renew_before = document.top.get("renew_before_expiry")
    config = RenewalConfig(
        server=server,
        account=params.text("account"),
        authenticator=params.text("authenticator"),
        installer=params.text("installer"),
        key_type="rsa" if key_type == "rsa" else "ecdsa",
        rsa_key_size=params.integer("rsa_key_size"),
        elliptic_curve=params.text("elliptic_curve") or ("secp256r1" if key_type == "ecdsa" else None),
        reuse_key=params.flag("reuse_key"),
        must_staple=params.flag("must_staple"),
        preferred_chain=params.text("preferred_chain"),
        preferred_challenges=params.items("pref_challs"),
        http01_port=params.integer("http01_port"),
        http01_address=params.text("http01_address"),
        https_port=params.integer("https_port"),
        webroot_path=params.items("webroot_path"),
        webroot_map=params.section("webroot_map"),
        preferred_profile=params.text("preferred_profile"),
        required_profile=params.text("required_profile"),
        hooks=Hooks(params.text("pre_hook"), params.text("post_hook"), params.text("renew_hook", "deploy_hook")),
        renew_before_expiry=renew_before if isinstance(renew_before, str) and renew_before else None,
    )
    plugin_options = _split_plugin_options(params, (config.authenticator, config.installer))
    extra: dict[str, Value] = {}
    for key, value in params.values.items():
        if isinstance(value, dict):
            logger.debug("renewal configuration: ignoring the unknown subsection [[%s]]", key)
        else:
            extra[key] = value
    return dataclasses.replace(config, plugin_options=plugin_options, extra=extra)


class _NewerSchema(Exception):
    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


def parse(text: str, *, source: str = "renewal configuration") -> RenewalConfig:
    """Read a renewal configuration (ours or certbot's); ``StorageError`` naming ``source`` if unusable."""
    try:
        return _from_document(_confobj.parse(text))
    except _NewerSchema as err:
        raise StorageError(
            f"{source} has schema_version {err.version}, but this client understands up to {SCHEMA_VERSION}",
            hint="it was written by a newer letsencrypt; upgrade letsencrypt to renew this certificate",
        ) from None
    except ValueError as err:
        raise StorageError(
            f"{source} cannot be read: {err}",
            hint="fix the file by hand, or delete the certificate (letsencrypt delete --cert-name NAME)",
        ) from err


def load(path: Path) -> RenewalConfig:
    """Read ``path``; ``StorageError`` when it is missing, unreadable or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise StorageError(f"cannot read the renewal configuration {path}: {err}") from err
    return parse(text, source=str(path))


# --- writing -------------------------------------------------------------------------------------


def _optional(entries: list[tuple[str, Value]], key: str, value: str | int | None) -> None:
    if value is not None:
        entries.append((key, str(value)))


def _params(config: RenewalConfig) -> list[tuple[str, Value]]:
    entries: list[tuple[str, Value]] = []
    for key in ("account", "authenticator", "installer"):
        _optional(entries, key, getattr(config, key))
    entries.append(("server", config.server))
    entries.append(("key_type", config.key_type))
    _optional(entries, "rsa_key_size", config.rsa_key_size if config.key_type == "rsa" else None)
    _optional(entries, "elliptic_curve", config.elliptic_curve if config.key_type == "ecdsa" else None)
    for key in ("reuse_key", "must_staple"):
        if getattr(config, key):
            entries.append((key, "True"))
    _optional(entries, "preferred_chain", config.preferred_chain)
    if config.preferred_challenges:
        entries.append(("pref_challs", config.preferred_challenges))
    for key in ("http01_port", "http01_address", "https_port"):
        _optional(entries, key, getattr(config, key))
    if config.webroot_path:
        entries.append(("webroot_path", config.webroot_path))
    for key in ("preferred_profile", "required_profile"):
        _optional(entries, key, getattr(config, key))
    _optional(entries, "pre_hook", config.hooks.pre)
    _optional(entries, "post_hook", config.hooks.post)
    _optional(entries, "renew_hook", config.hooks.deploy)
    for plugin, options in sorted(config.plugin_options.items()):
        if plugin not in (config.authenticator, config.installer):
            raise ValueError(f"plugin options of {plugin!r}, which is neither the authenticator nor the installer")
        prefix = plugin.replace("-", "_") + "_"
        entries.extend((prefix + option.replace("-", "_"), value) for option, value in sorted(options.items()))
    entries.extend(sorted(config.extra.items()))
    return entries


def render(config: RenewalConfig, files: LineageFiles) -> str:
    """The file text for ``config``; ``StorageError`` for a value the format cannot hold (a line break)."""
    try:
        return _render(config, files)
    except ValueError as err:
        raise StorageError(f"cannot write the renewal configuration: {err}",
                           hint="remove line breaks from hook commands and plugin options") from err


def _render(config: RenewalConfig, files: LineageFiles) -> str:
    lines = [
        "# renew_before_expiry = 30 days"
        if config.renew_before_expiry is None
        else _confobj.format_entry("renew_before_expiry", config.renew_before_expiry),
        _confobj.format_entry("schema_version", str(SCHEMA_VERSION)),
    ]
    lines.extend(_confobj.format_entry(key, str(getattr(files, key).absolute())) for key in _FILE_KEYS)
    lines += ["", "# Options used in the renewal process", "[renewalparams]"]
    params = _params(config)
    keys = [key for key, _ in params]
    if len(keys) != len(set(keys)):
        raise ValueError(f"renewal parameters repeat a key: {sorted(k for k in set(keys) if keys.count(k) > 1)}")
    lines.extend(_confobj.format_entry(key, value) for key, value in params)
    if config.webroot_map:
        lines.append("[[webroot_map]]")
        lines.extend(_confobj.format_entry(domain, path) for domain, path in sorted(config.webroot_map.items()))
    return "\n".join(lines) + "\n"


def save(path: Path, config: RenewalConfig, files: LineageFiles) -> None:
    """Write ``path`` atomically (temp file, fsync, rename); an existing file keeps its mode."""
    text = render(config, files)
    atomic_write(path, text.encode("utf-8"), mode=0o600, keep_mode=True, label="renewal-conf")
