"""Plugin discovery: every plugin, built-in or third-party, is found through entry points.

:func:`discover` loads each entry point of the ``letsencrypt.plugins`` group inside its own
``try``: a plugin that fails to import (``ImportError``, ``SyntaxError``, any exception at import
time) or does not fit the contract is recorded as a :class:`BrokenPlugin` and skipped, so that it
never stops the client or the other plugins. Loaded classes are classified as authenticator and/or
installer by the protocol methods they have (lego's ``prober.go``: capabilities are probed, not
declared). :func:`plugin_options` lists the option declarations from which the CLI makes
``--<plugin>-<option>`` flags; :func:`resolve_options` turns given values into a plugin's
``PluginContext.options``.

Imports: stdlib and ``letsencrypt.plugin_api``; never a plugin module by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from letsencrypt.acme.records import record
from letsencrypt.plugin_api import ENTRY_POINT_GROUP, Option, PluginError
from letsencrypt.plugins import _entry_points

__all__ = [
    "AUTHENTICATOR_METHODS",
    "INSTALLER_METHODS",
    "BrokenPlugin",
    "PluginEntry",
    "PluginRegistry",
    "discover",
    "plugin_options",
    "resolve_options",
]

logger = logging.getLogger(__name__)

AUTHENTICATOR_METHODS = ("supported_challenges", "perform", "cleanup")
INSTALLER_METHODS = (
    "names", "deploy_certificate", "supported_enhancements", "enhance", "save",
    "rollback_checkpoints", "recovery_routine", "config_test", "restart",
)  # fmt: skip
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_OWN_DISTRIBUTION = "letsencrypt"


@record
class BrokenPlugin:
    """An entry point that could not be used: why, and which distribution registered it."""

    name: str
    distribution: str | None
    error: BaseException

    @property
    def reason(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


@record
class PluginEntry:
    """A loaded plugin class and what it can do."""

    name: str
    plugin_class: type
    distribution: str | None
    entry_point: str
    is_authenticator: bool
    is_installer: bool

    @property
    def description(self) -> str:
        return str(getattr(self.plugin_class, "description", ""))

    @property
    def options(self) -> tuple[Option, ...]:
        return tuple(getattr(self.plugin_class, "options", ()))


class PluginRegistry:
    """The plugins found, by name, and the entry points that could not be used (``broken``)."""

    def __init__(self, entries: Iterable[PluginEntry], broken: Iterable[BrokenPlugin] = ()) -> None:
        self._entries = {entry.name: entry for entry in entries}
        self.broken: tuple[BrokenPlugin, ...] = tuple(broken)

    def __iter__(self) -> Iterator[PluginEntry]:
        return iter(sorted(self._entries.values(), key=lambda entry: entry.name))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> PluginEntry | None:
        return self._entries.get(name)

    def authenticators(self) -> list[PluginEntry]:
        return [entry for entry in self if entry.is_authenticator]

    def installers(self) -> list[PluginEntry]:
        return [entry for entry in self if entry.is_installer]


class EntryPointLike(Protocol):
    """What discovery uses of an entry point (``importlib.metadata.EntryPoint`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> Any: ...


def discover(group: str = ENTRY_POINT_GROUP, *, entry_points: Iterable[EntryPointLike] | None = None) -> PluginRegistry:
    """Load every plugin registered under ``group``; never raises for a plugin's fault.

    When two distributions register the same name, our own distribution's plugin wins (a third
    party cannot shadow a built-in), else the first found; the other is reported as broken.
    ``entry_points`` replaces the installed ones (for tests and tools).
    """
    found = list(_entry_points.entry_points(group) if entry_points is None else entry_points)
    own = _entry_points.normalized(_OWN_DISTRIBUTION)
    found.sort(key=lambda ep: _entry_points.normalized(_distribution(ep) or "") != own)  # stable otherwise
    entries: dict[str, PluginEntry] = {}
    broken: list[BrokenPlugin] = []
    for entry_point in found:
        distribution = _distribution(entry_point)
        kept = entries.get(entry_point.name)
        if kept is not None:
            if kept.entry_point != entry_point.value or kept.distribution != distribution:
                error = PluginError(
                    f"plugin name {entry_point.name!r} is already taken by {kept.entry_point} "
                    f"(from {kept.distribution or 'an unknown distribution'}); {entry_point.value} is ignored",
                    hint=f"uninstall one of the two, or ask the author of {distribution} to rename it",
                )
                broken.append(_report(BrokenPlugin(entry_point.name, distribution, error)))
            continue
        try:
            entries[entry_point.name] = _load(entry_point, distribution)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - a plugin's import may raise anything
            broken.append(_report(BrokenPlugin(entry_point.name, distribution, err)))
    return PluginRegistry(entries.values(), broken)


def _distribution(entry_point: EntryPointLike) -> str | None:
    if isinstance(entry_point, _entry_points.InstalledEntryPoint):
        return entry_point.distribution
    dist = getattr(entry_point, "dist", None)  # importlib.metadata.EntryPoint
    return None if dist is None else str(dist.name)


def _report(broken: BrokenPlugin) -> BrokenPlugin:
    logger.warning(
        "plugin %s (from %s) is skipped: %s",
        broken.name, broken.distribution or "an unknown distribution", broken.reason,
        exc_info=(type(broken.error), broken.error, broken.error.__traceback__)
        if logger.isEnabledFor(logging.DEBUG) else None,
    )  # fmt: skip
    return broken


def _load(entry_point: EntryPointLike, distribution: str | None) -> PluginEntry:
    """Import the entry point and check the class against the contract; ``PluginError`` if it does not fit."""
    name = entry_point.name
    if not _NAME.fullmatch(name):
        raise PluginError(f"plugin name {name!r} is not kebab-case (lowercase letters, digits, '-')")
    loaded: object = entry_point.load()
    if not isinstance(loaded, type):
        raise PluginError(f"{entry_point.value} is not a class")
    declared = getattr(loaded, "name", None)
    if declared != name:
        raise PluginError(f"{entry_point.value} declares name {declared!r} but is registered as {name!r}")
    missing = [attribute for attribute in ("description", "options", "prepare") if not hasattr(loaded, attribute)]
    if missing:
        raise PluginError(f"{entry_point.value} lacks {', '.join(missing)} of the plugin contract")
    _check_options(name, getattr(loaded, "options", ()))
    is_authenticator = all(callable(getattr(loaded, method, None)) for method in AUTHENTICATOR_METHODS)
    is_installer = all(callable(getattr(loaded, method, None)) for method in INSTALLER_METHODS)
    if not (is_authenticator or is_installer):
        raise PluginError(f"{entry_point.value} is neither an authenticator nor an installer")
    return PluginEntry(name, loaded, distribution, entry_point.value, is_authenticator, is_installer)


def _check_options(plugin: str, options: object) -> None:
    if not isinstance(options, Sequence) or not all(isinstance(option, Option) for option in options):
        raise PluginError(f"plugin {plugin}: options must be a sequence of letsencrypt.plugin_api.Option")
    names = [option.name for option in options]
    duplicates = sorted({option for option in names if names.count(option) > 1})
    if duplicates:
        raise PluginError(f"plugin {plugin} declares option {', '.join(duplicates)} more than once")


def plugin_options(registry: PluginRegistry) -> list[tuple[str, Option]]:
    """Every (plugin name, option) pair, sorted by plugin then declaration order: the CLI's plugin flags."""
    return [(entry.name, option) for entry in registry for option in entry.options]


def resolve_options(plugin: str, options: Sequence[Option], given: Mapping[str, Any]) -> dict[str, Any]:
    """Plugin ``plugin``'s ``PluginContext.options`` from given values (keyed by option name), defaults filled in.

    Textual values (from a renewal configuration) are parsed to the option's type; a ``multiple``
    option becomes a tuple. An unknown name or a missing required option raises ``PluginError``.
    """
    known = {option.name: option for option in options}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise PluginError(f"plugin {plugin} has no option {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for option in options:
        value = given.get(option.name)
        if value is None or (option.multiple and not value):
            if option.required:
                raise PluginError(f"plugin {plugin} needs option {option.name}", hint=f"give {option.flag(plugin)}")
            values[option.name] = option.default
            continue
        try:
            if option.multiple:
                items = [value] if isinstance(value, str) else list(value)
                values[option.name] = tuple(_typed(option, item) for item in items)
            else:
                values[option.name] = _typed(option, value)
        except ValueError as err:
            raise PluginError(str(err)) from err
    return values


def _typed(option: Option, value: Any) -> Any:
    return option.parse(value) if isinstance(value, str) else value
