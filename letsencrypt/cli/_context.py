"""Per-process state of the CLI: the plugin registry (discovered once) and building a ``Runtime``.

Loading a plugin imports its package and its parser library (nginx's pyparsing grammar, Augeas):
about a third of a ``certonly`` run's start-up once nginx and Apache are installed. So for the
process's own command line (``scope_plugins_to``, called by ``letsencrypt.cli.main``), a
``certonly`` or ``run`` that names its plugins (``--standalone``, ``-a webroot``, ``--nginx``,
``-i apache``, or any ``--<plugin>-<option>`` flag) loads only those. Everything else (``renew``,
``plugins``, ``--help``, a command line naming no authenticator, ``LETSENCRYPT_*`` settings from
the environment) loads every plugin, as do in-process callers such as tests.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from letsencrypt.cli._options import Settings, plugin_flag_options, settings_from
from letsencrypt.cli._runtime import Runtime, setup_logging
from letsencrypt.plugin_api import ENTRY_POINT_GROUP
from letsencrypt.plugins import _entry_points
from letsencrypt.plugins.discovery import PluginRegistry, discover, plugin_options

__all__ = ["named_plugins", "plugin_flags", "registry", "runtime_from", "scope_plugins_to"]

_SHORTCUTS = {"--standalone": ("standalone", False), "--webroot": ("webroot", False), "--manual": ("manual", False),
              "--nginx": ("nginx", True), "--apache": ("apache", True)}  # flag -> (plugin, also the installer)
_CHOOSERS = {"-a": "authenticator", "--authenticator": "authenticator", "-i": "installer", "--installer": "installer"}
_command_line: tuple[str, ...] | None = None


def scope_plugins_to(argv: Sequence[str]) -> None:
    """Load only the plugins ``argv`` (this process's command line) names, when it names them all."""
    global _command_line
    _command_line = tuple(argv)
    registry.cache_clear()


def named_plugins(argv: Sequence[str], installed: Sequence[str]) -> set[str] | None:
    """The plugins a ``certonly``/``run`` command line needs, or None when every plugin must be loaded."""
    from letsencrypt.cli import COMMANDS

    command = next((arg for arg in argv if arg in COMMANDS), "run")
    if command not in ("certonly", "run") or any(arg in ("-h", "--help") for arg in argv):
        return None
    names: set[str] = set()
    chosen = {"authenticator": False, "installer": False}
    for index, arg in enumerate(argv):
        flag, _, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if flag[:2] in ("-a", "-i") and len(flag) > 2 and not flag.startswith("--"):
            flag, inline = flag[:2], flag[2:]  # -aNAME
        if flag in _SHORTCUTS:
            plugin, installs = _SHORTCUTS[flag]
            names.add(plugin)
            chosen["authenticator"] = True
            chosen["installer"] = chosen["installer"] or installs
        elif flag in _CHOOSERS:
            names.add(inline or (argv[index + 1] if index + 1 < len(argv) else ""))
            chosen[_CHOOSERS[flag]] = True
        elif flag.startswith("-w") and not flag.startswith("--"):
            names.add("webroot")
        names.update(name for name in installed if flag.startswith(f"--{name}-"))
    if not chosen["authenticator"] or (command == "run" and not chosen["installer"]):
        return None
    return names


@functools.cache
def registry() -> PluginRegistry:
    if _command_line is None or any(key.startswith("LETSENCRYPT_") for key in os.environ):
        return discover()
    installed = _entry_points.entry_points(ENTRY_POINT_GROUP)
    wanted = named_plugins(_command_line, [entry_point.name for entry_point in installed])
    if wanted is None:
        return discover()
    return discover(entry_points=[entry_point for entry_point in installed if entry_point.name in wanted])


def plugin_flags() -> list[click.Option]:
    return plugin_flag_options(plugin_options(registry()))


def _plugin_keys() -> frozenset[str]:
    return frozenset(option.key(plugin) for plugin, option in plugin_options(registry()))


def runtime_from(ctx: click.Context, params: Mapping[str, Any]) -> Runtime:
    argv = ctx.find_root().meta.get("argv", sys.argv[1:])
    settings: Settings = settings_from(params, argv, sys.stdin.isatty(), _plugin_keys())
    setup_logging(settings)
    runtime = Runtime(settings, registry())
    for broken in registry().broken:
        runtime.reporter.warn(f"plugin {broken.name} could not be loaded and is skipped: {broken.reason}")
    return runtime
